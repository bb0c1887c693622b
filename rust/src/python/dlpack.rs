//! DLPack exchange (`__dlpack__`, `rtorch.from_dlpack`): zero-copy sharing
//! with NumPy, CuPy and any other DLPack library.

use std::ffi::{c_void, CStr};
use std::sync::Arc;

use pyo3::exceptions::{PyBufferError, PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;

use super::tensor::PyTensor;
use crate::tensor::layout::Layout;
use crate::tensor::{DType, Storage, Tensor};

const NAME: &CStr = c"dltensor";
const USED_NAME: &CStr = c"used_dltensor";
const CPU: i32 = 1;

#[repr(C)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
struct DLDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DLTensor {
    data: *mut c_void,
    device: DLDevice,
    ndim: i32,
    dtype: DLDataType,
    shape: *mut i64,
    strides: *mut i64,
    byte_offset: u64,
}

#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

/// What an exported capsule owns: the tensor (keeping its storage alive)
/// and the shape/stride arrays the DLTensor points into.
#[repr(C)]
struct Export {
    managed: DLManagedTensor,
    _tensor: Tensor,
    shape: Vec<i64>,
    strides: Vec<i64>,
}

fn dl_dtype(d: DType) -> DLDataType {
    let (code, bits) = match d {
        DType::F32 => (2, 32),
        DType::F64 => (2, 64),
        DType::F16 => (2, 16),
        DType::BF16 => (4, 16),
        DType::I64 => (0, 64),
        DType::I32 => (0, 32),
        DType::I16 => (0, 16),
        DType::I8 => (0, 8),
        DType::U8 => (1, 8),
        DType::Bool => (6, 8),
    };
    DLDataType {
        code,
        bits,
        lanes: 1,
    }
}

fn from_dl_dtype(d: &DLDataType) -> Option<DType> {
    if d.lanes != 1 {
        return None;
    }
    Some(match (d.code, d.bits) {
        (2, 32) => DType::F32,
        (2, 64) => DType::F64,
        (2, 16) => DType::F16,
        (4, 16) => DType::BF16,
        (0, 64) => DType::I64,
        (0, 32) => DType::I32,
        (0, 16) => DType::I16,
        (0, 8) => DType::I8,
        (1, 8) => DType::U8,
        (6, 8) => DType::Bool,
        _ => return None,
    })
}

unsafe extern "C" fn export_deleter(m: *mut DLManagedTensor) {
    // SAFETY: `manager_ctx` is the `Box<Export>` leaked in `to_capsule`,
    // and DLPack calls the deleter exactly once.
    unsafe { drop(Box::from_raw((*m).manager_ctx as *mut Export)) };
}

unsafe extern "C" fn capsule_destructor(capsule: *mut ffi::PyObject) {
    // SAFETY: called by Python with our capsule. A consumer that took the
    // tensor renamed the capsule, making it no longer valid under NAME.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, NAME.as_ptr()) == 1 {
            let m = ffi::PyCapsule_GetPointer(capsule, NAME.as_ptr()) as *mut DLManagedTensor;
            if let Some(del) = (*m).deleter {
                del(m);
            }
        }
    }
}

/// A "dltensor" capsule viewing `t`.
pub fn to_capsule(py: Python<'_>, t: &Tensor) -> PyResult<Py<PyAny>> {
    let mut ex = Box::new(Export {
        managed: DLManagedTensor {
            dl_tensor: DLTensor {
                data: t.storage().as_ptr() as *mut c_void,
                device: DLDevice {
                    device_type: CPU,
                    device_id: 0,
                },
                ndim: t.ndim() as i32,
                dtype: dl_dtype(t.dtype()),
                shape: std::ptr::null_mut(),
                strides: std::ptr::null_mut(),
                byte_offset: (t.offset() * t.dtype().size()) as u64,
            },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(export_deleter),
        },
        _tensor: t.clone(),
        shape: t.shape().iter().map(|&d| d as i64).collect(),
        strides: t.strides().iter().map(|&s| s as i64).collect(),
    });
    ex.managed.dl_tensor.shape = ex.shape.as_mut_ptr();
    ex.managed.dl_tensor.strides = ex.strides.as_mut_ptr();
    let raw = Box::into_raw(ex);
    // SAFETY: `raw` is a valid, uniquely owned Export; `managed` is its first field.
    unsafe {
        (*raw).managed.manager_ctx = raw as *mut c_void;
        let cap = ffi::PyCapsule_New(raw as *mut c_void, NAME.as_ptr(), Some(capsule_destructor));
        if cap.is_null() {
            drop(Box::from_raw(raw));
            return Err(PyErr::fetch(py));
        }
        Ok(Bound::from_owned_ptr(py, cap).unbind())
    }
}

/// Owns an imported DLManagedTensor; dropping it calls the producer's deleter.
struct Imported(*mut DLManagedTensor);

// SAFETY: DLPack producers must accept the deleter being called from any thread.
unsafe impl Send for Imported {}
// SAFETY: the pointer is only used in Drop.
unsafe impl Sync for Imported {}

impl Drop for Imported {
    fn drop(&mut self) {
        // SAFETY: we took ownership of the managed tensor when we renamed
        // its capsule, so we call its deleter exactly once.
        unsafe {
            if let Some(del) = (*self.0).deleter {
                del(self.0);
            }
        }
    }
}

/// `rtorch.from_dlpack(obj)`: a tensor sharing memory with `obj`
/// (anything with `__dlpack__`, or a "dltensor" capsule).
#[pyfunction]
fn from_dlpack(py: Python<'_>, ext: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    if let Ok(t) = ext.cast::<PyTensor>() {
        return Ok(t.borrow().t.clone().into());
    }
    let capsule = if ext.hasattr("__dlpack__")? {
        if ext.hasattr("__dlpack_device__")? {
            let (dev, _): (i32, i32) = ext.call_method0("__dlpack_device__")?.extract()?;
            if dev != CPU {
                return Err(PyRuntimeError::new_err(format!(
                    "from_dlpack: only CPU tensors can be imported, got DLPack device type {dev}"
                )));
            }
        }
        ext.call_method0("__dlpack__")?
    } else {
        ext.clone()
    };
    let cap = capsule.as_ptr();
    // SAFETY: the capsule API checks the object's type and name itself.
    let m = unsafe {
        if ffi::PyCapsule_IsValid(cap, NAME.as_ptr()) != 1 {
            return Err(PyTypeError::new_err(
                "from_dlpack: expected an object with __dlpack__ or an unused 'dltensor' capsule",
            ));
        }
        ffi::PyCapsule_GetPointer(cap, NAME.as_ptr()) as *mut DLManagedTensor
    };
    // SAFETY: a valid "dltensor" capsule holds a live DLManagedTensor whose
    // shape/strides arrays have `ndim` entries.
    let (dtype, layout, data) = unsafe {
        let dl = &(*m).dl_tensor;
        if dl.device.device_type != CPU {
            return Err(PyRuntimeError::new_err(
                "from_dlpack: only CPU tensors can be imported",
            ));
        }
        let dtype = from_dl_dtype(&dl.dtype).ok_or_else(|| {
            PyBufferError::new_err(format!(
                "from_dlpack: unsupported DLPack dtype (code {}, bits {}, lanes {})",
                dl.dtype.code, dl.dtype.bits, dl.dtype.lanes
            ))
        })?;
        let n = dl.ndim.max(0) as usize;
        let shape: Vec<usize> = (0..n).map(|i| *dl.shape.add(i) as usize).collect();
        let strides = if dl.strides.is_null() {
            crate::tensor::layout::contiguous_strides(&shape)
        } else {
            (0..n).map(|i| *dl.strides.add(i) as isize).collect()
        };
        let data = (dl.data as *mut u8).add(dl.byte_offset as usize);
        (
            dtype,
            Layout {
                shape: shape.into(),
                strides,
                offset: 0,
            },
            data,
        )
    };
    layout.check_fits(usize::MAX, dtype.size())?;
    let nbytes = layout.required_elems() * dtype.size();
    // SAFETY: the capsule is valid; renaming marks it consumed so its
    // destructor will not free what we now own.
    unsafe {
        if ffi::PyCapsule_SetName(cap, USED_NAME.as_ptr()) != 0 {
            return Err(PyErr::fetch(py));
        }
    }
    let owner = Box::new(Imported(m));
    // SAFETY: the producer guarantees `nbytes` (the span of the layout)
    // stays valid until its deleter runs, which `owner` defers to drop.
    let storage = unsafe { Storage::from_external(data, nbytes, owner) };
    Ok(Tensor::from_parts(Arc::new(storage), layout, dtype)?.into())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(from_dlpack, m)?)?;
    Ok(())
}
