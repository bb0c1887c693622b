//! PyO3 bindings: argument parsing, conversions and error mapping. No math
//! lives here; every call goes to `crate::ops`.

mod array;
mod autograd;
mod convert;
mod dlpack;
mod dtype;
mod factory;
mod ops_conv;
mod ops_elementwise;
mod ops_linalg;
mod ops_loss;
mod ops_nn;
mod ops_optim;
mod ops_reduce;
mod ops_shape;
mod rnn;
mod serialization;
mod shared;
mod tensor;

use pyo3::create_exception;
use pyo3::exceptions::{
    PyIndexError, PyNotImplementedError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;

use crate::error::Error;

create_exception!(
    rtorch,
    OutOfMemoryError,
    PyRuntimeError,
    "Raised when an allocation fails."
);

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let msg = e.to_string();
        match e {
            Error::Runtime(_) => PyRuntimeError::new_err(msg),
            Error::Index(_) => PyIndexError::new_err(msg),
            Error::Type(_) => PyTypeError::new_err(msg),
            Error::Value(_) => PyValueError::new_err(msg),
            Error::NotImplemented(_) => PyNotImplementedError::new_err(msg),
            Error::OutOfMemory { .. } => OutOfMemoryError::new_err(msg),
            Error::LinAlg(_) => ops_linalg::LinAlgError::new_err(msg),
            Error::Callback(_) => {
                autograd::take_pending().unwrap_or_else(|| PyRuntimeError::new_err(msg))
            }
        }
    }
}

/// Runs `f` without the GIL when the work is large enough to be worth the
/// hand-off (a few microseconds), so other Python threads keep running.
pub(crate) fn maybe_detach<T: Send>(
    py: Python<'_>,
    numel: usize,
    f: impl FnOnce() -> T + Send,
) -> T {
    const DETACH_NUMEL: usize = 1 << 15;
    if numel >= DETACH_NUMEL {
        py.detach(f)
    } else {
        f()
    }
}

#[pyfunction]
fn _cuda_is_available() -> bool {
    crate::cuda::is_available()
}

#[pyfunction]
fn _cuda_device_count() -> usize {
    crate::cuda::device_count()
}

#[pyfunction]
fn get_num_threads() -> usize {
    crate::cpu::parallel::num_threads()
}

/// `torch.set_num_threads(n)`: threads used by one large op.
#[pyfunction]
fn set_num_threads(n: i64) -> PyResult<()> {
    if n <= 0 {
        return Err(PyRuntimeError::new_err(
            "set_num_threads expects a positive integer",
        ));
    }
    crate::cpu::parallel::set_num_threads(n as usize);
    Ok(())
}

#[pymodule]
#[pyo3(name = "_C")]
fn rtorch_c(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("OutOfMemoryError", m.py().get_type::<OutOfMemoryError>())?;
    m.add_function(wrap_pyfunction!(_cuda_is_available, m)?)?;
    m.add_function(wrap_pyfunction!(_cuda_device_count, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    dtype::register(m)?;
    tensor::register(m)?;
    autograd::register(m)?;
    factory::register(m)?;
    ops_conv::register(m)?;
    ops_elementwise::register(m)?;
    ops_linalg::register(m)?;
    ops_loss::register(m)?;
    ops_optim::register(m)?;
    ops_nn::register(m)?;
    ops_reduce::register(m)?;
    ops_shape::register(m)?;
    rnn::register(m)?;
    dlpack::register(m)?;
    array::register(m)?;
    shared::register(m)?;
    Ok(())
}
