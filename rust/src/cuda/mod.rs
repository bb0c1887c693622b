//! CUDA backend. No kernels are wired yet: every request for a CUDA tensor
//! reports that no CUDA device is available, so code written for GPUs fails
//! with a clear error instead of crashing.

use crate::error::{Error, Result};

pub fn is_available() -> bool {
    false
}

pub fn device_count() -> usize {
    0
}

/// The error for any attempt to place a tensor on a CUDA device.
pub fn unavailable() -> Error {
    Error::Runtime(
        "Found no NVIDIA driver on your system or no CUDA device is available: rtorch was asked for a CUDA tensor, but its CUDA backend has no usable device".into(),
    )
}

/// Fails unless CUDA device `index` can be used.
pub fn require(index: usize) -> Result<()> {
    if index >= device_count() {
        return Err(unavailable());
    }
    Ok(())
}
