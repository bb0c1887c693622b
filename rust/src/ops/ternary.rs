//! Elementwise ops of three operands (`where`, `masked_fill`, `lerp`,
//! `addcmul`, `addcdiv`) and the closeness tests built on the binary ops.

use crate::autograd::{sum_to, Recorder};
use crate::cpu::kernels;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::ops::binary::{binary, BinaryOp};
use crate::ops::unary::{unary, Unary};
use crate::ops::{copy, result_type, Operand};
use crate::tensor::dtype::Bool;
use crate::tensor::layout::broadcast_shapes;
use crate::tensor::{DType, Element, Scalar, Tensor};

fn check_mask(op: &str, mask: &Tensor) -> Result<()> {
    if mask.dtype() != DType::Bool {
        return Err(Error::Runtime(format!(
            "{op} expected condition to be a boolean tensor, but got a tensor with dtype {}",
            mask.dtype().scalar_name()
        )));
    }
    Ok(())
}

/// `torch.where(condition, input, other)`.
pub fn where_(cond: &Tensor, a: &Operand, b: &Operand) -> Result<Tensor> {
    check_mask("where", cond)?;
    let dtype = result_type(&[a, b]);
    let shape = broadcast_shapes(&broadcast_shapes(cond.shape(), a.shape())?, b.shape())?;
    let rec = if dtype.is_floating_point() {
        Recorder::new_opt("WhereBackward0", &[tensor_of(a), tensor_of(b)])
    } else {
        None
    };
    let (ta, tb) = (a.to_tensor(dtype)?, b.to_tensor(dtype)?);
    let out = Tensor::empty(&shape, dtype)?;
    let sc = cond.layout().broadcast_to(&shape)?.strides;
    let sa = ta.layout().broadcast_to(&shape)?.strides;
    let sb = tb.layout().broadcast_to(&shape)?.strides;
    dispatch!(dtype, T => {
        kernels::map3::<Bool, T, T, T>(cond, &sc, &ta, &sa, &tb, &sb, &out, |c, x, y| if c.0 != 0 { x } else { y });
    });
    if let Some(rec) = rec {
        // Each branch gets the gradient where it was chosen, summed back
        // to its own shape.
        let (c, sa, sb) = (cond.clone(), a.shape().to_vec(), b.shape().to_vec());
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None]);
            };
            let zero = Operand::Scalar(Scalar::Int(0));
            let gt = Operand::Tensor(g);
            let ga = if ctx.needs(0) {
                Some(sum_to(&where_(&c, &gt, &zero)?, &sa)?)
            } else {
                None
            };
            let gb = if ctx.needs(1) {
                Some(sum_to(&where_(&c, &zero, &gt)?, &sb)?)
            } else {
                None
            };
            Ok(vec![ga, gb])
        });
    }
    Ok(out)
}

fn tensor_of(o: &Operand) -> Option<&Tensor> {
    match o {
        Operand::Tensor(t) => Some(t),
        Operand::Scalar(_) => None,
    }
}

/// `t.masked_fill_(mask, value)` with a 0-d tensor `value`. When `value`
/// needs a gradient the fill is `where(mask, value, t)` copied back, so
/// `value` gets the sum of the gradient over the filled positions.
pub fn masked_fill_tensor_(t: &Tensor, mask: &Tensor, value: &Tensor) -> Result<()> {
    if value.ndim() != 0 {
        return Err(Error::Runtime(format!(
            "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with {} dimension(s).",
            value.ndim()
        )));
    }
    if !crate::autograd::needs_grad(&[value]) {
        return masked_fill_(t, mask, value.get_scalar(0));
    }
    check_mask_shape(t, mask)?;
    let filled = where_(
        mask,
        &Operand::Tensor(value.clone()),
        &Operand::Tensor(t.clone()),
    )?;
    copy::copy_(t, &filled)
}

fn check_mask_shape(t: &Tensor, mask: &Tensor) -> Result<()> {
    check_mask("masked_fill_", mask)?;
    let shape = broadcast_shapes(t.shape(), mask.shape())?;
    if shape.as_slice() != t.shape() {
        return Err(Error::Runtime(format!(
            "masked_fill_ only supports boolean masks broadcastable to the tensor's shape {}, got mask of shape {}",
            crate::tensor::layout::fmt_shape(t.shape()),
            crate::tensor::layout::fmt_shape(mask.shape())
        )));
    }
    Ok(())
}

/// `t.masked_fill_(mask, value)` in place.
pub fn masked_fill_(t: &Tensor, mask: &Tensor, value: Scalar) -> Result<()> {
    check_mask("masked_fill_", mask)?;
    if !value.category().le(&t.dtype().category()) && !t.dtype().is_floating_point() {
        return Err(Error::Runtime(format!(
            "value cannot be converted to type {} without overflow",
            t.dtype().name()
        )));
    }
    check_mask_shape(t, mask)?;
    copy::check_no_internal_overlap(t)?;
    let rec = if t.dtype().is_floating_point() {
        Recorder::new_inplace("MaskedFillBackward0", t, &[])?
    } else {
        None
    };
    let sm = mask.layout().broadcast_to(t.shape())?.strides;
    dispatch!(t.dtype(), T => {
        let v: T = value.to::<T>();
        kernels::map2::<T, Bool, T>(t, t.strides(), mask, &sm, t, |x, m| if m.0 != 0 { v } else { x });
    });
    t.bump_version();
    if let Some(rec) = rec {
        let m = mask.clone();
        rec.finish_inplace(t, move |_ctx, grads| {
            let g = grads.into_iter().next().flatten();
            Ok(vec![match g {
                Some(g) => Some(where_(
                    &m,
                    &Operand::Scalar(Scalar::Int(0)),
                    &Operand::Tensor(g),
                )?),
                None => None,
            }])
        })?;
    }
    Ok(())
}

/// `torch.lerp(start, end, weight) = start + weight * (end - start)`.
pub fn lerp(start: &Tensor, end: &Tensor, weight: &Operand) -> Result<Tensor> {
    if start.dtype() != end.dtype() {
        return Err(Error::Runtime(format!(
            "expected dtype {} for `end` but got dtype {}",
            start.dtype().name(),
            end.dtype().name()
        )));
    }
    let (s, e) = (Operand::Tensor(start.clone()), Operand::Tensor(end.clone()));
    let diff = Operand::Tensor(binary(BinaryOp::Sub, &e, &s, None)?);
    let step = Operand::Tensor(binary(BinaryOp::Mul, weight, &diff, None)?);
    copy::to_dtype(
        &binary(BinaryOp::Add, &s, &step, None)?,
        start.dtype(),
        false,
    )
}

/// `torch.addcmul(t, t1, t2, value)` = `t + value * t1 * t2`; `addcdiv` divides.
pub fn addc(t: &Tensor, t1: &Tensor, t2: &Tensor, value: Scalar, divide: bool) -> Result<Tensor> {
    if divide && !t1.dtype().is_floating_point() && !t2.dtype().is_floating_point() {
        return Err(Error::Runtime(
            "Integer division with addcdiv is no longer supported, and in a future release addcdiv will perform a true division of tensor1 and tensor2. The historic addcdiv behavior can be implemented as (input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype) for integer inputs and as (input + value * tensor1 / tensor2) for float inputs. The future addcdiv behavior is just the latter implementation: (input + value * tensor1 / tensor2), for all dtypes.".into(),
        ));
    }
    let op = if divide { BinaryOp::Div } else { BinaryOp::Mul };
    let prod = binary(
        op,
        &Operand::Tensor(t1.clone()),
        &Operand::Tensor(t2.clone()),
        None,
    )?;
    let scaled = binary(
        BinaryOp::Mul,
        &Operand::Tensor(prod),
        &Operand::Scalar(value),
        None,
    )?;
    binary(
        BinaryOp::Add,
        &Operand::Tensor(t.clone()),
        &Operand::Tensor(scaled),
        None,
    )
}

/// `torch.isclose`: `|a - b| <= atol + rtol * |b|`, with equal infinities
/// close and NaNs close only when `equal_nan`.
pub fn isclose(a: &Tensor, b: &Tensor, rtol: f64, atol: f64, equal_nan: bool) -> Result<Tensor> {
    if a.dtype() != b.dtype() {
        return Err(Error::Runtime(format!(
            "{} did not match {}",
            a.dtype().scalar_name(),
            b.dtype().scalar_name()
        )));
    }
    if rtol < 0.0 || atol < 0.0 {
        return Err(Error::Runtime(format!(
            "{} must be greater than or equal to zero, but got {}",
            if rtol < 0.0 { "rtol" } else { "atol" },
            if rtol < 0.0 { rtol } else { atol }
        )));
    }
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    let out = Tensor::empty(&shape, DType::Bool)?;
    let sa = a.layout().broadcast_to(&shape)?.strides;
    let sb = b.layout().broadcast_to(&shape)?.strides;
    dispatch!(a.dtype(), T => {
        kernels::map2::<T, T, Bool>(a, &sa, b, &sb, &out, |x, y| {
            let (x, y) = (x.to_f64(), y.to_f64());
            let close = x == y
                || (equal_nan && x.is_nan() && y.is_nan())
                || ((x - y).abs() <= atol + rtol * y.abs() && (x - y).is_finite());
            Bool(close as u8)
        });
    });
    Ok(out)
}

/// `torch.equal`: same shape and all elements equal.
pub fn equal(a: &Tensor, b: &Tensor) -> Result<bool> {
    if a.shape() != b.shape() {
        return Ok(false);
    }
    let eq = binary(
        BinaryOp::Eq,
        &Operand::Tensor(a.clone()),
        &Operand::Tensor(b.clone()),
        None,
    )?;
    Ok(all_true(&eq))
}

/// True when every element of a bool tensor is true.
pub fn all_true(t: &Tensor) -> bool {
    let mut all = true;
    let p = t.data_ptr::<Bool>();
    crate::cpu::iter::for_each_offset(t.shape(), t.strides(), |o| {
        // SAFETY: offsets come from the validated layout of `t`.
        all &= unsafe { (*p.offset(o)).0 != 0 };
    });
    all
}

/// `clamp` with tensor bounds: `minimum(maximum(x, min), max)`.
pub fn clamp_tensor(x: &Tensor, min: Option<&Operand>, max: Option<&Operand>) -> Result<Tensor> {
    if min.is_none() && max.is_none() {
        return Err(Error::Runtime(
            "torch.clamp: At least one of 'min' or 'max' must not be None".into(),
        ));
    }
    let rec = Recorder::new_opt(
        "ClampBackward0",
        &[Some(x), min.and_then(tensor_of), max.and_then(tensor_of)],
    );
    let mut out = Operand::Tensor(x.clone());
    if let Some(lo) = min {
        out = Operand::Tensor(binary(BinaryOp::Maximum, &out, lo, None)?);
    }
    if let Some(hi) = max {
        out = Operand::Tensor(binary(BinaryOp::Minimum, &out, hi, None)?);
    }
    let out = match out {
        Operand::Tensor(t) => t,
        Operand::Scalar(_) => unary(Unary::Relu, x)?,
    };
    if let Some(mut rec) = rec.filter(|_| out.dtype().is_floating_point()) {
        let ix = rec.save(x)?;
        let (lo, hi) = (min.cloned(), max.cloned());
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None, None]);
            };
            clamp_backward(ctx, &g, &ctx.saved(ix)?, lo.as_ref(), hi.as_ref())
        });
    }
    Ok(out)
}

/// PyTorch's `clamp_backward_min_max`: the input gets the gradient where it
/// lies within the bounds; `min` where the input is below it (and it is
/// under `max`); `max` where the input is above it or the bounds cross.
fn clamp_backward(
    ctx: &crate::autograd::Ctx<'_>,
    g: &Tensor,
    x: &Tensor,
    lo: Option<&Operand>,
    hi: Option<&Operand>,
) -> Result<Vec<Option<Tensor>>> {
    use BinaryOp::{Ge, Gt, Le, LogicalAnd, LogicalOr, Lt};
    let xo = Operand::Tensor(x.clone());
    let cmp = |op, a: &Operand, b: &Operand| binary(op, a, b, None);
    let both =
        |op, a: Tensor, b: Tensor| binary(op, &Operand::Tensor(a), &Operand::Tensor(b), None);
    let pick = |mask: Tensor, shape: &[usize]| -> Result<Tensor> {
        sum_to(
            &where_(
                &mask,
                &Operand::Tensor(g.clone()),
                &Operand::Scalar(Scalar::Int(0)),
            )?,
            shape,
        )
    };
    let gx = if ctx.needs(0) {
        let mask = match (lo, hi) {
            (Some(l), Some(h)) => both(LogicalAnd, cmp(Ge, &xo, l)?, cmp(Le, &xo, h)?)?,
            (Some(l), None) => cmp(Ge, &xo, l)?,
            (None, Some(h)) => cmp(Le, &xo, h)?,
            (None, None) => return Ok(vec![Some(g.clone()), None, None]),
        };
        Some(pick(mask, x.shape())?)
    } else {
        None
    };
    let glo = match lo {
        Some(l) if ctx.needs(1) => {
            let below = cmp(Lt, &xo, l)?;
            let mask = match hi {
                Some(h) => both(LogicalAnd, below, cmp(Lt, l, h)?)?,
                None => below,
            };
            Some(pick(mask, l.shape())?)
        }
        _ => None,
    };
    let ghi = match hi {
        Some(h) if ctx.needs(2) => {
            let above = cmp(Gt, &xo, h)?;
            let mask = match lo {
                Some(l) => both(LogicalOr, above, cmp(Lt, h, l)?)?,
                None => above,
            };
            Some(pick(mask, h.shape())?)
        }
        _ => None,
    };
    Ok(vec![gx, glo, ghi])
}
