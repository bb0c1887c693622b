//! Bindings of the joining, reordering and indexing ops (`ops::join`,
//! `ops::gather`): `Tensor` methods and the list-taking functions.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PySequence, PyTuple};

use super::convert::{int_list, operand, parse_size, type_name};
use super::maybe_detach;
use super::tensor::PyTensor;
use crate::ops::einsum as contraction;
use crate::ops::gather::{self, Reduce, Source};
use crate::ops::{copy, join, Operand};
use crate::tensor::{Scalar, Tensor};

type R = PyResult<PyTensor>;

/// A Python sequence of tensors, with PyTorch's error for other elements.
fn tensor_list(fname: &str, obj: &Bound<'_, PyAny>) -> PyResult<Vec<Tensor>> {
    if obj.is_instance_of::<PyTensor>() {
        return Err(PyTypeError::new_err(format!(
            "{fname}(): argument 'tensors' (position 1) must be tuple of Tensors, not Tensor"
        )));
    }
    let seq = obj.cast::<PySequence>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{fname}(): argument 'tensors' (position 1) must be tuple of Tensors, not {}",
            type_name(obj)
        ))
    })?;
    let mut out = Vec::with_capacity(seq.len()?);
    for (i, item) in seq.try_iter()?.enumerate() {
        let item = item?;
        let t = item.cast::<PyTensor>().map_err(|_| {
            PyTypeError::new_err(format!(
                "expected Tensor as element {i} in argument 0, but got {}",
                type_name(&item)
            ))
        })?;
        out.push(t.borrow().t.clone());
    }
    Ok(out)
}

/// `f(a, b, c)` or `f([a, b, c])`.
fn varargs_tensors(fname: &str, args: &Bound<'_, PyTuple>) -> PyResult<Vec<Tensor>> {
    if args.len() == 1 && !args.get_item(0)?.is_instance_of::<PyTensor>() {
        return tensor_list(fname, &args.get_item(0)?);
    }
    tensor_list(fname, args.as_any())
}

fn tuple_of<'py>(py: Python<'py>, ts: Vec<Tensor>) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, ts.into_iter().map(PyTensor::from))
}

fn numel_of(ts: &[Tensor]) -> usize {
    ts.iter().map(|t| t.numel()).sum()
}

/// Writes `r` into `out` when given, with PyTorch's `out=` rules (resize
/// with a warning, cast check, no autograd) kept in one place: `_ops._write_out`.
fn finish(
    py: Python<'_>,
    name: &str,
    r: Tensor,
    out: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let r = Py::new(py, PyTensor::from(r))?.into_any();
    match out.filter(|o| !o.is_none()) {
        Some(o) => Ok(py
            .import("rtorch._ops")?
            .getattr("_write_out")?
            .call1((name, r, o))?
            .unbind()),
        None => Ok(r),
    }
}

/// A number, or a 0-d tensor's value (the `value` argument of fills).
fn fill_scalar(fname: &str, v: &Bound<'_, PyAny>) -> PyResult<Scalar> {
    match operand(v)? {
        Some(Operand::Scalar(s)) => Ok(s),
        Some(Operand::Tensor(t)) if t.ndim() == 0 => Ok(t.get_scalar(0)),
        Some(Operand::Tensor(t)) => Err(PyRuntimeError::new_err(format!(
            "{fname} only supports a 0-dimensional value tensor, but got tensor with {} dimension(s).",
            t.ndim()
        ))),
        None => Err(PyTypeError::new_err(format!(
            "{fname}(): argument 'value' must be Number, not {}",
            type_name(v)
        ))),
    }
}

fn dims_arg(
    fname: &str,
    args: &Bound<'_, PyTuple>,
    kw: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<i64>> {
    match kw {
        Some(d) => int_list(fname, d),
        None => parse_size(fname, args),
    }
}

fn reduce_arg(name: &str, fname: &str) -> PyResult<Reduce> {
    Reduce::parse(name).ok_or_else(|| {
        PyRuntimeError::new_err(format!(
            "{fname}(): reduce argument must be either sum, prod, mean, amax or amin, got {name}"
        ))
    })
}

#[pymethods]
impl PyTensor {
    #[pyo3(signature = (split_size_or_sections, dim=0))]
    fn split<'py>(
        &self,
        py: Python<'py>,
        split_size_or_sections: &Bound<'py, PyAny>,
        dim: i64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let r = if split_size_or_sections.is_instance_of::<PyInt>() {
            join::split(&self.t, split_size_or_sections.extract()?, dim)?
        } else {
            join::split_with_sizes(&self.t, &int_list("split", split_size_or_sections)?, dim)?
        };
        tuple_of(py, r)
    }
    #[pyo3(signature = (split_sizes, dim=0))]
    fn split_with_sizes<'py>(
        &self,
        py: Python<'py>,
        split_sizes: &Bound<'py, PyAny>,
        dim: i64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        tuple_of(
            py,
            join::split_with_sizes(&self.t, &int_list("split_with_sizes", split_sizes)?, dim)?,
        )
    }
    #[pyo3(signature = (chunks, dim=0))]
    fn chunk<'py>(&self, py: Python<'py>, chunks: i64, dim: i64) -> PyResult<Bound<'py, PyTuple>> {
        tuple_of(py, join::chunk(&self.t, chunks, dim)?)
    }
    #[pyo3(signature = (indices_or_sections, dim=0))]
    fn tensor_split<'py>(
        &self,
        py: Python<'py>,
        indices_or_sections: &Bound<'py, PyAny>,
        dim: i64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let arg = indices_or_sections;
        let r = if let Ok(t) = arg.cast::<PyTensor>() {
            let t = t.borrow().t.clone();
            if t.dtype().is_floating_point() || t.dtype() == crate::tensor::DType::Bool {
                return Err(PyRuntimeError::new_err(format!(
                    "tensor_split expected tensor_indices_or_sections to have integer dtype, but got {}",
                    t.dtype()
                )));
            }
            if t.ndim() > 1 {
                return Err(PyRuntimeError::new_err(format!(
                    "tensor_split expected tensor_indices_or_sections to be a zero-dimensional or one-dimensional tensor, but got a tensor with {} dims",
                    t.ndim()
                )));
            }
            if t.ndim() == 0 {
                join::tensor_split_sections(&self.t, t.get_scalar(0).to_i64(), dim)?
            } else {
                join::tensor_split_indices(&self.t, &copy::to_vec::<i64>(&t)?, dim)?
            }
        } else if arg.is_instance_of::<PyInt>() {
            join::tensor_split_sections(&self.t, arg.extract()?, dim)?
        } else {
            join::tensor_split_indices(&self.t, &int_list("tensor_split", arg)?, dim)?
        };
        tuple_of(py, r)
    }
    #[pyo3(signature = (dim=0))]
    fn unbind<'py>(&self, py: Python<'py>, dim: i64) -> PyResult<Bound<'py, PyTuple>> {
        tuple_of(py, join::unbind(&self.t, dim)?)
    }
    fn movedim(&self, source: &Bound<'_, PyAny>, destination: &Bound<'_, PyAny>) -> R {
        Ok(join::movedim(
            &self.t,
            &int_list("movedim", source)?,
            &int_list("movedim", destination)?,
        )?
        .into())
    }
    fn moveaxis(&self, source: &Bound<'_, PyAny>, destination: &Bound<'_, PyAny>) -> R {
        self.movedim(source, destination)
    }
    #[pyo3(signature = (*args, dims=None))]
    fn flip(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        dims: Option<&Bound<'_, PyAny>>,
    ) -> R {
        if args.is_empty() && dims.is_none_or(|d| d.is_none()) {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "flip() missing 1 required positional arguments: \"dims\"",
            ));
        }
        let d = dims_arg("flip", args, dims)?;
        Ok(maybe_detach(py, self.t.numel(), || join::flip(&self.t, &d))?.into())
    }
    fn fliplr(&self, py: Python<'_>) -> R {
        Ok(maybe_detach(py, self.t.numel(), || join::fliplr(&self.t))?.into())
    }
    fn flipud(&self, py: Python<'_>) -> R {
        Ok(maybe_detach(py, self.t.numel(), || join::flipud(&self.t))?.into())
    }
    #[pyo3(signature = (shifts, dims=None))]
    fn roll(
        &self,
        py: Python<'_>,
        shifts: &Bound<'_, PyAny>,
        dims: Option<&Bound<'_, PyAny>>,
    ) -> R {
        let s = int_list("roll", shifts)?;
        let d = match dims.filter(|d| !d.is_none()) {
            Some(d) => int_list("roll", d)?,
            None => Vec::new(),
        };
        Ok(maybe_detach(py, self.t.numel(), || join::roll(&self.t, &s, &d))?.into())
    }
    #[pyo3(signature = (k=1, dims=None))]
    fn rot90(&self, py: Python<'_>, k: i64, dims: Option<&Bound<'_, PyAny>>) -> R {
        let d = match dims {
            Some(d) => int_list("rot90", d)?,
            None => vec![0, 1],
        };
        Ok(maybe_detach(py, self.t.numel(), || join::rot90(&self.t, k, &d))?.into())
    }
    #[pyo3(signature = (*sizes))]
    fn repeat(&self, py: Python<'_>, sizes: &Bound<'_, PyTuple>) -> R {
        let s = parse_size("repeat", sizes)?;
        Ok(maybe_detach(py, self.t.numel(), || join::repeat(&self.t, &s))?.into())
    }
    #[pyo3(signature = (*dims))]
    fn tile(&self, py: Python<'_>, dims: &Bound<'_, PyTuple>) -> R {
        let s = parse_size("tile", dims)?;
        Ok(maybe_detach(py, self.t.numel(), || join::tile(&self.t, &s))?.into())
    }
    #[pyo3(signature = (repeats, dim=None, *, output_size=None))]
    fn repeat_interleave(
        &self,
        py: Python<'_>,
        repeats: &Bound<'_, PyAny>,
        dim: Option<i64>,
        output_size: Option<i64>,
    ) -> R {
        let r = if let Ok(rt) = repeats.cast::<PyTensor>() {
            let rt = rt.borrow().t.clone();
            maybe_detach(py, self.t.numel(), || {
                join::repeat_interleave_tensor(&self.t, &rt, dim)
            })?
        } else {
            let n: i64 = repeats.extract()?;
            maybe_detach(py, self.t.numel(), || {
                join::repeat_interleave_int(&self.t, n, dim)
            })?
        };
        if let Some(o) = output_size {
            let d = dim.map_or(Ok(0), |d| crate::error::wrap_dim(d, r.ndim()))?;
            if r.shape().get(d).copied().unwrap_or(0) as i64 != o {
                return Err(PyRuntimeError::new_err(
                    "allocated size does not match required size",
                ));
            }
        }
        Ok(r.into())
    }
    #[pyo3(signature = (*size))]
    fn broadcast_to(&self, size: &Bound<'_, PyTuple>) -> R {
        Ok(join::broadcast_to(&self.t, &parse_size("broadcast_to", size)?)?.into())
    }

    // ---- gather / scatter ----
    #[pyo3(signature = (dim, index, *, sparse_grad=false))]
    fn gather(&self, py: Python<'_>, dim: i64, index: PyRef<'_, PyTensor>, sparse_grad: bool) -> R {
        let _ = sparse_grad;
        let ix = index.t.clone();
        Ok(maybe_detach(py, ix.numel(), || gather::gather(&self.t, dim, &ix))?.into())
    }
    #[pyo3(signature = (dim, index, src=None, *, value=None, reduce=None))]
    fn scatter(
        &self,
        py: Python<'_>,
        dim: i64,
        index: PyRef<'_, PyTensor>,
        src: Option<&Bound<'_, PyAny>>,
        value: Option<&Bound<'_, PyAny>>,
        reduce: Option<&str>,
    ) -> R {
        let out = copy::clone(&self.t)?;
        scatter_impl(py, &out, dim, &index.t, src, value, reduce)?;
        Ok(out.into())
    }
    #[pyo3(signature = (dim, index, src=None, *, value=None, reduce=None))]
    fn scatter_<'py>(
        slf: PyRef<'py, Self>,
        dim: i64,
        index: PyRef<'py, PyTensor>,
        src: Option<&Bound<'py, PyAny>>,
        value: Option<&Bound<'py, PyAny>>,
        reduce: Option<&str>,
    ) -> PyResult<PyRef<'py, Self>> {
        scatter_impl(slf.py(), &slf.t, dim, &index.t, src, value, reduce)?;
        Ok(slf)
    }
    fn scatter_add(
        &self,
        py: Python<'_>,
        dim: i64,
        index: PyRef<'_, PyTensor>,
        src: PyRef<'_, PyTensor>,
    ) -> R {
        let out = copy::clone(&self.t)?;
        let (ix, s) = (index.t.clone(), src.t.clone());
        maybe_detach(py, ix.numel(), || {
            gather::scatter_(&out, dim, &ix, Source::Tensor(&s), Reduce::Sum)
        })?;
        Ok(out.into())
    }
    fn scatter_add_<'py>(
        slf: PyRef<'py, Self>,
        dim: i64,
        index: PyRef<'py, PyTensor>,
        src: PyRef<'py, PyTensor>,
    ) -> PyResult<PyRef<'py, Self>> {
        let (t, ix, s) = (slf.t.clone(), index.t.clone(), src.t.clone());
        maybe_detach(slf.py(), ix.numel(), || {
            gather::scatter_(&t, dim, &ix, Source::Tensor(&s), Reduce::Sum)
        })?;
        Ok(slf)
    }
    #[pyo3(signature = (dim, index, src, reduce, *, include_self=true))]
    fn scatter_reduce(
        &self,
        py: Python<'_>,
        dim: i64,
        index: PyRef<'_, PyTensor>,
        src: PyRef<'_, PyTensor>,
        reduce: &str,
        include_self: bool,
    ) -> R {
        let red = reduce_arg(reduce, "scatter_reduce")?;
        let (ix, s) = (index.t.clone(), src.t.clone());
        Ok(maybe_detach(py, ix.numel(), || {
            gather::scatter_reduce(&self.t, dim, &ix, &s, red, include_self)
        })?
        .into())
    }
    #[pyo3(signature = (dim, index, src, reduce, *, include_self=true))]
    fn scatter_reduce_<'py>(
        slf: PyRef<'py, Self>,
        dim: i64,
        index: PyRef<'py, PyTensor>,
        src: PyRef<'py, PyTensor>,
        reduce: &str,
        include_self: bool,
    ) -> PyResult<PyRef<'py, Self>> {
        let red = reduce_arg(reduce, "scatter_reduce")?;
        let r = gather::scatter_reduce(&slf.t, dim, &index.t, &src.t, red, include_self)?;
        copy::copy_(&slf.t, &r)?;
        Ok(slf)
    }

    // ---- index_* ----
    fn index_select(&self, py: Python<'_>, dim: i64, index: PyRef<'_, PyTensor>) -> R {
        let ix = index.t.clone();
        Ok(maybe_detach(py, self.t.numel(), || {
            gather::index_select(&self.t, dim, &ix)
        })?
        .into())
    }
    #[pyo3(signature = (dim, index, source, *, alpha=None))]
    fn index_add(
        &self,
        dim: i64,
        index: PyRef<'_, PyTensor>,
        source: PyRef<'_, PyTensor>,
        alpha: Option<&Bound<'_, PyAny>>,
    ) -> R {
        let out = copy::clone(&self.t)?;
        gather::index_add_(&out, dim, &index.t, &source.t, alpha_arg(alpha)?)?;
        Ok(out.into())
    }
    #[pyo3(signature = (dim, index, source, *, alpha=None))]
    fn index_add_<'py>(
        slf: PyRef<'py, Self>,
        dim: i64,
        index: PyRef<'py, PyTensor>,
        source: PyRef<'py, PyTensor>,
        alpha: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRef<'py, Self>> {
        gather::index_add_(&slf.t, dim, &index.t, &source.t, alpha_arg(alpha)?)?;
        Ok(slf)
    }
    fn index_copy(&self, dim: i64, index: PyRef<'_, PyTensor>, source: PyRef<'_, PyTensor>) -> R {
        let out = copy::clone(&self.t)?;
        gather::index_copy_(&out, dim, &index.t, &source.t)?;
        Ok(out.into())
    }
    fn index_copy_<'py>(
        slf: PyRef<'py, Self>,
        dim: i64,
        index: PyRef<'py, PyTensor>,
        source: PyRef<'py, PyTensor>,
    ) -> PyResult<PyRef<'py, Self>> {
        gather::index_copy_(&slf.t, dim, &index.t, &source.t)?;
        Ok(slf)
    }
    fn index_fill(&self, dim: i64, index: PyRef<'_, PyTensor>, value: &Bound<'_, PyAny>) -> R {
        let out = copy::clone(&self.t)?;
        gather::index_fill_(&out, dim, &index.t, fill_scalar("index_fill_", value)?)?;
        Ok(out.into())
    }
    fn index_fill_<'py>(
        slf: PyRef<'py, Self>,
        dim: i64,
        index: PyRef<'py, PyTensor>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<PyRef<'py, Self>> {
        gather::index_fill_(&slf.t, dim, &index.t, fill_scalar("index_fill_", value)?)?;
        Ok(slf)
    }
    #[pyo3(signature = (indices, values, accumulate=false))]
    fn index_put(
        &self,
        indices: &Bound<'_, PyAny>,
        values: PyRef<'_, PyTensor>,
        accumulate: bool,
    ) -> R {
        let out = copy::clone(&self.t)?;
        gather::index_put_(
            &out,
            &tensor_list("index_put", indices)?,
            &values.t,
            accumulate,
        )?;
        Ok(out.into())
    }
    #[pyo3(signature = (indices, values, accumulate=false))]
    fn index_put_<'py>(
        slf: PyRef<'py, Self>,
        indices: &Bound<'py, PyAny>,
        values: PyRef<'py, PyTensor>,
        accumulate: bool,
    ) -> PyResult<PyRef<'py, Self>> {
        gather::index_put_(
            &slf.t,
            &tensor_list("index_put_", indices)?,
            &values.t,
            accumulate,
        )?;
        Ok(slf)
    }

    // ---- masks, take, nonzero ----
    fn masked_select(&self, py: Python<'_>, mask: PyRef<'_, PyTensor>) -> R {
        let m = mask.t.clone();
        Ok(maybe_detach(py, self.t.numel(), || gather::masked_select(&self.t, &m))?.into())
    }
    fn masked_scatter(&self, mask: PyRef<'_, PyTensor>, source: PyRef<'_, PyTensor>) -> R {
        Ok(gather::masked_scatter(&self.t, &mask.t, &source.t)?.into())
    }
    fn masked_scatter_<'py>(
        slf: PyRef<'py, Self>,
        mask: PyRef<'py, PyTensor>,
        source: PyRef<'py, PyTensor>,
    ) -> PyResult<PyRef<'py, Self>> {
        gather::masked_scatter_(&slf.t, &mask.t, &source.t)?;
        Ok(slf)
    }
    fn take(&self, index: PyRef<'_, PyTensor>) -> R {
        Ok(gather::take(&self.t, &index.t)?.into())
    }
    #[pyo3(signature = (indices, dim=None))]
    fn take_along_dim(&self, indices: PyRef<'_, PyTensor>, dim: Option<i64>) -> R {
        Ok(gather::take_along_dim(&self.t, &indices.t, dim)?.into())
    }
    #[pyo3(signature = (*, as_tuple=false))]
    fn nonzero<'py>(&self, py: Python<'py>, as_tuple: bool) -> PyResult<Bound<'py, PyAny>> {
        if as_tuple {
            return Ok(tuple_of(py, gather::nonzero_tuple(&self.t)?)?.into_any());
        }
        Ok(Bound::new(py, PyTensor::from(gather::nonzero(&self.t)?))?.into_any())
    }
    fn argwhere(&self) -> R {
        Ok(gather::nonzero(&self.t)?.into())
    }

    // ---- triangles and diagonals ----
    #[pyo3(signature = (diagonal=0))]
    fn tril(&self, diagonal: i64) -> R {
        Ok(join::tri(&self.t, diagonal, true)?.into())
    }
    #[pyo3(signature = (diagonal=0))]
    fn triu(&self, diagonal: i64) -> R {
        Ok(join::tri(&self.t, diagonal, false)?.into())
    }
    #[pyo3(signature = (diagonal=0))]
    fn tril_(slf: PyRef<'_, Self>, diagonal: i64) -> PyResult<PyRef<'_, Self>> {
        join::tri_(&slf.t, diagonal, true)?;
        Ok(slf)
    }
    #[pyo3(signature = (diagonal=0))]
    fn triu_(slf: PyRef<'_, Self>, diagonal: i64) -> PyResult<PyRef<'_, Self>> {
        join::tri_(&slf.t, diagonal, false)?;
        Ok(slf)
    }
    #[pyo3(signature = (diagonal=0))]
    fn diag(&self, diagonal: i64) -> R {
        Ok(join::diag(&self.t, diagonal)?.into())
    }
    #[pyo3(signature = (offset=0, dim1=-2, dim2=-1))]
    fn diag_embed(&self, offset: i64, dim1: i64, dim2: i64) -> R {
        Ok(join::diag_embed(&self.t, offset, dim1, dim2)?.into())
    }
    fn trace(&self) -> R {
        Ok(join::trace(&self.t)?.into())
    }

    // ---- products ----
    fn outer(&self, vec2: PyRef<'_, PyTensor>) -> R {
        Ok(contraction::outer(&self.t, &vec2.t)?.into())
    }
    fn ger(&self, vec2: PyRef<'_, PyTensor>) -> R {
        Ok(contraction::outer(&self.t, &vec2.t)?.into())
    }
    fn inner(&self, other: PyRef<'_, PyTensor>) -> R {
        Ok(contraction::inner(&self.t, &other.t)?.into())
    }
    #[pyo3(signature = (other, dim=None))]
    fn cross(&self, other: PyRef<'_, PyTensor>, dim: Option<i64>) -> R {
        Ok(contraction::cross(&self.t, &other.t, dim)?.into())
    }
    fn kron(&self, other: PyRef<'_, PyTensor>) -> R {
        Ok(contraction::kron(&self.t, &other.t)?.into())
    }
}

fn alpha_arg(alpha: Option<&Bound<'_, PyAny>>) -> PyResult<Scalar> {
    match alpha.filter(|a| !a.is_none()) {
        None => Ok(Scalar::Int(1)),
        Some(a) => fill_scalar("index_add", a),
    }
}

fn scatter_impl(
    py: Python<'_>,
    t: &Tensor,
    dim: i64,
    index: &Tensor,
    src: Option<&Bound<'_, PyAny>>,
    value: Option<&Bound<'_, PyAny>>,
    reduce: Option<&str>,
) -> PyResult<()> {
    let red = match reduce {
        None => Reduce::Assign,
        Some("add") => Reduce::Sum,
        Some("multiply") => Reduce::Prod,
        Some(r) => {
            return Err(PyRuntimeError::new_err(format!(
                "reduce argument must be either add or multiply, got {r}"
            )))
        }
    };
    let arg = src.or(value).ok_or_else(|| {
        PyTypeError::new_err("scatter() missing 1 required positional argument: 'src' or 'value'")
    })?;
    let ix = index.clone();
    match operand(arg)? {
        Some(Operand::Tensor(s)) => maybe_detach(py, ix.numel(), || {
            gather::scatter_(t, dim, &ix, Source::Tensor(&s), red)
        })?,
        Some(Operand::Scalar(v)) => maybe_detach(py, ix.numel(), || {
            gather::scatter_(t, dim, &ix, Source::Value(v), red)
        })?,
        None => {
            return Err(PyTypeError::new_err(format!(
                "scatter(): argument 'src' must be Tensor or Number, not {}",
                type_name(arg)
            )))
        }
    }
    Ok(())
}

#[pyfunction]
#[pyo3(signature = (tensors, dim=0, *, out=None))]
fn cat(
    py: Python<'_>,
    tensors: &Bound<'_, PyAny>,
    dim: i64,
    out: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let ts = tensor_list("cat", tensors)?;
    let r = maybe_detach(py, numel_of(&ts), || join::cat(&ts, dim))?;
    finish(py, "cat", r, out)
}

#[pyfunction]
#[pyo3(signature = (tensors, dim=0, *, out=None))]
fn stack(
    py: Python<'_>,
    tensors: &Bound<'_, PyAny>,
    dim: i64,
    out: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let ts = tensor_list("stack", tensors)?;
    let r = maybe_detach(py, numel_of(&ts), || join::stack(&ts, dim))?;
    finish(py, "stack", r, out)
}

#[pyfunction]
#[pyo3(signature = (tensors, kind, *, out=None))]
fn _hvdstack(
    py: Python<'_>,
    tensors: &Bound<'_, PyAny>,
    kind: char,
    out: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let name = format!("{kind}stack");
    let ts = tensor_list(&name, tensors)?;
    let r = maybe_detach(py, numel_of(&ts), || join::hvdstack(&ts, kind))?;
    finish(py, &name, r, out)
}

#[pyfunction]
fn _atleast(t: PyRef<'_, PyTensor>, n: usize) -> R {
    Ok(join::atleast(&t.t, n)?.into())
}

#[pyfunction]
#[pyo3(signature = (*tensors, indexing=None))]
fn meshgrid<'py>(
    py: Python<'py>,
    tensors: &Bound<'py, PyTuple>,
    indexing: Option<&str>,
) -> PyResult<Bound<'py, PyTuple>> {
    let ts = varargs_tensors("meshgrid", tensors)?;
    let xy = match indexing.unwrap_or("ij") {
        "ij" => false,
        "xy" => true,
        other => {
            return Err(PyRuntimeError::new_err(format!(
                "torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but received: {other}"
            )))
        }
    };
    tuple_of(py, join::meshgrid(&ts, xy)?)
}

#[pyfunction]
#[pyo3(signature = (*tensors))]
fn broadcast_tensors<'py>(
    py: Python<'py>,
    tensors: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyTuple>> {
    let ts = varargs_tensors("broadcast_tensors", tensors)?;
    tuple_of(py, join::broadcast_tensors(&ts)?)
}

#[pyfunction]
#[pyo3(signature = (*tensors))]
fn cartesian_prod(tensors: &Bound<'_, PyTuple>) -> R {
    let ts = varargs_tensors("cartesian_prod", tensors)?;
    Ok(join::cartesian_prod(&ts)?.into())
}

#[pyfunction]
#[pyo3(signature = (input, r=2, with_replacement=false))]
fn combinations(input: PyRef<'_, PyTensor>, r: i64, with_replacement: bool) -> R {
    Ok(join::combinations(&input.t, r, with_replacement)?.into())
}

#[pyfunction]
#[pyo3(signature = (equation, *operands))]
fn einsum(py: Python<'_>, equation: &str, operands: &Bound<'_, PyTuple>) -> R {
    let ts = varargs_tensors("einsum", operands)?;
    Ok(maybe_detach(py, numel_of(&ts), || contraction::einsum(equation, &ts))?.into())
}

#[pyfunction]
#[pyo3(signature = (a, b, dims=None))]
fn tensordot(
    py: Python<'_>,
    a: PyRef<'_, PyTensor>,
    b: PyRef<'_, PyTensor>,
    dims: Option<&Bound<'_, PyAny>>,
) -> R {
    let (da, db): (Vec<i64>, Vec<i64>) = match dims {
        None => ((-2..0).collect(), (0..2).collect()),
        Some(d) if d.is_instance_of::<PyInt>() => {
            let n: i64 = d.extract()?;
            if n < 0 {
                return Err(PyRuntimeError::new_err(format!(
                    "tensordot expects dims >= 0, but got dims={n}"
                )));
            }
            if n as usize > a.t.ndim() || n as usize > b.t.ndim() {
                return Err(PyRuntimeError::new_err(format!(
                    "tensordot expects dims < ndim_a or ndim_b, but got dims={n}"
                )));
            }
            let na = a.t.ndim() as i64;
            ((na - n..na).collect(), (0..n).collect())
        }
        Some(d) => {
            if let Ok(t) = d.cast::<PyTensor>() {
                let t = t.borrow().t.clone();
                let v = copy::to_vec::<i64>(&t)?;
                let h = v.len() / 2;
                (v[..h].to_vec(), v[h..].to_vec())
            } else {
                let seq = d.cast::<PySequence>()?;
                if seq.len()? != 2 {
                    return Err(PyValueError::new_err(
                        "tensordot: dims must be an int or a pair of lists",
                    ));
                }
                (
                    int_list("tensordot", &seq.get_item(0)?)?,
                    int_list("tensordot", &seq.get_item(1)?)?,
                )
            }
        }
    };
    let (x, y) = (a.t.clone(), b.t.clone());
    Ok(maybe_detach(py, x.numel() + y.numel(), || {
        contraction::tensordot(&x, &y, &da, &db)
    })?
    .into())
}

#[pyfunction]
#[pyo3(signature = (x1, x2, p=2.0, compute_mode=None))]
fn cdist(
    py: Python<'_>,
    x1: PyRef<'_, PyTensor>,
    x2: PyRef<'_, PyTensor>,
    p: f64,
    compute_mode: Option<&str>,
) -> R {
    let _ = compute_mode;
    let (a, b) = (x1.t.clone(), x2.t.clone());
    Ok(maybe_detach(py, a.numel() + b.numel(), || contraction::cdist(&a, &b, p))?.into())
}

#[pyfunction]
fn _repeat_index(repeats: PyRef<'_, PyTensor>) -> R {
    Ok(join::repeat_index(&repeats.t)?.into())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cat, m)?)?;
    m.add_function(wrap_pyfunction!(stack, m)?)?;
    m.add_function(wrap_pyfunction!(_hvdstack, m)?)?;
    m.add_function(wrap_pyfunction!(_atleast, m)?)?;
    m.add_function(wrap_pyfunction!(meshgrid, m)?)?;
    m.add_function(wrap_pyfunction!(broadcast_tensors, m)?)?;
    m.add_function(wrap_pyfunction!(cartesian_prod, m)?)?;
    m.add_function(wrap_pyfunction!(combinations, m)?)?;
    m.add_function(wrap_pyfunction!(einsum, m)?)?;
    m.add_function(wrap_pyfunction!(tensordot, m)?)?;
    m.add_function(wrap_pyfunction!(cdist, m)?)?;
    m.add_function(wrap_pyfunction!(_repeat_index, m)?)?;
    Ok(())
}
