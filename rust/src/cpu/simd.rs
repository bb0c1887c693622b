//! Run-time SIMD selection and vectorisable math.
//!
//! `multiversion!` compiles a slice kernel several times (AVX-512, AVX2+FMA,
//! baseline) and picks one per call from the CPU's features, so one wheel
//! runs fast everywhere without `target-cpu=native`. The kernels are plain
//! loops over slices written so LLVM vectorises them; the math functions
//! below are branch-free (selects, not ifs) for the same reason.
//!
//! Accuracy (tested against f64 references in `tests`): `exp_f32` and
//! `log_f32` within 2 ULP, `tanh_f32` and `sigmoid_f32` within 4 ULP.

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
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
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
    let mut p = 7.037_683_6e-2f32;
    p = p * m - 1.151_461e-1;
    p = p * m + 1.167_699_9e-1;
    p = p * m - 1.242_014_1e-1;
    p = p * m + 1.424_932_3e-1;
    p = p * m - 1.666_805_8e-1;
    p = p * m + 2.000_071_4e-1;
    p = p * m - 2.499_999_4e-1;
    p = p * m + 3.333_333e-1;
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
    let mut p = -5.704_988_7e-3f32;
    p = p * z + 2.063_908_9e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328_2e-1;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f64) -> f64 {
        if a.is_nan() && b.is_nan() || a as f64 == b {
            return 0.0;
        }
        let bf = b as f32;
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
}
