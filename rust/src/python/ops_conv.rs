//! Bindings of the convolution ops behind `nn.functional`: `_C._convolution`
//! (conv and conv_transpose, 1-d to 3-d), `_C._im2col` (`F.unfold`) and
//! `_C._col2im` (`F.fold`).

use pyo3::prelude::*;

use super::maybe_detach;
use super::tensor::PyTensor;
use crate::ops::conv;

type R = PyResult<PyTensor>;

/// `torch.convolution` on `dim` spatial dims.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn _convolution(
    py: Python<'_>,
    input: PyRef<'_, PyTensor>,
    weight: PyRef<'_, PyTensor>,
    bias: Option<PyRef<'_, PyTensor>>,
    stride: Vec<i64>,
    padding: Vec<i64>,
    dilation: Vec<i64>,
    transposed: bool,
    output_padding: Vec<i64>,
    groups: i64,
    dim: usize,
) -> R {
    let (x, w) = (input.t.clone(), weight.t.clone());
    let b = bias.map(|b| b.t.clone());
    let work = x.numel().saturating_mul(w.numel().max(1));
    Ok(maybe_detach(py, work, || {
        conv::convolution(
            &x,
            &w,
            b.as_ref(),
            &stride,
            &padding,
            &dilation,
            transposed,
            &output_padding,
            groups,
            dim,
        )
    })?
    .into())
}

/// `F.unfold`'s kernel.
#[pyfunction]
fn _im2col(
    py: Python<'_>,
    input: PyRef<'_, PyTensor>,
    kernel_size: Vec<i64>,
    dilation: Vec<i64>,
    padding: Vec<i64>,
    stride: Vec<i64>,
) -> R {
    let x = input.t.clone();
    Ok(maybe_detach(py, x.numel(), || {
        conv::im2col(&x, &kernel_size, &dilation, &padding, &stride)
    })?
    .into())
}

/// `F.fold`'s kernel.
#[pyfunction]
fn _col2im(
    py: Python<'_>,
    input: PyRef<'_, PyTensor>,
    output_size: Vec<i64>,
    kernel_size: Vec<i64>,
    dilation: Vec<i64>,
    padding: Vec<i64>,
    stride: Vec<i64>,
) -> R {
    let x = input.t.clone();
    Ok(maybe_detach(py, x.numel(), || {
        conv::col2im(&x, &output_size, &kernel_size, &dilation, &padding, &stride)
    })?
    .into())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_convolution, m)?)?;
    m.add_function(wrap_pyfunction!(_im2col, m)?)?;
    m.add_function(wrap_pyfunction!(_col2im, m)?)?;
    Ok(())
}
