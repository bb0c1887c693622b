//! Bindings of the pooling and normalisation kernels (`rtorch.nn.functional`
//! calls these; argument normalisation happens there).

use pyo3::prelude::*;

use super::maybe_detach;
use super::tensor::PyTensor;
use crate::ops::{norm, pool};
use crate::tensor::Tensor;

type R = PyResult<PyTensor>;
type R2 = PyResult<(PyTensor, PyTensor)>;

fn opt(t: &Option<PyRef<'_, PyTensor>>) -> Option<Tensor> {
    t.as_ref().map(|t| t.t.clone())
}

#[pyfunction]
#[pyo3(signature = (input, nd, kernel_size, stride, padding, dilation, ceil_mode))]
#[allow(clippy::too_many_arguments)]
fn _max_pool(
    py: Python<'_>,
    input: PyRef<'_, PyTensor>,
    nd: usize,
    kernel_size: Vec<i64>,
    stride: Vec<i64>,
    padding: Vec<i64>,
    dilation: Vec<i64>,
    ceil_mode: bool,
) -> R2 {
    let x = input.t.clone();
    let (o, i) = maybe_detach(py, x.numel(), || {
        pool::max_pool(
            &x,
            nd,
            &kernel_size,
            &stride,
            &padding,
            &dilation,
            ceil_mode,
        )
    })?;
    Ok((o.into(), i.into()))
}

#[pyfunction]
#[pyo3(signature = (input, nd, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override=None))]
#[allow(clippy::too_many_arguments)]
fn _avg_pool(
    py: Python<'_>,
    input: PyRef<'_, PyTensor>,
    nd: usize,
    kernel_size: Vec<i64>,
    stride: Vec<i64>,
    padding: Vec<i64>,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<i64>,
) -> R {
    let x = input.t.clone();
    let out = maybe_detach(py, x.numel(), || {
        pool::avg_pool(
            &x,
            nd,
            &kernel_size,
            &stride,
            &padding,
            ceil_mode,
            count_include_pad,
            divisor_override,
        )
    })?;
    Ok(out.into())
}

#[pyfunction]
fn _adaptive_avg_pool(
    py: Python<'_>,
    input: PyRef<'_, PyTensor>,
    nd: usize,
    output_size: Vec<i64>,
) -> R {
    let x = input.t.clone();
    Ok(maybe_detach(py, x.numel(), || {
        pool::adaptive_avg_pool(&x, nd, &output_size)
    })?
    .into())
}

#[pyfunction]
fn _adaptive_max_pool(
    py: Python<'_>,
    input: PyRef<'_, PyTensor>,
    nd: usize,
    output_size: Vec<i64>,
) -> R2 {
    let x = input.t.clone();
    let (o, i) = maybe_detach(py, x.numel(), || {
        pool::adaptive_max_pool(&x, nd, &output_size)
    })?;
    Ok((o.into(), i.into()))
}

#[pyfunction]
fn _max_unpool(
    py: Python<'_>,
    input: PyRef<'_, PyTensor>,
    indices: PyRef<'_, PyTensor>,
    nd: usize,
    output_size: Vec<i64>,
) -> R {
    let (x, i) = (input.t.clone(), indices.t.clone());
    Ok(maybe_detach(py, x.numel(), || pool::max_unpool(&x, &i, nd, &output_size))?.into())
}

#[pyfunction]
#[pyo3(signature = (input, weight, bias, running_mean, running_var, training, momentum, eps))]
#[allow(clippy::too_many_arguments)]
fn _batch_norm(
    py: Python<'_>,
    input: PyRef<'_, PyTensor>,
    weight: Option<PyRef<'_, PyTensor>>,
    bias: Option<PyRef<'_, PyTensor>>,
    running_mean: Option<PyRef<'_, PyTensor>>,
    running_var: Option<PyRef<'_, PyTensor>>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> R {
    let x = input.t.clone();
    let (w, b, rm, rv) = (
        opt(&weight),
        opt(&bias),
        opt(&running_mean),
        opt(&running_var),
    );
    let out = maybe_detach(py, x.numel(), || {
        norm::batch_norm(
            &x,
            w.as_ref(),
            b.as_ref(),
            rm.as_ref(),
            rv.as_ref(),
            training,
            momentum,
            eps,
        )
    })?;
    Ok(out.into())
}

#[pyfunction]
#[pyo3(signature = (input, normalized_shape, weight, bias, eps))]
fn _layer_norm(
    py: Python<'_>,
    input: PyRef<'_, PyTensor>,
    normalized_shape: Vec<usize>,
    weight: Option<PyRef<'_, PyTensor>>,
    bias: Option<PyRef<'_, PyTensor>>,
    eps: f64,
) -> R {
    let x = input.t.clone();
    let (w, b) = (opt(&weight), opt(&bias));
    let out = maybe_detach(py, x.numel(), || {
        norm::layer_norm(&x, &normalized_shape, w.as_ref(), b.as_ref(), eps)
    })?;
    Ok(out.into())
}

#[pyfunction]
#[pyo3(signature = (input, num_groups, weight, bias, eps))]
fn _group_norm(
    py: Python<'_>,
    input: PyRef<'_, PyTensor>,
    num_groups: usize,
    weight: Option<PyRef<'_, PyTensor>>,
    bias: Option<PyRef<'_, PyTensor>>,
    eps: f64,
) -> R {
    let x = input.t.clone();
    let (w, b) = (opt(&weight), opt(&bias));
    let out = maybe_detach(py, x.numel(), || {
        norm::group_norm(&x, num_groups, w.as_ref(), b.as_ref(), eps)
    })?;
    Ok(out.into())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_max_pool, m)?)?;
    m.add_function(wrap_pyfunction!(_avg_pool, m)?)?;
    m.add_function(wrap_pyfunction!(_adaptive_avg_pool, m)?)?;
    m.add_function(wrap_pyfunction!(_adaptive_max_pool, m)?)?;
    m.add_function(wrap_pyfunction!(_max_unpool, m)?)?;
    m.add_function(wrap_pyfunction!(_batch_norm, m)?)?;
    m.add_function(wrap_pyfunction!(_layer_norm, m)?)?;
    m.add_function(wrap_pyfunction!(_group_norm, m)?)?;
    Ok(())
}
