//! Broadcasting arithmetic: `add`, `sub`, `mul`, `div`.
//!
//! The result dtype follows `result_type`; operands of another dtype are
//! cast first (the op library issue replaces this with casting inner loops).

use crate::cpu::kernels;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::ops::{copy, default_dtype, result_type, Operand};
use crate::tensor::layout::broadcast_shapes;
use crate::tensor::{DType, Element, Scalar, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
        }
    }

    /// The dtype the op computes and returns in.
    fn compute_dtype(self, a: &Operand, b: &Operand) -> Result<DType> {
        let common = result_type(&[a, b]);
        if self == BinaryOp::Sub && common == DType::Bool {
            return Err(Error::Runtime(
                "Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or `logical_xor()` operator instead.".into(),
            ));
        }
        // True division of integers gives the default float dtype.
        Ok(if self == BinaryOp::Div && !common.is_floating_point() {
            default_dtype()
        } else {
            common
        })
    }
}

/// `op(a, b)` (with `alpha * b` for add/sub) into a new tensor.
pub fn binary(op: BinaryOp, a: &Operand, b: &Operand, alpha: Option<Scalar>) -> Result<Tensor> {
    let dtype = op.compute_dtype(a, b)?;
    check_alpha(op, alpha, dtype)?;
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    let out = Tensor::empty(&shape, dtype)?;
    run(op, &a.to_tensor(dtype)?, &b.to_tensor(dtype)?, &out, alpha)?;
    Ok(out)
}

/// `a.op_(b)`: the result must be castable back to `a`'s dtype.
pub fn binary_(op: BinaryOp, a: &Tensor, b: &Operand, alpha: Option<Scalar>) -> Result<()> {
    let aop = Operand::Tensor(a.clone());
    let dtype = op.compute_dtype(&aop, b)?;
    if !dtype.can_cast(a.dtype()) {
        return Err(Error::Runtime(format!(
            "result type {} can't be cast to the desired output type {}",
            dtype.scalar_name(),
            a.dtype().scalar_name()
        )));
    }
    check_alpha(op, alpha, dtype)?;
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    if shape.as_slice() != a.shape() {
        return Err(Error::Runtime(format!(
            "output with shape {} doesn't match the broadcast shape {}",
            crate::tensor::layout::fmt_shape(a.shape()),
            crate::tensor::layout::fmt_shape(&shape)
        )));
    }
    copy::check_no_internal_overlap(a)?;
    let bt = b.to_tensor(dtype)?;
    if dtype == a.dtype() {
        // Writing through the iterator is safe even when `b` aliases `a`:
        // each output element depends only on the same element of `b`
        // unless `b` is a shifted view, so snapshot that case.
        let bt = if bt.same_storage(a) && !bt.same_tensor(a) {
            copy::contiguous_copy(&bt)?
        } else {
            bt
        };
        run(op, a, &bt, a, alpha)?;
    } else {
        let tmp = Tensor::empty(a.shape(), dtype)?;
        run(op, &copy::cast_copy(a, dtype)?, &bt, &tmp, alpha)?;
        copy::copy_(a, &tmp)?;
    }
    a.bump_version();
    Ok(())
}

fn check_alpha(op: BinaryOp, alpha: Option<Scalar>, dtype: DType) -> Result<()> {
    if let Some(al) = alpha {
        if !matches!(op, BinaryOp::Add | BinaryOp::Sub) {
            return Err(Error::Runtime(format!("{} does not take alpha", op.name())));
        }
        if al.category() > dtype.category() {
            return Err(Error::Runtime(
                "For integral input tensors, argument alpha must not be a floating point number."
                    .into(),
            ));
        }
    }
    Ok(())
}

fn run(op: BinaryOp, a: &Tensor, b: &Tensor, out: &Tensor, alpha: Option<Scalar>) -> Result<()> {
    let sa = a.layout().broadcast_to(out.shape())?.strides;
    let sb = b.layout().broadcast_to(out.shape())?.strides;
    dispatch!(out.dtype(), T => {
        let al: T = alpha.unwrap_or(Scalar::Int(1)).to::<T>();
        arith::<T>(op, a, &sa, b, &sb, out, al);
    });
    Ok(())
}

fn arith<T: Element>(
    op: BinaryOp,
    a: &Tensor,
    sa: &[isize],
    b: &Tensor,
    sb: &[isize],
    out: &Tensor,
    alpha: T,
) {
    // f32 arithmetic done in f64 and rounded once is correctly rounded, so
    // one f64 path serves every float type; integers wrap like C++.
    if T::DTYPE.is_floating_point() {
        let al = alpha.to_f64();
        let f: fn(f64, f64, f64) -> f64 = match op {
            BinaryOp::Add => |x, y, al| x + al * y,
            BinaryOp::Sub => |x, y, al| x - al * y,
            BinaryOp::Mul => |x, y, _| x * y,
            BinaryOp::Div => |x, y, _| x / y,
        };
        kernels::map2::<T, T, T>(a, sa, b, sb, out, |x, y| {
            T::from_f64(f(x.to_f64(), y.to_f64(), al))
        });
    } else {
        let al = alpha.to_i64();
        let f: fn(i64, i64, i64) -> i64 = match op {
            BinaryOp::Add => |x, y, al| x.wrapping_add(al.wrapping_mul(y)),
            BinaryOp::Sub => |x, y, al| x.wrapping_sub(al.wrapping_mul(y)),
            BinaryOp::Mul => |x, y, _| x.wrapping_mul(y),
            // Unreachable: integer division is computed in a float dtype.
            BinaryOp::Div => |x, y, _| x.checked_div(y).unwrap_or(0),
        };
        kernels::map2::<T, T, T>(a, sa, b, sb, out, |x, y| {
            T::from_i64(f(x.to_i64(), y.to_i64(), al))
        });
    }
}
