//! What `rtorch.save`/`rtorch.load` need from a tensor beyond its public
//! API: its whole storage as bytes, and the storage's identity (so views
//! that share a storage are written once and share it again after loading).

use pyo3::prelude::*;

use super::tensor::PyTensor;
use crate::tensor::{DType, Layout, Tensor};

#[pymethods]
impl PyTensor {
    /// A 1-D uint8 tensor over this tensor's entire storage (offset 0),
    /// sharing it: the bytes `untyped_storage()` holds.
    fn _storage_bytes(&self) -> PyResult<PyTensor> {
        let storage = self.t.storage().clone();
        let n = storage.nbytes();
        Ok(Tensor::from_parts(storage, Layout::contiguous(&[n]), DType::U8)?.into())
    }

    /// The CRC-32 (zip's) of this tensor's bytes, which must be a contiguous
    /// uint8 tensor (a storage's bytes); computed without the GIL.
    fn _crc32(&self, py: Python<'_>) -> PyResult<u32> {
        if self.t.dtype() != DType::U8 || !self.t.is_contiguous() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "_crc32 expects a contiguous uint8 tensor",
            ));
        }
        let n = self.t.numel();
        let ptr = self.t.raw_ptr() as usize;
        Ok(py.detach(|| {
            // SAFETY: a contiguous uint8 view of `n` elements, validated
            // against its storage, which `self` keeps alive.
            let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, n) };
            let mut h = crc32fast::Hasher::new();
            h.update(bytes);
            h.finalize()
        }))
    }

    /// An integer naming this tensor's storage, equal for tensors that share
    /// it and distinct among storages alive at the same time.
    fn _storage_key(&self) -> usize {
        std::sync::Arc::as_ptr(self.t.storage()) as usize
    }
}
