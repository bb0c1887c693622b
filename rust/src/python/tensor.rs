//! The `rtorch.Tensor` class. Python code in `rtorch/_tensor.py` adds the
//! methods that are pure API (printing, NumPy conversion).

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple, PyType};

use super::convert::{data_to_tensor, int_list, operand, parse_index, parse_size, type_name};
use super::dtype::{dtype_obj, extract_device, extract_dtype, opt_dtype, PyDType, PyDevice};
use super::maybe_detach;
use crate::ops::{copy, index, random as rnd, shape, Operand};
use crate::random::default_generator;
use crate::tensor::layout::dims_from_i64;
use crate::tensor::{Device, Scalar, Tensor};

#[pyclass(name = "Tensor", module = "rtorch", subclass, dict, weakref)]
pub struct PyTensor {
    pub t: Tensor,
}

impl From<Tensor> for PyTensor {
    fn from(t: Tensor) -> Self {
        PyTensor { t }
    }
}

type R = PyResult<PyTensor>;

static SIZE_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `rtorch.Size(shape)`.
pub fn make_size<'py>(py: Python<'py>, dims: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    let tup = PyTuple::new(py, dims)?;
    match SIZE_CLASS.get(py) {
        Some(cls) => cls.bind(py).call1((tup,)),
        None => Ok(tup.into_any()),
    }
}

fn wrap_dim(dim: i64, n: usize) -> PyResult<usize> {
    Ok(crate::error::wrap_dim_strict(dim, n)?)
}

/// Sizes passed as `*args` or as one sequence.
fn sizes(fname: &str, args: &Bound<'_, PyTuple>) -> PyResult<Vec<i64>> {
    parse_size(fname, args)
}

/// Converts `tensor` to a Python scalar or nested list.
fn to_py_list(py: Python<'_>, t: &Tensor) -> PyResult<Py<PyAny>> {
    let vals = gather_scalars(t)?;
    fn build(py: Python<'_>, vals: &[Scalar], shape: &[usize]) -> PyResult<Py<PyAny>> {
        if shape.is_empty() {
            return scalar_to_py(py, vals[0]);
        }
        let step = shape[1..].iter().product::<usize>();
        let items = (0..shape[0])
            .map(|i| build(py, &vals[i * step..(i + 1) * step], &shape[1..]))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyList::new(py, items)?.into_any().unbind())
    }
    if t.numel() == 0 && t.ndim() > 0 {
        // Preserve nesting of empty dims ([[], []] for shape (2, 0)).
        if t.shape()[0] == 0 {
            return Ok(PyList::empty(py).into_any().unbind());
        }
        let inner = shape::select(t, 0, 0)?;
        let items = (0..t.shape()[0])
            .map(|_| to_py_list(py, &inner))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(PyList::new(py, items)?.into_any().unbind());
    }
    build(py, &vals, t.shape())
}

fn gather_scalars(t: &Tensor) -> crate::Result<Vec<Scalar>> {
    let mut out = crate::error::try_vec(t.numel())?;
    crate::cpu::iter::for_each_offset(t.shape(), t.strides(), |o| {
        out.push(t.get_scalar(o as usize))
    });
    Ok(out)
}

fn scalar_to_py(py: Python<'_>, s: Scalar) -> PyResult<Py<PyAny>> {
    Ok(match s {
        Scalar::Bool(b) => pyo3::types::PyBool::new(py, b)
            .to_owned()
            .into_any()
            .unbind(),
        Scalar::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Scalar::Float(f) => f.into_pyobject(py)?.into_any().unbind(),
    })
}

fn single_scalar(t: &Tensor, what: &str) -> PyResult<Scalar> {
    if t.numel() != 1 {
        return Err(PyRuntimeError::new_err(format!(
            "a Tensor with {} elements cannot be converted to {what}",
            t.numel()
        )));
    }
    // The one element of a single-element view sits at its start.
    Ok(t.get_scalar(0))
}

/// The `generator=` argument: an `rtorch.Generator` or the default one.
pub(crate) fn with_generator<T>(
    gen: Option<&Bound<'_, PyAny>>,
    f: impl FnOnce(&crate::random::Generator) -> T,
) -> PyResult<T> {
    match gen.filter(|g| !g.is_none()) {
        Some(g) => {
            let g = g.cast::<super::factory::PyGenerator>().map_err(|_| {
                PyTypeError::new_err(format!("expected a rtorch.Generator, got {}", type_name(g)))
            })?;
            Ok(f(&g.get().gen))
        }
        None => Ok(f(default_generator())),
    }
}

#[pymethods]
impl PyTensor {
    /// The legacy constructor: `Tensor(2, 3)` (uninitialised), `Tensor([1, 2])`
    /// (float data), `Tensor(size)`, `Tensor(other)` (alias), `Tensor()`.
    #[new]
    #[pyo3(signature = (*args, device=None))]
    fn py_new(args: &Bound<'_, PyTuple>, device: Option<&Bound<'_, PyAny>>) -> R {
        extract_device(device)?;
        // The legacy constructor makes tensors of the default dtype.
        let dtype = crate::ops::default_dtype();
        if args.is_empty() {
            return Ok(Tensor::empty(&[0], dtype)?.into());
        }
        let first = args.get_item(0)?;
        if args.len() == 1 {
            if let Ok(t) = first.cast::<PyTensor>() {
                return Ok(t.borrow().t.clone().into());
            }
            let is_size = type_name(&first) == "Size";
            if !is_size && first.extract::<i64>().is_err() {
                return Ok(data_to_tensor(&first, Some(dtype))?.into());
            }
        }
        let shape = dims_from_i64(&parse_size("Tensor", args)?)?;
        Ok(Tensor::empty(&shape, dtype)?.into())
    }

    /// Makes an instance of the subclass `cls` sharing `data`'s storage (used by `Parameter`).
    #[staticmethod]
    #[pyo3(signature = (cls, data, require_grad=false))]
    fn _make_subclass<'py>(
        cls: &Bound<'py, PyType>,
        data: &Bound<'py, PyAny>,
        require_grad: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = data.cast::<PyTensor>()?.borrow().t.alias();
        t.set_requires_grad(require_grad)?;
        let new = cls.py().get_type::<PyTensor>().getattr("__new__")?;
        let obj = new.call1((cls, PyTensor { t }))?;
        Ok(obj)
    }

    /// Registers `rtorch.Size`, so shapes come back as that type.
    #[staticmethod]
    fn _set_size_class(py: Python<'_>, cls: Py<PyType>) {
        let _ = SIZE_CLASS.set(py, cls);
    }

    // ---- introspection ----
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        make_size(py, self.t.shape())
    }
    #[pyo3(signature = (dim=None))]
    fn size<'py>(&self, py: Python<'py>, dim: Option<i64>) -> PyResult<Bound<'py, PyAny>> {
        match dim {
            Some(d) => Ok(self.t.shape()[wrap_dim(d, self.t.ndim())?]
                .into_pyobject(py)?
                .into_any()),
            None => self.shape(py),
        }
    }
    #[pyo3(signature = (dim=None))]
    fn stride<'py>(&self, py: Python<'py>, dim: Option<i64>) -> PyResult<Bound<'py, PyAny>> {
        match dim {
            Some(d) => Ok(self.t.strides()[wrap_dim(d, self.t.ndim())?]
                .into_pyobject(py)?
                .into_any()),
            None => Ok(PyTuple::new(py, self.t.strides())?.into_any()),
        }
    }
    fn storage_offset(&self) -> usize {
        self.t.offset()
    }
    #[pyo3(signature = (memory_format=None))]
    fn is_contiguous(&self, memory_format: Option<&Bound<'_, PyAny>>) -> bool {
        let _ = memory_format;
        self.t.is_contiguous()
    }
    fn data_ptr(&self) -> usize {
        self.t.raw_ptr() as usize
    }
    fn dim(&self) -> usize {
        self.t.ndim()
    }
    fn ndimension(&self) -> usize {
        self.t.ndim()
    }
    #[getter]
    fn ndim(&self) -> usize {
        self.t.ndim()
    }
    fn numel(&self) -> usize {
        self.t.numel()
    }
    fn nelement(&self) -> usize {
        self.t.numel()
    }
    fn element_size(&self) -> usize {
        self.t.dtype().size()
    }
    #[getter]
    fn itemsize(&self) -> usize {
        self.t.dtype().size()
    }
    #[getter]
    fn nbytes(&self) -> usize {
        self.t.numel() * self.t.dtype().size()
    }
    #[getter]
    fn dtype(&self, py: Python<'_>) -> PyResult<Py<PyDType>> {
        dtype_obj(py, self.t.dtype())
    }
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice::of(self.t.device())
    }
    #[getter]
    fn is_cuda(&self) -> bool {
        matches!(self.t.device(), Device::Cuda(_))
    }
    #[getter]
    fn is_cpu(&self) -> bool {
        self.t.device() == Device::Cpu
    }
    fn is_floating_point(&self) -> bool {
        self.t.dtype().is_floating_point()
    }
    fn is_complex(&self) -> bool {
        false
    }
    fn is_signed(&self) -> bool {
        self.t.dtype().is_signed()
    }
    #[getter]
    fn _version(&self) -> u64 {
        self.t.version()
    }
    fn _is_view_of(&self, other: &PyTensor) -> bool {
        self.t.same_storage(&other.t)
    }

    // ---- autograd state ----
    #[getter]
    fn get_requires_grad(&self) -> bool {
        self.t.requires_grad()
    }
    #[setter]
    fn set_requires_grad(&self, flag: bool) -> PyResult<()> {
        // The attribute setter words this error differently from requires_grad_().
        if flag && !self.t.dtype().is_floating_point() {
            return Err(PyRuntimeError::new_err(
                "only Tensors of floating point and complex dtype can require gradients",
            ));
        }
        Ok(self.t.set_requires_grad(flag)?)
    }
    #[pyo3(signature = (requires_grad=true))]
    fn requires_grad_(slf: PyRef<'_, Self>, requires_grad: bool) -> PyResult<PyRef<'_, Self>> {
        slf.t.set_requires_grad(requires_grad)?;
        Ok(slf)
    }
    #[getter]
    fn get_grad(&self) -> Option<PyTensor> {
        self.t.grad().map(PyTensor::from)
    }
    #[setter]
    fn set_grad(&self, g: Option<PyRef<'_, PyTensor>>) -> PyResult<()> {
        if let Some(g) = &g {
            if g.t.shape() != self.t.shape() {
                return Err(PyRuntimeError::new_err(
                    "assigned grad has data of a different size",
                ));
            }
            if g.t.dtype() != self.t.dtype() {
                return Err(PyTypeError::new_err(
                    "assigned grad has data of a different type",
                ));
            }
        }
        self.t.set_grad(g.map(|g| g.t.clone()));
        Ok(())
    }
    #[getter]
    fn get_data(&self) -> PyTensor {
        self.t.alias().into()
    }
    #[setter]
    fn set_data(&mut self, other: PyRef<'_, PyTensor>) -> PyResult<()> {
        let rg = self.t.requires_grad();
        let t = other.t.alias();
        t.set_requires_grad(rg)?;
        self.t = t;
        Ok(())
    }
    fn detach(&self) -> PyTensor {
        self.t.alias().into()
    }
    fn detach_(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        slf.t.set_requires_grad(false)?;
        Ok(slf)
    }

    // ---- views ----
    #[pyo3(signature = (*args))]
    fn view(&self, args: &Bound<'_, PyTuple>) -> R {
        if args.len() == 1 {
            if let Ok(d) = args.get_item(0)?.cast::<PyDType>() {
                return Ok(shape::view_dtype(&self.t, d.get().dtype)?.into());
            }
        }
        Ok(shape::view(&self.t, &sizes("view", args)?)?.into())
    }
    fn view_as(&self, other: PyRef<'_, PyTensor>) -> R {
        let s: Vec<i64> = other.t.shape().iter().map(|&d| d as i64).collect();
        Ok(shape::view(&self.t, &s)?.into())
    }
    #[pyo3(signature = (*args))]
    fn reshape(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> R {
        let s = sizes("reshape", args)?;
        Ok(maybe_detach(py, self.t.numel(), || shape::reshape(&self.t, &s))?.into())
    }
    fn reshape_as(&self, other: PyRef<'_, PyTensor>) -> R {
        let s: Vec<i64> = other.t.shape().iter().map(|&d| d as i64).collect();
        Ok(shape::reshape(&self.t, &s)?.into())
    }
    #[pyo3(signature = (*dims))]
    fn permute(&self, dims: &Bound<'_, PyTuple>) -> R {
        Ok(shape::permute(&self.t, &parse_size("permute", dims)?)?.into())
    }
    fn transpose(&self, dim0: i64, dim1: i64) -> R {
        Ok(shape::transpose(&self.t, dim0, dim1)?.into())
    }
    fn swapaxes(&self, axis0: i64, axis1: i64) -> R {
        Ok(shape::transpose(&self.t, axis0, axis1)?.into())
    }
    fn swapdims(&self, dim0: i64, dim1: i64) -> R {
        Ok(shape::transpose(&self.t, dim0, dim1)?.into())
    }
    fn t(&self) -> R {
        Ok(shape::t(&self.t)?.into())
    }
    #[getter(T)]
    fn big_t(&self) -> R {
        let n = self.t.ndim() as i64;
        let dims: Vec<i64> = (0..n).rev().collect();
        Ok(shape::permute(&self.t, &dims)?.into())
    }
    #[getter(mT)]
    fn m_t(&self) -> R {
        Ok(shape::matrix_t(&self.t)?.into())
    }
    #[pyo3(signature = (*sizes))]
    fn expand(&self, sizes: &Bound<'_, PyTuple>) -> R {
        Ok(shape::expand(&self.t, &parse_size("expand", sizes)?)?.into())
    }
    fn expand_as(&self, other: PyRef<'_, PyTensor>) -> R {
        let s: Vec<i64> = other.t.shape().iter().map(|&d| d as i64).collect();
        Ok(shape::expand(&self.t, &s)?.into())
    }
    #[pyo3(signature = (dim=None))]
    fn squeeze(&self, dim: Option<&Bound<'_, PyAny>>) -> R {
        let dims = dim.map(|d| int_list("squeeze", d)).transpose()?;
        Ok(shape::squeeze(&self.t, dims.as_deref())?.into())
    }
    fn unsqueeze(&self, dim: i64) -> R {
        Ok(shape::unsqueeze(&self.t, dim)?.into())
    }
    #[pyo3(signature = (start_dim=0, end_dim=-1))]
    fn flatten(&self, start_dim: i64, end_dim: i64) -> R {
        Ok(shape::flatten(&self.t, start_dim, end_dim)?.into())
    }
    fn unflatten(&self, dim: i64, sizes: &Bound<'_, PyAny>) -> R {
        Ok(shape::unflatten(&self.t, dim, &int_list("unflatten", sizes)?)?.into())
    }
    fn narrow(&self, dim: i64, start: &Bound<'_, PyAny>, length: i64) -> R {
        let start = super::convert::index_int(start)?;
        Ok(shape::narrow(&self.t, dim, start, length)?.into())
    }
    fn select(&self, dim: i64, index: i64) -> R {
        Ok(shape::select(&self.t, dim, index)?.into())
    }
    fn unfold(&self, dimension: i64, size: i64, step: i64) -> R {
        Ok(shape::unfold(&self.t, dimension, size, step)?.into())
    }
    #[pyo3(signature = (size, stride, storage_offset=None))]
    fn as_strided(
        &self,
        size: &Bound<'_, PyAny>,
        stride: &Bound<'_, PyAny>,
        storage_offset: Option<i64>,
    ) -> R {
        let (sz, st) = (
            int_list("as_strided", size)?,
            int_list("as_strided", stride)?,
        );
        Ok(shape::as_strided(&self.t, &sz, &st, storage_offset)?.into())
    }
    #[pyo3(signature = (offset=0, dim1=0, dim2=1))]
    fn diagonal(&self, offset: i64, dim1: i64, dim2: i64) -> R {
        Ok(shape::diagonal(&self.t, offset, dim1, dim2)?.into())
    }
    #[pyo3(signature = (memory_format=None))]
    fn contiguous<'py>(
        slf: Bound<'py, Self>,
        memory_format: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = memory_format;
        let t = slf.borrow().t.clone();
        if t.is_contiguous() {
            return Ok(slf.into_any());
        }
        let out = maybe_detach(slf.py(), t.numel(), || copy::contiguous_copy(&t))?;
        Ok(Bound::new(slf.py(), PyTensor::from(out))?.into_any())
    }
    #[pyo3(signature = (memory_format=None))]
    fn clone(&self, py: Python<'_>, memory_format: Option<&Bound<'_, PyAny>>) -> R {
        let _ = memory_format;
        Ok(maybe_detach(py, self.t.numel(), || copy::clone(&self.t))?.into())
    }

    // ---- indexing and writes ----
    fn __getitem__(&self, py: Python<'_>, idx: &Bound<'_, PyAny>) -> R {
        let items = parse_index(idx)?;
        Ok(maybe_detach(py, self.t.numel(), || index::index(&self.t, &items))?.into())
    }
    fn __setitem__(
        &self,
        py: Python<'_>,
        idx: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let items = parse_index(idx)?;
        let v = match operand(value)? {
            Some(Operand::Tensor(t)) => t,
            Some(Operand::Scalar(s)) => crate::ops::creation::full(&[], s, self.t.dtype())?,
            None => data_to_tensor(value, Some(self.t.dtype()))?,
        };
        Ok(maybe_detach(py, self.t.numel(), || {
            index::index_put_(&self.t, &items, &v)
        })?)
    }
    #[pyo3(signature = (src, non_blocking=false))]
    fn copy_<'py>(
        slf: PyRef<'py, Self>,
        src: PyRef<'py, PyTensor>,
        non_blocking: bool,
    ) -> PyResult<PyRef<'py, Self>> {
        let _ = non_blocking;
        let (dst, s) = (slf.t.clone(), src.t.clone());
        maybe_detach(slf.py(), dst.numel(), || copy::copy_(&dst, &s))?;
        Ok(slf)
    }
    fn fill_<'py>(slf: PyRef<'py, Self>, value: &Bound<'py, PyAny>) -> PyResult<PyRef<'py, Self>> {
        let v = match operand(value)? {
            Some(Operand::Scalar(s)) => s,
            Some(Operand::Tensor(t)) if t.ndim() == 0 => t.get_scalar(0),
            _ => {
                return Err(PyRuntimeError::new_err(format!(
                "fill_ only supports 0-dimension value tensor but got tensor with {} dimensions.",
                value
                    .cast::<PyTensor>()
                    .map(|t| t.borrow().t.ndim())
                    .unwrap_or(0)
            )))
            }
        };
        copy::fill_(&slf.t, v)?;
        Ok(slf)
    }
    fn zero_(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        copy::fill_(&slf.t, Scalar::Int(0))?;
        Ok(slf)
    }

    // ---- conversions ----
    fn item(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        scalar_to_py(py, single_scalar(&self.t, "a Python scalar")?)
    }
    fn tolist(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_py_list(py, &self.t)
    }
    fn __len__(&self) -> PyResult<usize> {
        if self.t.ndim() == 0 {
            return Err(PyTypeError::new_err("len() of a 0-d tensor"));
        }
        Ok(self.t.shape()[0])
    }
    fn __bool__(&self) -> PyResult<bool> {
        if self.t.numel() != 1 {
            return Err(PyRuntimeError::new_err(format!(
                "Boolean value of Tensor with {} is ambiguous",
                if self.t.numel() == 0 {
                    "no values"
                } else {
                    "more than one value"
                }
            )));
        }
        Ok(self.t.get_scalar(0).to_bool())
    }
    fn __float__(&self) -> PyResult<f64> {
        Ok(single_scalar(&self.t, "a Python scalar")?.to_f64())
    }
    fn __int__(&self) -> PyResult<i64> {
        Ok(single_scalar(&self.t, "a Python scalar")?.to_i64())
    }
    fn __index__(&self) -> PyResult<i64> {
        if self.t.dtype().is_floating_point() || self.t.numel() != 1 {
            return Err(PyTypeError::new_err(
                "only integer tensors of a single element can be converted to an index",
            ));
        }
        Ok(self.t.get_scalar(0).to_i64())
    }
    fn __hash__(slf: &Bound<'_, Self>) -> isize {
        slf.as_ptr() as isize
    }
    /// An object NumPy builds a zero-copy array from (`.numpy()`).
    fn _array_holder(&self) -> PyResult<super::array::ArrayHolder> {
        super::array::ArrayHolder::new(self.t.clone())
    }

    /// The tensor as a NumPy array sharing its memory; `force` detaches a
    /// tensor that requires grad instead of refusing it.
    #[pyo3(signature = (*, force=false))]
    fn numpy<'py>(&self, py: Python<'py>, force: bool) -> PyResult<Bound<'py, PyAny>> {
        if self.t.requires_grad() && !force {
            return Err(PyRuntimeError::new_err(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.",
            ));
        }
        static ASARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        // NumPy is imported on first use, so `import rtorch` stays fast.
        let asarray = ASARRAY.get_or_try_init(py, || {
            py.import("numpy")
                .and_then(|np| np.getattr("asarray"))
                .map(Bound::unbind)
        })?;
        let holder = Bound::new(py, super::array::ArrayHolder::new(self.t.clone())?)?;
        asarray.bind(py).call1((holder,))
    }

    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__(
        &self,
        py: Python<'_>,
        stream: Option<&Bound<'_, PyAny>>,
        max_version: Option<&Bound<'_, PyAny>>,
        dl_device: Option<&Bound<'_, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Py<PyAny>> {
        let _ = (stream, max_version, dl_device);
        if self.t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "Can't export tensors that require gradient, use tensor.detach()",
            ));
        }
        let t = if copy == Some(true) {
            copy::contiguous_copy(&self.t)?
        } else {
            self.t.clone()
        };
        super::dlpack::to_capsule(py, &t)
    }
    fn __dlpack_device__(&self) -> (i32, usize) {
        match self.t.device() {
            Device::Cpu => (1, 0),
            Device::Cuda(i) => (2, i),
        }
    }

    /// `to(dtype)`, `to(device)`, `to(device, dtype)`, `to(other)`, with `copy=`.
    #[pyo3(signature = (*args, dtype=None, device=None, non_blocking=false, copy=false, memory_format=None))]
    fn to<'py>(
        slf: Bound<'py, Self>,
        args: &Bound<'py, PyTuple>,
        dtype: Option<&Bound<'py, PyAny>>,
        device: Option<&Bound<'py, PyAny>>,
        non_blocking: bool,
        copy: bool,
        memory_format: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = (non_blocking, memory_format);
        let mut target = opt_dtype(dtype)?;
        if device.is_some() {
            extract_device(device)?;
        }
        let mut copy = copy;
        // Positional bools after the target are (non_blocking, copy).
        let mut bools = 0;
        for a in args.iter() {
            if a.is_instance_of::<PyTensor>() {
                let o = a.cast::<PyTensor>()?.borrow();
                target = Some(o.t.dtype());
            } else if a.cast::<PyDType>().is_ok() || a.is_instance_of::<PyType>() {
                target = Some(extract_dtype(&a)?);
            } else if a.is_instance_of::<pyo3::types::PyBool>() {
                if bools == 1 {
                    copy = a.is_truthy()?;
                }
                bools += 1;
            } else {
                extract_device(Some(&a))?;
            }
        }
        let t = slf.borrow().t.clone();
        let dt = target.unwrap_or(t.dtype());
        if dt == t.dtype() && !copy {
            return Ok(slf.into_any());
        }
        let out = maybe_detach(slf.py(), t.numel(), || copy::to_dtype(&t, dt, true))?;
        Ok(Bound::new(slf.py(), PyTensor::from(out))?.into_any())
    }
    fn cpu(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
    #[pyo3(signature = (device=None, non_blocking=false))]
    fn cuda(&self, device: Option<&Bound<'_, PyAny>>, non_blocking: bool) -> R {
        let _ = non_blocking;
        let idx = device
            .map(|d| d.extract::<usize>())
            .transpose()?
            .unwrap_or(0);
        crate::cuda::require(idx)?;
        Err(PyRuntimeError::new_err(
            "CUDA tensors are not supported yet",
        ))
    }

    // ---- random fills ----
    #[pyo3(signature = (from_=0.0, to=1.0, *, generator=None))]
    fn uniform_<'py>(
        slf: PyRef<'py, Self>,
        from_: f64,
        to: f64,
        generator: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRef<'py, Self>> {
        with_generator(generator, |g| rnd::uniform_(&slf.t, from_, to, g))??;
        Ok(slf)
    }
    #[pyo3(signature = (mean=0.0, std=1.0, *, generator=None))]
    fn normal_<'py>(
        slf: PyRef<'py, Self>,
        mean: f64,
        std: f64,
        generator: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRef<'py, Self>> {
        with_generator(generator, |g| rnd::normal_(&slf.t, mean, std, g))??;
        Ok(slf)
    }
    #[pyo3(signature = (from_=None, to=None, *, generator=None))]
    fn random_<'py>(
        slf: PyRef<'py, Self>,
        from_: Option<i64>,
        to: Option<i64>,
        generator: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRef<'py, Self>> {
        // random_(to) means [0, to), as in PyTorch.
        let (lo, hi) = match (from_, to) {
            (Some(f), None) => (0, Some(f)),
            (f, t) => (f.unwrap_or(0), t),
        };
        with_generator(generator, |g| rnd::random_(&slf.t, lo, hi, g))??;
        Ok(slf)
    }
    #[pyo3(signature = (p=0.5, *, generator=None))]
    fn bernoulli_<'py>(
        slf: PyRef<'py, Self>,
        p: f64,
        generator: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRef<'py, Self>> {
        with_generator(generator, |g| rnd::bernoulli_scalar_(&slf.t, p, g))??;
        Ok(slf)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTensor>()?;
    Ok(())
}
