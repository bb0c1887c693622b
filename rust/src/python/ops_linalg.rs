//! Bindings of the linear-algebra ops: `Tensor` matrix-product methods and
//! the `_C._linalg_*` functions behind `rtorch.linalg`.

use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::convert::{extract_scalar, type_name};
use super::maybe_detach;
use super::tensor::PyTensor;
use crate::ops::linalg as la;
use crate::tensor::{Scalar, Tensor};

create_exception!(
    rtorch,
    LinAlgError,
    PyRuntimeError,
    "Raised when a linear-algebra function fails on its input (a singular or non positive-definite matrix)."
);

type R = PyResult<PyTensor>;

fn coef(name: &str, v: &Bound<'_, PyAny>) -> PyResult<Scalar> {
    extract_scalar(v)?.ok_or_else(|| {
        PyTypeError::new_err(format!("{name} must be a Number, not {}", type_name(v)))
    })
}

fn run(py: Python<'_>, work: usize, f: impl FnOnce() -> crate::error::Result<Tensor> + Send) -> R {
    Ok(maybe_detach(py, work, f)?.into())
}

#[pymethods]
impl PyTensor {
    fn matmul(&self, py: Python<'_>, other: PyRef<'_, PyTensor>) -> R {
        let (a, b) = (self.t.clone(), other.t.clone());
        run(py, a.numel().max(b.numel()), || la::matmul(&a, &b))
    }
    fn __matmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Ok(o) = other.cast::<PyTensor>() else {
            return Ok(py.NotImplemented());
        };
        let (a, b) = (self.t.clone(), o.borrow().t.clone());
        Ok(Py::new(
            py,
            run(py, a.numel().max(b.numel()), || la::matmul(&a, &b))?,
        )?
        .into_any())
    }
    fn __rmatmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Ok(o) = other.cast::<PyTensor>() else {
            return Ok(py.NotImplemented());
        };
        let (a, b) = (o.borrow().t.clone(), self.t.clone());
        Ok(Py::new(
            py,
            run(py, a.numel().max(b.numel()), || la::matmul(&a, &b))?,
        )?
        .into_any())
    }
    fn mm(&self, py: Python<'_>, mat2: PyRef<'_, PyTensor>) -> R {
        let (a, b) = (self.t.clone(), mat2.t.clone());
        run(py, a.numel().max(b.numel()), || la::mm(&a, &b))
    }
    fn bmm(&self, py: Python<'_>, mat2: PyRef<'_, PyTensor>) -> R {
        let (a, b) = (self.t.clone(), mat2.t.clone());
        run(py, a.numel().max(b.numel()), || la::bmm(&a, &b))
    }
    fn mv(&self, py: Python<'_>, vec: PyRef<'_, PyTensor>) -> R {
        let (a, b) = (self.t.clone(), vec.t.clone());
        run(py, a.numel(), || la::mv(&a, &b))
    }
    fn dot(&self, py: Python<'_>, other: PyRef<'_, PyTensor>) -> R {
        let (a, b) = (self.t.clone(), other.t.clone());
        run(py, a.numel(), || la::dot(&a, &b))
    }
    fn vdot(&self, py: Python<'_>, other: PyRef<'_, PyTensor>) -> R {
        let (a, b) = (self.t.clone(), other.t.clone());
        run(py, a.numel(), || la::vdot(&a, &b))
    }
    #[pyo3(signature = (mat1, mat2, *, beta=None, alpha=None))]
    fn addmm(
        &self,
        py: Python<'_>,
        mat1: PyRef<'_, PyTensor>,
        mat2: PyRef<'_, PyTensor>,
        beta: Option<&Bound<'_, PyAny>>,
        alpha: Option<&Bound<'_, PyAny>>,
    ) -> R {
        let (b, a) = coefs(beta, alpha)?;
        let (i, x, y) = (self.t.clone(), mat1.t.clone(), mat2.t.clone());
        run(py, x.numel().max(y.numel()), || la::addmm(&i, &x, &y, b, a))
    }
    #[pyo3(signature = (mat1, mat2, *, beta=None, alpha=None, use_gelu=false))]
    fn _addmm_activation(
        &self,
        py: Python<'_>,
        mat1: PyRef<'_, PyTensor>,
        mat2: PyRef<'_, PyTensor>,
        beta: Option<&Bound<'_, PyAny>>,
        alpha: Option<&Bound<'_, PyAny>>,
        use_gelu: bool,
    ) -> R {
        let (b, a) = coefs(beta, alpha)?;
        let (i, x, y) = (self.t.clone(), mat1.t.clone(), mat2.t.clone());
        run(py, x.numel().max(y.numel()), || {
            la::addmm_activation(&i, &x, &y, b, a, use_gelu)
        })
    }
    #[pyo3(signature = (mat, vec, *, beta=None, alpha=None))]
    fn addmv(
        &self,
        py: Python<'_>,
        mat: PyRef<'_, PyTensor>,
        vec: PyRef<'_, PyTensor>,
        beta: Option<&Bound<'_, PyAny>>,
        alpha: Option<&Bound<'_, PyAny>>,
    ) -> R {
        let (b, a) = coefs(beta, alpha)?;
        let (i, x, y) = (self.t.clone(), mat.t.clone(), vec.t.clone());
        run(py, x.numel(), || la::addmv(&i, &x, &y, b, a))
    }
    #[pyo3(signature = (batch1, batch2, *, beta=None, alpha=None))]
    fn baddbmm(
        &self,
        py: Python<'_>,
        batch1: PyRef<'_, PyTensor>,
        batch2: PyRef<'_, PyTensor>,
        beta: Option<&Bound<'_, PyAny>>,
        alpha: Option<&Bound<'_, PyAny>>,
    ) -> R {
        let (b, a) = coefs(beta, alpha)?;
        let (i, x, y) = (self.t.clone(), batch1.t.clone(), batch2.t.clone());
        run(py, x.numel().max(y.numel()), || {
            la::baddbmm(&i, &x, &y, b, a)
        })
    }
    #[pyo3(signature = (batch1, batch2, *, beta=None, alpha=None))]
    fn addbmm(
        &self,
        py: Python<'_>,
        batch1: PyRef<'_, PyTensor>,
        batch2: PyRef<'_, PyTensor>,
        beta: Option<&Bound<'_, PyAny>>,
        alpha: Option<&Bound<'_, PyAny>>,
    ) -> R {
        let (b, a) = coefs(beta, alpha)?;
        let (i, x, y) = (self.t.clone(), batch1.t.clone(), batch2.t.clone());
        run(py, x.numel().max(y.numel()), || {
            la::addbmm(&i, &x, &y, b, a)
        })
    }
}

fn coefs(
    beta: Option<&Bound<'_, PyAny>>,
    alpha: Option<&Bound<'_, PyAny>>,
) -> PyResult<(Scalar, Scalar)> {
    let one = Scalar::Int(1);
    Ok((
        beta.map(|b| coef("beta", b)).transpose()?.unwrap_or(one),
        alpha.map(|a| coef("alpha", a)).transpose()?.unwrap_or(one),
    ))
}

fn pt(t: Tensor) -> PyTensor {
    t.into()
}

#[pyfunction]
fn _linalg_inv(py: Python<'_>, a: PyRef<'_, PyTensor>) -> R {
    let a = a.t.clone();
    run(py, a.numel(), || la::inv(&a))
}

#[pyfunction]
fn _linalg_det(py: Python<'_>, a: PyRef<'_, PyTensor>) -> R {
    let a = a.t.clone();
    run(py, a.numel(), || la::det(&a))
}

#[pyfunction]
fn _linalg_slogdet(py: Python<'_>, a: PyRef<'_, PyTensor>) -> PyResult<(PyTensor, PyTensor)> {
    let a = a.t.clone();
    let (s, l) = maybe_detach(py, a.numel(), || la::slogdet(&a))?;
    Ok((pt(s), pt(l)))
}

#[pyfunction]
#[pyo3(signature = (a, b, left=true))]
fn _linalg_solve(py: Python<'_>, a: PyRef<'_, PyTensor>, b: PyRef<'_, PyTensor>, left: bool) -> R {
    let (a, b) = (a.t.clone(), b.t.clone());
    run(py, a.numel(), || la::solve(&a, &b, left))
}

#[pyfunction]
#[pyo3(signature = (a, upper=false))]
fn _linalg_cholesky(py: Python<'_>, a: PyRef<'_, PyTensor>, upper: bool) -> R {
    let a = a.t.clone();
    run(py, a.numel(), || la::cholesky(&a, upper))
}

#[pyfunction]
fn _linalg_qr(
    py: Python<'_>,
    a: PyRef<'_, PyTensor>,
    mode: &str,
) -> PyResult<(PyTensor, PyTensor)> {
    let a = a.t.clone();
    let (q, r) = maybe_detach(py, a.numel(), || la::qr(&a, mode))?;
    Ok((pt(q), pt(r)))
}

#[pyfunction]
fn _linalg_svd(
    py: Python<'_>,
    a: PyRef<'_, PyTensor>,
    full_matrices: bool,
) -> PyResult<(PyTensor, PyTensor, PyTensor)> {
    let a = a.t.clone();
    let (u, s, vh) = maybe_detach(py, a.numel(), || la::svd(&a, full_matrices))?;
    Ok((pt(u), pt(s), pt(vh)))
}

#[pyfunction]
fn _linalg_svdvals(py: Python<'_>, a: PyRef<'_, PyTensor>) -> R {
    let a = a.t.clone();
    run(py, a.numel(), || la::svdvals(&a))
}

#[pyfunction]
fn _linalg_eigh(
    py: Python<'_>,
    a: PyRef<'_, PyTensor>,
    uplo: &str,
) -> PyResult<(PyTensor, PyTensor)> {
    let a = a.t.clone();
    let (w, v) = maybe_detach(py, a.numel(), || la::eigh(&a, uplo))?;
    Ok((pt(w), pt(v)))
}

#[pyfunction]
fn _linalg_eigvalsh(py: Python<'_>, a: PyRef<'_, PyTensor>, uplo: &str) -> R {
    let a = a.t.clone();
    run(py, a.numel(), || la::eigvalsh(&a, uplo))
}

#[pyfunction]
#[pyo3(signature = (a, b, rcond=None, driver=None))]
fn _linalg_lstsq(
    py: Python<'_>,
    a: PyRef<'_, PyTensor>,
    b: PyRef<'_, PyTensor>,
    rcond: Option<f64>,
    driver: Option<String>,
) -> PyResult<(PyTensor, PyTensor, PyTensor, PyTensor)> {
    let (a, b) = (a.t.clone(), b.t.clone());
    let (x, res, rank, sv) = maybe_detach(py, a.numel(), || {
        la::lstsq(&a, &b, rcond, driver.as_deref())
    })?;
    Ok((pt(x), pt(res), pt(rank), pt(sv)))
}

#[pyfunction]
#[pyo3(signature = (a, atol=None, rtol=None, hermitian=false))]
fn _linalg_pinv(
    py: Python<'_>,
    a: PyRef<'_, PyTensor>,
    atol: Option<f64>,
    rtol: Option<f64>,
    hermitian: bool,
) -> R {
    let a = a.t.clone();
    run(py, a.numel(), || la::pinv(&a, atol, rtol, hermitian))
}

#[pyfunction]
#[pyo3(signature = (a, atol=None, rtol=None, hermitian=false))]
fn _linalg_matrix_rank(
    py: Python<'_>,
    a: PyRef<'_, PyTensor>,
    atol: Option<f64>,
    rtol: Option<f64>,
    hermitian: bool,
) -> R {
    let a = a.t.clone();
    run(py, a.numel(), || la::matrix_rank(&a, atol, rtol, hermitian))
}

#[pyfunction]
fn _linalg_matrix_norm(
    py: Python<'_>,
    a: PyRef<'_, PyTensor>,
    ord: &Bound<'_, PyAny>,
    dim: (i64, i64),
    keepdim: bool,
) -> R {
    let ord = if let Ok(s) = ord.cast::<PyString>() {
        match s.to_str()? {
            "fro" => la::MatrixOrd::Fro,
            "nuc" => la::MatrixOrd::Nuc,
            other => {
                return Err(PyRuntimeError::new_err(format!(
                    "linalg.matrix_norm: Order {other} not supported."
                )))
            }
        }
    } else {
        la::MatrixOrd::Num(ord.extract::<f64>()?)
    };
    let a = a.t.clone();
    run(py, a.numel(), || {
        la::matrix_norm(&a, ord, [dim.0, dim.1], keepdim)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("LinAlgError", m.py().get_type::<LinAlgError>())?;
    m.add_function(wrap_pyfunction!(_linalg_inv, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_det, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_slogdet, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_solve, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_cholesky, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_qr, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_svd, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_svdvals, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_eigh, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_eigvalsh, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_lstsq, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_pinv, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_matrix_rank, m)?)?;
    m.add_function(wrap_pyfunction!(_linalg_matrix_norm, m)?)?;
    Ok(())
}
