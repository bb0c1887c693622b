//! float16 / bfloat16 through the float32 kernels.
//!
//! Elementwise math on half types computes in float32 (PyTorch's "opmath"
//! type) and rounds once to the half type. Rather than converting one
//! element at a time through f64, dense spans are widened a block at a time
//! into an L1-sized f32 buffer, run through the
//! vectorised f32 kernel, and narrowed back.

use crate::cpu::kernels::dense_span;
use crate::cpu::parallel;
use crate::multiversion;
use crate::tensor::{DType, Element, Tensor};

/// Elements per staged block: three f32 blocks stay within L1.
pub const BLOCK: usize = 1024;

/// A 16-bit float that converts to and from f32 slices.
pub trait Half: Element {
    fn widen(src: &[Self], dst: &mut [f32]);
    fn narrow(src: &[f32], dst: &mut [Self]);
}

// The conversions are branch-free bit arithmetic (selects, no ifs) that
// LLVM vectorises; the `half` crate's slice conversions call an F16C
// function per 8 elements, which cost 4x the f32 kernel they fed.

/// IEEE half to single: shift exponent and mantissa into place and rescale
/// by 2^112 (which also normalises subnormals); Inf/NaN keep all-ones.
#[inline(always)]
fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let em = h & 0x7fff;
    let scaled = f32::from_bits(em << 13) * f32::from_bits(0x7780_0000);
    // NaNs come out quiet, as from F16C's vcvtph2ps.
    let quiet = ((em > 0x7c00) as u32) << 22;
    let special = f32::from_bits((em << 13) | 0x7f80_0000 | quiet);
    let v = if em >= 0x7c00 { special } else { scaled };
    f32::from_bits(v.to_bits() | ((h & 0x8000) << 16))
}

/// Single to IEEE half, rounding to nearest even: overflow gives Inf (NaN
/// becomes a quiet NaN), subnormal results come from a float add that rounds
/// them in hardware, normal ones from integer rounding of the mantissa.
#[inline(always)]
fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = bits & 0x8000_0000;
    let f = bits ^ sign;
    // NaN keeps its payload's top bits, quieted (as F16C's vcvtps2ph).
    let big = if f > 0x7f80_0000 {
        0x7e00 | ((f >> 13) & 0x3ff)
    } else {
        0x7c00
    };
    let sub = (f32::from_bits(f) + 0.5)
        .to_bits()
        .wrapping_sub(0x3f00_0000);
    let odd = (f >> 13) & 1;
    let normal = f
        .wrapping_add(0xc800_0fff) // (15 - 127) << 23, plus 0xfff
        .wrapping_add(odd)
        >> 13;
    let o = if f >= 0x4780_0000 {
        big
    } else if f < 0x3880_0000 {
        sub
    } else {
        normal
    };
    (o | (sign >> 16)) as u16
}

/// bfloat16 to single: the top half of the bits.
#[inline(always)]
fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Single to bfloat16, rounding to nearest even; NaN stays a quiet NaN.
#[inline(always)]
fn f32_to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    let rounded = (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16;
    let nan = ((b >> 16) as u16) | 0x40;
    if x.is_nan() {
        nan
    } else {
        rounded
    }
}

multiversion! {
    fn widen_f16_bits(src: &[u16], dst: &mut [f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = f16_to_f32(s);
        }
    }
}

multiversion! {
    fn narrow_f16_bits(src: &[f32], dst: &mut [u16]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = f32_to_f16(s);
        }
    }
}

/// float16 slices through AVX-512's conversion instructions, 16 lanes at a
/// time (twice the speed of the bit arithmetic, with identical results:
/// round to nearest even, NaNs quieted). Each returns how many leading
/// elements it converted.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        _mm256_loadu_si256, _mm256_storeu_si256, _mm512_cvtph_ps, _mm512_cvtps_ph, _mm512_loadu_ps,
        _mm512_storeu_ps, _MM_FROUND_NO_EXC, _MM_FROUND_TO_NEAREST_INT,
    };

    #[target_feature(enable = "avx512f")]
    pub fn widen(src: &[u16], dst: &mut [f32]) -> usize {
        let n = src.len().min(dst.len()) / 16 * 16;
        for i in (0..n).step_by(16) {
            // SAFETY: `i + 16 <= n` elements of both slices.
            unsafe {
                let h = _mm256_loadu_si256(src.as_ptr().add(i).cast());
                _mm512_storeu_ps(dst.as_mut_ptr().add(i), _mm512_cvtph_ps(h));
            }
        }
        n
    }

    #[target_feature(enable = "avx512f")]
    pub fn narrow(src: &[f32], dst: &mut [u16]) -> usize {
        const RNE: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        let n = src.len().min(dst.len()) / 16 * 16;
        for i in (0..n).step_by(16) {
            // SAFETY: `i + 16 <= n` elements of both slices.
            unsafe {
                let h = _mm512_cvtps_ph::<RNE>(_mm512_loadu_ps(src.as_ptr().add(i)));
                _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), h);
            }
        }
        n
    }
}

fn widen_f16(src: &[u16], dst: &mut [f32]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        done = unsafe { avx512::widen(src, dst) };
    }
    widen_f16_bits(&src[done..], &mut dst[done..]);
}

fn narrow_f16(src: &[f32], dst: &mut [u16]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        done = unsafe { avx512::narrow(src, dst) };
    }
    narrow_f16_bits(&src[done..], &mut dst[done..]);
}

multiversion! {
    fn widen_bf16(src: &[u16], dst: &mut [f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = bf16_to_f32(s);
        }
    }
}

multiversion! {
    fn narrow_bf16(src: &[f32], dst: &mut [u16]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = f32_to_bf16(s);
        }
    }
}

impl Half for half::f16 {
    fn widen(src: &[Self], dst: &mut [f32]) {
        widen_f16(bytemuck::cast_slice(src), dst);
    }
    fn narrow(src: &[f32], dst: &mut [Self]) {
        narrow_f16(src, bytemuck::cast_slice_mut(dst));
    }
}

impl Half for half::bf16 {
    fn widen(src: &[Self], dst: &mut [f32]) {
        widen_bf16(bytemuck::cast_slice(src), dst);
    }
    fn narrow(src: &[f32], dst: &mut [Self]) {
        narrow_bf16(src, bytemuck::cast_slice_mut(dst));
    }
}

/// Whether `d` is a half type this module stages.
pub fn is_half(d: DType) -> bool {
    matches!(d, DType::F16 | DType::BF16)
}

/// Runs `f(dst, srcs)` on f32 copies of elements `s..e` of each input and
/// narrows `dst` into the output, block by block. An input given with
/// `scalar` set is one element, broadcast (widened into every block).
///
/// # Safety
/// Each input pointer is valid for reads of `e` elements (one when scalar),
/// `out` for writes of `e` elements; inputs may alias `out` only at the
/// same positions (in-place ops), as each block is read before written.
pub unsafe fn staged<T: Half, const N: usize>(
    inputs: [(*const T, bool); N],
    out: *mut T,
    s: usize,
    e: usize,
    f: impl Fn(&mut [f32], &[&[f32]; N]),
) {
    let mut bufs = [[0f32; BLOCK]; N];
    let mut dst = [0f32; BLOCK];
    for (i, &(p, scalar)) in inputs.iter().enumerate() {
        if scalar {
            // SAFETY: a scalar input is one valid element.
            let v = unsafe { *p };
            bufs[i].fill(v.to_f64() as f32);
        }
    }
    let mut at = s;
    while at < e {
        let len = BLOCK.min(e - at);
        for (buf, &(p, scalar)) in bufs.iter_mut().zip(&inputs) {
            if !scalar {
                // SAFETY: the caller guarantees `p` is readable for `e`
                // elements; the slice ends before the block is written.
                let src = unsafe { std::slice::from_raw_parts(p.add(at), len) };
                T::widen(src, &mut buf[..len]);
            }
        }
        let views: [&[f32]; N] = std::array::from_fn(|i| &bufs[i][..len]);
        f(&mut dst[..len], &views);
        // SAFETY: `out` is writable for `e` elements and no input slice is
        // alive any more.
        let o = unsafe { std::slice::from_raw_parts_mut(out.add(at), len) };
        T::narrow(&dst[..len], o);
        at += len;
    }
}

/// Copies `src` (read with `src_strides`) into `dst` when one is float32
/// and the other float16/bfloat16, both dense and laid out alike: the
/// vectorised conversions above, split over threads. False otherwise (the
/// caller takes the generic path).
pub fn convert(src: &Tensor, src_strides: &[isize], dst: &Tensor) -> bool {
    if src_strides != dst.strides() {
        return false;
    }
    match (src.dtype(), dst.dtype()) {
        (DType::F16, DType::F32) => convert_typed::<half::f16, f32>(src, dst, half::f16::widen),
        (DType::BF16, DType::F32) => convert_typed::<half::bf16, f32>(src, dst, half::bf16::widen),
        (DType::F32, DType::F16) => convert_typed::<f32, half::f16>(src, dst, half::f16::narrow),
        (DType::F32, DType::BF16) => convert_typed::<f32, half::bf16>(src, dst, half::bf16::narrow),
        _ => false,
    }
}

fn convert_typed<S: Element, D: Element>(
    src: &Tensor,
    dst: &Tensor,
    f: fn(&[S], &mut [D]),
) -> bool {
    let (Some(ps), Some(pd)) = (dense_span::<S>(src), dense_span::<D>(dst)) else {
        return false;
    };
    let (ps, pd) = (ps as usize, pd as usize);
    parallel::for_ranges(dst.numel(), 1, 64, |s, e| {
        // SAFETY: both dense spans cover `numel` elements of validated
        // layouts (different dtypes, so distinct allocations or a
        // same-size reinterpretation never arises); chunks are disjoint.
        unsafe {
            f(
                std::slice::from_raw_parts((ps as *const S).add(s), e - s),
                std::slice::from_raw_parts_mut((pd as *mut D).add(s), e - s),
            )
        }
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every one of the 65,536 half values round-trips, and the conversions
    /// agree with the `half` crate's (IEEE, round to nearest even) on all
    /// halves and on f32 values around every rounding boundary.
    #[test]
    fn conversions_match_the_half_crate_exactly() {
        for bits in 0..=u16::MAX {
            let h = half::f16::from_bits(bits);
            let f = f16_to_f32(bits);
            assert_eq!(f.to_bits(), h.to_f32().to_bits(), "{bits:#x}");
            if !f.is_nan() {
                assert_eq!(f32_to_f16(f), bits);
            }
            // bfloat16 NaNs widen by the shift alone (as PyTorch's do).
            let b = half::bf16::from_bits(bits);
            if b.is_nan() {
                assert!(bf16_to_f32(bits).is_nan());
            } else {
                assert_eq!(bf16_to_f32(bits).to_bits(), b.to_f32().to_bits());
                assert_eq!(f32_to_bf16(b.to_f32()), bits);
            }
        }
        let mut x = 0x0000_0001u32;
        while x < 0x7f80_0000 {
            for d in [0u32, 1, 0xfff, 0x1000, 0x1001, 0x7fff, 0x8000, 0x8001] {
                for sign in [0, 0x8000_0000] {
                    let f = f32::from_bits((x + d) | sign);
                    assert_eq!(f32_to_f16(f), half::f16::from_f32(f).to_bits(), "{f:e}");
                    assert_eq!(f32_to_bf16(f), half::bf16::from_f32(f).to_bits(), "{f:e}");
                }
            }
            x += 0x0001_3579;
        }
        for f in [
            f32::INFINITY,
            f32::NEG_INFINITY,
            65519.0,
            65520.0,
            1e-8,
            6e-8,
        ] {
            assert_eq!(f32_to_f16(f), half::f16::from_f32(f).to_bits(), "{f:e}");
        }
        assert!(f16_to_f32(f32_to_f16(f32::NAN)).is_nan());
        assert!(bf16_to_f32(f32_to_bf16(f32::NAN)).is_nan());
    }

    /// The slice conversions (hardware where the CPU has it) give the bit
    /// arithmetic's results on every half and around every rounding
    /// boundary, NaN payloads included.
    #[test]
    fn slice_conversions_match_the_scalar_ones() {
        let halves: Vec<u16> = (0..=u16::MAX).collect();
        let mut wide = vec![0f32; halves.len()];
        widen_f16(&halves, &mut wide);
        for (&h, w) in halves.iter().zip(&wide) {
            assert_eq!(w.to_bits(), f16_to_f32(h).to_bits(), "{h:#x}");
        }
        let mut floats: Vec<f32> = wide.clone();
        let mut x = 0x0000_0001u32;
        while x < 0x7fc0_0000 {
            for d in [0u32, 1, 0xfff, 0x1000, 0x1001, 0x7fff, 0x8000, 0x8001] {
                floats.push(f32::from_bits(x + d));
                floats.push(f32::from_bits((x + d) | 0x8000_0000));
            }
            x += 0x0001_3579;
        }
        floats.push(f32::from_bits(0x7f80_1234));
        let mut narrow = vec![0u16; floats.len()];
        narrow_f16(&floats, &mut narrow);
        for (&f, &h) in floats.iter().zip(&narrow) {
            assert_eq!(h, f32_to_f16(f), "{:#x}", f.to_bits());
        }
    }
}
