//! Elementwise functions of one tensor: the math ops, rounding, predicates
//! and the activations `nn` needs. Each op is one `Unary` variant: its dtype
//! rule (`kind`), its f64 reference (`eval`), its integer rule (`eval_int`),
//! and optionally a vectorised float32 kernel (`fast`).

use crate::autograd::{is_grad_enabled, needs_grad, Recorder};
use crate::cpu::{kernels, parallel};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::ops::arith::{
    add_s, and, cmp_s, div, mul, neg, pow_s, rsub_s, scale, un, where_s, zeros_like,
};
use crate::ops::binary::BinaryOp;
use crate::ops::{copy, default_dtype, result_type, special, Operand};
use crate::tensor::{DType, Element, Scalar, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    Abs,
    Neg,
    Sign,
    Exp,
    Exp2,
    Expm1,
    Log,
    Log2,
    Log10,
    Log1p,
    Sqrt,
    Rsqrt,
    Square,
    Reciprocal,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Sigmoid,
    Logit(Option<f64>),
    Erf,
    Erfc,
    Erfinv,
    Lgamma,
    Digamma,
    /// psi^(n), the n-th derivative of digamma.
    Polygamma(u32),
    Floor,
    Ceil,
    Round(i64),
    Trunc,
    Frac,
    Clamp(Option<Scalar>, Option<Scalar>),
    NanToNum(f64, Option<f64>, Option<f64>),
    IsNan,
    IsInf,
    IsFinite,
    IsNegInf,
    IsPosInf,
    Signbit,
    LogicalNot,
    BitwiseNot,
    Relu,
    Gelu,
    GeluTanh,
    Silu,
    Mish,
    Softplus(f64, f64),
    /// alpha, scale, input_scale (ELU, SELU and CELU).
    Elu(f64, f64, f64),
    LeakyRelu(f64),
    Hardsigmoid,
    Hardswish,
    Softsign,
    Tanhshrink,
    Softshrink(f64),
    Hardshrink(f64),
    Threshold(f64, f64),
    /// min_val, max_val (hardtanh and relu6): clamp's values, but PyTorch's
    /// own backward (open interval, NaN passes) and integer rule.
    Hardtanh(f64, f64),
    LogSigmoid,
}

/// How an op's output dtype follows its input's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Integer inputs compute in the default float dtype (`exp`, `sin`).
    Float,
    /// Floating inputs only (`frac`, the activations with parameters).
    FloatOnly,
    /// Same dtype as the input (`abs`, `floor`, `relu`).
    Same,
    /// A bool result (`isnan`, `logical_not`).
    Predicate,
    /// Integer and bool inputs only (`bitwise_not`).
    Bitwise,
}

use Unary::*;

impl Unary {
    pub fn name(self) -> &'static str {
        match self {
            Abs => "abs",
            Neg => "neg",
            Sign => "sign",
            Exp => "exp",
            Exp2 => "exp2",
            Expm1 => "expm1",
            Log => "log",
            Log2 => "log2",
            Log10 => "log10",
            Log1p => "log1p",
            Sqrt => "sqrt",
            Rsqrt => "rsqrt",
            Square => "square",
            Reciprocal => "reciprocal",
            Sin => "sin",
            Cos => "cos",
            Tan => "tan",
            Asin => "asin",
            Acos => "acos",
            Atan => "atan",
            Sinh => "sinh",
            Cosh => "cosh",
            Tanh => "tanh",
            Asinh => "asinh",
            Acosh => "acosh",
            Atanh => "atanh",
            Sigmoid => "sigmoid",
            Logit(_) => "logit",
            Erf => "erf",
            Erfc => "erfc",
            Erfinv => "erfinv",
            Lgamma => "lgamma",
            Digamma => "digamma",
            Polygamma(_) => "polygamma",
            Floor => "floor",
            Ceil => "ceil",
            Round(_) => "round",
            Trunc => "trunc",
            Frac => "frac",
            Clamp(..) => "clamp",
            NanToNum(..) => "nan_to_num",
            IsNan => "isnan",
            IsInf => "isinf",
            IsFinite => "isfinite",
            IsNegInf => "isneginf",
            IsPosInf => "isposinf",
            Signbit => "signbit",
            LogicalNot => "logical_not",
            BitwiseNot => "bitwise_not",
            Relu => "relu",
            Gelu => "gelu",
            GeluTanh => "gelu",
            Silu => "silu",
            Mish => "mish",
            Softplus(..) => "softplus",
            Elu(..) => "elu",
            LeakyRelu(_) => "leaky_relu",
            Hardsigmoid => "hardsigmoid",
            Hardswish => "hardswish",
            Softsign => "softsign",
            Tanhshrink => "tanhshrink",
            Softshrink(_) => "softshrink",
            Hardshrink(_) => "hardshrink",
            Threshold(..) => "threshold",
            Hardtanh(..) => "hardtanh",
            LogSigmoid => "log_sigmoid",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Abs | Neg | Sign | Square | Floor | Ceil | Round(_) | Trunc | Clamp(..)
            | NanToNum(..) | Relu | Hardshrink(_) | Threshold(..) | Hardtanh(..) => Kind::Same,
            Frac | Gelu | GeluTanh | Silu | Mish | Softplus(..) | Elu(..) | LeakyRelu(_)
            | Hardsigmoid | Hardswish | Softshrink(_) | LogSigmoid => Kind::FloatOnly,
            IsNan | IsInf | IsFinite | IsNegInf | IsPosInf | Signbit | LogicalNot => {
                Kind::Predicate
            }
            BitwiseNot => Kind::Bitwise,
            _ => Kind::Float,
        }
    }

    /// The result dtype for an input of `dtype`, or PyTorch's error.
    pub fn out_dtype(self, dtype: DType) -> Result<DType> {
        let not_impl = || {
            Error::Runtime(format!(
                "\"{}_cpu\" not implemented for '{}'",
                self.name(),
                dtype.scalar_name()
            ))
        };
        match self.kind() {
            Kind::Float if !dtype.is_floating_point() => Ok(default_dtype()),
            Kind::FloatOnly if !dtype.is_floating_point() => Err(not_impl()),
            Kind::Bitwise if dtype.is_floating_point() => Err(not_impl()),
            Kind::Predicate => Ok(DType::Bool),
            _ if matches!(self, Hardtanh(..)) && dtype == DType::Bool => Err(
                Error::NotImplemented("Bool inputs not supported for hardtanh".into()),
            ),
            _ if self == Neg && dtype == DType::Bool => Err(Error::Runtime(
                "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.".into(),
            )),
            _ => match self {
                Clamp(lo, hi) => {
                    let t = Operand::Tensor(Tensor::empty(&[1], dtype)?);
                    let bounds: Vec<Operand> = [lo, hi].iter().filter_map(|b| b.map(Operand::Scalar)).collect();
                    let mut ops = vec![&t];
                    ops.extend(bounds.iter());
                    Ok(result_type(&ops))
                }
                _ => Ok(dtype),
            },
        }
    }

    /// The op on one value, in f64.
    pub fn eval(self, x: f64) -> f64 {
        match self {
            Abs => x.abs(),
            Neg => -x,
            Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x * 0.0
                }
            }
            Exp => x.exp(),
            Exp2 => x.exp2(),
            Expm1 => x.exp_m1(),
            Log => x.ln(),
            Log2 => x.log2(),
            Log10 => x.log10(),
            Log1p => x.ln_1p(),
            Sqrt => x.sqrt(),
            Rsqrt => 1.0 / x.sqrt(),
            Square => x * x,
            Reciprocal => 1.0 / x,
            Sin => x.sin(),
            Cos => x.cos(),
            Tan => x.tan(),
            Asin => x.asin(),
            Acos => x.acos(),
            Atan => x.atan(),
            Sinh => x.sinh(),
            Cosh => x.cosh(),
            Tanh => x.tanh(),
            Asinh => x.asinh(),
            Acosh => x.acosh(),
            Atanh => x.atanh(),
            Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Logit(eps) => {
                // Not f64::clamp: it panics when eps > 0.5 makes min > max.
                let z = eps.map_or(x, |e| x.max(e).min(1.0 - e));
                (z / (1.0 - z)).ln()
            }
            Erf => libm::erf(x),
            Erfc => libm::erfc(x),
            Erfinv => special::erfinv(x),
            Lgamma => libm::lgamma(x),
            Digamma => special::digamma(x),
            Polygamma(n) => special::polygamma(n, x),
            Floor => x.floor(),
            Ceil => x.ceil(),
            Round(0) => x.round_ties_even(),
            Round(d) => {
                let s = 10f64.powi(d.clamp(-400, 400) as i32);
                (x * s).round_ties_even() / s
            }
            Trunc => x.trunc(),
            Frac => x - x.trunc(),
            Clamp(lo, hi) => {
                let v = lo.map_or(x, |l| if x < l.to_f64() { l.to_f64() } else { x });
                hi.map_or(v, |h| if v > h.to_f64() { h.to_f64() } else { v })
            }
            NanToNum(nan, pos, neg) => {
                if x.is_nan() {
                    nan
                } else if x == f64::INFINITY {
                    pos.unwrap_or(f64::MAX)
                } else if x == f64::NEG_INFINITY {
                    neg.unwrap_or(f64::MIN)
                } else {
                    x
                }
            }
            Relu => {
                if x > 0.0 || x.is_nan() {
                    x
                } else {
                    0.0
                }
            }
            // x Phi(x) through erfc, which does not cancel for x < 0.
            Gelu => 0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2),
            // 0.5 x (1 + tanh u) = x / (1 + e^-2u), which does not cancel.
            GeluTanh => x / (1.0 + (-2.0 * SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).exp()),
            Silu => x / (1.0 + (-x).exp()),
            Mish => x * softplus(x, 1.0, 20.0).tanh(),
            Softplus(beta, threshold) => softplus(x, beta, threshold),
            Elu(alpha, scale, input_scale) => {
                if x > 0.0 {
                    scale * x
                } else {
                    scale * alpha * (x * input_scale).exp_m1()
                }
            }
            LeakyRelu(slope) => {
                if x > 0.0 {
                    x
                } else {
                    x * slope
                }
            }
            Hardsigmoid => (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Hardswish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Softsign => x / (1.0 + x.abs()),
            Tanhshrink => x - x.tanh(),
            Softshrink(l) => {
                if x > l {
                    x - l
                } else if x < -l {
                    x + l
                } else {
                    0.0
                }
            }
            Hardshrink(l) => {
                if x > l || x < -l {
                    x
                } else {
                    0.0
                }
            }
            Threshold(th, v) => {
                if x > th {
                    x
                } else {
                    v
                }
            }
            // NaN fails both tests and passes through.
            Hardtanh(lo, hi) => {
                if x < lo {
                    lo
                } else if x > hi {
                    hi
                } else {
                    x
                }
            }
            LogSigmoid => x.min(0.0) - (-x.abs()).exp().ln_1p(),
            IsNan | IsInf | IsFinite | IsNegInf | IsPosInf | Signbit | LogicalNot => {
                self.test(x) as u8 as f64
            }
            BitwiseNot => x,
        }
    }

    /// The op on an integer, for ops that keep integer dtypes exact.
    fn eval_int(self, x: i64) -> i64 {
        match self {
            Abs => x.wrapping_abs(),
            Neg => x.wrapping_neg(),
            Sign => x.signum(),
            Square => x.wrapping_mul(x),
            Relu => x.max(0),
            BitwiseNot => !x,
            Clamp(lo, hi) => {
                let v = lo.map_or(x, |l| x.max(l.to_i64()));
                hi.map_or(v, |h| v.min(h.to_i64()))
            }
            Hardshrink(l) => {
                if (x as f64) > l || (x as f64) < -l {
                    x
                } else {
                    0
                }
            }
            Threshold(th, v) => {
                if (x as f64) > th {
                    x
                } else {
                    v as i64
                }
            }
            // The bounds cast to the integer type first (truncating), as
            // PyTorch's clamp on integers.
            Hardtanh(lo, hi) => x.max(lo as i64).min(hi as i64),
            // Rounding and nan_to_num leave integers unchanged.
            _ => x,
        }
    }

    fn test(self, x: f64) -> bool {
        match self {
            IsNan => x.is_nan(),
            IsInf => x.is_infinite(),
            IsFinite => x.is_finite(),
            IsNegInf => x == f64::NEG_INFINITY,
            IsPosInf => x == f64::INFINITY,
            Signbit => x.is_sign_negative(),
            _ => x == 0.0,
        }
    }

    /// A vectorised float32 kernel, for the ops hot enough to deserve one:
    /// (kernel, in-place kernel, cost in ns per element for threading).
    /// The kernels take `self.params()`.
    fn fast(self) -> Option<(fast::Kernel, fast::KernelInPlace, usize)> {
        use fast::*;
        Some(match self {
            Exp => (exp, exp_, 2),
            Log => (log, log_, 2),
            Tanh => (tanh, tanh_, 3),
            Sigmoid => (sigmoid, sigmoid_, 3),
            Silu => (silu, silu_, 3),
            Relu => (relu, relu_, 1),
            Neg => (neg, neg_, 1),
            Abs => (abs, abs_, 1),
            Sqrt => (sqrt, sqrt_, 1),
            Square => (square, square_, 1),
            Reciprocal => (reciprocal, reciprocal_, 1),
            Exp2 => (exp2, exp2_, 3),
            Expm1 => (expm1, expm1_, 3),
            Log2 => (log2, log2_, 3),
            Log10 => (log10, log10_, 3),
            Log1p => (log1p, log1p_, 4),
            Sin => (sin, sin_, 4),
            Cos => (cos, cos_, 4),
            Tan => (tan, tan_, 4),
            Atan => (atan, atan_, 4),
            Asin => (asin, asin_, 4),
            Acos => (acos, acos_, 4),
            Asinh => (asinh, asinh_, 4),
            Acosh => (acosh, acosh_, 4),
            Atanh => (atanh, atanh_, 4),
            Sinh => (sinh, sinh_, 4),
            Cosh => (cosh, cosh_, 4),
            Erf => (erf, erf_, 4),
            Erfc => (erfc, erfc_, 4),
            Gelu => (gelu, gelu_, 4),
            GeluTanh => (gelu_tanh, gelu_tanh_, 4),
            Mish => (mish, mish_, 4),
            Softplus(..) => (softplus, softplus_, 5),
            Elu(..) => (elu, elu_, 3),
            LogSigmoid => (logsigmoid, logsigmoid_, 5),
            LeakyRelu(_) => (leaky_relu, leaky_relu_, 1),
            Hardtanh(..) => (hardtanh, hardtanh_, 1),
            Hardsigmoid => (hardsigmoid, hardsigmoid_, 1),
            Hardswish => (hardswish, hardswish_, 1),
            Softsign => (softsign, softsign_, 1),
            Rsqrt => (rsqrt, rsqrt_, 1),
            Sign => (sign, sign_, 1),
            _ => return None,
        })
    }

    /// A vectorised float64 kernel (as `fast`).
    fn fast64(self) -> Option<(fast::Kernel64, fast::KernelInPlace64, usize)> {
        use fast::*;
        Some(match self {
            Exp => (exp64, exp64_, 3),
            Log => (log64, log64_, 3),
            Expm1 => (expm164, expm164_, 3),
            Log1p => (log1p64, log1p64_, 4),
            Tanh => (tanh64, tanh64_, 4),
            Sigmoid => (sigmoid64, sigmoid64_, 4),
            Silu => (silu64, silu64_, 4),
            Relu => (relu64, relu64_, 1),
            Neg => (neg64, neg64_, 1),
            Abs => (abs64, abs64_, 1),
            Sqrt => (sqrt64, sqrt64_, 2),
            Square => (square64, square64_, 1),
            Reciprocal => (reciprocal64, reciprocal64_, 2),
            GeluTanh => (gelu_tanh64, gelu_tanh64_, 4),
            Mish => (mish64, mish64_, 4),
            Softplus(..) => (softplus64, softplus64_, 5),
            Elu(..) => (elu64, elu64_, 3),
            LogSigmoid => (logsigmoid64, logsigmoid64_, 5),
            LeakyRelu(_) => (leaky_relu64, leaky_relu64_, 1),
            Hardtanh(..) => (hardtanh64, hardtanh64_, 1),
            Hardsigmoid => (hardsigmoid64, hardsigmoid64_, 1),
            Hardswish => (hardswish64, hardswish64_, 1),
            Softsign => (softsign64, softsign64_, 1),
            Rsqrt => (rsqrt64, rsqrt64_, 2),
            Sign => (sign64, sign64_, 1),
            _ => return None,
        })
    }

    /// The parameters the fast kernels read.
    fn params(self) -> [f64; 3] {
        match self {
            Softplus(beta, threshold) => [beta, threshold, 0.0],
            Elu(alpha, scale, input_scale) => [alpha, scale, input_scale],
            LeakyRelu(slope) => [slope, 0.0, 0.0],
            Hardtanh(lo, hi) => [lo, hi, 0.0],
            _ => [0.0; 3],
        }
    }
}

fn softplus(x: f64, beta: f64, threshold: f64) -> f64 {
    if x * beta > threshold {
        x
    } else {
        (x * beta).exp().ln_1p() / beta
    }
}

/// Multiversioned float32 and float64 slice kernels (see `cpu::simd`).
/// Each takes the op's `params()`; the float32 forms of the cheap
/// parametrised ops compute in f64 as `Unary::eval` does, so they agree
/// with the strided path bit for bit.
mod fast {
    use crate::cpu::simd::*;
    use crate::multiversion;

    pub type Kernel = fn(&[f32], &mut [f32], [f64; 3]);
    pub type KernelInPlace = fn(&mut [f32], [f64; 3]);
    pub type Kernel64 = fn(&[f64], &mut [f64], [f64; 3]);
    pub type KernelInPlace64 = fn(&mut [f64], [f64; 3]);

    macro_rules! kernels {
        ($t:ty; $($name:ident, $inplace:ident => |$x:ident, $p:ident| $e:expr;)*) => {$(
            multiversion! {
                pub fn $name(src: &[$t], dst: &mut [$t], $p: [f64; 3]) {
                    let _ = $p;
                    for (o, &$x) in dst.iter_mut().zip(src) {
                        *o = $e;
                    }
                }
            }
            multiversion! {
                pub fn $inplace(buf: &mut [$t], $p: [f64; 3]) {
                    let _ = $p;
                    for v in buf.iter_mut() {
                        let $x = *v;
                        *v = $e;
                    }
                }
            }
        )*};
    }

    fn relu_of<T: PartialOrd + Default + Copy>(x: T) -> T {
        #[allow(clippy::eq_op)]
        let nan = x != x;
        if x > T::default() || nan {
            x
        } else {
            T::default()
        }
    }

    /// 1, -1, or x itself for zeros and NaN (as `Unary::eval`).
    fn sign_of<T: PartialOrd + Copy + From<i8> + std::ops::Mul<Output = T>>(x: T) -> T {
        let zero = T::from(0);
        if x > zero {
            T::from(1)
        } else if x < zero {
            T::from(-1)
        } else {
            x * zero
        }
    }

    fn hardtanh_of(x: f64, lo: f64, hi: f64) -> f64 {
        if x < lo {
            lo
        } else if x > hi {
            hi
        } else {
            x
        }
    }

    kernels! { f32;
        exp, exp_ => |x, p| exp_f32(x);
        log, log_ => |x, p| log_f32(x);
        tanh, tanh_ => |x, p| tanh_f32(x);
        sigmoid, sigmoid_ => |x, p| sigmoid_f32(x);
        silu, silu_ => |x, p| x * sigmoid_f32(x);
        relu, relu_ => |x, p| relu_of(x);

        neg, neg_ => |x, p| -x;
        abs, abs_ => |x, p| x.abs();
        sqrt, sqrt_ => |x, p| x.sqrt();
        square, square_ => |x, p| x * x;
        reciprocal, reciprocal_ => |x, p| 1.0 / x;

        exp2, exp2_ => |x, p| exp2_f32(x);
        expm1, expm1_ => |x, p| expm1_f32(x);
        log2, log2_ => |x, p| log2_f32(x);
        log10, log10_ => |x, p| log10_f32(x);
        log1p, log1p_ => |x, p| log1p_f32(x);
        atan, atan_ => |x, p| atan_f32(x);
        asin, asin_ => |x, p| asin_f32(x);
        acos, acos_ => |x, p| acos_f32(x);
        asinh, asinh_ => |x, p| asinh_f32(x);
        acosh, acosh_ => |x, p| acosh_f32(x);
        atanh, atanh_ => |x, p| atanh_f32(x);
        sinh, sinh_ => |x, p| sinh_f32(x);
        cosh, cosh_ => |x, p| cosh_f32(x);
        erf, erf_ => |x, p| erf_f32(x);
        erfc, erfc_ => |x, p| erfc_f32(x);
        gelu, gelu_ => |x, p| gelu_f32(x);
        gelu_tanh, gelu_tanh_ => |x, p| gelu_tanh_f64(x as f64) as f32;
        mish, mish_ => |x, p| mish_f64(x as f64) as f32;
        softplus, softplus_ => |x, p| softplus_f64(x as f64, p[0], p[1]) as f32;
        elu, elu_ => |x, p| elu_f64(x as f64, p[0], p[1], p[2]) as f32;
        logsigmoid, logsigmoid_ => |x, p| logsigmoid_f64(x as f64) as f32;
        leaky_relu, leaky_relu_ => |x, p| {
            let xd = x as f64;
            (if xd > 0.0 { xd } else { xd * p[0] }) as f32
        };
        hardtanh, hardtanh_ => |x, p| hardtanh_of(x as f64, p[0], p[1]) as f32;
        hardsigmoid, hardsigmoid_ => |x, p| (x as f64 / 6.0 + 0.5).clamp(0.0, 1.0) as f32;
        hardswish, hardswish_ => |x, p| {
            let xd = x as f64;
            (xd * (xd + 3.0).clamp(0.0, 6.0) / 6.0) as f32
        };
        softsign, softsign_ => |x, p| {
            let xd = x as f64;
            (xd / (1.0 + xd.abs())) as f32
        };
        rsqrt, rsqrt_ => |x, p| (1.0 / (x as f64).sqrt()) as f32;
        sign, sign_ => |x, p| sign_of(x);
    }

    kernels! { f64;
        exp64, exp64_ => |x, p| exp_f64(x);
        log64, log64_ => |x, p| log_f64(x);
        expm164, expm164_ => |x, p| expm1_f64(x);
        log1p64, log1p64_ => |x, p| log1p_f64(x);
        tanh64, tanh64_ => |x, p| tanh_f64(x);
        sigmoid64, sigmoid64_ => |x, p| sigmoid_f64(x);
        silu64, silu64_ => |x, p| x / (1.0 + exp_f64(-x));
        relu64, relu64_ => |x, p| relu_of(x);
        neg64, neg64_ => |x, p| -x;
        abs64, abs64_ => |x, p| x.abs();
        sqrt64, sqrt64_ => |x, p| x.sqrt();
        square64, square64_ => |x, p| x * x;
        reciprocal64, reciprocal64_ => |x, p| 1.0 / x;
        gelu_tanh64, gelu_tanh64_ => |x, p| gelu_tanh_f64(x);
        mish64, mish64_ => |x, p| mish_f64(x);
        softplus64, softplus64_ => |x, p| softplus_f64(x, p[0], p[1]);
        elu64, elu64_ => |x, p| elu_f64(x, p[0], p[1], p[2]);
        logsigmoid64, logsigmoid64_ => |x, p| logsigmoid_f64(x);
        leaky_relu64, leaky_relu64_ => |x, p| if x > 0.0 { x } else { x * p[0] };
        hardtanh64, hardtanh64_ => |x, p| hardtanh_of(x, p[0], p[1]);
        hardsigmoid64, hardsigmoid64_ => |x, p| (x / 6.0 + 0.5).clamp(0.0, 1.0);
        hardswish64, hardswish64_ => |x, p| x * (x + 3.0).clamp(0.0, 6.0) / 6.0;
        softsign64, softsign64_ => |x, p| x / (1.0 + x.abs());
        rsqrt64, rsqrt64_ => |x, p| 1.0 / x.sqrt();
        sign64, sign64_ => |x, p| sign_of(x);
    }

    /// Blocks of 64 holding an element with |x| > `limit` (or a NaN)
    /// go through `slow` (the scalar f64 path), the others through `fast`.
    #[inline(always)]
    fn guarded(
        src: &[f32],
        dst: &mut [f32],
        limit: f32,
        fast: impl Fn(f32) -> f32,
        slow: impl Fn(f32) -> f32,
    ) {
        for (s, d) in src.chunks(64).zip(dst.chunks_mut(64)) {
            let wild = s
                .iter()
                .fold(false, |w, &x| w | (x.abs() > limit) | x.is_nan());
            if wild {
                for (o, &x) in d.iter_mut().zip(s) {
                    *o = slow(x);
                }
            } else {
                for (o, &x) in d.iter_mut().zip(s) {
                    *o = fast(x);
                }
            }
        }
    }

    /// [`guarded`] in place.
    #[inline(always)]
    fn guarded_(buf: &mut [f32], limit: f32, fast: impl Fn(f32) -> f32, slow: impl Fn(f32) -> f32) {
        for b in buf.chunks_mut(64) {
            let wild = b
                .iter()
                .fold(false, |w, &x| w | (x.abs() > limit) | x.is_nan());
            if wild {
                for v in b.iter_mut() {
                    *v = slow(*v);
                }
            } else {
                for v in b.iter_mut() {
                    *v = fast(*v);
                }
            }
        }
    }

    macro_rules! trig {
        ($($name:ident, $inplace:ident => $fast:ident, $slow:ident;)*) => {$(
            multiversion! {
                pub fn $name(src: &[f32], dst: &mut [f32], _p: [f64; 3]) {
                    guarded(src, dst, TRIG_LIMIT, $fast, |x| (x as f64).$slow() as f32)
                }
            }
            multiversion! {
                pub fn $inplace(buf: &mut [f32], _p: [f64; 3]) {
                    guarded_(buf, TRIG_LIMIT, $fast, |x| (x as f64).$slow() as f32)
                }
            }
        )*};
    }

    trig! {
        sin, sin_ => sin_f32, sin;
        cos, cos_ => cos_f32, cos;
        tan, tan_ => tan_f32, tan;
    }

    /// `dst = (x <= lo || x >= hi) ? 0 : g` (`g` of length 1: one value
    /// for all; a NaN `hi` never compares, so it means no upper bound).
    #[inline(always)]
    fn mask_grad<T: Copy + PartialOrd + Default>(g: &[T], x: &[T], lo: T, hi: T, dst: &mut [T]) {
        let zero = T::default();
        if let [gv] = *g {
            for (o, &xv) in dst.iter_mut().zip(x) {
                *o = if (xv <= lo) | (xv >= hi) { zero } else { gv };
            }
        } else {
            for ((o, &gv), &xv) in dst.iter_mut().zip(g).zip(x) {
                *o = if (xv <= lo) | (xv >= hi) { zero } else { gv };
            }
        }
    }

    multiversion! {
        pub fn mask_backward_f32(g: &[f32], x: &[f32], lo: f32, hi: f32, dst: &mut [f32]) {
            mask_grad(g, x, lo, hi, dst)
        }
    }

    multiversion! {
        pub fn mask_backward_f64(g: &[f64], x: &[f64], lo: f64, hi: f64, dst: &mut [f64]) {
            mask_grad(g, x, lo, hi, dst)
        }
    }
}

// ---- derivatives ----

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

impl Unary {
    /// Whether the output can carry a gradient (float ops that are not
    /// predicates or bit operations).
    fn differentiable(self) -> bool {
        !matches!(self.kind(), Kind::Predicate | Kind::Bitwise)
    }

    /// Which of the input and the output the derivative reads.
    fn saves(self) -> (bool, bool) {
        match self {
            // relu's and hardtanh's masks read the output (as PyTorch's
            // in-place forms): relu_ then needs no copy of its input.
            Exp | Exp2 | Expm1 | Sqrt | Rsqrt | Reciprocal | Tan | Tanh | Sigmoid | Erfinv
            | Relu | Hardtanh(..) => (false, true),
            Neg | Sign | Floor | Ceil | Round(_) | Trunc | Frac => (false, false),
            _ => (true, false),
        }
    }

    /// `d op(x)/dx * g`, written with ops so that it is differentiable
    /// again. `x` is the input and `y` the output (each only when `saves`
    /// asks for it; otherwise `g` stands in).
    fn derivative(self, x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Tensor> {
        use std::f64::consts::{LN_10, LN_2, PI};
        let one_minus_sq = |v: &Tensor| rsub_s(1.0, &un(Square, v)?);
        match self {
            Abs => mul(g, &un(Sign, x)?),
            Neg => neg(g),
            Sign | Floor | Ceil | Round(_) | Trunc => zeros_like(g),
            Frac => Ok(g.clone()),
            Exp => mul(g, y),
            Exp2 => scale(&mul(g, y)?, LN_2),
            Expm1 => mul(g, &add_s(y, 1.0)?),
            Log => div(g, x),
            Log2 => div(g, &scale(x, LN_2)?),
            Log10 => div(g, &scale(x, LN_10)?),
            Log1p => div(g, &add_s(x, 1.0)?),
            Sqrt => div(g, &scale(y, 2.0)?),
            Rsqrt => scale(&mul(g, &pow_s(y, 3.0)?)?, -0.5),
            Square => mul(g, &scale(x, 2.0)?),
            Reciprocal => neg(&mul(g, &un(Square, y)?)?),
            Sin => mul(g, &un(Cos, x)?),
            Cos => neg(&mul(g, &un(Sin, x)?)?),
            Tan => mul(g, &add_s(&un(Square, y)?, 1.0)?),
            Asin => mul(g, &un(Rsqrt, &one_minus_sq(x)?)?),
            Acos => neg(&mul(g, &un(Rsqrt, &one_minus_sq(x)?)?)?),
            Atan => div(g, &add_s(&un(Square, x)?, 1.0)?),
            Sinh => mul(g, &un(Cosh, x)?),
            Cosh => mul(g, &un(Sinh, x)?),
            Tanh => mul(g, &one_minus_sq(y)?),
            Asinh => mul(g, &un(Rsqrt, &add_s(&un(Square, x)?, 1.0)?)?),
            Acosh => mul(g, &un(Rsqrt, &add_s(&un(Square, x)?, -1.0)?)?),
            Atanh => div(g, &one_minus_sq(x)?),
            Sigmoid => mul(g, &mul(y, &rsub_s(1.0, y)?)?),
            Logit(eps) => {
                let d = div(g, &mul(x, &rsub_s(1.0, x)?)?)?;
                let (lo, hi, fill) = match eps {
                    Some(e) => (e, 1.0 - e, 0.0),
                    None => (0.0, 1.0, f64::NAN),
                };
                let inside = and(&cmp_s(BinaryOp::Ge, x, lo)?, &cmp_s(BinaryOp::Le, x, hi)?)?;
                where_s(&inside, &d, fill)
            }
            Erf => mul(
                g,
                &scale(&un(Exp, &neg(&un(Square, x)?)?)?, 2.0 / PI.sqrt())?,
            ),
            Erfc => mul(
                g,
                &scale(&un(Exp, &neg(&un(Square, x)?)?)?, -2.0 / PI.sqrt())?,
            ),
            Erfinv => mul(g, &scale(&un(Exp, &un(Square, y)?)?, PI.sqrt() / 2.0)?),
            Lgamma => mul(g, &un(Digamma, x)?),
            Digamma => mul(g, &un(Polygamma(1), x)?),
            Polygamma(n) => mul(g, &un(Polygamma(n + 1), x)?),
            Clamp(lo, hi) => {
                let keep = match (lo, hi) {
                    (Some(l), Some(h)) => and(
                        &cmp_s(BinaryOp::Ge, x, l.to_f64())?,
                        &cmp_s(BinaryOp::Le, x, h.to_f64())?,
                    )?,
                    (Some(l), None) => cmp_s(BinaryOp::Ge, x, l.to_f64())?,
                    (None, Some(h)) => cmp_s(BinaryOp::Le, x, h.to_f64())?,
                    (None, None) => return Ok(g.clone()),
                };
                where_s(&keep, g, 0.0)
            }
            NanToNum(..) => where_s(&un(IsFinite, x)?, g, 0.0),
            Relu => threshold_backward(g, y, 0.0),
            Gelu => {
                let cdf = scale(
                    &add_s(&un(Erf, &scale(x, std::f64::consts::FRAC_1_SQRT_2)?)?, 1.0)?,
                    0.5,
                )?;
                let pdf = scale(
                    &un(Exp, &scale(&un(Square, x)?, -0.5)?)?,
                    1.0 / (2.0 * PI).sqrt(),
                )?;
                mul(g, &crate::ops::arith::add(&cdf, &mul(x, &pdf)?)?)
            }
            GeluTanh => {
                // y = 0.5 x (1 + tanh(u)), u = k (x + 0.044715 x^3)
                let x2 = un(Square, x)?;
                let u = scale(
                    &mul(x, &add_s(&scale(&x2, 0.044715)?, 1.0)?)?,
                    SQRT_2_OVER_PI,
                )?;
                let th = un(Tanh, &u)?;
                let du = scale(&add_s(&scale(&x2, 3.0 * 0.044715)?, 1.0)?, SQRT_2_OVER_PI)?;
                let left = scale(&add_s(&th, 1.0)?, 0.5)?;
                let right = scale(&mul(&mul(x, &one_minus_sq(&th)?)?, &du)?, 0.5)?;
                mul(g, &crate::ops::arith::add(&left, &right)?)
            }
            Silu => {
                let sg = un(Sigmoid, x)?;
                let inner = add_s(&mul(x, &rsub_s(1.0, &sg)?)?, 1.0)?;
                mul(g, &mul(&sg, &inner)?)
            }
            Mish => {
                let th = un(Tanh, &un(Softplus(1.0, 20.0), x)?)?;
                let rest = mul(&mul(x, &un(Sigmoid, x)?)?, &one_minus_sq(&th)?)?;
                mul(g, &crate::ops::arith::add(&th, &rest)?)
            }
            Softplus(beta, threshold) => {
                let bx = scale(x, beta)?;
                let d = mul(g, &un(Sigmoid, &bx)?)?;
                crate::ops::arith::where_t(&cmp_s(BinaryOp::Gt, &bx, threshold)?, g, &d)
            }
            Elu(alpha, scl, input_scale) => {
                let neg_part = scale(
                    &mul(g, &un(Exp, &scale(x, input_scale)?)?)?,
                    alpha * scl * input_scale,
                )?;
                crate::ops::arith::where_t(
                    &cmp_s(BinaryOp::Gt, x, 0.0)?,
                    &scale(g, scl)?,
                    &neg_part,
                )
            }
            LeakyRelu(slope) => {
                crate::ops::arith::where_t(&cmp_s(BinaryOp::Gt, x, 0.0)?, g, &scale(g, slope)?)
            }
            Hardsigmoid => {
                let inside = and(
                    &cmp_s(BinaryOp::Gt, x, -3.0)?,
                    &cmp_s(BinaryOp::Lt, x, 3.0)?,
                )?;
                where_s(&inside, &scale(g, 1.0 / 6.0)?, 0.0)
            }
            Hardswish => {
                let mid = mul(g, &add_s(&scale(x, 1.0 / 3.0)?, 0.5)?)?;
                let upper = crate::ops::arith::where_t(&cmp_s(BinaryOp::Le, x, 3.0)?, &mid, g)?;
                where_s(&cmp_s(BinaryOp::Ge, x, -3.0)?, &upper, 0.0)
            }
            Softsign => div(g, &un(Square, &add_s(&un(Abs, x)?, 1.0)?)?),
            Tanhshrink => mul(g, &un(Square, &un(Tanh, x)?)?),
            Softshrink(l) | Hardshrink(l) => {
                where_s(&cmp_s(BinaryOp::Gt, &un(Abs, x)?, l)?, g, 0.0)
            }
            Threshold(th, _) => threshold_backward(g, x, th),
            Hardtanh(lo, hi) => mask_backward(g, y, lo, Some(hi)),
            LogSigmoid => mul(g, &un(Sigmoid, &neg(x)?)?),
            IsNan | IsInf | IsFinite | IsNegInf | IsPosInf | Signbit | LogicalNot | BitwiseNot => {
                zeros_like(g)
            }
        }
    }

    fn node_name(self) -> &'static str {
        let version = match self {
            Clamp(..) => 1,
            _ => 0,
        };
        crate::autograd::backward_name(self.name(), version)
    }
}

/// `threshold_backward(g, x, th)`: `g` where `x > th`, 0 elsewhere, with
/// PyTorch's rule `x <= th ? 0 : g` (so a NaN `x` passes `g` through): the
/// backward of `relu` (on its output) and `threshold`.
pub fn threshold_backward(g: &Tensor, x: &Tensor, th: f64) -> Result<Tensor> {
    mask_backward(g, x, th, None)
}

/// `(x <= lo || x >= hi) ? 0 : g` (no upper test when `hi` is None): the
/// backward of `threshold` and `relu` (PyTorch's `threshold_backward`) and
/// of `hardtanh` (its `hardtanh_backward`). One fused pass when the result
/// need not be differentiable again; otherwise a `where`, whose derivative
/// in `g` is the same mask.
fn mask_backward(g: &Tensor, x: &Tensor, lo: f64, hi: Option<f64>) -> Result<Tensor> {
    if !is_grad_enabled() {
        if let Some(out) = mask_backward_fused(g, x, lo, hi)? {
            return Ok(out);
        }
    }
    let mut zero = cmp_s(BinaryOp::Le, x, lo)?;
    if let Some(hi) = hi {
        let above = Operand::Tensor(cmp_s(BinaryOp::Ge, x, hi)?);
        zero =
            crate::ops::binary::binary(BinaryOp::LogicalOr, &Operand::Tensor(zero), &above, None)?;
    }
    crate::ops::ternary::where_(
        &zero,
        &Operand::Scalar(Scalar::Float(0.0)),
        &Operand::Tensor(g.clone()),
    )
}

/// [`mask_backward`] as one pass over float32/float64 operands of one
/// shape; `g` may be a single broadcast value (the backward of a `sum`).
/// None when the dtypes do not fit.
fn mask_backward_fused(g: &Tensor, x: &Tensor, lo: f64, hi: Option<f64>) -> Result<Option<Tensor>> {
    let dt = x.dtype();
    if g.dtype() != dt || g.shape() != x.shape() || !matches!(dt, DType::F32 | DType::F64) {
        return Ok(None);
    }
    let dense = |t: &Tensor| {
        let l = t.layout();
        l.is_contiguous() || l.strides.as_slice() == l.preserved_strides().as_slice()
    };
    let mut xs = if dense(x) {
        x.clone()
    } else {
        copy::contiguous(x)?
    };
    let scalar_g = g.strides().iter().all(|&s| s == 0);
    let gs = if scalar_g || (g.strides() == xs.strides() && dense(g)) {
        g.clone()
    } else {
        xs = copy::contiguous(&xs)?;
        copy::contiguous(g)?
    };
    let out = Tensor::empty_strided(x.shape(), &xs.layout().preserved_strides(), dt)?;
    let n = out.numel();
    if n == 0 {
        return Ok(Some(out));
    }
    // The kernels take a NaN upper bound as none (it never compares).
    let hi = hi.unwrap_or(f64::NAN);
    // Spans of dense tensors with one memory order (or the single value of
    // a broadcast `g`): flat index i is the same element in all three.
    let (px, pg, po) = (
        xs.raw_ptr() as usize,
        gs.raw_ptr() as usize,
        out.raw_ptr() as usize,
    );
    parallel::for_ranges(n, 1, 16, |s, e| {
        let gr = if scalar_g { 0..1 } else { s..e };
        // SAFETY: `xs` and `out` are dense spans of `n` elements of `dt`,
        // `gs` one of `n` or a single value; chunks [s, e) of `out` are disjoint.
        unsafe {
            if dt == DType::F64 {
                fast::mask_backward_f64(
                    std::slice::from_raw_parts((pg as *const f64).add(gr.start), gr.len()),
                    std::slice::from_raw_parts((px as *const f64).add(s), e - s),
                    lo,
                    hi,
                    std::slice::from_raw_parts_mut((po as *mut f64).add(s), e - s),
                );
            } else {
                fast::mask_backward_f32(
                    std::slice::from_raw_parts((pg as *const f32).add(gr.start), gr.len()),
                    std::slice::from_raw_parts((px as *const f32).add(s), e - s),
                    lo as f32,
                    hi as f32,
                    std::slice::from_raw_parts_mut((po as *mut f32).add(s), e - s),
                );
            }
        }
    });
    Ok(Some(out))
}

/// Saves what `op`'s derivative reads and attaches it (`x_saved` stands
/// for the input, which an in-place op must copy before overwriting).
fn record(
    mut rec: Recorder,
    op: Unary,
    x_saved: Option<&Tensor>,
    out: &Tensor,
    inplace: bool,
) -> Result<()> {
    let (sx, sy) = op.saves();
    let ix = match (sx, x_saved) {
        (true, Some(x)) => Some(rec.save(x)?),
        _ => None,
    };
    let iy = if sy {
        Some(rec.save_output(out, 0)?)
    } else {
        None
    };
    let backward = move |ctx: &crate::autograd::Ctx<'_>, grads: Vec<Option<Tensor>>| {
        let Some(g) = grads.into_iter().next().flatten() else {
            return Ok(vec![None]);
        };
        let x = match ix {
            Some(i) => ctx.saved(i)?,
            None => g.clone(),
        };
        let y = match iy {
            Some(i) => ctx.saved(i)?,
            None => g.clone(),
        };
        Ok(vec![Some(op.derivative(&x, &y, &g)?)])
    };
    if inplace {
        rec.finish_inplace(out, backward)
    } else {
        rec.finish(&[out], backward);
        Ok(())
    }
}

/// `op(x)` into a new tensor laid out like `x`.
pub fn unary(op: Unary, x: &Tensor) -> Result<Tensor> {
    let dtype = op.out_dtype(x.dtype())?;
    // The name is looked up only when recording (it takes a lock).
    let rec = if op.differentiable() && dtype.is_floating_point() && needs_grad(&[x]) {
        Recorder::new(op.node_name(), &[x])
    } else {
        None
    };
    let out = Tensor::empty_strided(x.shape(), &x.layout().preserved_strides(), dtype)?;
    let src = if op.kind() == Kind::Predicate || x.dtype() == dtype {
        x.clone()
    } else {
        copy::cast_copy(x, dtype)?
    };
    run(op, &src, &out);
    if let Some(rec) = rec {
        record(rec, op, Some(x), &out, false)?;
    }
    Ok(out)
}

/// `x.op_()`: in place; the result must keep `x`'s dtype.
pub fn unary_(op: Unary, x: &Tensor) -> Result<()> {
    let dtype = op.out_dtype(x.dtype())?;
    if dtype != x.dtype() {
        return Err(Error::Runtime(format!(
            "result type {} can't be cast to the desired output type {}",
            dtype.scalar_name(),
            x.dtype().scalar_name()
        )));
    }
    copy::check_no_internal_overlap(x)?;
    let rec = if op.differentiable() && dtype.is_floating_point() && is_grad_enabled() {
        Recorder::new_inplace(op.node_name(), x, &[])?
    } else {
        None
    };
    // The derivative may need the input the op is about to overwrite: a
    // copy made with grad mode on, so double backward reaches `x`'s history.
    let old = match &rec {
        Some(_) if op.saves().0 => {
            let _mode = crate::autograd::GradMode::set(true);
            Some(copy::clone(x)?)
        }
        _ => None,
    };
    run(op, x, x);
    x.bump_version();
    if let Some(rec) = rec {
        record(rec, op, old.as_ref(), x, true)?;
    }
    Ok(())
}

/// Writes `op(src)` into `out` (same shape; `out`'s dtype is the result dtype
/// and `src` already has it unless `op` is a predicate).
fn run(op: Unary, src: &Tensor, out: &Tensor) {
    let same_layout = src.strides() == out.strides() && src.dtype() == out.dtype();
    if same_layout {
        let p = op.params();
        let done = match out.dtype() {
            DType::F32 => op
                .fast()
                .is_some_and(|(k, k_, cost)| run_dense::<f32>(k, k_, cost, p, src, out)),
            DType::F64 => op
                .fast64()
                .is_some_and(|(k, k_, cost)| run_dense::<f64>(k, k_, cost, p, src, out)),
            DType::F16 => op
                .fast()
                .is_some_and(|(k, _, cost)| run_half::<half::f16>(k, cost, p, src, out)),
            DType::BF16 => op
                .fast()
                .is_some_and(|(k, _, cost)| run_half::<half::bf16>(k, cost, p, src, out)),
            _ => false,
        };
        if done {
            return;
        }
    }
    match op.kind() {
        Kind::Predicate => dispatch!(src.dtype(), T => {
            kernels::map1::<T, crate::tensor::dtype::Bool>(src, src.strides(), out, |v| {
                let x = v.to_f64();
                crate::tensor::dtype::Bool((if op == LogicalNot { x == 0.0 } else { op.test(x) }) as u8)
            });
        }),
        // On bools, `~` is logical negation.
        _ if out.dtype() == DType::Bool && op == BitwiseNot => {
            kernels::map1::<crate::tensor::dtype::Bool, crate::tensor::dtype::Bool>(
                src,
                src.strides(),
                out,
                |v| crate::tensor::dtype::Bool((v.0 == 0) as u8),
            );
        }
        _ if !out.dtype().is_floating_point() => dispatch!(out.dtype(), T => {
            kernels::map1::<T, T>(src, src.strides(), out, |v| T::from_i64(op.eval_int(v.to_i64())));
        }),
        _ => dispatch!(out.dtype(), T => {
            kernels::map1::<T, T>(src, src.strides(), out, |v| T::from_f64(op.eval(v.to_f64())));
        }),
    }
}

/// `op` over dense, same-layout `src` and `out` of one dtype through the
/// slice kernels `k` / `k_` (in place); false when the layouts are not dense.
fn run_dense<T: Element>(
    k: fn(&[T], &mut [T], [f64; 3]),
    k_: fn(&mut [T], [f64; 3]),
    cost: usize,
    p: [f64; 3],
    src: &Tensor,
    out: &Tensor,
) -> bool {
    let (Some(ps), Some(pd)) = (kernels::dense_span::<T>(src), kernels::dense_span::<T>(out))
    else {
        return false;
    };
    let (ps, pd) = (ps as usize, pd as usize);
    let in_place = ps == pd;
    parallel::for_ranges(out.numel(), cost, 16, |s, e| {
        // SAFETY: both spans cover `numel` elements (dense layouts of
        // validated tensors); chunks are disjoint. In place, only the
        // mutable slice is formed.
        unsafe {
            let (src, dst) = ((ps as *const T).add(s), (pd as *mut T).add(s));
            kernels::split_at_cache_line(dst, e - s, |a, b| {
                let d = std::slice::from_raw_parts_mut(dst.add(a), b - a);
                if in_place {
                    k_(d, p);
                } else {
                    k(std::slice::from_raw_parts(src.add(a), b - a), d, p);
                }
            });
        }
    });
    true
}

/// A half-type `op` over dense, same-layout `src` and `out` through the
/// f32 kernel `k` (`cpu::half`); false when the layouts are not dense.
fn run_half<T: crate::cpu::half::Half>(
    k: fast::Kernel,
    cost: usize,
    p: [f64; 3],
    src: &Tensor,
    out: &Tensor,
) -> bool {
    let (Some(ps), Some(pd)) = (kernels::dense_span::<T>(src), kernels::dense_span::<T>(out))
    else {
        return false;
    };
    let (ps, pd) = (ps as usize, pd as usize);
    parallel::for_ranges(out.numel(), cost + 1, 16, |s, e| {
        // SAFETY: both spans cover `numel` elements of validated dense
        // layouts; chunks are disjoint; in place, `src` equals `out`
        // position for position.
        unsafe {
            crate::cpu::half::staged::<T, 1>(
                [(ps as *const T, false)],
                pd as *mut T,
                s,
                e,
                |d, [x]| k(x, d, p),
            )
        }
    });
    true
}

/// `nan_to_num` resolves infinities to the output dtype's extremes.
pub fn nan_to_num(
    x: &Tensor,
    nan: f64,
    posinf: Option<f64>,
    neginf: Option<f64>,
) -> Result<Tensor> {
    let (lo, hi) = finite_range(x.dtype());
    unary(
        NanToNum(nan, Some(posinf.unwrap_or(hi)), Some(neginf.unwrap_or(lo))),
        x,
    )
}

/// The lowest and highest finite values of a float dtype.
pub fn finite_range(dtype: DType) -> (f64, f64) {
    let hi = match dtype {
        DType::F16 => half::f16::MAX.to_f64(),
        DType::BF16 => half::bf16::MAX.to_f64(),
        DType::F32 => f32::MAX as f64,
        _ => f64::MAX,
    };
    (-hi, hi)
}
