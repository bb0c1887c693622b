//! `rtorch.dtype` and `rtorch.device` objects.

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString, PyType};

use crate::ops;
use crate::tensor::device::DeviceKind;
use crate::tensor::{DType, Device};

/// A tensor element type; the objects are singletons (`rtorch.float32 is rtorch.float`).
#[pyclass(name = "dtype", module = "rtorch", frozen)]
pub struct PyDType {
    pub dtype: DType,
}

#[pymethods]
impl PyDType {
    fn __repr__(&self) -> String {
        self.dtype.to_string()
    }
    #[getter]
    fn is_floating_point(&self) -> bool {
        self.dtype.is_floating_point()
    }
    #[getter]
    fn is_complex(&self) -> bool {
        false
    }
    #[getter]
    fn is_signed(&self) -> bool {
        self.dtype.is_signed()
    }
    #[getter]
    fn itemsize(&self) -> usize {
        self.dtype.size()
    }
    /// Pickles as a reference to the module attribute of the same name.
    fn __reduce__(&self) -> &'static str {
        self.dtype.name()
    }
}

static DTYPES: PyOnceLock<Vec<Py<PyDType>>> = PyOnceLock::new();

pub fn dtype_obj(py: Python<'_>, dtype: DType) -> PyResult<Py<PyDType>> {
    let all = DTYPES.get_or_try_init(py, || {
        DType::ALL
            .iter()
            .map(|&d| Py::new(py, PyDType { dtype: d }))
            .collect::<PyResult<Vec<_>>>()
    })?;
    let i = DType::ALL.iter().position(|&d| d == dtype).unwrap_or(0);
    Ok(all[i].clone_ref(py))
}

/// Accepts an `rtorch.dtype`, or the Python types `float`, `int`, `bool`.
pub fn extract_dtype(obj: &Bound<'_, PyAny>) -> PyResult<DType> {
    if let Ok(d) = obj.cast::<PyDType>() {
        return Ok(d.get().dtype);
    }
    if let Ok(t) = obj.cast::<PyType>() {
        if t.is(obj.py().get_type::<PyFloat>()) {
            return Ok(ops::default_dtype());
        }
        if t.is(obj.py().get_type::<PyBool>()) {
            return Ok(DType::Bool);
        }
        if t.is(obj.py().get_type::<PyInt>()) {
            return Ok(DType::I64);
        }
    }
    Err(PyTypeError::new_err(format!(
        "dtype must be rtorch.dtype, not {}",
        obj.get_type().name()?
    )))
}

pub fn opt_dtype(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<DType>> {
    match obj {
        Some(o) if !o.is_none() => Ok(Some(extract_dtype(o)?)),
        _ => Ok(None),
    }
}

/// `rtorch.device('cuda', 0)`, `rtorch.device('cuda:0')`, `rtorch.device('cpu')`.
#[pyclass(name = "device", module = "rtorch", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyDevice {
    kind: DeviceKind,
    index: Option<usize>,
}

/// What `device.__reduce__` returns: the class and its constructor arguments.
type Reduced<'py> = (Bound<'py, PyType>, (String, Option<usize>));

#[pymethods]
impl PyDevice {
    #[new]
    #[pyo3(signature = (r#type, index=None))]
    fn new(r#type: &Bound<'_, PyAny>, index: Option<i64>) -> PyResult<PyDevice> {
        if let Ok(d) = r#type.cast::<PyDevice>() {
            return Ok(d.get().clone());
        }
        if let Ok(i) = r#type.extract::<i64>() {
            if i < 0 {
                return Err(PyRuntimeError::new_err("Device index must not be negative"));
            }
            return Ok(PyDevice {
                kind: DeviceKind::Cuda,
                index: Some(i as usize),
            });
        }
        let s: String = r#type.cast::<PyString>()?.to_str()?.to_owned();
        let (kind, parsed) = Device::parse(&s)?;
        let index = match (parsed, index) {
            (Some(_), Some(_)) => {
                return Err(PyRuntimeError::new_err(format!(
                "type (string) must not include an index because index was passed explicitly: {s}"
            )))
            }
            (Some(i), None) => Some(i),
            (None, Some(i)) if i < 0 => {
                return Err(PyRuntimeError::new_err(format!(
                    "Device index must be -1 or non-negative, got {i}"
                )))
            }
            (None, Some(i)) => Some(i as usize),
            (None, None) => None,
        };
        Ok(PyDevice { kind, index })
    }
    #[getter]
    fn r#type(&self) -> &'static str {
        self.kind.name()
    }
    #[getter]
    fn index(&self) -> Option<usize> {
        self.index
    }
    fn __repr__(&self) -> String {
        match self.index {
            Some(i) => format!("device(type='{}', index={i})", self.kind.name()),
            None => format!("device(type='{}')", self.kind.name()),
        }
    }
    fn __str__(&self) -> String {
        match self.index {
            Some(i) => format!("{}:{i}", self.kind.name()),
            None => self.kind.name().to_string(),
        }
    }
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        let d = slf.get();
        Ok((slf.get_type(), (d.kind.name().to_string(), d.index)))
    }
}

impl PyDevice {
    pub fn of(device: Device) -> PyDevice {
        match device {
            Device::Cpu => PyDevice {
                kind: DeviceKind::Cpu,
                index: None,
            },
            Device::Cuda(i) => PyDevice {
                kind: DeviceKind::Cuda,
                index: Some(i),
            },
        }
    }
}

/// Resolves a `device=` argument; CUDA devices fail until a backend exists.
pub fn extract_device(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Device> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Device::Cpu);
    };
    let d = PyDevice::new(obj, None)?;
    match d.kind {
        DeviceKind::Cpu => Ok(Device::Cpu),
        DeviceKind::Cuda => {
            let i = d.index.unwrap_or(0);
            crate::cuda::require(i)?;
            Ok(Device::Cuda(i))
        }
    }
}

#[pyfunction]
fn set_default_dtype(d: &Bound<'_, PyAny>) -> PyResult<()> {
    Ok(ops::set_default_dtype(extract_dtype(d)?)?)
}

#[pyfunction]
fn get_default_dtype(py: Python<'_>) -> PyResult<Py<PyDType>> {
    dtype_obj(py, ops::default_dtype())
}

#[pyfunction]
fn promote_types(
    py: Python<'_>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
) -> PyResult<Py<PyDType>> {
    dtype_obj(py, extract_dtype(a)?.promote(extract_dtype(b)?))
}

/// `torch.result_type(tensor1, tensor2)`: the dtype an op on these operands
/// computes in (tensors or Python numbers, PyTorch's weak-scalar rules).
#[pyfunction]
fn result_type(
    py: Python<'_>,
    tensor1: &Bound<'_, PyAny>,
    tensor2: &Bound<'_, PyAny>,
) -> PyResult<Py<PyDType>> {
    let parse = |o: &Bound<'_, PyAny>| {
        super::convert::operand(o)?.ok_or_else(|| {
            PyTypeError::new_err(format!(
                "result_type(): argument must be Tensor or Number, not {}",
                super::convert::type_name(o)
            ))
        })
    };
    let (a, b) = (parse(tensor1)?, parse(tensor2)?);
    dtype_obj(py, ops::result_type(&[&a, &b]))
}

#[pyfunction]
fn can_cast(from_: &Bound<'_, PyAny>, to: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(extract_dtype(from_)?.can_cast(extract_dtype(to)?))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDType>()?;
    m.add_class::<PyDevice>()?;
    for d in DType::ALL {
        m.add(d.name(), dtype_obj(m.py(), d)?)?;
    }
    m.add_function(wrap_pyfunction!(set_default_dtype, m)?)?;
    m.add_function(wrap_pyfunction!(get_default_dtype, m)?)?;
    m.add_function(wrap_pyfunction!(promote_types, m)?)?;
    m.add_function(wrap_pyfunction!(can_cast, m)?)?;
    m.add_function(wrap_pyfunction!(result_type, m)?)?;
    Ok(())
}
