//! Elementwise functions of two operands with broadcasting: arithmetic,
//! comparisons, logical and bitwise ops. Each op is one `BinaryOp` variant:
//! its dtype rule (`kind`), its float rule (`eval`), its integer rule
//! (`eval_int`), and for the hottest float32 ops a vectorised kernel.
//!
//! The result dtype follows `result_type`; operands of another dtype are
//! cast to it first.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::autograd::{Ctx, Recorder};
use crate::cpu::{kernels, parallel};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::ops::{copy, default_dtype, result_type, Operand};
use crate::tensor::dtype::Bool;
use crate::tensor::layout::{broadcast_shapes, fmt_shape};
use crate::tensor::{DType, Element, Scalar, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    DivTrunc,
    DivFloor,
    Remainder,
    Fmod,
    Pow,
    FloatPower,
    Atan2,
    Maximum,
    Minimum,
    Fmax,
    Fmin,
    Hypot,
    LogAddExp,
    LogAddExp2,
    Copysign,
    Xlogy,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
    LogicalAnd,
    LogicalOr,
    LogicalXor,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

use BinaryOp::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Computes and returns the common dtype.
    Arith,
    /// Integers compute in the default float dtype (`/`, `atan2`).
    Float,
    /// Integer and bool operands only.
    Bitwise,
    /// Compares in the common dtype, returns bool.
    Compare,
    /// Truthiness of each operand, returns bool.
    Logical,
}

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            Add => "add",
            Sub => "sub",
            Mul => "mul",
            Div => "div",
            DivTrunc => "div",
            DivFloor => "floor_divide",
            Remainder => "remainder",
            Fmod => "fmod",
            Pow => "pow",
            FloatPower => "float_power",
            Atan2 => "atan2",
            Maximum => "maximum",
            Minimum => "minimum",
            Fmax => "fmax",
            Fmin => "fmin",
            Hypot => "hypot",
            LogAddExp => "logaddexp",
            LogAddExp2 => "logaddexp2",
            Copysign => "copysign",
            Xlogy => "xlogy",
            BitAnd => "bitwise_and",
            BitOr => "bitwise_or",
            BitXor => "bitwise_xor",
            Shl => "bitwise_left_shift",
            Shr => "bitwise_right_shift",
            LogicalAnd => "logical_and",
            LogicalOr => "logical_or",
            LogicalXor => "logical_xor",
            Eq => "eq",
            Ne => "ne",
            Lt => "lt",
            Le => "le",
            Gt => "gt",
            Ge => "ge",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Div | Atan2 | Hypot | LogAddExp | LogAddExp2 | Copysign | Xlogy => Kind::Float,
            BitAnd | BitOr | BitXor | Shl | Shr => Kind::Bitwise,
            Eq | Ne | Lt | Le | Gt | Ge => Kind::Compare,
            LogicalAnd | LogicalOr | LogicalXor => Kind::Logical,
            _ => Kind::Arith,
        }
    }

    /// (dtype the operands are cast to, dtype of the result).
    fn dtypes(self, a: &Operand, b: &Operand) -> Result<(DType, DType)> {
        let common = result_type(&[a, b]);
        if self == Sub && common == DType::Bool {
            return Err(Error::Runtime(
                "Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or `logical_xor()` operator instead.".into(),
            ));
        }
        let float = if common.is_floating_point() {
            common
        } else {
            default_dtype()
        };
        Ok(match self.kind() {
            Kind::Float => (float, float),
            Kind::Compare => (common, DType::Bool),
            Kind::Logical => (common, DType::Bool),
            Kind::Bitwise if common.is_floating_point() => {
                return Err(Error::Runtime(format!(
                    "\"{}_cpu\" not implemented for '{}'",
                    self.name(),
                    common.scalar_name()
                )));
            }
            _ if self == FloatPower => (DType::F64, DType::F64),
            _ => (common, common),
        })
    }

    /// The op on floats.
    fn eval(self, x: f64, y: f64) -> f64 {
        match self {
            Add => x + y,
            Sub => x - y,
            Mul => x * y,
            Div => x / y,
            DivTrunc => (x / y).trunc(),
            DivFloor => floor_div(x, y),
            Remainder => {
                let r = x % y;
                if r != 0.0 && (r < 0.0) != (y < 0.0) {
                    r + y
                } else {
                    r
                }
            }
            Fmod => x % y,
            Pow | FloatPower => x.powf(y),
            Atan2 => x.atan2(y),
            Maximum => {
                if x.is_nan() || y.is_nan() {
                    f64::NAN
                } else {
                    x.max(y)
                }
            }
            Minimum => {
                if x.is_nan() || y.is_nan() {
                    f64::NAN
                } else {
                    x.min(y)
                }
            }
            Fmax => x.max(y),
            Fmin => x.min(y),
            Hypot => x.hypot(y),
            LogAddExp => {
                let m = x.max(y);
                if m == f64::NEG_INFINITY || m == f64::INFINITY && x == y {
                    m
                } else {
                    m + (-(x - y).abs()).exp().ln_1p()
                }
            }
            LogAddExp2 => {
                let m = x.max(y);
                if m.is_infinite() && x == y {
                    m
                } else {
                    m + (-(x - y).abs()).exp2().ln_1p() / std::f64::consts::LN_2
                }
            }
            Copysign => x.copysign(y),
            Xlogy => {
                if y.is_nan() {
                    f64::NAN
                } else if x == 0.0 {
                    0.0
                } else {
                    x * y.ln()
                }
            }
            Eq => (x == y) as u8 as f64,
            Ne => (x != y) as u8 as f64,
            Lt => (x < y) as u8 as f64,
            Le => (x <= y) as u8 as f64,
            Gt => (x > y) as u8 as f64,
            Ge => (x >= y) as u8 as f64,
            LogicalAnd => (x != 0.0 && y != 0.0) as u8 as f64,
            LogicalOr => (x != 0.0 || y != 0.0) as u8 as f64,
            LogicalXor => ((x != 0.0) != (y != 0.0)) as u8 as f64,
            BitAnd | BitOr | BitXor | Shl | Shr => self.eval_int(x as i64, y as i64) as f64,
        }
    }

    /// The op on integers (wrapping like C++). Division by zero sets `zero_div`.
    fn eval_int(self, x: i64, y: i64) -> i64 {
        match self {
            Add => x.wrapping_add(y),
            Sub => x.wrapping_sub(y),
            Mul => x.wrapping_mul(y),
            DivTrunc => x
                .checked_div(y)
                .unwrap_or_else(|| zero_div(x.wrapping_neg())),
            DivFloor => {
                if y == 0 {
                    return zero_div(0);
                }
                let q = x.wrapping_div(y);
                if (x % y != 0) && ((x < 0) != (y < 0)) {
                    q - 1
                } else {
                    q
                }
            }
            Remainder => {
                if y == 0 {
                    return zero_div(0);
                }
                let r = x.wrapping_rem(y);
                if r != 0 && ((r < 0) != (y < 0)) {
                    r + y
                } else {
                    r
                }
            }
            Fmod => {
                if y == 0 {
                    return zero_div(0);
                }
                x.wrapping_rem(y)
            }
            Pow => int_pow(x, y),
            Maximum | Fmax => x.max(y),
            Minimum | Fmin => x.min(y),
            BitAnd => x & y,
            BitOr => x | y,
            BitXor => x ^ y,
            Shl => {
                if (0..64).contains(&y) {
                    x.wrapping_shl(y as u32)
                } else {
                    0
                }
            }
            Shr => {
                if (0..64).contains(&y) {
                    x >> y
                } else if x < 0 {
                    -1
                } else {
                    0
                }
            }
            Eq => (x == y) as i64,
            Ne => (x != y) as i64,
            Lt => (x < y) as i64,
            Le => (x <= y) as i64,
            Gt => (x > y) as i64,
            Ge => (x >= y) as i64,
            LogicalAnd => (x != 0 && y != 0) as i64,
            LogicalOr => (x != 0 || y != 0) as i64,
            LogicalXor => ((x != 0) != (y != 0)) as i64,
            // Float-kind ops never reach the integer path.
            _ => self.eval(x as f64, y as f64) as i64,
        }
    }
}

fn floor_div(x: f64, y: f64) -> f64 {
    if y == 0.0 {
        return x / y;
    }
    let m = x % y;
    let mut d = (x - m) / y;
    if m != 0.0 && ((y < 0.0) != (m < 0.0)) {
        d -= 1.0;
    }
    if d != 0.0 {
        let f = d.floor();
        if d - f > 0.5 {
            f + 1.0
        } else {
            f
        }
    } else {
        0.0f64.copysign(x / y)
    }
}

thread_local! {
    static ZERO_DIV: AtomicBool = const { AtomicBool::new(false) };
}

fn zero_div(v: i64) -> i64 {
    ZERO_DIV.with(|z| z.store(true, Ordering::Relaxed));
    v
}

fn int_pow(base: i64, exp: i64) -> i64 {
    if exp < 0 {
        return match base {
            1 => 1,
            -1 => {
                if exp % 2 == 0 {
                    1
                } else {
                    -1
                }
            }
            _ => 0,
        };
    }
    let (mut acc, mut b, mut e) = (1i64, base, exp as u64);
    while e > 0 {
        if e & 1 == 1 {
            acc = acc.wrapping_mul(b);
        }
        b = b.wrapping_mul(b);
        e >>= 1;
    }
    acc
}

// ---- derivatives ----

impl BinaryOp {
    fn differentiable(self) -> bool {
        matches!(self.kind(), Kind::Arith | Kind::Float)
    }

    /// Which of (a, b, result) the derivative reads, given which inputs
    /// need a gradient.
    fn saves(self, na: bool, nb: bool) -> (bool, bool, bool) {
        match self {
            Add | Sub | DivTrunc | DivFloor => (false, false, false),
            Mul => (nb, na, false),
            Div => (nb, na || nb, false),
            Remainder | Fmod => (nb, nb, false),
            Pow | FloatPower => (true, true, nb),
            Hypot => (na, nb, true),
            Copysign => (na, false, na),
            _ => (true, true, false),
        }
    }

    fn node_name(self, a: &Operand, b: &Operand) -> &'static str {
        let name = crate::autograd::backward_name;
        match (self, a, b) {
            (Pow, Operand::Tensor(_), Operand::Scalar(_)) => name("pow", 0),
            (Pow, Operand::Tensor(_), Operand::Tensor(_)) => name("pow", 1),
            (Pow, Operand::Scalar(_), _) => name("pow", 2),
            (Sub, Operand::Scalar(_), _) => name("rsub", 1),
            (DivTrunc | DivFloor, _, _) => name("div", 3),
            _ => name(self.name(), 0),
        }
    }

    /// Gradients of `a` and `b` (each only when `needs` says so), written
    /// with ops. Unsaved operands are passed as `g`.
    fn derivative(
        self,
        a: &Tensor,
        b: &Tensor,
        y: &Tensor,
        g: &Tensor,
        needs: [bool; 2],
        alpha: f64,
    ) -> Result<[Option<Tensor>; 2]> {
        use crate::ops::arith::*;
        use crate::ops::unary::Unary;
        let ga = |f: &dyn Fn() -> Result<Tensor>| if needs[0] { f().map(Some) } else { Ok(None) };
        let gb = |f: &dyn Fn() -> Result<Tensor>| if needs[1] { f().map(Some) } else { Ok(None) };
        Ok(match self {
            Add => [ga(&|| Ok(g.clone()))?, gb(&|| scale_unless_one(g, alpha))?],
            Sub => [ga(&|| Ok(g.clone()))?, gb(&|| scale(g, -alpha))?],
            Mul => [ga(&|| mul(g, b))?, gb(&|| mul(g, a))?],
            Div => [
                ga(&|| div(g, b))?,
                gb(&|| neg(&div(&mul(g, a)?, &un(Unary::Square, b)?)?))?,
            ],
            DivTrunc | DivFloor => [ga(&|| zeros_like(g))?, gb(&|| zeros_like(g))?],
            Remainder | Fmod => {
                let rnd = if self == Fmod {
                    Unary::Trunc
                } else {
                    Unary::Floor
                };
                [
                    ga(&|| Ok(g.clone()))?,
                    gb(&|| neg(&mul(g, &un(rnd, &div(a, b)?)?)?))?,
                ]
            }
            Pow | FloatPower => [
                ga(&|| {
                    if b.ndim() == 0 && !b.requires_grad() {
                        // A constant exponent e: e * a^(e-1), zero for e = 0.
                        let e = b.get_scalar(0).to_f64();
                        if e == 0.0 {
                            return zeros_like(g);
                        }
                        return mul(g, &scale(&pow_s(a, e - 1.0)?, e)?);
                    }
                    let d = mul(
                        b,
                        &binary(
                            Pow,
                            &Operand::Tensor(a.clone()),
                            &Operand::Tensor(add_s(b, -1.0)?),
                            None,
                        )?,
                    )?;
                    where_s(&cmp_s(Ne, b, 0.0)?, &mul(g, &d)?, 0.0)
                })?,
                gb(&|| {
                    let zero_base = and(&cmp_s(Eq, a, 0.0)?, &cmp_s(Ge, b, 0.0)?)?;
                    let d = where_t(&zero_base, &zeros_like(y)?, &mul(y, &un(Unary::Log, a)?)?)?;
                    mul(g, &d)
                })?,
            ],
            Atan2 => {
                let r = add(&un(Unary::Square, a)?, &un(Unary::Square, b)?)?;
                [
                    ga(&|| mul(g, &div(b, &r)?))?,
                    gb(&|| neg(&mul(g, &div(a, &r)?)?))?,
                ]
            }
            Maximum | Minimum => {
                // The larger (smaller) operand takes the gradient; ties split it.
                let (win, lose) = if self == Maximum { (Gt, Lt) } else { (Lt, Gt) };
                let tie = cmp(Eq, a, b)?;
                let half = where_t(&tie, &scale(g, 0.5)?, g)?;
                let zero = zeros_like(&half)?;
                [
                    ga(&|| where_t(&cmp(lose, a, b)?, &zero, &half))?,
                    gb(&|| where_t(&cmp(win, a, b)?, &zero, &half))?,
                ]
            }
            Fmax | Fmin => {
                let c = if self == Fmax { Ge } else { Le };
                let pick_a = binary(
                    LogicalOr,
                    &Operand::Tensor(cmp(c, a, b)?),
                    &Operand::Tensor(un(Unary::IsNan, b)?),
                    None,
                )?;
                [
                    ga(&|| where_s(&pick_a, g, 0.0))?,
                    gb(&|| where_t(&pick_a, &zeros_like(g)?, g))?,
                ]
            }
            Hypot => [ga(&|| mul(g, &div(a, y)?))?, gb(&|| mul(g, &div(b, y)?))?],
            LogAddExp | LogAddExp2 => {
                let e = if self == LogAddExp {
                    Unary::Exp
                } else {
                    Unary::Exp2
                };
                [
                    ga(&|| div(g, &add_s(&un(e, &sub(b, a)?)?, 1.0)?))?,
                    gb(&|| div(g, &add_s(&un(e, &sub(a, b)?)?, 1.0)?))?,
                ]
            }
            Copysign => [
                ga(&|| {
                    let ratio = where_t(&cmp_s(Eq, a, 0.0)?, &zeros_like(a)?, &div(y, a)?)?;
                    mul(g, &ratio)
                })?,
                gb(&|| zeros_like(g))?,
            ],
            Xlogy => [
                ga(&|| {
                    let keep = binary(
                        LogicalOr,
                        &Operand::Tensor(cmp_s(Ne, a, 0.0)?),
                        &Operand::Tensor(un(Unary::IsNan, b)?),
                        None,
                    )?;
                    where_s(&keep, &mul(g, &un(Unary::Log, b)?)?, 0.0)
                })?,
                gb(&|| div(&mul(g, a)?, b))?,
            ],
            _ => [None, None],
        })
    }
}

fn scale_unless_one(g: &Tensor, alpha: f64) -> Result<Tensor> {
    if alpha == 1.0 {
        Ok(g.clone())
    } else {
        crate::ops::arith::scale(g, alpha)
    }
}

/// Saves what `op`'s derivative reads and attaches it. `a`/`b` are the
/// operands as tensors of the compute dtype (a number becomes a 0-d
/// tensor); an in-place op passes its input as it was before the write.
fn record(
    mut rec: Recorder,
    op: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
    alpha: Option<Scalar>,
    inplace: bool,
) -> Result<()> {
    let (sa, sb, sy) = op.saves(rec.needs(0), rec.needs(1));
    let ia = if sa { Some(rec.save(a)?) } else { None };
    let ib = if sb { Some(rec.save(b)?) } else { None };
    let iy = if sy {
        Some(rec.save_output(out, 0)?)
    } else {
        None
    };
    let alpha = alpha.map_or(1.0, |s| s.to_f64());
    let backward = move |ctx: &Ctx<'_>, grads: Vec<Option<Tensor>>| {
        let Some(g) = grads.into_iter().next().flatten() else {
            return Ok(vec![None, None]);
        };
        let get = |i: Option<usize>| i.map_or(Ok(g.clone()), |i| ctx.saved(i));
        let (a, b, y) = (get(ia)?, get(ib)?, get(iy)?);
        let [ga, gb] = op.derivative(&a, &b, &y, &g, [ctx.needs(0), ctx.needs(1)], alpha)?;
        Ok(vec![ga, gb])
    };
    if inplace {
        rec.finish_inplace(out, backward)
    } else {
        rec.finish(&[out], backward);
        Ok(())
    }
}

fn operand_tensor(o: &Operand) -> Option<&Tensor> {
    match o {
        Operand::Tensor(t) => Some(t),
        Operand::Scalar(_) => None,
    }
}

/// The operand as recorded for backward: the tensor itself, or a number
/// as a 0-d tensor of the compute dtype.
fn saved_operand(o: &Operand, compute: DType) -> Result<Tensor> {
    match o {
        Operand::Tensor(t) => Ok(t.clone()),
        Operand::Scalar(_) => o.to_tensor(compute),
    }
}

/// PyTorch refuses `out=` when the result would need a gradient.
pub fn check_out_no_grad(name: &str, inputs: &[Option<&Tensor>]) -> Result<()> {
    if crate::autograd::is_grad_enabled() && inputs.iter().flatten().any(|t| t.requires_grad()) {
        return Err(Error::Runtime(format!(
            "{name}(): functions with out=... arguments don't support automatic differentiation, but one of the arguments requires grad."
        )));
    }
    Ok(())
}

/// `op(a, b)` (with `alpha * b` for add/sub) into a new tensor.
pub fn binary(op: BinaryOp, a: &Operand, b: &Operand, alpha: Option<Scalar>) -> Result<Tensor> {
    let (compute, out_dtype) = op.dtypes(a, b)?;
    let inputs = [operand_tensor(a), operand_tensor(b)];
    // The name is looked up only when recording (it takes a lock).
    let recording =
        crate::autograd::is_grad_enabled() && inputs.iter().flatten().any(|t| t.requires_grad());
    let rec = if op.differentiable() && out_dtype.is_floating_point() && recording {
        Recorder::new_opt(op.node_name(a, b), &inputs)
    } else {
        None
    };
    let out = binary_impl(op, a, b, alpha, compute, out_dtype)?;
    if let Some(rec) = rec {
        let (sa, sb) = (saved_operand(a, compute)?, saved_operand(b, compute)?);
        record(rec, op, &sa, &sb, &out, alpha, false)?;
    }
    Ok(out)
}

fn binary_impl(
    op: BinaryOp,
    a: &Operand,
    b: &Operand,
    alpha: Option<Scalar>,
    compute: DType,
    out_dtype: DType,
) -> Result<Tensor> {
    check_args(op, b, alpha, compute)?;
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    let (ta, tb) = (a.to_tensor(compute)?, b.to_tensor(compute)?);
    // Keep the layout of a dense operand that already has the output's shape.
    let strides = [&ta, &tb]
        .iter()
        .find(|t| t.shape() == shape.as_slice())
        .map(|t| t.layout().preserved_strides())
        .unwrap_or_else(|| crate::tensor::layout::contiguous_strides(&shape));
    let out = Tensor::empty_strided(&shape, &strides, out_dtype)?;
    run(op, &ta, &tb, &out, alpha)?;
    Ok(out)
}

/// `a.op_(b)`: the result must be castable back to `a`'s dtype and shape.
pub fn binary_(op: BinaryOp, a: &Tensor, b: &Operand, alpha: Option<Scalar>) -> Result<()> {
    let aop = Operand::Tensor(a.clone());
    let (compute, out_dtype) = op.dtypes(&aop, b)?;
    if !out_dtype.can_cast(a.dtype()) {
        return Err(Error::Runtime(format!(
            "result type {} can't be cast to the desired output type {}",
            out_dtype.scalar_name(),
            a.dtype().scalar_name()
        )));
    }
    check_args(op, b, alpha, compute)?;
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    if shape.as_slice() != a.shape() {
        return Err(Error::Runtime(format!(
            "output with shape {} doesn't match the broadcast shape {}",
            fmt_shape(a.shape()),
            fmt_shape(&shape)
        )));
    }
    copy::check_no_internal_overlap(a)?;
    let rec = if op.differentiable()
        && a.dtype().is_floating_point()
        && crate::autograd::is_grad_enabled()
    {
        Recorder::new_inplace(op.node_name(&aop, b), a, &[operand_tensor(b)])?
    } else {
        None
    };
    // The derivative may need `a` as it was before the write.
    let old_a = match &rec {
        Some(r) if op.saves(r.needs(0), r.needs(1)).0 => Some(copy::clone(a)?),
        _ => None,
    };
    // So may `b`, when it shares `a`'s memory (`y.mul_(y)`).
    let old_b = match (&rec, b) {
        (Some(r), Operand::Tensor(bt))
            if bt.same_storage(a) && op.saves(r.needs(0), r.needs(1)).1 =>
        {
            Some(copy::clone(bt)?)
        }
        _ => None,
    };
    let bt = b.to_tensor(compute)?;
    if compute == a.dtype() && out_dtype == a.dtype() {
        // A shifted view of `a` as the other operand would be overwritten
        // while read: snapshot it.
        let bt = if bt.same_storage(a) && !bt.same_tensor(a) && bt.layout() != a.layout() {
            copy::contiguous_copy(&bt)?
        } else {
            bt
        };
        run(op, a, &bt, a, alpha)?;
    } else {
        let tmp = Tensor::empty(a.shape(), out_dtype)?;
        run(op, &copy::cast_copy(a, compute)?, &bt, &tmp, alpha)?;
        copy::copy_(a, &tmp)?;
    }
    a.bump_version();
    if let Some(rec) = rec {
        let sa = old_a.unwrap_or_else(|| a.clone());
        let sb = match old_b {
            Some(t) => t,
            None => saved_operand(b, compute)?,
        };
        record(rec, op, &sa, &sb, a, alpha, true)?;
    }
    Ok(())
}

/// `op(a, b)` written into `out` (PyTorch's `out=`), which must have the
/// broadcast shape and a dtype the result casts to.
pub fn binary_out(
    op: BinaryOp,
    a: &Operand,
    b: &Operand,
    alpha: Option<Scalar>,
    out: &Tensor,
) -> Result<()> {
    check_out_no_grad(op.name(), &[operand_tensor(a), operand_tensor(b)])?;
    let (compute, out_dtype) = op.dtypes(a, b)?;
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    // Write straight into `out` when nothing has to be converted and no
    // operand is a shifted view of it; otherwise compute, then copy.
    let overlaps = |o: &Operand| matches!(o, Operand::Tensor(t) if t.same_storage(out) && t.layout() != out.layout());
    if out_dtype == out.dtype() && shape.as_slice() == out.shape() && !overlaps(a) && !overlaps(b) {
        check_args(op, b, alpha, compute)?;
        copy::check_no_internal_overlap(out)?;
        run(
            op,
            &a.to_tensor(compute)?,
            &b.to_tensor(compute)?,
            out,
            alpha,
        )?;
        out.bump_version();
        return Ok(());
    }
    let r = binary(op, a, b, alpha)?;
    if !r.dtype().can_cast(out.dtype()) {
        return Err(Error::Runtime(format!(
            "result type {} can't be cast to the desired output type {}",
            r.dtype().scalar_name(),
            out.dtype().scalar_name()
        )));
    }
    if r.shape() != out.shape() {
        return Err(Error::Runtime(format!(
            "output with shape {} doesn't match the broadcast shape {}",
            fmt_shape(out.shape()),
            fmt_shape(r.shape())
        )));
    }
    copy::copy_(out, &r)
}

fn check_args(op: BinaryOp, b: &Operand, alpha: Option<Scalar>, compute: DType) -> Result<()> {
    if let Some(al) = alpha {
        if !matches!(op, Add | Sub) {
            return Err(Error::Runtime(format!("{} does not take alpha", op.name())));
        }
        if al.category() > compute.category() {
            return Err(Error::Runtime(
                "For integral input tensors, argument alpha must not be a floating point number."
                    .into(),
            ));
        }
    }
    if op == Pow && !compute.is_floating_point() {
        let negative = match b {
            Operand::Scalar(s) => s.to_i64() < 0,
            Operand::Tensor(t) => copy::to_dtype(t, DType::I64, false)
                .and_then(|t| copy::to_vec::<i64>(&t))
                .is_ok_and(|v| v.iter().any(|&e| e < 0)),
        };
        if negative {
            return Err(Error::Runtime(
                "Integers to negative integer powers are not allowed.".into(),
            ));
        }
    }
    Ok(())
}

fn run(op: BinaryOp, a: &Tensor, b: &Tensor, out: &Tensor, alpha: Option<Scalar>) -> Result<()> {
    let sa = a.layout().broadcast_to(out.shape())?.strides;
    let sb = b.layout().broadcast_to(out.shape())?.strides;
    if fast_f32(op, a, &sa, b, &sb, out, alpha)
        || fast_cmp_f32(op, a, &sa, b, &sb, out)
        || fast_half(op, a, &sa, b, &sb, out, alpha)
        || half_via_f32(op, a, b, out, alpha)?
    {
        return Ok(());
    }
    ZERO_DIV.with(|z| z.store(false, Ordering::Relaxed));
    dispatch!(a.dtype(), T => {
        if out.dtype() == DType::Bool && a.dtype() != DType::Bool {
            if T::DTYPE.is_floating_point() {
                kernels::map2::<T, T, Bool>(a, &sa, b, &sb, out, |x, y| Bool((op.eval(x.to_f64(), y.to_f64()) != 0.0) as u8));
            } else {
                kernels::map2::<T, T, Bool>(a, &sa, b, &sb, out, |x, y| Bool((op.eval_int(x.to_i64(), y.to_i64()) != 0) as u8));
            }
        } else if T::DTYPE.is_floating_point() {
            let al = alpha.map_or(1.0, |s| s.to_f64());
            match op {
                Add => kernels::map2::<T, T, T>(a, &sa, b, &sb, out, |x, y| T::from_f64(x.to_f64() + al * y.to_f64())),
                Sub => kernels::map2::<T, T, T>(a, &sa, b, &sb, out, |x, y| T::from_f64(x.to_f64() - al * y.to_f64())),
                _ => kernels::map2::<T, T, T>(a, &sa, b, &sb, out, |x, y| T::from_f64(op.eval(x.to_f64(), y.to_f64()))),
            }
        } else {
            let al = alpha.map_or(1, |s| s.to_i64());
            match op {
                Add => kernels::map2::<T, T, T>(a, &sa, b, &sb, out, |x, y| T::from_i64(x.to_i64().wrapping_add(al.wrapping_mul(y.to_i64())))),
                Sub => kernels::map2::<T, T, T>(a, &sa, b, &sb, out, |x, y| T::from_i64(x.to_i64().wrapping_sub(al.wrapping_mul(y.to_i64())))),
                _ => kernels::map2::<T, T, T>(a, &sa, b, &sb, out, |x, y| T::from_i64(op.eval_int(x.to_i64(), y.to_i64()))),
            }
        }
    });
    if ZERO_DIV.with(|z| z.swap(false, Ordering::Relaxed)) {
        return Err(Error::Runtime("ZeroDivisionError".into()));
    }
    Ok(())
}

/// Half-precision operands the flat paths do not cover (broadcasts,
/// comparisons, the other ops): widened to float32, run through the float32
/// paths and narrowed into `out`, as PyTorch computes half math in float.
/// The per-element generic path ran 5-20x slower than PyTorch. False for
/// other dtypes and for small outputs, where the temporaries cost more.
fn half_via_f32(
    op: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
    alpha: Option<Scalar>,
) -> Result<bool> {
    if !crate::cpu::half::is_half(a.dtype()) || b.dtype() != a.dtype() || out.numel() < 1024 {
        return Ok(false);
    }
    let (a, b) = (
        copy::to_dtype(a, DType::F32, false)?,
        copy::to_dtype(b, DType::F32, false)?,
    );
    if out.dtype() == DType::Bool {
        run(op, &a, &b, out, alpha)?;
    } else {
        let wide = Tensor::empty(out.shape(), DType::F32)?;
        run(op, &a, &b, &wide, alpha)?;
        copy::copy_raw(out, &wide)?;
    }
    Ok(true)
}

/// The flat kernels' code for `op` (see `fast::op`), if they have one.
fn flat_code(op: BinaryOp) -> Option<u8> {
    Some(match op {
        Add => 0,
        Sub => 1,
        Mul => 2,
        Div => 3,
        Maximum => 4,
        Minimum => 5,
        _ => return None,
    })
}

/// An operand of a flat kernel writing the dense `out`: its data address
/// and whether it is one broadcast scalar (all strides 0), or None when it
/// is neither that nor laid out like `out`.
fn flat_operand<T: Element>(t: &Tensor, s: &[isize], out: &Tensor) -> Option<(usize, bool)> {
    if s.iter().all(|&x| x == 0) {
        Some((t.data_ptr::<T>() as usize, true))
    } else if s == out.strides() {
        Some((t.data_ptr::<T>() as usize, false))
    } else {
        None
    }
}

/// Vectorised, multi-threaded float32 paths for `+ - * /`, `maximum` and
/// `minimum` over dense operands laid out like the output, or one of them a
/// broadcast scalar. False when the case is not covered.
fn fast_f32(
    op: BinaryOp,
    a: &Tensor,
    sa: &[isize],
    b: &Tensor,
    sb: &[isize],
    out: &Tensor,
    alpha: Option<Scalar>,
) -> bool {
    if a.dtype() != DType::F32 || b.dtype() != DType::F32 || out.dtype() != DType::F32 {
        return false;
    }
    let Some(code) = flat_code(op) else {
        return false;
    };
    let Some(pd) = kernels::dense_span::<f32>(out) else {
        return false;
    };
    let operand = |t: &Tensor, s: &[isize]| flat_operand::<f32>(t, s, out);
    let al = alpha.map_or(1.0, |s| s.to_f64() as f32);
    let (Some((pa, a_scalar)), Some((pb, b_scalar))) = (operand(a, sa), operand(b, sb)) else {
        broadcast_f32(code, a, sa, b, sb, out, al);
        return true;
    };
    if a_scalar && b_scalar {
        // Two broadcast scalars (e.g. both expanded): the kernels stream at
        // least one operand, so leave this to the generic path.
        return false;
    }
    let pd = pd as usize;
    parallel::for_ranges(out.numel(), 1, 16, |s, e| {
        // SAFETY: dense operands span the output's `numel` elements with the
        // output's layout; a scalar operand is one valid element. Chunks are
        // disjoint. Raw pointers (not slices) because `out` may alias `a`.
        unsafe {
            let n = e - s;
            let d = (pd as *mut f32).add(s);
            let x = if a_scalar {
                pa as *const f32
            } else {
                (pa as *const f32).add(s)
            };
            let y = if b_scalar {
                pb as *const f32
            } else {
                (pb as *const f32).add(s)
            };
            fast::apply(code, x, a_scalar, y, b_scalar, al, d, n);
        }
    });
    true
}

/// The float32 kernels of [`fast_f32`] for float16/bfloat16 operands and
/// output (dense like the output, or a broadcast scalar), staged through f32
/// blocks (`cpu::half`). False when the case is not covered.
fn fast_half(
    op: BinaryOp,
    a: &Tensor,
    sa: &[isize],
    b: &Tensor,
    sb: &[isize],
    out: &Tensor,
    alpha: Option<Scalar>,
) -> bool {
    let d = out.dtype();
    if !crate::cpu::half::is_half(d) || a.dtype() != d || b.dtype() != d {
        return false;
    }
    match d {
        DType::F16 => fast_half_typed::<half::f16>(op, a, sa, b, sb, out, alpha),
        _ => fast_half_typed::<half::bf16>(op, a, sa, b, sb, out, alpha),
    }
}

fn fast_half_typed<T: crate::cpu::half::Half>(
    op: BinaryOp,
    a: &Tensor,
    sa: &[isize],
    b: &Tensor,
    sb: &[isize],
    out: &Tensor,
    alpha: Option<Scalar>,
) -> bool {
    let Some(code) = flat_code(op) else {
        return false;
    };
    let Some(pd) = kernels::dense_span::<T>(out) else {
        return false;
    };
    let operand = |t: &Tensor, s: &[isize]| flat_operand::<T>(t, s, out);
    let (Some((pa, a_scalar)), Some((pb, b_scalar))) = (operand(a, sa), operand(b, sb)) else {
        return false;
    };
    if a_scalar && b_scalar {
        return false;
    }
    let al = alpha.map_or(1.0, |s| s.to_f64() as f32);
    let pd = pd as usize;
    parallel::for_ranges(out.numel(), 2, 16, |s, e| {
        // SAFETY: dense operands span the output's `numel` elements with its
        // layout, a scalar operand is one valid element; chunks are
        // disjoint, and an operand aliasing `out` does so position for
        // position (each block is read before it is written).
        unsafe {
            crate::cpu::half::staged::<T, 2>(
                [(pa as *const T, a_scalar), (pb as *const T, b_scalar)],
                pd as *mut T,
                s,
                e,
                |d, [x, y]| {
                    fast::apply(
                        code,
                        x.as_ptr(),
                        false,
                        y.as_ptr(),
                        false,
                        al,
                        d.as_mut_ptr(),
                        d.len(),
                    )
                },
            )
        }
    });
    true
}

/// The float32 kernels over broadcast operands (`x + bias`, `x * scale`
/// per channel): rows of the output, each row a vectorised stream when the
/// operands run along it or stay put. 4-5x faster than the generic
/// f64-converting path.
fn broadcast_f32(
    code: u8,
    a: &Tensor,
    sa: &[isize],
    b: &Tensor,
    sb: &[isize],
    out: &Tensor,
    al: f32,
) {
    f32_rows::<f32>(a, sa, b, sb, out, |x, xa, y, xb, d, sd, len| {
        let streams = |st: isize| st == 0 || st == 1;
        // SAFETY: `f32_rows` hands out rows valid for `len` elements.
        unsafe {
            if sd == 1 && streams(xa) && streams(xb) && (xa == 1 || xb == 1) {
                fast::apply(code, x, xa == 0, y, xb == 0, al, d, len);
            } else {
                for i in 0..len as isize {
                    *d.offset(i * sd) = fast::op(code, *x.offset(i * xa), *y.offset(i * xb), al);
                }
            }
        }
    });
}

/// Comparisons of float32 operands (any layout, broadcast) into a bool
/// tensor: `h > 0` in the ReLU backward was 3 ns an element through the
/// generic f64 path. False when the case is not covered.
fn fast_cmp_f32(
    op: BinaryOp,
    a: &Tensor,
    sa: &[isize],
    b: &Tensor,
    sb: &[isize],
    out: &Tensor,
) -> bool {
    if a.dtype() != DType::F32 || b.dtype() != DType::F32 || out.dtype() != DType::Bool {
        return false;
    }
    let code = match op {
        Lt => 0,
        Le => 1,
        Gt => 2,
        Ge => 3,
        Eq => 4,
        Ne => 5,
        _ => return false,
    };
    f32_rows::<u8>(a, sa, b, sb, out, |x, xa, y, xb, d, sd, len| {
        // SAFETY: `f32_rows` hands out rows valid for `len` elements.
        unsafe { fast::compare(code, x, xa, y, xb, d, sd, len) };
    });
    true
}

type RowFn<'a, D> = dyn Fn(*const f32, isize, *const f32, isize, *mut D, isize, usize) + Sync + 'a;

/// Calls `row(x, x_stride, y, y_stride, d, d_stride, len)` for every inner
/// row of `out` (float32 operands `a`, `b` broadcast by `sa`, `sb`), split
/// over threads along the output's first dim.
fn f32_rows<D: Element>(
    a: &Tensor,
    sa: &[isize],
    b: &Tensor,
    sb: &[isize],
    out: &Tensor,
    row: impl Fn(*const f32, isize, *const f32, isize, *mut D, isize, usize) + Sync,
) {
    let row: &RowFn<'_, D> = &row;
    let (pa, pb, pd) = (
        a.data_ptr::<f32>() as usize,
        b.data_ptr::<f32>() as usize,
        out.data_ptr::<D>() as usize,
    );
    let shape = out.shape();
    let so = out.strides();
    let (n0, inner) = match shape.split_first() {
        Some((&n0, rest)) => (n0, rest.iter().product::<usize>()),
        None => (1, 1),
    };
    let first = |st: &[isize]| st.first().copied().unwrap_or(0);
    let (s0d, s0a, s0b) = (first(so), first(sa), first(sb));
    parallel::for_ranges(n0, inner.max(1), 1, |s, e| {
        let mut sub: smallvec::SmallVec<[usize; 6]> = shape.into();
        if let Some(d0) = sub.first_mut() {
            *d0 = e - s;
        }
        let s = s as isize;
        crate::cpu::iter::for_each_row_in_memory_order(
            &sub,
            [so, sa, sb],
            |[od, oa, ob], len, [sd, xa, xb]| {
                // Offsets come from the operands' own (broadcast) layouts,
                // validated against their storages; chunks along the output's
                // first dim write disjoint elements (outputs have no internal
                // overlap). Raw pointers because `out` may alias `a`.
                let d = (pd as *mut D).wrapping_offset(od + s * s0d);
                let x = (pa as *const f32).wrapping_offset(oa + s * s0a);
                let y = (pb as *const f32).wrapping_offset(ob + s * s0b);
                row(x, xa, y, xb, d, sd, len);
            },
        );
    });
}

mod fast {
    use crate::multiversion;

    #[inline(always)]
    pub fn op(code: u8, x: f32, y: f32, al: f32) -> f32 {
        match code {
            0 => x + al * y,
            1 => x - al * y,
            2 => x * y,
            3 => x / y,
            4 => {
                if x.is_nan() || y.is_nan() {
                    f32::NAN
                } else {
                    x.max(y)
                }
            }
            _ => {
                if x.is_nan() || y.is_nan() {
                    f32::NAN
                } else {
                    x.min(y)
                }
            }
        }
    }

    macro_rules! loops {
        ($($name:ident => $code:expr;)*) => {$(
            multiversion! {
                /// # Safety
                /// `x`/`y` (unless scalar) and `d` are valid for `n` elements.
                pub fn $name(x: *const f32, xs: bool, y: *const f32, ys: bool, al: f32, d: *mut f32, n: usize) {
                    // SAFETY: guaranteed by the caller (see `fast_f32`).
                    unsafe {
                        // Separate loops per operand shape keep each one a
                        // straight vectorisable stream. In place (`d` is
                        // `x`), `x` is read through `d`: LLVM's run-time
                        // overlap check between two names for one buffer
                        // fails and falls back to scalar code (in-place
                        // `add_`, as gradient accumulation, ran 3x slower).
                        let in_place = std::ptr::eq(x, d);
                        if xs {
                            let xv = *x;
                            for i in 0..n { *d.add(i) = op($code, xv, *y.add(i), al); }
                        } else if ys && in_place {
                            let yv = *y;
                            for i in 0..n { *d.add(i) = op($code, *d.add(i), yv, al); }
                        } else if ys {
                            let yv = *y;
                            for i in 0..n { *d.add(i) = op($code, *x.add(i), yv, al); }
                        } else if in_place {
                            for i in 0..n { *d.add(i) = op($code, *d.add(i), *y.add(i), al); }
                        } else {
                            for i in 0..n { *d.add(i) = op($code, *x.add(i), *y.add(i), al); }
                        }
                    }
                }
            }
        )*};
    }

    loops! {
        add => 0;
        sub => 1;
        mul => 2;
        div => 3;
        max => 4;
        min => 5;
    }

    macro_rules! compares {
        ($($name:ident => $cmp:tt;)*) => {$(
            multiversion! {
                /// # Safety
                /// `x`, `y` and `d` are valid for `n` elements at their strides.
                pub fn $name(x: *const f32, xa: isize, y: *const f32, xb: isize, d: *mut u8, sd: isize, n: usize) {
                    // SAFETY: guaranteed by the caller (see `fast_cmp_f32`).
                    unsafe {
                        if sd == 1 && xa == 1 && xb == 0 {
                            let yv = *y;
                            for i in 0..n { *d.add(i) = (*x.add(i) $cmp yv) as u8; }
                        } else if sd == 1 && xa == 1 && xb == 1 {
                            for i in 0..n { *d.add(i) = (*x.add(i) $cmp *y.add(i)) as u8; }
                        } else {
                            for i in 0..n as isize {
                                *d.offset(i * sd) = (*x.offset(i * xa) $cmp *y.offset(i * xb)) as u8;
                            }
                        }
                    }
                }
            }
        )*};
    }

    compares! {
        lt => <;
        le => <=;
        gt => >;
        ge => >=;
        eq => ==;
        ne => !=;
    }

    /// # Safety
    /// As for the compare loops above.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn compare(
        code: u8,
        x: *const f32,
        xa: isize,
        y: *const f32,
        xb: isize,
        d: *mut u8,
        sd: isize,
        n: usize,
    ) {
        let f = [lt, le, gt, ge, eq, ne][code as usize];
        f(x, xa, y, xb, d, sd, n)
    }

    /// # Safety
    /// As for the loops above.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn apply(
        code: u8,
        x: *const f32,
        xs: bool,
        y: *const f32,
        ys: bool,
        al: f32,
        d: *mut f32,
        n: usize,
    ) {
        let f = [add, sub, mul, div, max, min][code as usize];
        crate::cpu::kernels::split_at_cache_line(d, n, |s, e| {
            // SAFETY: `s..e` lies within the caller's `n` elements.
            unsafe {
                let at = |p: *const f32, scalar: bool| if scalar { p } else { p.add(s) };
                f(at(x, xs), xs, at(y, ys), ys, al, d.add(s), e - s)
            }
        })
    }
}
