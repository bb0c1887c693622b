//! Run-time SIMD selection and vectorisable math.
//!
//! `multiversion!` compiles a slice kernel several times (AVX-512, AVX2+FMA,
//! baseline) and picks one per call from the CPU's features, so one wheel
//! runs fast everywhere without `target-cpu=native`. The kernels are plain
//! loops over slices written so LLVM vectorises them; the math functions
//! below are branch-free (selects, not ifs) for the same reason.
//!
//! Accuracy, measured by the sweeps in `tests` (max error in ULP of the
//! result, over 200k-point linear and log-spaced sweeps of the whole range,
//! subnormals included):
//!
//! | float32 | max ULP | reference |
//! |---|---|---|
//! | `exp_f32`, `log_f32` | 2 (tested bound) | f64 `exp`, `ln` |
//! | `tanh_f32`, `sigmoid_f32` | 4 (tested bound) | f64 `tanh`, 1/(1+e^-x) |
//! | `sin_f32`, `cos_f32`, `tan_f32` (\|x\| <= 1e6) | 0.50 | f64 libm |
//! | `exp2_f32`, `expm1_f32`, `log1p_f32`, `log2_f32`, `log10_f32` | 0.50 | f64 libm |
//! | `sinh_f32`, `cosh_f32`, `atan_f32` | 0.50 | f64 libm |
//! | `asin_f32`, `acos_f32`, `asinh_f32`, `acosh_f32`, `atanh_f32` | 0.50 | f64 libm |
//! | `erf_f32`, `erfc_f32`, `gelu_f32` | 0.52 | f64 libm `erf`, `erfc` |
//!
//! | float64 | max ULP | reference |
//! |---|---|---|
//! | `exp_f64`, `log_f64` | 1 | std (libm) |
//! | `expm1_f64`, `log1p_f64`, `logsigmoid_f64`, `elu_f64`, `gelu_tanh_f64` | 2 | std |
//! | `tanh_f64`, `softplus_f64` | 3 | std |
//! | `sigmoid_f64`, `mish_f64` | 4 | 1/(1+e^-x), x tanh(softplus x) in std f64 |
//!
//! The float32 functions after the first four evaluate in f64 (polynomials
//! accurate to ~1e-9 relative or better, Cody-Waite reductions) and round
//! once: at half the vector width they are still correctly rounded but for
//! rare ties. The trigonometric ones hold for |x| <= `TRIG_LIMIT`; their
//! kernels send blocks with larger (or non-finite) elements to scalar libm.
//! The f64 activations are what the float32 activation kernels round.

// Polynomial coefficients are kept as published (Cephes), even where f32
// rounds their last digit.
#![allow(clippy::excessive_precision)]

/// Defines `fn $name(args)` (with the visibility given) that runs `$body`
/// compiled for the best instruction set available at run time.
#[macro_export]
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn inner($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) { inner($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) { inner($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the CPU has the features `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            inner($($arg),*)
        }
    };
}

#[inline(always)]
fn select(c: bool, a: f32, b: f32) -> f32 {
    if c {
        a
    } else {
        b
    }
}

/// 2^n for integer-valued `n` in [-126, 127], built from the exponent bits.
/// Adding 1.5 * 2^23 puts `n` in the low mantissa bits; integer adds and
/// shifts on those vectorise, unlike a float-to-int `as` conversion.
#[inline(always)]
pub fn pow2i(n: f32) -> f32 {
    f32::from_bits((n + 12_582_912.0).to_bits().wrapping_add(127) << 23)
}

/// e^x (Cephes' range reduction and polynomial).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    let xc = x.clamp(-104.0, 88.8);
    // Round to nearest with the 1.5 * 2^23 trick (vectorises, unlike round()).
    let n = (xc * LOG2E + 12_582_912.0) - 12_582_912.0;
    let r = xc - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = horner(
        r,
        &[
            1.987_569_1e-4f32,
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            5.000_000_1e-1,
        ],
    );
    let y = p * r * r + r + 1.0;
    // Scale in two steps so results down to subnormals stay exact.
    let n1 = ((n * 0.5) + 12_582_912.0) - 12_582_912.0;
    let out = y * pow2i(n1) * pow2i(n - n1);
    let out = select(x > 88.722_84, f32::INFINITY, out);
    select(x.is_nan(), x, out)
}

/// ln(x) (Cephes' polynomial on the mantissa).
#[inline(always)]
pub fn log_f32(x: f32) -> f32 {
    // Subnormals are scaled into the normal range first.
    let sub = x < f32::MIN_POSITIVE;
    let xs = select(sub, x * 8_388_608.0, x);
    let bits = xs.to_bits();
    let mut e = ((bits >> 23) & 0xff) as f32 - 126.0;
    e = select(sub, e - 23.0, e);
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e = select(small, e - 1.0, e);
    m = select(small, m + m - 1.0, m - 1.0);
    let z = m * m;
    let p = horner(
        m,
        &[
            7.037_683_6e-2f32,
            -1.151_461e-1,
            1.167_699_9e-1,
            -1.242_014_1e-1,
            1.424_932_3e-1,
            -1.666_805_8e-1,
            2.000_071_4e-1,
            -2.499_999_4e-1,
            3.333_333e-1,
        ],
    );
    let y = p * m * z - 0.5 * z + e * -2.121_944_4e-4;
    let out = m + y + e * 0.693_359_4;
    let out = select(x == 0.0, f32::NEG_INFINITY, out);
    let out = select(x < 0.0 || x.is_nan(), f32::NAN, out);
    select(x == f32::INFINITY, x, out)
}

/// tanh(x): an odd polynomial near 0, 1 - 2 / (e^2|x| + 1) elsewhere.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = horner(
        z,
        &[
            -5.704_988_7e-3f32,
            2.063_908_9e-2,
            -5.373_971_6e-2,
            1.333_144_2e-1,
            -3.333_328_2e-1,
        ],
    );
    let small = p * z * x + x;
    let e = exp_f32(2.0 * a.min(9.0));
    let big = (1.0 - 2.0 / (e + 1.0)).copysign(x);
    let out = select(a < 0.625, small, big);
    select(x.is_nan(), x, out)
}

/// 1 / (1 + e^-x).
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

// ---- float64 ----

/// c[0] x^(n-1) + c[1] x^(n-2) + ... + c[n-1] by Horner's rule (unrolled
/// for the constant coefficient lists below).
#[inline(always)]
fn horner<T: Copy + std::ops::Mul<Output = T> + std::ops::Add<Output = T>>(x: T, c: &[T]) -> T {
    c[1..].iter().fold(c[0], |acc, &k| acc * x + k)
}

#[inline(always)]
fn select64(c: bool, a: f64, b: f64) -> f64 {
    if c {
        a
    } else {
        b
    }
}

/// 1.5 * 2^52: adding it rounds an f64 to an integer held in the low
/// mantissa bits (the f64 form of the trick in `pow2i`).
const ROUND64: f64 = 6_755_399_441_055_744.0;

/// ln 2 split so that `n * LN2_HI` is exact for |n| < 2^21.
const LN2_HI: f64 = 6.931_471_803_691_238_164_9e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;

/// The largest x with a finite e^x.
const EXP_MAX: f64 = 709.782_712_893_384;

/// 2^n for integer-valued `n` in [-1022, 1023].
#[inline(always)]
fn pow2i64(n: f64) -> f64 {
    f64::from_bits((n + ROUND64).to_bits().wrapping_add(1023) << 52)
}

/// `(n, r)` with x = n ln2 + r, |r| <= ln2 / 2 (x already clamped).
#[inline(always)]
fn reduce_ln2(x: f64) -> (f64, f64) {
    let n = (x * std::f64::consts::LOG2_E + ROUND64) - ROUND64;
    (n, (x - n * LN2_HI) - n * LN2_LO)
}

/// e^r - 1 for |r| <= ln2 / 2: its Taylor series to r^14 (the first term
/// left out is below 2^-56 relative).
#[inline(always)]
fn expm1_poly(r: f64) -> f64 {
    r + r * r * horner(r, &EXP_SERIES)
}

/// 1/k! for k = 14 down to 2: e^r - 1 - r = r^2 (1/2 + r/6 + ...).
const EXP_SERIES: [f64; 13] = [
    1.0 / 87_178_291_200.0,
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
];

/// e^x: x = n ln2 + r (Cody-Waite), e^r from its series, 2^n from the
/// exponent bits in two steps so subnormal results round once.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    let xc = x.clamp(-746.0, 710.0);
    let (n, r) = reduce_ln2(xc);
    let y = 1.0 + expm1_poly(r);
    let n1 = ((n * 0.5) + ROUND64) - ROUND64;
    let out = y * pow2i64(n1) * pow2i64(n - n1);
    let out = select64(x > EXP_MAX, f64::INFINITY, out);
    select64(x.is_nan(), x, out)
}

/// e^x - 1: 2^n (e^r - 1) + (2^n - 1), exact in its last step for
/// n <= 53; beyond, the -1 no longer shows.
#[inline(always)]
pub fn expm1_f64(x: f64) -> f64 {
    let xc = x.clamp(-40.0, 710.0);
    let (n, r) = reduce_ln2(xc);
    let p = expm1_poly(r);
    let h = pow2i64(n - 1.0);
    let big = h * (2.0 * p + 2.0);
    let h2 = h + h;
    let small = h2 * p + (h2 - 1.0);
    let out = select64(n > 53.0, big, small);
    let out = select64(x > EXP_MAX, f64::INFINITY, out);
    // x == 0 keeps the sign of zero; NaN passes through.
    select64(x == 0.0 || x.is_nan(), x, out)
}

/// ln(x): x = 2^e m with m in [sqrt(1/2), sqrt(2)), f = m - 1,
/// s = f / (2 + f) and ln m = 2 atanh(s) = f - s (f - 2 s^2 R(s^2)), R the
/// atanh series to s^21 (below 2^-56 relative for |s| <= 0.172).
#[inline(always)]
pub fn log_f64(x: f64) -> f64 {
    let sub = x < f64::MIN_POSITIVE;
    let xs = select64(sub, x * 18_014_398_509_481_984.0, x); // 2^54
    let bits = xs.to_bits();
    // The biased exponent as a float, without an integer conversion.
    let eb =
        f64::from_bits(0x4330_0000_0000_0000 | ((bits >> 52) & 0x7ff)) - 4_503_599_627_370_496.0;
    let mut e = eb - 1023.0;
    e = select64(sub, e - 54.0, e);
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > std::f64::consts::SQRT_2;
    m = select64(big, m * 0.5, m);
    e = select64(big, e + 1.0, e);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let q = horner(
        z,
        &[
            1.0 / 21.0,
            1.0 / 19.0,
            1.0 / 17.0,
            1.0 / 15.0,
            1.0 / 13.0,
            1.0 / 11.0,
            1.0 / 9.0,
            1.0 / 7.0,
            1.0 / 5.0,
            1.0 / 3.0,
        ],
    );
    let lm = f - s * (f - 2.0 * z * q);
    let out = e * LN2_HI + (lm + e * LN2_LO);
    let out = select64(x == 0.0, f64::NEG_INFINITY, out);
    let out = select64(x < 0.0 || x.is_nan(), f64::NAN, out);
    select64(x == f64::INFINITY, x, out)
}

/// ln(1 + x) = ln(u) x / (u - 1) with u = 1 + x rounded (the quotient
/// corrects for the rounding of u).
#[inline(always)]
pub fn log1p_f64(x: f64) -> f64 {
    let u = 1.0 + x;
    let out = log_f64(u) * (x / (u - 1.0));
    let out = select64(u == 1.0, x, out);
    select64(x == f64::INFINITY, x, out)
}

/// tanh(x) = t / (t + 2) with t = e^2|x| - 1, signed.
#[inline(always)]
pub fn tanh_f64(x: f64) -> f64 {
    let t = expm1_f64(2.0 * x.abs().min(22.0));
    let out = (t / (t + 2.0)).copysign(x);
    select64(x.is_nan(), x, out)
}

/// 1 / (1 + e^-x).
#[inline(always)]
pub fn sigmoid_f64(x: f64) -> f64 {
    1.0 / (1.0 + exp_f64(-x))
}

// ---- float32 through f64 ----
//
// These evaluate in f64 with polynomials accurate to float32 needs (about
// 1e-9 relative or better) and round once, so they land within 1 ULP of
// the exact result.

/// pi/2 split so that `n * PIO2_HI` is exact for |n| < 2^20.
const PIO2_HI: f64 = 1.570_796_326_734_125_614_17;
const PIO2_LO: f64 = 6.077_100_506_506_192_249_32e-11;

/// Beyond this |x| the trigonometric kernels leave elements to the scalar
/// path (the reduction's `n` must stay below 2^20).
pub const TRIG_LIMIT: f32 = 1.0e6;

/// sin r and cos r of x = n pi/2 + r, and n's low bits (|x| <= TRIG_LIMIT).
#[inline(always)]
fn sincos_wide(x: f32) -> (f64, f64, u64) {
    let xd = x as f64;
    let k = xd * std::f64::consts::FRAC_2_PI + ROUND64;
    let q = k.to_bits();
    let n = k - ROUND64;
    let r = (xd - n * PIO2_HI) - n * PIO2_LO;
    let z = r * r;
    // Taylor series on |r| <= pi/4 to r^13 and r^14.
    let ps = horner(
        z,
        &[
            -1.0 / 6_227_020_800.0,
            1.0 / 39_916_800.0,
            -1.0 / 362_880.0,
            1.0 / 5_040.0,
            -1.0 / 120.0,
            1.0 / 6.0,
        ],
    );
    // r (1 - ...) rather than r - ...: it keeps the sign of r = -0.
    let s = r * (1.0 - z * ps);
    let pc = horner(
        z,
        &[
            -1.0 / 87_178_291_200.0,
            1.0 / 479_001_600.0,
            -1.0 / 3_628_800.0,
            1.0 / 40_320.0,
            -1.0 / 720.0,
            1.0 / 24.0,
        ],
    );
    let c = 1.0 - 0.5 * z + z * z * pc;
    (s, c, q)
}

/// sin(x) for |x| <= TRIG_LIMIT (NaN passes through).
#[inline(always)]
pub fn sin_f32(x: f32) -> f32 {
    let (s, c, q) = sincos_wide(x);
    let v = select64(q & 1 == 0, s, c);
    select64(q & 2 == 0, v, -v) as f32
}

/// cos(x) for |x| <= TRIG_LIMIT.
#[inline(always)]
pub fn cos_f32(x: f32) -> f32 {
    let (s, c, q) = sincos_wide(x);
    let v = select64(q & 1 == 0, c, -s);
    select64(q & 2 == 0, v, -v) as f32
}

/// tan(x) for |x| <= TRIG_LIMIT.
#[inline(always)]
pub fn tan_f32(x: f32) -> f32 {
    let (s, c, q) = sincos_wide(x);
    select64(q & 1 == 0, s / c, -c / s) as f32
}

/// atan(x): reduced to |t| <= tan(pi/8) (atan x = pi/2 + atan(-1/x),
/// pi/4 + atan((x-1)/(x+1))), then its series to t^25.
#[inline(always)]
pub fn atan_f32(x: f32) -> f32 {
    (atan_wide((x as f64).abs()) as f32).copysign(x)
}

/// atan(a) for a >= 0 (or NaN), about 2e-12 relative: `atan_f32`'s core.
#[inline(always)]
fn atan_wide(a: f64) -> f64 {
    use std::f64::consts::{FRAC_PI_2, FRAC_PI_4};
    let big = a > 2.414_213_562_373_095;
    let mid = a > 0.414_213_562_373_095_1;
    let t = select64(big, -1.0 / a, select64(mid, (a - 1.0) / (a + 1.0), a));
    let y0 = select64(big, FRAC_PI_2, select64(mid, FRAC_PI_4, 0.0));
    let z = t * t;
    let p = horner(
        z,
        &[
            -1.0 / 25.0,
            1.0 / 23.0,
            -1.0 / 21.0,
            1.0 / 19.0,
            -1.0 / 17.0,
            1.0 / 15.0,
            -1.0 / 13.0,
            1.0 / 11.0,
            -1.0 / 9.0,
            1.0 / 7.0,
            -1.0 / 5.0,
            1.0 / 3.0,
        ],
    );
    y0 + (t - t * z * p)
}

/// asin(x) = atan(|x| / sqrt((1 - |x|)(1 + |x|))), signed; the factors
/// are exact in f64, so the result keeps `atan_wide`'s accuracy up to 1.
#[inline(always)]
pub fn asin_f32(x: f32) -> f32 {
    let a = (x as f64).abs();
    (atan_wide(a / ((1.0 - a) * (1.0 + a)).sqrt()) as f32).copysign(x)
}

/// acos(x) = 2 atan(sqrt((1 - x) / (1 + x))): accurate at both ends.
#[inline(always)]
pub fn acos_f32(x: f32) -> f32 {
    let x = x as f64;
    (2.0 * atan_wide(((1.0 - x) / (1.0 + x)).sqrt())) as f32
}

/// asinh(x) = ln(1 + a + a^2 / (1 + sqrt(1 + a^2))) with a = |x|, signed
/// (the log1p form keeps small arguments exact).
#[inline(always)]
pub fn asinh_f32(x: f32) -> f32 {
    let a = (x as f64).abs();
    let y = log1p_f64(a + a * a / (1.0 + (1.0 + a * a).sqrt()));
    (select64(a == f64::INFINITY, a, y) as f32).copysign(x)
}

/// acosh(x) = ln(1 + t + sqrt(t (2 + t))) with t = x - 1 (exact in f64);
/// NaN below 1.
#[inline(always)]
pub fn acosh_f32(x: f32) -> f32 {
    let t = x as f64 - 1.0;
    let y = log1p_f64(t + (t * (2.0 + t)).sqrt());
    select64(t < 0.0, f64::NAN, y) as f32
}

/// atanh(x) = ln(1 + 2a / (1 - a)) / 2 with a = |x|, signed.
#[inline(always)]
pub fn atanh_f32(x: f32) -> f32 {
    let a = (x as f64).abs();
    ((0.5 * log1p_f64(2.0 * a / (1.0 - a))) as f32).copysign(x)
}

/// 2^x.
#[inline(always)]
pub fn exp2_f32(x: f32) -> f32 {
    // 2^n 2^r with n = round(x) and r = x - n exact: integer x give
    // exact powers of two (so 2^-150 rounds to even, to 0).
    let xd = (x as f64).clamp(-160.0, 140.0);
    let n = (xd + ROUND64) - ROUND64;
    let y = 1.0 + expm1_poly((xd - n) * std::f64::consts::LN_2);
    (y * pow2i64(n)) as f32
}

/// e^x - 1.
#[inline(always)]
pub fn expm1_f32(x: f32) -> f32 {
    expm1_f64(x as f64) as f32
}

/// ln(1 + x).
#[inline(always)]
pub fn log1p_f32(x: f32) -> f32 {
    log1p_f64(x as f64) as f32
}

/// log2(x).
#[inline(always)]
pub fn log2_f32(x: f32) -> f32 {
    (log_f64(x as f64) * std::f64::consts::LOG2_E) as f32
}

/// log10(x).
#[inline(always)]
pub fn log10_f32(x: f32) -> f32 {
    (log_f64(x as f64) * std::f64::consts::LOG10_E) as f32
}

/// sinh(x) = (t + t / (t + 1)) / 2 with t = e^|x| - 1, signed.
#[inline(always)]
pub fn sinh_f32(x: f32) -> f32 {
    let t = expm1_f64((x as f64).abs().min(100.0));
    let out = (0.5 * (t + t / (t + 1.0))) as f32;
    let out = out.copysign(x);
    select(x.is_nan(), x, out)
}

/// cosh(x) = (e^|x| + e^-|x|) / 2.
#[inline(always)]
pub fn cosh_f32(x: f32) -> f32 {
    let e = exp_f64((x as f64).abs().min(100.0));
    let out = (0.5 * (e + 1.0 / e)) as f32;
    select(x.is_nan(), x, out)
}

/// erf(x) / x as a polynomial in x^2 on |x| <= 1 (a Chebyshev
/// least-squares fit, 4e-11 relative).
#[inline(always)]
fn erf_small(x: f64) -> f64 {
    let u = x * x;
    let p = horner(
        u,
        &[
            -9.673_590_947_028_872e-6,
            1.126_825_394_057_866_4e-4,
            -8.484_396_556_940_846e-4,
            5.221_053_412_978_722e-3,
            -2.686_543_831_068_032_4e-2,
            1.128_378_262_206_537_8e-1,
            -3.761_263_847_599_158_3e-1,
            1.128_379_167_062_360_6,
        ],
    );
    x * p
}

/// e^x to about 1e-12 relative for |x| <= 700, special values left out:
/// the float32-grade exp of `erfc_big` (the series to r^10).
#[inline(always)]
fn exp_lite(x: f64) -> f64 {
    let (n, r) = reduce_ln2(x);
    // The series from 1/10! on.
    let q = horner(r, &EXP_SERIES[4..]);
    (1.0 + (r + r * r * q)) * pow2i64(n)
}

/// erfc(z) for z >= 0.5: t exp(-z^2 + R(t)) with t = 2 / (2 + z) and R a
/// degree-10 fit (1.1e-9 absolute, so erfc to 1.1e-9 relative); 0 beyond
/// z = 10.5, where erfc is below the smallest float32.
#[inline(always)]
fn erfc_big(z: f64) -> f64 {
    let zc = z.clamp(0.5, 10.5);
    let t = 2.0 / (2.0 + zc);
    let r = horner(
        t,
        &[
            3.084_621_265_860_315_6e-2,
            1.087_422_922_321_522e-1,
            -8.943_319_756_440_654e-1,
            1.843_216_143_447_185_7,
            -1.623_593_474_473_079_6,
            6.370_438_467_889_157e-1,
            -3.428_942_710_663_604e-1,
            1.384_062_908_767_599e-1,
            3.675_734_010_591_17e-1,
            1.000_571_557_496_032_5,
            -1.265_531_232_775_439_3,
        ],
    );
    let out = t * exp_lite(r - zc * zc);
    select64(z > 10.5, 0.0, out)
}

/// erfc(x) to float32 accuracy (about 2e-9 relative), in f64.
#[inline(always)]
fn erfc_wide(x: f64) -> f64 {
    let e = erfc_big(x.abs());
    select64(x >= 0.5, e, select64(x > -1.0, 1.0 - erf_small(x), 2.0 - e))
}

/// erf(x) on 1 <= x <= 4 as a degree-16 polynomial in s = (x - 2.5) / 1.5
/// (a Chebyshev least-squares fit, 6e-10 absolute); erf(4) rounds to 1 in
/// float32, as every larger x.
#[inline(always)]
fn erf_mid(a: f64) -> f64 {
    let s = (a.clamp(1.0, 4.0) - 2.5) * (1.0 / 1.5);
    horner(
        s,
        &[
            7.403919719166635e-06,
            -0.0001538317487468211,
            0.00023024139986923593,
            0.0006738999588703211,
            -0.0019913923462473353,
            0.0006709135854299619,
            0.004635940381828342,
            -0.009742476745018559,
            0.006650058150012738,
            0.009303870991042023,
            -0.03187075519232299,
            0.046447836782476236,
            -0.043651326904380276,
            0.028181964738406864,
            -0.01225282838954786,
            0.0032674177560796866,
            0.9995930478582273,
        ],
    )
}

/// erf(x): two polynomials (no exp, no division).
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let xd = x as f64;
    let a = xd.abs();
    select64(a < 1.0, erf_small(xd), erf_mid(a).copysign(xd)) as f32
}

/// erfc(x).
#[inline(always)]
pub fn erfc_f32(x: f32) -> f32 {
    erfc_wide(x as f64) as f32
}

/// gelu(x) = x Phi(x) = x erfc(-x / sqrt 2) / 2 (no cancellation for x < 0).
#[inline(always)]
pub fn gelu_f32(x: f32) -> f32 {
    let xd = x as f64;
    (0.5 * xd * erfc_wide(-xd * std::f64::consts::FRAC_1_SQRT_2)) as f32
}

// ---- activations, in f64 (float32 kernels round the result once) ----

/// gelu with the tanh approximation: x (1 + tanh u) / 2 = x / (1 + e^-2u),
/// u = sqrt(2/pi) (x + 0.044715 x^3), with no cancellation for x < 0.
#[inline(always)]
pub fn gelu_tanh_f64(x: f64) -> f64 {
    let u = 0.797_884_560_802_865_4 * (x + 0.044715 * x * x * x);
    x / (1.0 + exp_f64(-2.0 * u))
}

/// mish(x) = x tanh(ln(1 + e^x)) = x n / (n + 2), n = e^x (e^x + 2);
/// x itself above 20 (as softplus's threshold).
#[inline(always)]
pub fn mish_f64(x: f64) -> f64 {
    let e = exp_f64(x.min(20.0));
    let n = e * (e + 2.0);
    select64(x > 20.0, x, x * n / (n + 2.0))
}

/// softplus: x where beta x > threshold, else ln(1 + e^(beta x)) / beta.
#[inline(always)]
pub fn softplus_f64(x: f64, beta: f64, threshold: f64) -> f64 {
    let bx = x * beta;
    select64(bx > threshold, x, log1p_f64(exp_f64(bx)) / beta)
}

/// log(sigmoid(x)) = min(x, 0) - ln(1 + e^-|x|).
#[inline(always)]
pub fn logsigmoid_f64(x: f64) -> f64 {
    x.min(0.0) - log1p_f64(exp_f64(-x.abs()))
}

/// elu / selu / celu: scale x for x > 0, else scale alpha (e^(x input_scale) - 1).
#[inline(always)]
pub fn elu_f64(x: f64, alpha: f64, scale: f64, input_scale: f64) -> f64 {
    select64(
        x > 0.0,
        scale * x,
        scale * alpha * expm1_f64(x * input_scale),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f64) -> f64 {
        let bf = b as f32;
        // (b may round to an infinity in f32.)
        if a.is_nan() && b.is_nan() || a as f64 == b || a == bf && a.is_infinite() {
            return 0.0;
        }
        let ulp = (f32::from_bits(bf.abs().to_bits() + 1) - bf.abs()) as f64;
        ((a as f64 - b) / ulp).abs()
    }

    fn sweep(lo: f32, hi: f32, f: fn(f32) -> f32, r: fn(f64) -> f64, max_ulps: f64) {
        let n = 200_001;
        for i in 0..n {
            let x = lo + (hi - lo) * i as f32 / (n - 1) as f32;
            let e = ulps(f(x), r(x as f64));
            assert!(
                e <= max_ulps,
                "x={x}: got {} want {} ({e} ulps)",
                f(x),
                r(x as f64)
            );
        }
    }

    #[test]
    fn exp_is_within_two_ulps() {
        sweep(-87.0, 88.7, exp_f32, f64::exp, 2.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(ulps(exp_f32(-100.0), (-100.0f64).exp()) <= 2.0);
    }

    #[test]
    fn log_is_within_two_ulps() {
        sweep(1e-30, 1e3, log_f32, f64::ln, 2.0);
        sweep(0.5, 2.0, log_f32, f64::ln, 2.0);
        assert_eq!(log_f32(0.0), f32::NEG_INFINITY);
        assert!(log_f32(-1.0).is_nan());
        assert!(ulps(log_f32(1e-40), (1e-40f32 as f64).ln()) <= 2.0);
    }

    #[test]
    fn tanh_and_sigmoid_are_within_four_ulps() {
        sweep(-12.0, 12.0, tanh_f32, f64::tanh, 4.0);
        sweep(-30.0, 30.0, sigmoid_f32, |x| 1.0 / (1.0 + (-x).exp()), 4.0);
    }

    /// The largest error of `f` against `r` over `n` points spread
    /// evenly in magnitude (log-spaced) from `lo` to `hi` (> 0), both signs
    /// when `signed`.
    fn sweep_log(lo: f32, hi: f32, signed: bool, f: fn(f32) -> f32, r: fn(f64) -> f64) -> f64 {
        let n = 200_001;
        let (a, b) = ((lo as f64).ln(), (hi as f64).ln());
        let mut worst: f64 = 0.0;
        for i in 0..n {
            let x = (a + (b - a) * i as f64 / (n - 1) as f64).exp() as f32;
            for x in if signed { vec![x, -x] } else { vec![x] } {
                let e = ulps(f(x), r(x as f64));
                assert!(e.is_finite(), "x={x}: got {} want {}", f(x), r(x as f64));
                worst = worst.max(e);
            }
        }
        worst
    }

    /// `sweep`'s largest error (linear spacing), asserting `max_ulps`.
    fn worst(lo: f32, hi: f32, f: fn(f32) -> f32, r: fn(f64) -> f64, max_ulps: f64) -> f64 {
        let n = 200_001;
        let mut w: f64 = 0.0;
        for i in 0..n {
            let x = lo + (hi - lo) * i as f32 / (n - 1) as f32;
            let e = ulps(f(x), r(x as f64));
            assert!(
                e <= max_ulps,
                "x={x}: got {} want {} ({e} ulps)",
                f(x),
                r(x as f64)
            );
            w = w.max(e);
        }
        w
    }

    fn check(name: &str, w: f64, max_ulps: f64) {
        println!("{name}: max {w:.3} ulp");
        assert!(w <= max_ulps, "{name}: {w} ulps");
    }

    fn erfc_ref(x: f64) -> f64 {
        libm::erfc(x)
    }

    #[test]
    fn trig_f32_is_within_one_ulp() {
        for (name, f, r) in [
            ("sin", sin_f32 as fn(f32) -> f32, f64::sin as fn(f64) -> f64),
            ("cos", cos_f32, f64::cos),
            ("tan", tan_f32, f64::tan),
        ] {
            let w = worst(-10.0, 10.0, f, r, 1.0)
                .max(worst(-TRIG_LIMIT, TRIG_LIMIT, f, r, 1.0))
                .max(sweep_log(1e-40, TRIG_LIMIT, true, f, r));
            check(name, w, 1.0);
        }
        assert_eq!(sin_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tan_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(cos_f32(0.0), 1.0);
        assert!(sin_f32(f32::NAN).is_nan() && cos_f32(f32::NAN).is_nan());
    }

    #[test]
    fn exp_log_family_f32_is_within_one_ulp() {
        let w = worst(-150.0, 128.5, exp2_f32, f64::exp2, 1.0);
        check("exp2", w, 1.0);
        assert_eq!(exp2_f32(128.0), f32::INFINITY);
        assert_eq!(exp2_f32(-150.0), 0.0);
        assert_eq!(exp2_f32(3.0), 8.0);
        let w = worst(-1.0, 1.0, expm1_f32, f64::exp_m1, 1.0)
            .max(worst(-110.0, 88.7, expm1_f32, f64::exp_m1, 1.0))
            .max(sweep_log(1e-40, 88.0, true, expm1_f32, f64::exp_m1));
        check("expm1", w, 1.0);
        assert_eq!(expm1_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(expm1_f32(89.0), f32::INFINITY);
        assert_eq!(expm1_f32(f32::NEG_INFINITY), -1.0);
        let w = worst(-0.999_999, 10.0, log1p_f32, f64::ln_1p, 1.0)
            .max(sweep_log(1e-40, 3e38, false, log1p_f32, f64::ln_1p))
            .max(sweep_log(
                1e-40,
                0.999,
                false,
                |x| log1p_f32(-x),
                |x| (-x).ln_1p(),
            ));
        check("log1p", w, 1.0);
        assert_eq!(log1p_f32(-1.0), f32::NEG_INFINITY);
        assert!(log1p_f32(-2.0).is_nan());
        assert_eq!(log1p_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(log1p_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        for (name, f, r) in [
            (
                "log2",
                log2_f32 as fn(f32) -> f32,
                f64::log2 as fn(f64) -> f64,
            ),
            ("log10", log10_f32, f64::log10),
        ] {
            let w = sweep_log(1e-45, 3.4e38, false, f, r).max(worst(0.5, 2.0, f, r, 1.0));
            check(name, w, 1.0);
            assert_eq!(f(0.0), f32::NEG_INFINITY);
            assert!(f(-1.0).is_nan() && f(f32::NAN).is_nan());
            assert_eq!(f(f32::INFINITY), f32::INFINITY);
        }
        assert_eq!(log2_f32(1024.0), 10.0);
        assert_eq!(log10_f32(1000.0), 3.0);
    }

    #[test]
    fn hyperbolic_and_atan_f32_are_within_one_ulp() {
        let w = worst(-90.0, 90.0, sinh_f32, f64::sinh, 1.0).max(sweep_log(
            1e-40,
            89.4,
            true,
            sinh_f32,
            f64::sinh,
        ));
        check("sinh", w, 1.0);
        let w = worst(-90.0, 90.0, cosh_f32, f64::cosh, 1.0);
        check("cosh", w, 1.0);
        assert_eq!(sinh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(sinh_f32(f32::NEG_INFINITY), f32::NEG_INFINITY);
        assert_eq!(cosh_f32(f32::NEG_INFINITY), f32::INFINITY);
        assert!(sinh_f32(f32::NAN).is_nan() && cosh_f32(f32::NAN).is_nan());
        let w = worst(-5.0, 5.0, atan_f32, f64::atan, 1.0).max(sweep_log(
            1e-40,
            3e38,
            true,
            atan_f32,
            f64::atan,
        ));
        check("atan", w, 1.0);
        assert_eq!(atan_f32(f32::INFINITY), std::f32::consts::FRAC_PI_2);
        for (name, f, r, lo, hi) in [
            (
                "asin",
                asin_f32 as fn(f32) -> f32,
                f64::asin as fn(f64) -> f64,
                -1.0,
                1.0,
            ),
            ("acos", acos_f32, f64::acos, -1.0, 1.0),
            ("atanh", atanh_f32, f64::atanh, -0.999_999_94, 0.999_999_94),
            ("asinh", asinh_f32, f64::asinh, -100.0, 100.0),
            ("acosh", acosh_f32, f64::acosh, 1.0, 100.0),
        ] {
            let mut w = worst(lo, hi, f, r, 1.0);
            if name != "acos" && name != "acosh" {
                w = w.max(sweep_log(1e-40, hi.min(3e38), true, f, r));
            }
            check(name, w, 1.0);
            assert!(f(f32::NAN).is_nan() && f(hi * 2.0 + 3.0).is_nan() == (hi < 2.0));
        }
        let w = sweep_log(1e-40, 3e38, true, asinh_f32, f64::asinh)
            .max(sweep_log(1.0, 3e38, false, acosh_f32, f64::acosh))
            .max(sweep_log(
                1e-40,
                1.0,
                false,
                |x| acosh_f32(1.0 + x),
                |x| ((1.0 + x as f32) as f64).acosh(),
            ));
        check("asinh/acosh wide", w, 1.0);
        assert_eq!(asinh_f32(f32::NEG_INFINITY), f32::NEG_INFINITY);
        assert_eq!(acosh_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(atanh_f32(-1.0), f32::NEG_INFINITY);
        assert_eq!(acos_f32(-1.0), std::f32::consts::PI);
        assert_eq!(asin_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert!(acosh_f32(0.5).is_nan() && acosh_f32(-3.0).is_nan() && atanh_f32(1.5).is_nan());
        assert_eq!(atan_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert!(atan_f32(f32::NAN).is_nan());
    }

    #[test]
    fn erf_family_f32_is_within_one_ulp() {
        let w = worst(-6.0, 6.0, erf_f32, libm::erf, 1.0).max(sweep_log(
            1e-40,
            10.0,
            true,
            erf_f32,
            libm::erf,
        ));
        check("erf", w, 1.0);
        let w = worst(-6.0, 10.1, erfc_f32, erfc_ref, 1.0)
            .max(sweep_log(1e-40, 10.0, true, erfc_f32, erfc_ref));
        check("erfc", w, 1.0);
        let gelu = |x: f64| 0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2);
        let w = worst(-14.0, 14.0, gelu_f32, gelu, 1.0)
            .max(sweep_log(1e-40, 1e30, true, gelu_f32, gelu));
        check("gelu", w, 1.0);
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(erfc_f32(f32::NEG_INFINITY), 2.0);
        assert_eq!(erfc_f32(f32::INFINITY), 0.0);
        assert_eq!(gelu_f32(f32::INFINITY), f32::INFINITY);
        assert!(erf_f32(f32::NAN).is_nan() && erfc_f32(f32::NAN).is_nan());
        assert!(gelu_f32(f32::NAN).is_nan());
    }

    fn ulps64(a: f64, b: f64) -> f64 {
        if a.is_nan() && b.is_nan() || a == b {
            return 0.0;
        }
        let ulp = f64::from_bits(b.abs().to_bits() + 1) - b.abs();
        ((a - b) / ulp).abs()
    }

    /// The largest error of `f` against `r` on `n` points, linear from `lo`
    /// to `hi` and log-spaced in magnitude from `tiny` to `hi.abs()`.
    fn worst64(lo: f64, hi: f64, tiny: f64, f: fn(f64) -> f64, r: fn(f64) -> f64) -> f64 {
        let n = 200_001;
        let mut w: f64 = 0.0;
        let (a, b) = (tiny.ln(), hi.abs().max(lo.abs()).ln());
        for i in 0..n {
            let t = i as f64 / (n - 1) as f64;
            let m = (a + (b - a) * t).exp();
            for x in [lo + (hi - lo) * t, m, -m] {
                if x < lo || x > hi {
                    continue;
                }
                let e = ulps64(f(x), r(x));
                assert!(e.is_finite(), "x={x}: got {} want {}", f(x), r(x));
                w = w.max(e);
            }
        }
        w
    }

    #[test]
    fn f64_kernels_are_within_a_few_ulps() {
        check(
            "exp64",
            worst64(-745.0, 709.78, 1e-300, exp_f64, f64::exp),
            2.0,
        );
        check(
            "expm164",
            worst64(-50.0, 709.78, 1e-300, expm1_f64, f64::exp_m1),
            2.0,
        );
        check(
            "log64",
            worst64(1e-320, 1e308, 1e-320, log_f64, f64::ln),
            2.0,
        );
        check(
            "log64 near 1",
            worst64(0.5, 2.0, 0.5, log_f64, f64::ln),
            2.0,
        );
        check(
            "log1p64",
            worst64(-0.999_999, 1e300, 1e-300, log1p_f64, f64::ln_1p),
            3.0,
        );
        check(
            "tanh64",
            worst64(-25.0, 25.0, 1e-300, tanh_f64, f64::tanh),
            3.0,
        );
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        check(
            "sigmoid64",
            worst64(-700.0, 700.0, 1e-300, sigmoid_f64, sig),
            4.0,
        );
        assert_eq!(exp_f64(710.0), f64::INFINITY);
        assert_eq!(exp_f64(-746.0), 0.0);
        assert_eq!(exp_f64(-745.0), (-745.0f64).exp());
        assert!(exp_f64(f64::NAN).is_nan() && log_f64(f64::NAN).is_nan());
        assert_eq!(expm1_f64(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(expm1_f64(f64::NEG_INFINITY), -1.0);
        assert_eq!(log_f64(0.0), f64::NEG_INFINITY);
        assert!(log_f64(-1.0).is_nan());
        assert_eq!(log_f64(f64::INFINITY), f64::INFINITY);
        assert_eq!(log_f64(1.0), 0.0);
        assert_eq!(log1p_f64(-1.0), f64::NEG_INFINITY);
        assert_eq!(tanh_f64(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh_f64(f64::INFINITY), 1.0);
        assert!(tanh_f64(f64::NAN).is_nan());
    }

    #[test]
    fn activations_in_f64_are_within_a_few_ulps() {
        // 0.5 x (1 + tanh u) cancels for x < 0: the reference uses the
        // identity 1 + tanh u = 2 / (1 + e^-2u) too.
        let gt = |x: f64| {
            x / (1.0 + (-2.0 * (0.797_884_560_802_865_4 * (x + 0.044715 * x * x * x))).exp())
        };
        check(
            "gelu_tanh",
            worst64(-50.0, 50.0, 1e-300, gelu_tanh_f64, gt),
            4.0,
        );
        let mish = |x: f64| x * (if x > 20.0 { x } else { x.exp().ln_1p() }).tanh();
        check("mish", worst64(-700.0, 50.0, 1e-300, mish_f64, mish), 4.0);
        let sp = |x: f64| if x > 20.0 { x } else { x.exp().ln_1p() };
        check(
            "softplus",
            worst64(-700.0, 50.0, 1e-300, |x| softplus_f64(x, 1.0, 20.0), sp),
            4.0,
        );
        let ls = |x: f64| x.min(0.0) - (-x.abs()).exp().ln_1p();
        check(
            "logsigmoid",
            worst64(-50.0, 700.0, 1e-300, logsigmoid_f64, ls),
            4.0,
        );
        let elu = |x: f64| {
            if x > 0.0 {
                2.0 * x
            } else {
                2.0 * 1.5 * (x * 0.5).exp_m1()
            }
        };
        check(
            "elu",
            worst64(-700.0, 50.0, 1e-300, |x| elu_f64(x, 1.5, 2.0, 0.5), elu),
            4.0,
        );
    }
}
