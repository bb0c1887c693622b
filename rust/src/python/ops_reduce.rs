//! Bindings of the reductions, scans and sorting ops. Ops returning
//! (values, indices) build the named tuples of `rtorch.return_types`.

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString, PyTuple};

use super::convert::{extract_scalar, int_list, type_name};
use super::dtype::opt_dtype;
use super::maybe_detach;
use super::tensor::PyTensor;
use crate::ops::binary::{binary, BinaryOp};
use crate::ops::{creation, reduce, sort, Operand};
use crate::tensor::{DType, Tensor};

type R = PyResult<PyTensor>;

/// Runs an op on `t` without the GIL when `t` is large.
fn detach<T: Send>(
    py: Python<'_>,
    t: &Tensor,
    f: impl FnOnce() -> crate::error::Result<T> + Send,
) -> PyResult<T> {
    Ok(maybe_detach(py, t.numel(), f)?)
}
type Obj = PyResult<Py<PyAny>>;

/// `dim` as None, an int, or a sequence of ints.
fn dims_arg(dim: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<i64>>> {
    match dim {
        None => Ok(None),
        Some(d) if d.is_none() => Ok(None),
        Some(d) => Ok(Some(int_list("dim", d)?)),
    }
}

/// `rtorch.return_types.<name>(values, indices)`.
fn named(py: Python<'_>, name: &str, a: Tensor, b: Tensor) -> Obj {
    let cls = py.import("rtorch.return_types")?.getattr(name)?;
    Ok(cls.call1((PyTensor::from(a), PyTensor::from(b)))?.unbind())
}

fn tuple(py: Python<'_>, items: Vec<Tensor>) -> Obj {
    let items: Vec<Py<PyTensor>> = items
        .into_iter()
        .map(|t| Py::new(py, PyTensor::from(t)))
        .collect::<PyResult<_>>()?;
    Ok(PyTuple::new(py, items)?.into_any().unbind())
}

/// `correction` from PyTorch's `unbiased`/`correction` arguments.
fn correction(unbiased: Option<bool>, correction: Option<f64>) -> f64 {
    correction.unwrap_or(if unbiased.unwrap_or(true) { 1.0 } else { 0.0 })
}

/// `std(dim, unbiased, keepdim, *, correction)`, also `std(unbiased)`.
fn var_args(
    dim: Option<&Bound<'_, PyAny>>,
    unbiased: Option<bool>,
    corr: Option<f64>,
) -> PyResult<(Option<Vec<i64>>, f64)> {
    if let Some(d) = dim.filter(|d| d.is_instance_of::<PyBool>()) {
        return Ok((None, correction(Some(d.is_truthy()?), corr)));
    }
    Ok((dims_arg(dim)?, correction(unbiased, corr)))
}

/// `p`/`ord` of the norms: a number, `inf`, or 'fro'.
fn norm_ord(p: Option<&Bound<'_, PyAny>>) -> PyResult<f64> {
    let Some(p) = p.filter(|p| !p.is_none()) else {
        return Ok(2.0);
    };
    if let Ok(s) = p.cast::<PyString>() {
        return match s.to_str()? {
            "fro" => Ok(2.0),
            other => Err(PyRuntimeError::new_err(format!(
                "norm(): p='{other}' is not a valid norm: expected a number, 'fro' or 'nuc'"
            ))),
        };
    }
    match extract_scalar(p)? {
        Some(s) => Ok(s.to_f64()),
        None => Err(PyTypeError::new_err(format!(
            "norm(): argument 'p' must be Number or str, not {}",
            type_name(p)
        ))),
    }
}

fn q_list(q: &Bound<'_, PyAny>) -> PyResult<(Vec<f64>, bool)> {
    if let Ok(t) = q.cast::<PyTensor>() {
        let t = t.borrow().t.clone();
        if t.ndim() > 1 {
            return Err(PyRuntimeError::new_err(
                "quantile() q must be a scalar or 1D tensor",
            ));
        }
        return Ok((crate::ops::copy::to_vec::<f64>(&t)?, t.ndim() == 0));
    }
    if q.is_instance_of::<PyFloat>() || q.is_instance_of::<PyInt>() {
        return Ok((vec![q.extract::<f64>()?], true));
    }
    Ok((q.extract::<Vec<f64>>()?, false))
}

/// Methods `name(dim=None, keepdim=False, *, dtype=None)` of the reductions
/// sharing that signature, one line each.
macro_rules! dim_dtype_reductions {
    ($($name:ident => $f:path;)*) => {
        #[pymethods]
        impl PyTensor {$(
            #[pyo3(signature = (dim=None, keepdim=false, *, dtype=None))]
            fn $name(
                &self,
                py: Python<'_>,
                dim: Option<&Bound<'_, PyAny>>,
                keepdim: bool,
                dtype: Option<&Bound<'_, PyAny>>,
            ) -> R {
                let (d, dt) = (dims_arg(dim)?, opt_dtype(dtype)?);
                let t = &self.t;
                Ok(maybe_detach(py, t.numel(), || $f(t, d.as_deref(), keepdim, dt))?.into())
            }
        )*}
    };
}

dim_dtype_reductions! {
    sum => reduce::sum;
    nansum => reduce::nansum;
    mean => reduce::mean;
    nanmean => reduce::nanmean;
}

#[pymethods]
impl PyTensor {
    #[pyo3(signature = (dim=None, keepdim=false, *, dtype=None))]
    fn prod(
        &self,
        py: Python<'_>,
        dim: Option<i64>,
        keepdim: bool,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> R {
        let dt = opt_dtype(dtype)?;
        let t = &self.t;
        Ok(maybe_detach(py, t.numel(), || reduce::prod(t, dim, keepdim, dt))?.into())
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn amax(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> R {
        let d = dims_arg(dim)?.unwrap_or_default();
        let t = &self.t;
        Ok(maybe_detach(py, t.numel(), || reduce::amax(t, Some(&d), keepdim))?.into())
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn amin(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> R {
        let d = dims_arg(dim)?.unwrap_or_default();
        let t = &self.t;
        Ok(maybe_detach(py, t.numel(), || reduce::amin(t, Some(&d), keepdim))?.into())
    }
    /// `max()`, `max(dim, keepdim)` -> (values, indices), or `max(other)`.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn max(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> Obj {
        extreme(py, &self.t, dim, keepdim, true)
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn min(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> Obj {
        extreme(py, &self.t, dim, keepdim, false)
    }
    #[pyo3(signature = (*, dim=None, keepdim=false))]
    fn aminmax(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool) -> Obj {
        let (a, b) = detach(py, &self.t, || reduce::aminmax(&self.t, dim, keepdim))?;
        named(py, "aminmax", a, b)
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn argmax(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool) -> R {
        Ok(detach(py, &self.t, || reduce::argmax(&self.t, dim, keepdim, true))?.into())
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn argmin(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool) -> R {
        Ok(detach(py, &self.t, || reduce::argmax(&self.t, dim, keepdim, false))?.into())
    }
    #[pyo3(signature = (dim=None, unbiased=None, keepdim=false, *, correction=None))]
    fn var(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        unbiased: Option<bool>,
        keepdim: bool,
        correction: Option<f64>,
    ) -> R {
        let (d, c) = var_args(dim, unbiased, correction)?;
        Ok(detach(py, &self.t, || {
            reduce::var_mean(&self.t, d.as_deref(), c, keepdim, false)
        })?
        .0
        .into())
    }
    #[pyo3(signature = (dim=None, unbiased=None, keepdim=false, *, correction=None))]
    fn std(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        unbiased: Option<bool>,
        keepdim: bool,
        correction: Option<f64>,
    ) -> R {
        let (d, c) = var_args(dim, unbiased, correction)?;
        Ok(detach(py, &self.t, || {
            reduce::var_mean(&self.t, d.as_deref(), c, keepdim, true)
        })?
        .0
        .into())
    }
    /// `torch.var_mean` (function form in PyTorch; a method here).
    #[pyo3(signature = (dim=None, unbiased=None, keepdim=false, *, correction=None))]
    fn var_mean(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        unbiased: Option<bool>,
        keepdim: bool,
        correction: Option<f64>,
    ) -> Obj {
        let (d, c) = var_args(dim, unbiased, correction)?;
        let (v, m) = detach(py, &self.t, || {
            reduce::var_mean(&self.t, d.as_deref(), c, keepdim, false)
        })?;
        tuple(py, vec![v, m])
    }
    #[pyo3(signature = (dim=None, unbiased=None, keepdim=false, *, correction=None))]
    fn std_mean(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        unbiased: Option<bool>,
        keepdim: bool,
        correction: Option<f64>,
    ) -> Obj {
        let (d, c) = var_args(dim, unbiased, correction)?;
        let (v, m) = detach(py, &self.t, || {
            reduce::var_mean(&self.t, d.as_deref(), c, keepdim, true)
        })?;
        tuple(py, vec![v, m])
    }
    #[pyo3(signature = (p=None, dim=None, keepdim=false, dtype=None))]
    fn norm(
        &self,
        p: Option<&Bound<'_, PyAny>>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> R {
        if !self.t.dtype().is_floating_point() {
            return Err(PyRuntimeError::new_err(format!(
                "norm(): input dtype should be either floating point or complex. Got {} instead.",
                self.t.dtype().scalar_name()
            )));
        }
        let d = dims_arg(dim)?;
        if p.and_then(|p| p.cast::<PyString>().ok())
            .is_some_and(|s| s.to_str().is_ok_and(|s| s == "nuc"))
        {
            // The nuclear norm is a matrix norm: over two dims.
            let dims = match d.as_deref() {
                Some(&[a, b]) => [a, b],
                None if self.t.ndim() == 2 => [0, 1],
                _ => {
                    return Err(PyRuntimeError::new_err(
                        "norm(): p='nuc' needs a 2-D input or dim with exactly two dims",
                    ))
                }
            };
            let x = match opt_dtype(dtype)? {
                Some(dt) => crate::ops::copy::to_dtype(&self.t, dt, false)?,
                None => self.t.clone(),
            };
            let r = crate::ops::linalg::decomp::matrix_norm(
                &x,
                crate::ops::linalg::decomp::MatrixOrd::Nuc,
                dims,
                keepdim,
            )?;
            return Ok(r.into());
        }
        let r = reduce::vector_norm(
            &self.t,
            norm_ord(p)?,
            d.as_deref(),
            keepdim,
            opt_dtype(dtype)?,
        )?;
        Ok(r.into())
    }
    #[pyo3(signature = (dim, keepdim=false))]
    fn logsumexp(&self, py: Python<'_>, dim: &Bound<'_, PyAny>, keepdim: bool) -> R {
        let d = int_list("logsumexp", dim)?;
        Ok(detach(py, &self.t, || reduce::logsumexp(&self.t, &d, keepdim))?.into())
    }
    #[pyo3(signature = (dim, *, dtype=None))]
    fn cumsum(&self, py: Python<'_>, dim: i64, dtype: Option<&Bound<'_, PyAny>>) -> R {
        let dt = opt_dtype(dtype)?;
        Ok(detach(py, &self.t, || reduce::cumulative(&self.t, dim, dt, true))?.into())
    }
    #[pyo3(signature = (dim, *, dtype=None))]
    fn cumprod(&self, py: Python<'_>, dim: i64, dtype: Option<&Bound<'_, PyAny>>) -> R {
        let dt = opt_dtype(dtype)?;
        Ok(detach(py, &self.t, || reduce::cumulative(&self.t, dim, dt, false))?.into())
    }
    fn cummax(&self, py: Python<'_>, dim: i64) -> Obj {
        let (v, i) = detach(py, &self.t, || reduce::cum_extreme(&self.t, dim, true))?;
        named(py, "cummax", v, i)
    }
    fn cummin(&self, py: Python<'_>, dim: i64) -> Obj {
        let (v, i) = detach(py, &self.t, || reduce::cum_extreme(&self.t, dim, false))?;
        named(py, "cummin", v, i)
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn all(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> R {
        let d = dims_arg(dim)?;
        Ok(detach(py, &self.t, || {
            reduce::all_any(&self.t, d.as_deref(), keepdim, true)
        })?
        .into())
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn any(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> R {
        let d = dims_arg(dim)?;
        Ok(detach(py, &self.t, || {
            reduce::all_any(&self.t, d.as_deref(), keepdim, false)
        })?
        .into())
    }
    #[pyo3(signature = (dim=None))]
    fn count_nonzero(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>) -> R {
        let d = dims_arg(dim)?;
        Ok(detach(py, &self.t, || reduce::count_nonzero(&self.t, d.as_deref()))?.into())
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn median(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool) -> Obj {
        median(py, &self.t, dim, keepdim, false)
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn nanmedian(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool) -> Obj {
        median(py, &self.t, dim, keepdim, true)
    }
    #[pyo3(signature = (dim=-1, keepdim=false))]
    fn mode(&self, py: Python<'_>, dim: i64, keepdim: bool) -> Obj {
        let (v, i) = detach(py, &self.t, || sort::mode(&self.t, dim, keepdim))?;
        named(py, "mode", v, i)
    }
    #[pyo3(signature = (q, dim=None, keepdim=false, *, interpolation="linear"))]
    fn quantile(
        &self,
        py: Python<'_>,
        q: &Bound<'_, PyAny>,
        dim: Option<i64>,
        keepdim: bool,
        interpolation: &str,
    ) -> R {
        let (q, scalar) = q_list(q)?;
        Ok(detach(py, &self.t, || {
            sort::quantile(&self.t, &q, scalar, dim, keepdim, interpolation, false)
        })?
        .into())
    }
    #[pyo3(signature = (q, dim=None, keepdim=false, *, interpolation="linear"))]
    fn nanquantile(
        &self,
        py: Python<'_>,
        q: &Bound<'_, PyAny>,
        dim: Option<i64>,
        keepdim: bool,
        interpolation: &str,
    ) -> R {
        let (q, scalar) = q_list(q)?;
        Ok(detach(py, &self.t, || {
            sort::quantile(&self.t, &q, scalar, dim, keepdim, interpolation, true)
        })?
        .into())
    }
    #[pyo3(signature = (k, dim=-1, keepdim=false))]
    fn kthvalue(&self, py: Python<'_>, k: i64, dim: i64, keepdim: bool) -> Obj {
        let (v, i) = detach(py, &self.t, || sort::kthvalue(&self.t, k, dim, keepdim))?;
        named(py, "kthvalue", v, i)
    }
    #[pyo3(signature = (k, dim=-1, largest=true, sorted=true))]
    fn topk(&self, py: Python<'_>, k: i64, dim: i64, largest: bool, sorted: bool) -> Obj {
        let _ = sorted;
        let (v, i) = detach(py, &self.t, || sort::topk(&self.t, k, dim, largest))?;
        named(py, "topk", v, i)
    }
    #[pyo3(signature = (dim=-1, descending=false, *, stable=false))]
    fn sort(&self, py: Python<'_>, dim: i64, descending: bool, stable: bool) -> Obj {
        // Always stable: a stable sort is also a valid unstable one.
        let _ = stable;
        let t = &self.t;
        let (v, i) = maybe_detach(py, t.numel(), || sort::sort(t, dim, descending))?;
        named(py, "sort", v, i)
    }
    #[pyo3(signature = (dim=-1, descending=false, *, stable=false))]
    fn argsort(&self, py: Python<'_>, dim: i64, descending: bool, stable: bool) -> R {
        let _ = stable;
        let t = &self.t;
        Ok(
            maybe_detach(py, t.numel(), || sort::sort(t, dim, descending))?
                .1
                .into(),
        )
    }
    fn msort(&self, py: Python<'_>) -> R {
        Ok(detach(py, &self.t, || sort::sort(&self.t, 0, false))?
            .0
            .into())
    }
    #[pyo3(signature = (sorted=true, return_inverse=false, return_counts=false, dim=None))]
    fn unique(
        &self,
        py: Python<'_>,
        sorted: bool,
        return_inverse: bool,
        return_counts: bool,
        dim: Option<i64>,
    ) -> Obj {
        // Always sorted, which `sorted=False` also allows.
        let _ = sorted;
        let r = match dim {
            None => detach(py, &self.t, || sort::unique(&self.t, false))?,
            Some(d) => detach(py, &self.t, || sort::unique_dim(&self.t, d, false))?,
        };
        unique_result(py, r, return_inverse, return_counts)
    }
    #[pyo3(signature = (return_inverse=false, return_counts=false, dim=None))]
    fn unique_consecutive(
        &self,
        py: Python<'_>,
        return_inverse: bool,
        return_counts: bool,
        dim: Option<i64>,
    ) -> Obj {
        let r = match dim {
            None => detach(py, &self.t, || sort::unique(&self.t, true))?,
            Some(d) => detach(py, &self.t, || sort::unique_dim(&self.t, d, true))?,
        };
        unique_result(py, r, return_inverse, return_counts)
    }
    #[pyo3(signature = (weights=None, minlength=0))]
    fn bincount(&self, py: Python<'_>, weights: Option<PyRef<'_, PyTensor>>, minlength: i64) -> R {
        let w = weights.as_ref().map(|w| w.t.clone());
        Ok(detach(py, &self.t, || {
            sort::bincount(&self.t, w.as_ref(), minlength)
        })?
        .into())
    }
    #[pyo3(signature = (bins=100, min=0.0, max=0.0))]
    fn histc(&self, py: Python<'_>, bins: i64, min: f64, max: f64) -> R {
        Ok(detach(py, &self.t, || sort::histc(&self.t, bins, min, max))?.into())
    }
}

fn extreme(
    py: Python<'_>,
    t: &Tensor,
    dim: Option<&Bound<'_, PyAny>>,
    keepdim: bool,
    is_max: bool,
) -> Obj {
    let to_obj = |t: Tensor| -> Obj { Ok(Py::new(py, PyTensor::from(t))?.into_any()) };
    match dim.filter(|d| !d.is_none()) {
        None => to_obj(maybe_detach(py, t.numel(), || reduce::max_all(t, is_max))?),
        Some(o) if o.is_instance_of::<PyTensor>() => {
            let other = o.cast::<PyTensor>()?.borrow().t.clone();
            let op = if is_max {
                BinaryOp::Maximum
            } else {
                BinaryOp::Minimum
            };
            to_obj(binary(
                op,
                &Operand::Tensor(t.clone()),
                &Operand::Tensor(other),
                None,
            )?)
        }
        Some(o) => {
            let d: i64 = o.extract()?;
            let (v, i) = maybe_detach(py, t.numel(), || reduce::max_dim(t, d, keepdim, is_max))?;
            named(py, if is_max { "max" } else { "min" }, v, i)
        }
    }
}

fn median(py: Python<'_>, t: &Tensor, dim: Option<i64>, keepdim: bool, ignore_nan: bool) -> Obj {
    match dim {
        None => Ok(Py::new(py, PyTensor::from(sort::median_all(t, ignore_nan)?))?.into_any()),
        Some(d) => {
            let (v, i) = sort::median_dim(t, d, keepdim, ignore_nan)?;
            named(py, if ignore_nan { "nanmedian" } else { "median" }, v, i)
        }
    }
}

fn unique_result(py: Python<'_>, r: (Tensor, Tensor, Tensor), inverse: bool, counts: bool) -> Obj {
    let (v, i, c) = r;
    if !inverse && !counts {
        return Ok(Py::new(py, PyTensor::from(v))?.into_any());
    }
    let mut items = vec![v];
    if inverse {
        items.push(i);
    }
    if counts {
        items.push(c);
    }
    tuple(py, items)
}

/// A tensor argument, or a Python number as a 0-d tensor of `like`'s dtype.
fn tensor_or_scalar(obj: &Bound<'_, PyAny>, like: DType) -> PyResult<Tensor> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(t.borrow().t.clone());
    }
    match extract_scalar(obj)? {
        Some(s) => Ok(creation::full(
            &[],
            s,
            s.default_dtype(crate::ops::default_dtype()).promote(like),
        )?),
        None => Err(PyTypeError::new_err(format!(
            "expected Tensor or Number, got {}",
            type_name(obj)
        ))),
    }
}

/// `torch.searchsorted(sorted_sequence, input, *, out_int32, right, side, sorter)`.
#[pyfunction]
#[pyo3(signature = (sorted_sequence, input, *, out_int32=false, right=false, side=None, sorter=None))]
fn searchsorted(
    sorted_sequence: PyRef<'_, PyTensor>,
    input: &Bound<'_, PyAny>,
    out_int32: bool,
    right: bool,
    side: Option<&str>,
    sorter: Option<PyRef<'_, PyTensor>>,
) -> R {
    let right = match side {
        None => right,
        Some("left") if right => {
            return Err(PyRuntimeError::new_err(
                "torch.searchsorted(): side and right can't be set to opposites, got side of left while right was True",
            ))
        }
        Some("left") => false,
        Some("right") => true,
        Some(s) => {
            return Err(PyRuntimeError::new_err(format!(
                "torch.searchsorted(): side can only be 'left' or 'right' but got {s}"
            )))
        }
    };
    let seq = &sorted_sequence.t;
    let values = tensor_or_scalar(input, seq.dtype())?;
    let sorter = sorter.as_ref().map(|s| &s.t);
    Ok(sort::searchsorted(seq, &values, right, out_int32, sorter)?.into())
}

/// `torch.bucketize(input, boundaries, *, out_int32, right)`.
#[pyfunction]
#[pyo3(signature = (input, boundaries, *, out_int32=false, right=false))]
fn bucketize(
    input: &Bound<'_, PyAny>,
    boundaries: PyRef<'_, PyTensor>,
    out_int32: bool,
    right: bool,
) -> R {
    if boundaries.t.ndim() != 1 {
        return Err(PyRuntimeError::new_err(format!(
            "boundaries tensor must be 1 dimension, but got dim({})",
            boundaries.t.ndim()
        )));
    }
    let values = tensor_or_scalar(input, boundaries.t.dtype())?;
    Ok(sort::searchsorted(&boundaries.t, &values, right, out_int32, None)?.into())
}

/// `linalg.vector_norm(x, ord, dim, keepdim, *, dtype)`; `rtorch.linalg`
/// (owned by the linear-algebra module) wraps this.
#[pyfunction]
#[pyo3(signature = (x, ord=None, dim=None, keepdim=false, *, dtype=None))]
fn _vector_norm(
    x: PyRef<'_, PyTensor>,
    ord: Option<&Bound<'_, PyAny>>,
    dim: Option<&Bound<'_, PyAny>>,
    keepdim: bool,
    dtype: Option<&Bound<'_, PyAny>>,
) -> R {
    let d = dims_arg(dim)?;
    let ord = match ord.filter(|o| !o.is_none()) {
        None => 2.0,
        Some(o) => match extract_scalar(o)? {
            Some(s) => s.to_f64(),
            None => {
                return Err(PyTypeError::new_err(format!(
                    "linalg_vector_norm(): argument 'ord' must be Number, not {}",
                    type_name(o)
                )))
            }
        },
    };
    Ok(reduce::vector_norm(&x.t, ord, d.as_deref(), keepdim, opt_dtype(dtype)?)?.into())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(searchsorted, m)?)?;
    m.add_function(wrap_pyfunction!(bucketize, m)?)?;
    m.add_function(wrap_pyfunction!(_vector_norm, m)?)?;
    Ok(())
}
