//! rtorch: PyTorch's programming model with a Rust core.
//!
//! The core (tensors, ops, kernels, random numbers) builds and tests without
//! Python; the `python` feature adds the PyO3 bindings that form `rtorch._C`.

pub mod autograd;
pub mod cpu;
pub mod cuda;
pub mod error;
pub mod ops;
pub mod random;
pub mod tensor;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
pub use tensor::{DType, Device, Scalar, Tensor};
