//! Bindings of the loss kernels `nn.functional` calls.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::maybe_detach;
use super::tensor::PyTensor;
use crate::ops::loss::{nll_loss, Reduction};

/// `nll_loss` over `(M, C)` rows and int64 targets `(M)`; `functional`
/// reshapes other layouts and checks the arguments PyTorch checks first.
#[pyfunction]
#[pyo3(signature = (input, target, weight, reduction, ignore_index))]
fn _nll_loss(
    py: Python<'_>,
    input: PyRef<'_, PyTensor>,
    target: PyRef<'_, PyTensor>,
    weight: Option<PyRef<'_, PyTensor>>,
    reduction: &str,
    ignore_index: i64,
) -> PyResult<PyTensor> {
    let reduction = match reduction {
        "none" => Reduction::None,
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        _ => {
            return Err(PyValueError::new_err(format!(
                "{reduction} is not a valid value for reduction"
            )))
        }
    };
    let (x, t) = (input.t.clone(), target.t.clone());
    let w = weight.map(|w| w.t.clone());
    Ok(maybe_detach(py, x.numel(), || {
        nll_loss(&x, &t, w.as_ref(), reduction, ignore_index)
    })?
    .into())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_nll_loss, m)?)?;
    Ok(())
}
