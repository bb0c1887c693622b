//! Bindings of the elementwise ops: `Tensor` methods, operators and their
//! in-place forms, generated from one line per op.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use super::convert::{extract_scalar, operand, type_name};
use super::maybe_detach;
use super::tensor::PyTensor;
use crate::ops::binary::{binary, binary_, binary_out, BinaryOp};
use crate::ops::ternary;
use crate::ops::unary::{unary, unary_, Unary};
use crate::ops::Operand;
use crate::tensor::{Scalar, Tensor};

type R = PyResult<PyTensor>;

fn other_operand(op: &str, other: &Bound<'_, PyAny>) -> PyResult<Operand> {
    operand(other)?.ok_or_else(|| {
        PyTypeError::new_err(format!(
            "{op}(): argument 'other' (position 1) must be Tensor or Number, not {}",
            type_name(other)
        ))
    })
}

fn opt_scalar(what: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Scalar>> {
    v.filter(|v| !v.is_none())
        .map(|v| {
            extract_scalar(v)?.ok_or_else(|| {
                PyTypeError::new_err(format!("{what} must be a number, not {}", type_name(v)))
            })
        })
        .transpose()
}

/// `a op b` as a new tensor, or into `out`.
pub fn apply_binary(
    py: Python<'_>,
    op: BinaryOp,
    a: &Operand,
    b: &Operand,
    alpha: Option<Scalar>,
    out: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let n = a
        .shape()
        .iter()
        .product::<usize>()
        .max(b.shape().iter().product());
    match out.filter(|o| !o.is_none()) {
        Some(o) => {
            let t = o.cast::<PyTensor>()?.borrow().t.clone();
            maybe_detach(py, n, || binary_out(op, a, b, alpha, &t))?;
            Ok(o.clone().unbind())
        }
        None => Ok(Py::new(
            py,
            PyTensor::from(maybe_detach(py, n, || binary(op, a, b, alpha))?),
        )?
        .into_any()),
    }
}

/// A binary operator: `NotImplemented` for operands that are not numbers or tensors.
fn operator(
    py: Python<'_>,
    op: BinaryOp,
    t: &Tensor,
    other: &Bound<'_, PyAny>,
    reflected: bool,
) -> PyResult<Py<PyAny>> {
    let Some(b) = operand(other)? else {
        return Ok(py.NotImplemented());
    };
    let a = Operand::Tensor(t.clone());
    let (x, y) = if reflected { (&b, &a) } else { (&a, &b) };
    apply_binary(py, op, x, y, None, None)
}

fn inplace(
    py: Python<'_>,
    op: BinaryOp,
    t: &Tensor,
    other: &Bound<'_, PyAny>,
    alpha: Option<Scalar>,
) -> PyResult<()> {
    let b = other_operand(op.name(), other)?;
    Ok(maybe_detach(py, t.numel(), || binary_(op, t, &b, alpha))?)
}

fn run_unary(py: Python<'_>, op: Unary, t: &Tensor) -> R {
    Ok(maybe_detach(py, t.numel(), || unary(op, t))?.into())
}

fn polygamma_order(n: i64) -> PyResult<u32> {
    u32::try_from(n).map_err(|_| {
        pyo3::exceptions::PyRuntimeError::new_err(if n < 0 {
            "polygamma(n, x) does not support negative n.".to_string()
        } else {
            format!("polygamma(n, x): n = {n} is too large")
        })
    })
}

fn run_unary_<'py>(slf: PyRef<'py, PyTensor>, op: Unary) -> PyResult<PyRef<'py, PyTensor>> {
    let t = slf.t.clone();
    maybe_detach(slf.py(), t.numel(), || unary_(op, &t))?;
    Ok(slf)
}

macro_rules! unary_methods {
    ($($name:ident, $name_:ident => $op:expr;)*) => {
        #[pymethods]
        impl PyTensor {$(
            fn $name(&self, py: Python<'_>) -> R {
                run_unary(py, $op, &self.t)
            }
            fn $name_(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
                run_unary_(slf, $op)
            }
        )*}
    };
}

unary_methods! {
    abs, abs_ => Unary::Abs;
    absolute, absolute_ => Unary::Abs;
    neg, neg_ => Unary::Neg;
    negative, negative_ => Unary::Neg;
    sign, sign_ => Unary::Sign;
    sgn, sgn_ => Unary::Sign;
    exp, exp_ => Unary::Exp;
    exp2, exp2_ => Unary::Exp2;
    expm1, expm1_ => Unary::Expm1;
    log, log_ => Unary::Log;
    log2, log2_ => Unary::Log2;
    log10, log10_ => Unary::Log10;
    log1p, log1p_ => Unary::Log1p;
    sqrt, sqrt_ => Unary::Sqrt;
    rsqrt, rsqrt_ => Unary::Rsqrt;
    square, square_ => Unary::Square;
    reciprocal, reciprocal_ => Unary::Reciprocal;
    sin, sin_ => Unary::Sin;
    cos, cos_ => Unary::Cos;
    tan, tan_ => Unary::Tan;
    asin, asin_ => Unary::Asin;
    arcsin, arcsin_ => Unary::Asin;
    acos, acos_ => Unary::Acos;
    arccos, arccos_ => Unary::Acos;
    atan, atan_ => Unary::Atan;
    arctan, arctan_ => Unary::Atan;
    sinh, sinh_ => Unary::Sinh;
    cosh, cosh_ => Unary::Cosh;
    tanh, tanh_ => Unary::Tanh;
    asinh, asinh_ => Unary::Asinh;
    arcsinh, arcsinh_ => Unary::Asinh;
    acosh, acosh_ => Unary::Acosh;
    arccosh, arccosh_ => Unary::Acosh;
    atanh, atanh_ => Unary::Atanh;
    arctanh, arctanh_ => Unary::Atanh;
    sigmoid, sigmoid_ => Unary::Sigmoid;
    erf, erf_ => Unary::Erf;
    erfc, erfc_ => Unary::Erfc;
    erfinv, erfinv_ => Unary::Erfinv;
    lgamma, lgamma_ => Unary::Lgamma;
    digamma, digamma_ => Unary::Digamma;
    floor, floor_ => Unary::Floor;
    ceil, ceil_ => Unary::Ceil;
    trunc, trunc_ => Unary::Trunc;
    fix, fix_ => Unary::Trunc;
    frac, frac_ => Unary::Frac;
    relu, relu_ => Unary::Relu;
    logical_not, logical_not_ => Unary::LogicalNot;
    bitwise_not, bitwise_not_ => Unary::BitwiseNot;
}

macro_rules! predicate_methods {
    ($($name:ident => $op:expr;)*) => {
        #[pymethods]
        impl PyTensor {$(
            fn $name(&self, py: Python<'_>) -> R {
                run_unary(py, $op, &self.t)
            }
        )*}
    };
}

predicate_methods! {
    isnan => Unary::IsNan;
    isinf => Unary::IsInf;
    isfinite => Unary::IsFinite;
    isneginf => Unary::IsNegInf;
    isposinf => Unary::IsPosInf;
    signbit => Unary::Signbit;
}

macro_rules! binary_methods {
    ($($name:ident, $name_:ident => $op:expr;)*) => {
        #[pymethods]
        impl PyTensor {$(
            #[pyo3(signature = (other, *, out=None))]
            fn $name(&self, py: Python<'_>, other: &Bound<'_, PyAny>, out: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
                let b = other_operand(stringify!($name), other)?;
                apply_binary(py, $op, &Operand::Tensor(self.t.clone()), &b, None, out)
            }
            fn $name_<'py>(slf: PyRef<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<PyRef<'py, Self>> {
                inplace(slf.py(), $op, &slf.t, other, None)?;
                Ok(slf)
            }
        )*}
    };
}

binary_methods! {
    mul, mul_ => BinaryOp::Mul;
    multiply, multiply_ => BinaryOp::Mul;
    true_divide, true_divide_ => BinaryOp::Div;
    floor_divide, floor_divide_ => BinaryOp::DivFloor;
    remainder, remainder_ => BinaryOp::Remainder;
    fmod, fmod_ => BinaryOp::Fmod;
    pow, pow_ => BinaryOp::Pow;
    float_power, float_power_ => BinaryOp::FloatPower;
    atan2, atan2_ => BinaryOp::Atan2;
    arctan2, arctan2_ => BinaryOp::Atan2;
    hypot, hypot_ => BinaryOp::Hypot;
    copysign, copysign_ => BinaryOp::Copysign;
    xlogy, xlogy_ => BinaryOp::Xlogy;
    bitwise_and, bitwise_and_ => BinaryOp::BitAnd;
    bitwise_or, bitwise_or_ => BinaryOp::BitOr;
    bitwise_xor, bitwise_xor_ => BinaryOp::BitXor;
    bitwise_left_shift, bitwise_left_shift_ => BinaryOp::Shl;
    bitwise_right_shift, bitwise_right_shift_ => BinaryOp::Shr;
    logical_and, logical_and_ => BinaryOp::LogicalAnd;
    logical_or, logical_or_ => BinaryOp::LogicalOr;
    logical_xor, logical_xor_ => BinaryOp::LogicalXor;
    eq, eq_ => BinaryOp::Eq;
    ne, ne_ => BinaryOp::Ne;
    not_equal, not_equal_ => BinaryOp::Ne;
    lt, lt_ => BinaryOp::Lt;
    less, less_ => BinaryOp::Lt;
    le, le_ => BinaryOp::Le;
    less_equal, less_equal_ => BinaryOp::Le;
    gt, gt_ => BinaryOp::Gt;
    greater, greater_ => BinaryOp::Gt;
    ge, ge_ => BinaryOp::Ge;
    greater_equal, greater_equal_ => BinaryOp::Ge;
}

macro_rules! binary_functions {
    ($($name:ident => $op:expr;)*) => {
        #[pymethods]
        impl PyTensor {$(
            #[pyo3(signature = (other, *, out=None))]
            fn $name(&self, py: Python<'_>, other: &Bound<'_, PyAny>, out: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
                let b = other_operand(stringify!($name), other)?;
                apply_binary(py, $op, &Operand::Tensor(self.t.clone()), &b, None, out)
            }
        )*}
    };
}

binary_functions! {
    maximum => BinaryOp::Maximum;
    minimum => BinaryOp::Minimum;
    fmax => BinaryOp::Fmax;
    fmin => BinaryOp::Fmin;
    logaddexp => BinaryOp::LogAddExp;
    logaddexp2 => BinaryOp::LogAddExp2;
}

macro_rules! operators {
    ($($name:ident, $rname:ident, $iname:ident => $op:expr;)*) => {
        #[pymethods]
        impl PyTensor {$(
            fn $name(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                operator(py, $op, &self.t, o, false)
            }
            fn $rname(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                operator(py, $op, &self.t, o, true)
            }
            fn $iname(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<()> {
                inplace(py, $op, &self.t, o, None)
            }
        )*}
    };
}

operators! {
    __add__, __radd__, __iadd__ => BinaryOp::Add;
    __sub__, __rsub__, __isub__ => BinaryOp::Sub;
    __mul__, __rmul__, __imul__ => BinaryOp::Mul;
    __truediv__, __rtruediv__, __itruediv__ => BinaryOp::Div;
    __floordiv__, __rfloordiv__, __ifloordiv__ => BinaryOp::DivFloor;
    __mod__, __rmod__, __imod__ => BinaryOp::Remainder;
    __and__, __rand__, __iand__ => BinaryOp::BitAnd;
    __or__, __ror__, __ior__ => BinaryOp::BitOr;
    __xor__, __rxor__, __ixor__ => BinaryOp::BitXor;
    __lshift__, __rlshift__, __ilshift__ => BinaryOp::Shl;
    __rshift__, __rrshift__, __irshift__ => BinaryOp::Shr;
}

/// `rounding_mode` of `div`: None, 'trunc' or 'floor'.
fn div_op(mode: Option<&str>) -> PyResult<BinaryOp> {
    match mode {
        None => Ok(BinaryOp::Div),
        Some("trunc") => Ok(BinaryOp::DivTrunc),
        Some("floor") => Ok(BinaryOp::DivFloor),
        Some(m) => Err(PyValueError::new_err(format!(
            "div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{m}'"
        ))),
    }
}

#[pymethods]
impl PyTensor {
    #[pyo3(signature = (other, *, alpha=None, out=None))]
    fn add(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        alpha: Option<&Bound<'_, PyAny>>,
        out: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let b = other_operand("add", other)?;
        apply_binary(
            py,
            BinaryOp::Add,
            &Operand::Tensor(self.t.clone()),
            &b,
            opt_scalar("alpha", alpha)?,
            out,
        )
    }
    #[pyo3(signature = (other, *, alpha=None, out=None))]
    fn sub(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        alpha: Option<&Bound<'_, PyAny>>,
        out: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let b = other_operand("sub", other)?;
        apply_binary(
            py,
            BinaryOp::Sub,
            &Operand::Tensor(self.t.clone()),
            &b,
            opt_scalar("alpha", alpha)?,
            out,
        )
    }
    #[pyo3(signature = (other, *, alpha=None, out=None))]
    fn subtract(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        alpha: Option<&Bound<'_, PyAny>>,
        out: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.sub(py, other, alpha, out)
    }
    #[pyo3(signature = (other, *, alpha=None))]
    fn add_<'py>(
        slf: PyRef<'py, Self>,
        other: &Bound<'py, PyAny>,
        alpha: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRef<'py, Self>> {
        inplace(
            slf.py(),
            BinaryOp::Add,
            &slf.t,
            other,
            opt_scalar("alpha", alpha)?,
        )?;
        Ok(slf)
    }
    #[pyo3(signature = (other, *, alpha=None))]
    fn sub_<'py>(
        slf: PyRef<'py, Self>,
        other: &Bound<'py, PyAny>,
        alpha: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRef<'py, Self>> {
        inplace(
            slf.py(),
            BinaryOp::Sub,
            &slf.t,
            other,
            opt_scalar("alpha", alpha)?,
        )?;
        Ok(slf)
    }
    #[pyo3(signature = (other, *, rounding_mode=None, out=None))]
    fn div(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        rounding_mode: Option<&str>,
        out: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let b = other_operand("div", other)?;
        apply_binary(
            py,
            div_op(rounding_mode)?,
            &Operand::Tensor(self.t.clone()),
            &b,
            None,
            out,
        )
    }
    #[pyo3(signature = (other, *, rounding_mode=None, out=None))]
    fn divide(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        rounding_mode: Option<&str>,
        out: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.div(py, other, rounding_mode, out)
    }
    #[pyo3(signature = (other, *, rounding_mode=None))]
    fn div_<'py>(
        slf: PyRef<'py, Self>,
        other: &Bound<'py, PyAny>,
        rounding_mode: Option<&str>,
    ) -> PyResult<PyRef<'py, Self>> {
        inplace(slf.py(), div_op(rounding_mode)?, &slf.t, other, None)?;
        Ok(slf)
    }
    fn __pow__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let _ = modulo;
        operator(py, BinaryOp::Pow, &self.t, o, false)
    }
    fn __rpow__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let _ = modulo;
        operator(py, BinaryOp::Pow, &self.t, o, true)
    }
    fn __ipow__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let _ = modulo;
        inplace(py, BinaryOp::Pow, &self.t, o, None)
    }
    fn __neg__(&self, py: Python<'_>) -> R {
        run_unary(py, Unary::Neg, &self.t)
    }
    fn __abs__(&self, py: Python<'_>) -> R {
        run_unary(py, Unary::Abs, &self.t)
    }
    fn __invert__(&self, py: Python<'_>) -> R {
        run_unary(py, Unary::BitwiseNot, &self.t)
    }
    fn __pos__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
    fn __richcmp__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        op: pyo3::basic::CompareOp,
    ) -> PyResult<Py<PyAny>> {
        use pyo3::basic::CompareOp as C;
        let bop = match op {
            C::Eq => BinaryOp::Eq,
            C::Ne => BinaryOp::Ne,
            C::Lt => BinaryOp::Lt,
            C::Le => BinaryOp::Le,
            C::Gt => BinaryOp::Gt,
            C::Ge => BinaryOp::Ge,
        };
        operator(py, bop, &self.t, other, false)
    }

    #[pyo3(signature = (decimals=0))]
    fn round(&self, py: Python<'_>, decimals: i64) -> R {
        run_unary(py, Unary::Round(decimals), &self.t)
    }
    #[pyo3(signature = (decimals=0))]
    fn round_(slf: PyRef<'_, Self>, decimals: i64) -> PyResult<PyRef<'_, Self>> {
        run_unary_(slf, Unary::Round(decimals))
    }
    fn polygamma(&self, py: Python<'_>, n: i64) -> R {
        run_unary(py, Unary::Polygamma(polygamma_order(n)?), &self.t)
    }
    fn polygamma_(slf: PyRef<'_, Self>, n: i64) -> PyResult<PyRef<'_, Self>> {
        let n = polygamma_order(n)?;
        run_unary_(slf, Unary::Polygamma(n))
    }
    #[pyo3(signature = (eps=None))]
    fn logit(&self, py: Python<'_>, eps: Option<f64>) -> R {
        run_unary(py, Unary::Logit(eps), &self.t)
    }
    #[pyo3(signature = (nan=0.0, posinf=None, neginf=None))]
    fn nan_to_num(&self, py: Python<'_>, nan: f64, posinf: Option<f64>, neginf: Option<f64>) -> R {
        Ok(maybe_detach(py, self.t.numel(), || {
            crate::ops::unary::nan_to_num(&self.t, nan, posinf, neginf)
        })?
        .into())
    }
    #[pyo3(signature = (min=None, max=None))]
    fn clamp(
        &self,
        py: Python<'_>,
        min: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
    ) -> R {
        clamp_impl(py, &self.t, min, max)
    }
    #[pyo3(signature = (min=None, max=None))]
    fn clip(
        &self,
        py: Python<'_>,
        min: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
    ) -> R {
        clamp_impl(py, &self.t, min, max)
    }
    #[pyo3(signature = (min=None, max=None))]
    fn clamp_<'py>(
        slf: PyRef<'py, Self>,
        min: Option<&Bound<'py, PyAny>>,
        max: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRef<'py, Self>> {
        let scalar = |b: Option<&Bound<'py, PyAny>>| -> PyResult<Option<Option<Scalar>>> {
            match b
                .filter(|b| !b.is_none())
                .map(operand)
                .transpose()?
                .flatten()
            {
                None => Ok(Some(None)),
                Some(Operand::Scalar(s)) => Ok(Some(Some(s))),
                Some(Operand::Tensor(_)) => Ok(None),
            }
        };
        if let (Some(lo), Some(hi)) = (scalar(min)?, scalar(max)?) {
            if lo.is_some() || hi.is_some() {
                return run_unary_(slf, Unary::Clamp(lo, hi));
            }
        }
        // Tensor bounds: clamp a copy, so the derivative's saved input is
        // not the tensor being overwritten.
        let src = crate::ops::copy::clone(&slf.t)?;
        let r = clamp_impl(slf.py(), &src, min, max)?;
        crate::ops::copy::copy_(&slf.t, &r.t)?;
        Ok(slf)
    }
    fn clamp_min(&self, py: Python<'_>, min: &Bound<'_, PyAny>) -> R {
        clamp_impl(py, &self.t, Some(min), None)
    }
    fn clamp_max(&self, py: Python<'_>, max: &Bound<'_, PyAny>) -> R {
        clamp_impl(py, &self.t, None, Some(max))
    }
    fn masked_fill(&self, mask: PyRef<'_, PyTensor>, value: &Bound<'_, PyAny>) -> R {
        let out = crate::ops::copy::clone(&self.t)?;
        masked_fill_value(&out, &mask.t, value)?;
        Ok(out.into())
    }
    fn masked_fill_<'py>(
        slf: PyRef<'py, Self>,
        mask: PyRef<'py, PyTensor>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<PyRef<'py, Self>> {
        masked_fill_value(&slf.t, &mask.t, value)?;
        Ok(slf)
    }
    fn lerp(&self, end: PyRef<'_, PyTensor>, weight: &Bound<'_, PyAny>) -> R {
        let w = other_operand("lerp", weight)?;
        Ok(ternary::lerp(&self.t, &end.t, &w)?.into())
    }
    fn lerp_<'py>(
        slf: PyRef<'py, Self>,
        end: PyRef<'py, PyTensor>,
        weight: &Bound<'py, PyAny>,
    ) -> PyResult<PyRef<'py, Self>> {
        let w = other_operand("lerp", weight)?;
        let r = ternary::lerp(&slf.t, &end.t, &w)?;
        crate::ops::copy::copy_(&slf.t, &r)?;
        Ok(slf)
    }
    #[pyo3(signature = (tensor1, tensor2, *, value=None))]
    fn addcmul(
        &self,
        tensor1: PyRef<'_, PyTensor>,
        tensor2: PyRef<'_, PyTensor>,
        value: Option<&Bound<'_, PyAny>>,
    ) -> R {
        let v = opt_scalar("value", value)?.unwrap_or(Scalar::Int(1));
        Ok(ternary::addc(&self.t, &tensor1.t, &tensor2.t, v, false)?.into())
    }
    #[pyo3(signature = (tensor1, tensor2, *, value=None))]
    fn addcdiv(
        &self,
        tensor1: PyRef<'_, PyTensor>,
        tensor2: PyRef<'_, PyTensor>,
        value: Option<&Bound<'_, PyAny>>,
    ) -> R {
        let v = opt_scalar("value", value)?.unwrap_or(Scalar::Int(1));
        Ok(ternary::addc(&self.t, &tensor1.t, &tensor2.t, v, true)?.into())
    }
    #[pyo3(signature = (tensor1, tensor2, *, value=None))]
    fn addcmul_<'py>(
        slf: PyRef<'py, Self>,
        tensor1: PyRef<'py, PyTensor>,
        tensor2: PyRef<'py, PyTensor>,
        value: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRef<'py, Self>> {
        let v = opt_scalar("value", value)?.unwrap_or(Scalar::Int(1));
        let r = ternary::addc(&slf.t, &tensor1.t, &tensor2.t, v, false)?;
        crate::ops::copy::copy_(&slf.t, &r)?;
        Ok(slf)
    }
    #[pyo3(signature = (tensor1, tensor2, *, value=None))]
    fn addcdiv_<'py>(
        slf: PyRef<'py, Self>,
        tensor1: PyRef<'py, PyTensor>,
        tensor2: PyRef<'py, PyTensor>,
        value: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRef<'py, Self>> {
        let v = opt_scalar("value", value)?.unwrap_or(Scalar::Int(1));
        let r = ternary::addc(&slf.t, &tensor1.t, &tensor2.t, v, true)?;
        crate::ops::copy::copy_(&slf.t, &r)?;
        Ok(slf)
    }
    #[pyo3(signature = (other, rtol=1e-05, atol=1e-08, equal_nan=false))]
    fn isclose(&self, other: PyRef<'_, PyTensor>, rtol: f64, atol: f64, equal_nan: bool) -> R {
        Ok(ternary::isclose(&self.t, &other.t, rtol, atol, equal_nan)?.into())
    }
    #[pyo3(signature = (other, rtol=1e-05, atol=1e-08, equal_nan=false))]
    fn allclose(
        &self,
        other: PyRef<'_, PyTensor>,
        rtol: f64,
        atol: f64,
        equal_nan: bool,
    ) -> PyResult<bool> {
        Ok(ternary::all_true(&ternary::isclose(
            &self.t, &other.t, rtol, atol, equal_nan,
        )?))
    }
    fn equal(&self, other: PyRef<'_, PyTensor>) -> PyResult<bool> {
        Ok(ternary::equal(&self.t, &other.t)?)
    }
    #[pyo3(signature = (dim, dtype=None))]
    fn softmax(&self, py: Python<'_>, dim: i64, dtype: Option<&Bound<'_, PyAny>>) -> R {
        let dt = super::dtype::opt_dtype(dtype)?;
        Ok(maybe_detach(py, self.t.numel(), || {
            crate::ops::softmax::softmax(&self.t, dim, false, dt)
        })?
        .into())
    }
    #[pyo3(signature = (dim, dtype=None))]
    fn log_softmax(&self, py: Python<'_>, dim: i64, dtype: Option<&Bound<'_, PyAny>>) -> R {
        let dt = super::dtype::opt_dtype(dtype)?;
        Ok(maybe_detach(py, self.t.numel(), || {
            crate::ops::softmax::softmax(&self.t, dim, true, dt)
        })?
        .into())
    }
    /// `Tensor.where(condition, other)` = `torch.where(condition, self, other)`.
    #[pyo3(name = "where")]
    fn where_method(&self, condition: PyRef<'_, PyTensor>, other: &Bound<'_, PyAny>) -> R {
        let o = other_operand("where", other)?;
        Ok(ternary::where_(&condition.t, &Operand::Tensor(self.t.clone()), &o)?.into())
    }
}

fn masked_fill_value(t: &Tensor, mask: &Tensor, v: &Bound<'_, PyAny>) -> PyResult<()> {
    match operand(v)? {
        Some(Operand::Scalar(s)) => Ok(ternary::masked_fill_(t, mask, s)?),
        Some(Operand::Tensor(value)) => Ok(ternary::masked_fill_tensor_(t, mask, &value)?),
        None => Err(PyTypeError::new_err(format!(
            "masked_fill(): argument 'value' must be Number, not {}",
            type_name(v)
        ))),
    }
}

fn clamp_impl(
    py: Python<'_>,
    t: &Tensor,
    min: Option<&Bound<'_, PyAny>>,
    max: Option<&Bound<'_, PyAny>>,
) -> R {
    let min = min.filter(|m| !m.is_none());
    let max = max.filter(|m| !m.is_none());
    let (lo, hi) = (
        min.map(operand).transpose()?.flatten(),
        max.map(operand).transpose()?.flatten(),
    );
    match (&lo, &hi) {
        (None, None) => Err(pyo3::exceptions::PyRuntimeError::new_err(
            "torch.clamp: At least one of 'min' or 'max' must not be None",
        )),
        (Some(Operand::Tensor(_)), _) | (_, Some(Operand::Tensor(_))) => {
            Ok(ternary::clamp_tensor(t, lo.as_ref(), hi.as_ref())?.into())
        }
        _ => {
            let s = |o: &Option<Operand>| match o {
                Some(Operand::Scalar(s)) => Some(*s),
                _ => None,
            };
            run_unary(py, Unary::Clamp(s(&lo), s(&hi)), t)
        }
    }
}

/// `torch.where(condition, input, other)`; `where(condition)` is `nonzero(as_tuple=True)`.
#[pyfunction]
#[pyo3(name = "_where")]
fn where_fn(
    condition: PyRef<'_, PyTensor>,
    input: &Bound<'_, PyAny>,
    other: &Bound<'_, PyAny>,
) -> R {
    let a = other_operand("where", input)?;
    let b = other_operand("where", other)?;
    Ok(ternary::where_(&condition.t, &a, &b)?.into())
}

/// `nn.functional` activations by name, with their parameters.
#[pyfunction]
#[pyo3(signature = (input, name, p0=0.0, p1=0.0, p2=0.0, inplace=false))]
fn _activation<'py>(
    input: Bound<'py, PyTensor>,
    name: &str,
    p0: f64,
    p1: f64,
    p2: f64,
    inplace: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let op = match name {
        "relu" => Unary::Relu,
        "gelu" => Unary::Gelu,
        "gelu_tanh" => Unary::GeluTanh,
        "silu" => Unary::Silu,
        "mish" => Unary::Mish,
        "softplus" => Unary::Softplus(p0, p1),
        "elu" => Unary::Elu(p0, p1, p2),
        "leaky_relu" => Unary::LeakyRelu(p0),
        "hardtanh" => Unary::Hardtanh(p0, p1),
        "hardsigmoid" => Unary::Hardsigmoid,
        "hardswish" => Unary::Hardswish,
        "softsign" => Unary::Softsign,
        "tanhshrink" => Unary::Tanhshrink,
        "softshrink" => Unary::Softshrink(p0),
        "hardshrink" => Unary::Hardshrink(p0),
        "threshold" => Unary::Threshold(p0, p1),
        "logsigmoid" => Unary::LogSigmoid,
        "sigmoid" => Unary::Sigmoid,
        "tanh" => Unary::Tanh,
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown activation '{name}'"
            )))
        }
    };
    let t = input.borrow().t.clone();
    let py = input.py();
    if inplace {
        maybe_detach(py, t.numel(), || unary_(op, &t))?;
        Ok(input.into_any())
    } else {
        Ok(Bound::new(
            py,
            PyTensor::from(maybe_detach(py, t.numel(), || unary(op, &t))?),
        )?
        .into_any())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(where_fn, m)?)?;
    m.add_function(wrap_pyfunction!(_activation, m)?)?;
    Ok(())
}
