//! Bindings of the fused multi-tensor optimizer kernels (`crate::ops::optim`).
//! Each takes one param group's tensors as lists and updates them in place.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PySequence;

use super::convert::type_name;
use super::maybe_detach;
use super::tensor::PyTensor;
use crate::ops::optim;
use crate::tensor::Tensor;

/// A Python sequence of tensors.
fn tensors(fname: &str, arg: &str, obj: &Bound<'_, PyAny>) -> PyResult<Vec<Tensor>> {
    let seq = obj.cast::<PySequence>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{fname}(): argument '{arg}' must be a sequence of Tensors, not {}",
            type_name(obj)
        ))
    })?;
    let mut out = Vec::with_capacity(seq.len()?);
    for (i, item) in seq.try_iter()?.enumerate() {
        let item = item?;
        let t = item.cast::<PyTensor>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{fname}(): expected Tensor as element {i} of argument '{arg}', but got {}",
                type_name(&item)
            ))
        })?;
        out.push(t.borrow().t.clone());
    }
    Ok(out)
}

fn numel(ts: &[Tensor]) -> usize {
    ts.iter().map(|t| t.numel()).sum()
}

#[pyfunction]
#[pyo3(signature = (params, grads, momentum_buffers, is_first, *, lr, momentum, dampening, weight_decay, nesterov, maximize))]
#[allow(clippy::too_many_arguments)]
fn _fused_sgd(
    py: Python<'_>,
    params: &Bound<'_, PyAny>,
    grads: &Bound<'_, PyAny>,
    momentum_buffers: &Bound<'_, PyAny>,
    is_first: Vec<bool>,
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    maximize: bool,
) -> PyResult<()> {
    let f = "_fused_sgd";
    let (p, g, b) = (
        tensors(f, "params", params)?,
        tensors(f, "grads", grads)?,
        tensors(f, "momentum_buffers", momentum_buffers)?,
    );
    let o = optim::SgdOptions {
        lr,
        momentum,
        dampening,
        weight_decay,
        nesterov,
        maximize,
    };
    Ok(maybe_detach(py, numel(&p), || {
        optim::sgd(&p, &g, &b, &is_first, o)
    })?)
}

#[pyfunction]
#[pyo3(signature = (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay))]
#[allow(clippy::too_many_arguments)]
fn _fused_adam(
    py: Python<'_>,
    params: &Bound<'_, PyAny>,
    grads: &Bound<'_, PyAny>,
    exp_avgs: &Bound<'_, PyAny>,
    exp_avg_sqs: &Bound<'_, PyAny>,
    max_exp_avg_sqs: &Bound<'_, PyAny>,
    state_steps: &Bound<'_, PyAny>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    maximize: bool,
    decoupled_weight_decay: bool,
) -> PyResult<()> {
    let f = "_fused_adam";
    let p = tensors(f, "params", params)?;
    let g = tensors(f, "grads", grads)?;
    let m = tensors(f, "exp_avgs", exp_avgs)?;
    let v = tensors(f, "exp_avg_sqs", exp_avg_sqs)?;
    let vm = tensors(f, "max_exp_avg_sqs", max_exp_avg_sqs)?;
    let s = tensors(f, "state_steps", state_steps)?;
    let o = optim::AdamOptions {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        amsgrad,
        maximize,
        decoupled_weight_decay,
    };
    Ok(maybe_detach(py, numel(&p), || {
        optim::adam(&p, &g, &m, &v, &vm, &s, o)
    })?)
}

#[pyfunction]
#[pyo3(signature = (params, grads, state_sums, state_steps, *, lr, lr_decay, weight_decay, eps, maximize))]
#[allow(clippy::too_many_arguments)]
fn _fused_adagrad(
    py: Python<'_>,
    params: &Bound<'_, PyAny>,
    grads: &Bound<'_, PyAny>,
    state_sums: &Bound<'_, PyAny>,
    state_steps: &Bound<'_, PyAny>,
    lr: f64,
    lr_decay: f64,
    weight_decay: f64,
    eps: f64,
    maximize: bool,
) -> PyResult<()> {
    let f = "_fused_adagrad";
    let p = tensors(f, "params", params)?;
    let g = tensors(f, "grads", grads)?;
    let sm = tensors(f, "state_sums", state_sums)?;
    let s = tensors(f, "state_steps", state_steps)?;
    let o = optim::AdagradOptions {
        lr,
        lr_decay,
        weight_decay,
        eps,
        maximize,
    };
    Ok(maybe_detach(py, numel(&p), || {
        optim::adagrad(&p, &g, &sm, &s, o)
    })?)
}

#[pyfunction]
#[pyo3(signature = (params, grads, square_avgs, grad_avgs, momentum_buffer_list, state_steps, *, lr, alpha, eps, weight_decay, momentum, centered, maximize))]
#[allow(clippy::too_many_arguments)]
fn _fused_rmsprop(
    py: Python<'_>,
    params: &Bound<'_, PyAny>,
    grads: &Bound<'_, PyAny>,
    square_avgs: &Bound<'_, PyAny>,
    grad_avgs: &Bound<'_, PyAny>,
    momentum_buffer_list: &Bound<'_, PyAny>,
    state_steps: &Bound<'_, PyAny>,
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    maximize: bool,
) -> PyResult<()> {
    let f = "_fused_rmsprop";
    let p = tensors(f, "params", params)?;
    let g = tensors(f, "grads", grads)?;
    let sq = tensors(f, "square_avgs", square_avgs)?;
    let ga = tensors(f, "grad_avgs", grad_avgs)?;
    let mb = tensors(f, "momentum_buffer_list", momentum_buffer_list)?;
    let s = tensors(f, "state_steps", state_steps)?;
    let o = optim::RmspropOptions {
        lr,
        alpha,
        eps,
        weight_decay,
        momentum,
        centered,
        maximize,
    };
    Ok(maybe_detach(py, numel(&p), || {
        optim::rmsprop(&p, &g, &sq, &ga, &mb, &s, o)
    })?)
}

#[pyfunction]
#[pyo3(signature = (params, grads, exp_avgs, exp_infs, state_steps, *, lr, beta1, beta2, eps, weight_decay, maximize))]
#[allow(clippy::too_many_arguments)]
fn _fused_adamax(
    py: Python<'_>,
    params: &Bound<'_, PyAny>,
    grads: &Bound<'_, PyAny>,
    exp_avgs: &Bound<'_, PyAny>,
    exp_infs: &Bound<'_, PyAny>,
    state_steps: &Bound<'_, PyAny>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    maximize: bool,
) -> PyResult<()> {
    let f = "_fused_adamax";
    let p = tensors(f, "params", params)?;
    let g = tensors(f, "grads", grads)?;
    let m = tensors(f, "exp_avgs", exp_avgs)?;
    let u = tensors(f, "exp_infs", exp_infs)?;
    let s = tensors(f, "state_steps", state_steps)?;
    let o = optim::AdamaxOptions {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        maximize,
    };
    Ok(maybe_detach(py, numel(&p), || {
        optim::adamax(&p, &g, &m, &u, &s, o)
    })?)
}

#[pyfunction]
#[pyo3(signature = (params, grads, exp_avgs, exp_avg_sqs, mu_products, state_steps, *, lr, beta1, beta2, eps, weight_decay, momentum_decay, decoupled_weight_decay, maximize))]
#[allow(clippy::too_many_arguments)]
fn _fused_nadam(
    py: Python<'_>,
    params: &Bound<'_, PyAny>,
    grads: &Bound<'_, PyAny>,
    exp_avgs: &Bound<'_, PyAny>,
    exp_avg_sqs: &Bound<'_, PyAny>,
    mu_products: &Bound<'_, PyAny>,
    state_steps: &Bound<'_, PyAny>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    momentum_decay: f64,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> PyResult<()> {
    let f = "_fused_nadam";
    let p = tensors(f, "params", params)?;
    let g = tensors(f, "grads", grads)?;
    let m = tensors(f, "exp_avgs", exp_avgs)?;
    let v = tensors(f, "exp_avg_sqs", exp_avg_sqs)?;
    let mp = tensors(f, "mu_products", mu_products)?;
    let s = tensors(f, "state_steps", state_steps)?;
    let o = optim::NadamOptions {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        momentum_decay,
        decoupled_weight_decay,
        maximize,
    };
    Ok(maybe_detach(py, numel(&p), || {
        optim::nadam(&p, &g, &m, &v, &mp, &s, o)
    })?)
}

#[pyfunction]
#[pyo3(signature = (params, grads, exp_avgs, exp_avg_sqs, state_steps, *, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize))]
#[allow(clippy::too_many_arguments)]
fn _fused_radam(
    py: Python<'_>,
    params: &Bound<'_, PyAny>,
    grads: &Bound<'_, PyAny>,
    exp_avgs: &Bound<'_, PyAny>,
    exp_avg_sqs: &Bound<'_, PyAny>,
    state_steps: &Bound<'_, PyAny>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> PyResult<()> {
    let f = "_fused_radam";
    let p = tensors(f, "params", params)?;
    let g = tensors(f, "grads", grads)?;
    let m = tensors(f, "exp_avgs", exp_avgs)?;
    let v = tensors(f, "exp_avg_sqs", exp_avg_sqs)?;
    let s = tensors(f, "state_steps", state_steps)?;
    let o = optim::RadamOptions {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        decoupled_weight_decay,
        maximize,
    };
    Ok(maybe_detach(py, numel(&p), || {
        optim::radam(&p, &g, &m, &v, &s, o)
    })?)
}

#[pyfunction]
#[pyo3(signature = (params, grads, square_avgs, acc_deltas, state_steps, *, lr, rho, eps, weight_decay, maximize))]
#[allow(clippy::too_many_arguments)]
fn _fused_adadelta(
    py: Python<'_>,
    params: &Bound<'_, PyAny>,
    grads: &Bound<'_, PyAny>,
    square_avgs: &Bound<'_, PyAny>,
    acc_deltas: &Bound<'_, PyAny>,
    state_steps: &Bound<'_, PyAny>,
    lr: f64,
    rho: f64,
    eps: f64,
    weight_decay: f64,
    maximize: bool,
) -> PyResult<()> {
    let f = "_fused_adadelta";
    let p = tensors(f, "params", params)?;
    let g = tensors(f, "grads", grads)?;
    let sq = tensors(f, "square_avgs", square_avgs)?;
    let ad = tensors(f, "acc_deltas", acc_deltas)?;
    let s = tensors(f, "state_steps", state_steps)?;
    let o = optim::AdadeltaOptions {
        lr,
        rho,
        eps,
        weight_decay,
        maximize,
    };
    Ok(maybe_detach(py, numel(&p), || {
        optim::adadelta(&p, &g, &sq, &ad, &s, o)
    })?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_fused_sgd, m)?)?;
    m.add_function(wrap_pyfunction!(_fused_adam, m)?)?;
    m.add_function(wrap_pyfunction!(_fused_adagrad, m)?)?;
    m.add_function(wrap_pyfunction!(_fused_rmsprop, m)?)?;
    m.add_function(wrap_pyfunction!(_fused_adamax, m)?)?;
    m.add_function(wrap_pyfunction!(_fused_nadam, m)?)?;
    m.add_function(wrap_pyfunction!(_fused_radam, m)?)?;
    m.add_function(wrap_pyfunction!(_fused_adadelta, m)?)?;
    Ok(())
}
