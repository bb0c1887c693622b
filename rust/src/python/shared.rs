//! Shared-memory bindings: `Tensor.share_memory_`, `is_shared`, `resize_`
//! and the handle functions `rtorch.multiprocessing.reductions` builds on.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::convert::{int_list, parse_size};
use super::dtype::extract_dtype;
use super::tensor::PyTensor;
use crate::tensor::layout::{checked_numel, dims_from_i64};
use crate::tensor::{shm, Layout, Storage, Tensor};

#[pymethods]
impl PyTensor {
    /// Moves the storage into shared memory in place (no-op when shared).
    fn share_memory_(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        let storage = slf.t.storage().clone();
        slf.py().detach(|| storage.share_memory())?;
        Ok(slf)
    }

    fn is_shared(&self) -> bool {
        self.t.storage().is_shared()
    }

    /// `(fd, storage_nbytes, (st_dev, st_ino))` of the shared storage, moving
    /// it to shared memory first. The descriptor stays owned by the storage.
    fn _share_fd_cpu_(&self, py: Python<'_>) -> PyResult<(i32, usize, (u64, u64))> {
        let storage = self.t.storage().clone();
        py.detach(|| storage.share_memory())?;
        let (fd, key) = storage
            .shared_handle()
            .ok_or_else(|| PyRuntimeError::new_err("storage is not shared"))?;
        Ok((fd, storage.nbytes(), key))
    }

    /// Resizes in place to a contiguous tensor of `sizes`, keeping the
    /// storage offset and the leading data. Growing replaces the storage of
    /// this tensor only (other views keep the old one); shared and borrowed
    /// (NumPy, DLPack) storages cannot grow.
    #[pyo3(signature = (*sizes, memory_format=None))]
    fn resize_<'py>(
        mut slf: PyRefMut<'py, Self>,
        sizes: &Bound<'py, PyTuple>,
        memory_format: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let _ = memory_format;
        if slf.t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "cannot resize variables that require grad",
            ));
        }
        let shape = dims_from_i64(&parse_size("resize_", sizes)?)?;
        let itemsize = slf.t.dtype().size();
        let offset = slf.t.offset();
        let need = checked_numel(&shape)?
            .checked_add(offset)
            .and_then(|n| n.checked_mul(itemsize))
            .ok_or_else(|| PyRuntimeError::new_err("resize_: size is too large"))?;
        let old = slf.t.storage().clone();
        let storage = if need <= old.nbytes() {
            old
        } else if !old.resizable() {
            return Err(PyRuntimeError::new_err(
                "Trying to resize storage that is not resizable",
            ));
        } else {
            let grown = Storage::new_uninit(need)?;
            // SAFETY: `grown` holds `need > old.nbytes()` bytes, `old` holds
            // `old.nbytes()`; they are distinct allocations.
            unsafe { std::ptr::copy_nonoverlapping(old.as_ptr(), grown.as_ptr(), old.nbytes()) };
            Arc::new(grown)
        };
        let layout = Layout {
            offset,
            ..Layout::contiguous(&shape)
        };
        slf.t = Tensor::from_parts(storage, layout, slf.t.dtype())?;
        Ok(slf)
    }
}

/// Rebuilds a tensor over a shared segment received as descriptor `fd`
/// (duplicated here; the caller keeps and closes its own). A segment that
/// is already mapped in this process gives back the same storage.
#[pyfunction]
fn _new_shared_fd_tensor(
    fd: i32,
    nbytes: usize,
    dtype: &Bound<'_, PyAny>,
    size: &Bound<'_, PyAny>,
    stride: &Bound<'_, PyAny>,
    offset: usize,
) -> PyResult<PyTensor> {
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd`; an invalid one fails (EBADF).
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(PyValueError::new_err(format!(
            "invalid file descriptor {fd}: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: `dup` is a descriptor just created for us alone.
    let owned = unsafe { OwnedFd::from_raw_fd(dup) };
    let storage = Storage::from_shared_fd(owned, nbytes)?;
    let shape = dims_from_i64(&int_list("size", size)?)?;
    let strides = int_list("stride", stride)?
        .into_iter()
        .map(|s| s as isize)
        .collect::<crate::tensor::Strides>();
    if strides.len() != shape.len() {
        return Err(PyValueError::new_err(format!(
            "size has {} dimensions but stride has {}",
            shape.len(),
            strides.len()
        )));
    }
    let layout = Layout {
        shape,
        strides,
        offset,
    };
    Ok(Tensor::from_parts(storage, layout, extract_dtype(dtype)?)?.into())
}

/// An uninitialised (zero-filled) contiguous tensor in shared memory.
#[pyfunction]
fn _empty_shared(size: &Bound<'_, PyAny>, dtype: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    let shape = dims_from_i64(&int_list("size", size)?)?;
    let dtype = extract_dtype(dtype)?;
    let nbytes = checked_numel(&shape)?
        .checked_mul(dtype.size())
        .ok_or_else(|| PyRuntimeError::new_err("_empty_shared: size is too large"))?;
    let storage = Storage::new_shared(nbytes)?;
    Ok(Tensor::from_parts(storage, Layout::contiguous(&shape), dtype)?.into())
}

/// How many received or shared storages are alive in this process.
#[pyfunction]
fn _shared_cache_live_count() -> usize {
    shm::cached_count()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_new_shared_fd_tensor, m)?)?;
    m.add_function(wrap_pyfunction!(_shared_cache_live_count, m)?)?;
    m.add_function(wrap_pyfunction!(_empty_shared, m)?)?;
    Ok(())
}
