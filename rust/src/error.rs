//! One error type for the whole crate. Each variant maps to the exception
//! class PyTorch raises for the same mistake (see `python/error.rs`).

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    /// Generic failure PyTorch reports as `RuntimeError`.
    #[error("{0}")]
    Runtime(String),
    /// Out-of-range index or dimension (`IndexError`).
    #[error("{0}")]
    Index(String),
    /// Wrong argument type (`TypeError`).
    #[error("{0}")]
    Type(String),
    /// Well-typed but invalid value (`ValueError`).
    #[error("{0}")]
    Value(String),
    /// Feature PyTorch has but rtorch does not (yet) (`NotImplementedError`).
    #[error("{0}")]
    NotImplemented(String),
    /// A decomposition failed on its input (`torch.linalg.LinAlgError`).
    #[error("{0}")]
    LinAlg(String),
    /// A callback (a Python hook or custom backward) raised; the bindings
    /// re-raise the original exception.
    #[error("{0}")]
    Callback(String),
    /// Allocation failed (`rtorch.OutOfMemoryError`).
    #[error("{device}: not enough memory: you tried to allocate {bytes} bytes.")]
    OutOfMemory { device: String, bytes: usize },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Builds an `Error::Runtime` with `format!` syntax.
#[macro_export]
macro_rules! rt_err {
    ($($arg:tt)*) => { $crate::error::Error::Runtime(format!($($arg)*)) };
}

/// Returns early with an `Error::Runtime` when the condition is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond { return Err($crate::rt_err!($($arg)*)); }
    };
}

/// Wraps a possibly negative dimension into `0..ndim`, as PyTorch's `maybe_wrap_dim`.
pub fn wrap_dim(dim: i64, ndim: usize) -> Result<usize> {
    // A 0-d tensor accepts dim 0 and -1, as in PyTorch.
    let n = ndim.max(1) as i64;
    let d = if dim < 0 { dim + n } else { dim };
    if d < 0 || d >= n {
        return Err(Error::Index(format!(
            "Dimension out of range (expected to be in range of [{}, {}], but got {})",
            -n,
            n - 1,
            dim
        )));
    }
    Ok(d as usize)
}

/// [`wrap_dim`] for ops that need a real dim to index: a 0-d tensor has
/// none, and PyTorch says so instead of treating it as 1-d.
pub fn wrap_dim_strict(dim: i64, ndim: usize) -> Result<usize> {
    if ndim == 0 {
        return Err(Error::Index(format!(
            "Dimension specified as {dim} but tensor has no dimensions"
        )));
    }
    wrap_dim(dim, ndim)
}

/// A vector with room for `n` items, or `OutOfMemory` instead of aborting.
pub fn try_vec<T>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
        device: "DefaultCPUAllocator".into(),
        bytes: n.saturating_mul(std::mem::size_of::<T>()),
    })?;
    Ok(v)
}
