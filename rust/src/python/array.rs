//! Zero-copy export to NumPy through `__array_struct__` (NumPy reads the C
//! struct directly: several times cheaper than parsing `__array_interface__`).

use std::ffi::{c_char, c_int, c_void};

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;

use crate::tensor::{DType, Tensor};

/// NumPy's `PyArrayInterface`.
#[repr(C)]
pub(crate) struct ArrayInterface {
    two: c_int,
    nd: c_int,
    typekind: c_char,
    itemsize: c_int,
    flags: c_int,
    shape: *mut isize,
    strides: *mut isize,
    data: *mut c_void,
    descr: *mut ffi::PyObject,
}

/// The struct plus the shape and stride arrays it points into; `repr(C)`
/// keeps the struct first, where NumPy reads it.
#[repr(C)]
struct Export {
    iface: ArrayInterface,
    dims: Vec<isize>,
}

const ALIGNED: c_int = 0x100;
const NOTSWAPPED: c_int = 0x200;
const WRITEABLE: c_int = 0x400;

unsafe extern "C" fn free_export(capsule: *mut ffi::PyObject) {
    // SAFETY: the capsule was made by `array_struct` around a leaked
    // `Box<Export>`; Python calls this destructor once.
    unsafe {
        let p = ffi::PyCapsule_GetPointer(capsule, std::ptr::null());
        if !p.is_null() {
            drop(Box::from_raw(p as *mut Export));
        }
    }
}

/// Owns a tensor for NumPy: an array made from it keeps this object, and so
/// the tensor's storage, alive as its `base`.
#[pyclass(module = "rtorch._C", frozen)]
pub struct ArrayHolder {
    t: Tensor,
}

impl ArrayHolder {
    pub fn new(t: Tensor) -> PyResult<ArrayHolder> {
        if t.dtype() == DType::BF16 {
            return Err(PyTypeError::new_err("Got unsupported ScalarType BFloat16"));
        }
        Ok(ArrayHolder { t })
    }
}

#[pymethods]
impl ArrayHolder {
    #[getter]
    fn __array_struct__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let t = &self.t;
        let typekind = match t.dtype() {
            DType::F32 | DType::F64 | DType::F16 | DType::BF16 => b'f',
            DType::I64 | DType::I32 | DType::I16 | DType::I8 => b'i',
            DType::U8 => b'u',
            DType::Bool => b'b',
        } as c_char;
        let item = t.dtype().size() as isize;
        let nd = t.ndim();
        let mut dims: Vec<isize> = t.shape().iter().map(|&d| d as isize).collect();
        dims.extend(t.strides().iter().map(|&s| s * item));
        let mut ex = Box::new(Export {
            iface: ArrayInterface {
                two: 2,
                nd: nd as c_int,
                typekind,
                itemsize: item as c_int,
                flags: ALIGNED | NOTSWAPPED | WRITEABLE,
                shape: std::ptr::null_mut(),
                strides: std::ptr::null_mut(),
                data: t.raw_ptr() as *mut c_void,
                descr: std::ptr::null_mut(),
            },
            dims,
        });
        ex.iface.shape = ex.dims.as_mut_ptr();
        // SAFETY: `dims` holds `2 * nd` entries: shape, then strides.
        ex.iface.strides = unsafe { ex.dims.as_mut_ptr().add(nd) };
        let raw = Box::into_raw(ex);
        // SAFETY: `raw` is a valid Export whose first field is the interface
        // struct NumPy reads; the destructor frees it.
        unsafe {
            // NumPy reads the pointer of an unnamed capsule.
            let cap = ffi::PyCapsule_New(raw as *mut c_void, std::ptr::null(), Some(free_export));
            if cap.is_null() {
                drop(Box::from_raw(raw));
                return Err(PyErr::fetch(py));
            }
            Ok(Bound::from_owned_ptr(py, cap).unbind())
        }
    }
}

/// A tensor sharing the memory of an object exposing `__array_struct__`
/// (NumPy arrays), or `None` when the object has none or uses a layout this
/// fast path does not take (the caller then reads `__array_interface__`,
/// which also produces the precise errors).
pub fn import_array_struct(obj: &Bound<'_, PyAny>) -> PyResult<Option<Tensor>> {
    let Ok(cap) = obj.getattr(pyo3::intern!(obj.py(), "__array_struct__")) else {
        return Ok(None);
    };
    // SAFETY: the capsule API checks the object; a valid NumPy capsule holds
    // a PyArrayInterface whose shape/strides arrays have `nd` entries, and
    // whose data stays valid while `obj` (kept as the storage owner) lives.
    unsafe {
        if ffi::PyCapsule_CheckExact(cap.as_ptr()) == 0 {
            return Ok(None);
        }
        let p = ffi::PyCapsule_GetPointer(cap.as_ptr(), std::ptr::null()) as *const ArrayInterface;
        if p.is_null() {
            ffi::PyErr_Clear();
            return Ok(None);
        }
        let a = &*p;
        if a.two != 2 || a.flags & NOTSWAPPED == 0 || a.nd < 0 {
            return Ok(None);
        }
        let dtype = match (a.typekind as u8, a.itemsize) {
            (b'f', 4) => DType::F32,
            (b'f', 8) => DType::F64,
            (b'f', 2) => DType::F16,
            (b'i', 8) => DType::I64,
            (b'i', 4) => DType::I32,
            (b'i', 2) => DType::I16,
            (b'i', 1) => DType::I8,
            (b'u', 1) => DType::U8,
            (b'b', 1) => DType::Bool,
            _ => return Ok(None),
        };
        let nd = a.nd as usize;
        let item = a.itemsize as isize;
        let shape: Vec<usize> = (0..nd).map(|i| *a.shape.add(i) as usize).collect();
        let strides: Vec<isize> = if a.strides.is_null() {
            crate::tensor::layout::contiguous_strides(&shape).to_vec()
        } else {
            (0..nd).map(|i| *a.strides.add(i)).collect()
        };
        if strides.iter().any(|&s| s < 0 || s % item != 0) {
            return Ok(None);
        }
        let layout = crate::tensor::Layout {
            shape: shape.into(),
            strides: strides.iter().map(|&s| s / item).collect(),
            offset: 0,
        };
        let nbytes = layout.required_elems() * dtype.size();
        let owner = Box::new(super::convert::PyOwner(obj.clone().unbind()));
        let storage = crate::tensor::Storage::from_external(a.data as *mut u8, nbytes, owner);
        Ok(Some(Tensor::from_parts(
            std::sync::Arc::new(storage),
            layout,
            dtype,
        )?))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ArrayHolder>()
}
