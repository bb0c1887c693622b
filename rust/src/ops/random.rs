//! Random fills: `uniform_`, `normal_`, `random_`, `bernoulli`, `randperm`.
//! Element `i` of a fill uses Philox block `offset + i / per_block`, lane
//! `i % per_block`, so any device can compute element `i` on its own.

use crate::cpu::kernels;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::ops::copy;
use crate::random::{philox, philox16, u32_to_unit_f32, u64_to_unit_f64, Generator};
use crate::tensor::{DType, Element, Tensor};

/// A fresh contiguous tensor of `dtype` whose element `i` is `f(block, lane)`.
/// Chunks split over threads at block boundaries: each element depends on
/// its index only, so the result is the same for any thread count.
fn draw<T: Element>(
    gen: &Generator,
    shape: &[usize],
    per_block: usize,
    f: impl Fn(&[u32; 4], usize) -> T + Sync,
) -> Result<Tensor> {
    let out = Tensor::empty(shape, T::DTYPE)?;
    let n = out.numel();
    let (key, start) = gen.reserve(n.div_ceil(per_block) as u64);
    let p = out.data_ptr::<T>() as usize;
    // About 8 ns an element (a Philox block is ten rounds).
    crate::cpu::parallel::for_ranges(n, 8, per_block, |s, e| {
        let mut block = [0u32; 4];
        for i in s..e {
            if i % per_block == 0 || i == s {
                block = philox(start + (i / per_block) as u64, 0, key);
            }
            // SAFETY: `out` is a fresh contiguous buffer of `n` elements;
            // chunks are disjoint.
            unsafe { *(p as *mut T).add(i) = f(&block, i % per_block) };
        }
    });
    Ok(out)
}

/// 64 random bits from lanes `2 * lane` and `2 * lane + 1`.
fn wide(b: &[u32; 4], lane: usize) -> u64 {
    ((b[2 * lane] as u64) << 32) | b[2 * lane + 1] as u64
}

/// Uniforms in [0, 1) at the precision of `dtype` (53 bits for float64, else 24).
fn uniforms(
    gen: &Generator,
    shape: &[usize],
    dtype: DType,
    map: impl Fn(f64) -> f64 + Sync,
) -> Result<Tensor> {
    if dtype == DType::F64 {
        draw(gen, shape, 2, |b, l| map(u64_to_unit_f64(wide(b, l))))
    } else {
        draw(gen, shape, 4, |b, l| map(u32_to_unit_f32(b[l])))
    }
}

fn require_float(t: &Tensor, op: &str) -> Result<()> {
    if !t.dtype().is_floating_point() {
        return Err(Error::Runtime(format!(
            "\"{op}\" not implemented for '{}'",
            t.dtype().scalar_name()
        )));
    }
    Ok(())
}

pub fn uniform_(t: &Tensor, from: f64, to: f64, gen: &Generator) -> Result<()> {
    require_float(t, "check_uniform_bounds")?;
    if from > to {
        return Err(Error::Runtime(format!(
            "uniform_ expects to return a [from, to) range, but found from={from} > to={to}"
        )));
    }
    copy::copy_(
        t,
        &uniforms(gen, t.shape(), t.dtype(), |x| from + (to - from) * x)?,
    )
}

/// Box-Muller: lanes pair up (uniform radius, uniform angle) into cos/sin samples.
fn box_muller(u_radius: f64, u_angle: f64, cos: bool) -> f64 {
    // 1 - u lies in (0, 1], so the log is finite.
    let r = (-2.0 * (1.0 - u_radius).ln()).sqrt();
    let th = std::f64::consts::TAU * u_angle;
    if cos {
        r * th.cos()
    } else {
        r * th.sin()
    }
}

pub fn normal_(t: &Tensor, mean: f64, std: f64, gen: &Generator) -> Result<()> {
    require_float(t, "normal_kernel_cpu")?;
    if std < 0.0 {
        return Err(Error::Runtime(format!(
            "normal expects std >= 0.0, but found std {std}"
        )));
    }
    let z = if t.dtype() == DType::F64 {
        draw(gen, t.shape(), 2, |b, l| {
            let (u, v) = (u64_to_unit_f64(wide(b, 0)), u64_to_unit_f64(wide(b, 1)));
            mean + std * box_muller(u, v, l == 0)
        })?
    } else {
        draw(gen, t.shape(), 4, |b, l| {
            let p = 2 * (l / 2);
            let (u, v) = (u32_to_unit_f32(b[p]), u32_to_unit_f32(b[p + 1]));
            mean + std * box_muller(u, v, l % 2 == 0)
        })?
    };
    copy::copy_(t, &z)
}

/// Uniform integers in `[low, high)`; `high = None` means the dtype's range
/// (floats: `[0, 2^mantissa]`), as `Tensor.random_`.
pub fn random_(t: &Tensor, low: i64, high: Option<i64>, gen: &Generator) -> Result<()> {
    let high = match high {
        Some(h) => h,
        None => match t.dtype() {
            DType::F32 => 1 << 24,
            DType::F64 => 1 << 53,
            DType::F16 => 1 << 11,
            DType::BF16 => 1 << 8,
            DType::Bool => 2,
            d => dispatch!(d, T => {
                let max = <T as Element>::from_i64(i64::MAX).to_i64();
                if max == i64::MAX { i64::MAX } else { max + 1 }
            }),
        },
    };
    if low >= high {
        return Err(Error::Runtime(format!(
            "random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )));
    }
    let range = (high as i128 - low as i128) as u128;
    let vals = draw(gen, t.shape(), 2, |b, l| {
        (low as i128 + (wide(b, l) as u128 % range) as i128) as i64
    })?;
    copy::copy_(t, &vals)
}

/// `torch.bernoulli(p)`: 1 where a uniform draw falls below `p`.
pub fn bernoulli(p: &Tensor, gen: &Generator) -> Result<Tensor> {
    let probs = copy::cast_copy(p, DType::F64)?;
    let ps = probs.data_ptr::<f64>();
    // SAFETY: `probs` is a fresh contiguous buffer of `numel` elements.
    let in_range = (0..probs.numel()).all(|i| (0.0..=1.0).contains(unsafe { &*ps.add(i) }));
    if !in_range {
        return Err(Error::Runtime(
            "Expected p_in >= 0 && p_in <= 1 to be true, but got false.".into(),
        ));
    }
    let u = uniforms(gen, p.shape(), DType::F64, |x| x)?;
    let out = Tensor::empty(p.shape(), p.dtype())?;
    dispatch!(p.dtype(), T => {
        kernels::map2::<f64, f64, T>(&u, u.strides(), &probs, probs.strides(), &out, |x, q| T::from_bool(x < q));
    });
    Ok(out)
}

/// `t.bernoulli_(p)` for a number `p`: each element 1 with probability
/// `p`, drawn straight in `t`'s dtype (dropout's mask).
pub fn bernoulli_scalar_(t: &Tensor, p: f64, gen: &Generator) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::Runtime(format!(
            "bernoulli_ expects p to be in [0, 1], but got p={p}"
        )));
    }
    if t.is_contiguous() && !t.requires_grad() {
        // Straight into `t`: the same draws as the path below, a vectorised
        // Philox and no temporary.
        let n = t.numel();
        let (key, start) = gen.reserve(n.div_ceil(4) as u64);
        let limit = keep_limit(p);
        dispatch!(t.dtype(), T => {
            keep_fill::<T>(t.data_ptr::<T>(), n, key, start, limit, T::from_bool(true), T::from_bool(false));
        });
        t.bump_version();
        return Ok(());
    }
    let drawn: Tensor;
    dispatch!(t.dtype(), T => {
        drawn = draw::<T>(gen, t.shape(), 4, |b, l| {
            T::from_bool(u32_to_unit_f32(b[l]) < p)
        })?;
    });
    copy::copy_(t, &drawn)
}

/// The integer form of `u32_to_unit_f32(x) < p`: `(x >> 8) < keep_limit(p)`
/// (for an integer `u`, `u < y` exactly when `u < ceil(y)`; `p * 2^24` is
/// exact in f64).
fn keep_limit(p: f64) -> u32 {
    (p * 16_777_216.0).ceil().clamp(0.0, 16_777_216.0) as u32
}

/// Fills the `n` contiguous elements at `out` with `on` where the element's
/// draw (Philox block `start + i / 4` under `key`, lane `i % 4`, as
/// [`draw`] with 4 per block) has `(bits >> 8) < limit`, `off` elsewhere.
fn keep_fill<T: Element>(out: *mut T, n: usize, key: u64, start: u64, limit: u32, on: T, off: T) {
    let p = out as usize;
    // About 1.5 ns an element; chunks start on 64-element (16-block) groups.
    crate::cpu::parallel::for_ranges(n, 2, 64, |s, e| {
        // SAFETY: `out` holds `n` contiguous elements of T; chunks are disjoint.
        let dst = unsafe { std::slice::from_raw_parts_mut((p as *mut T).add(s), e - s) };
        keep_rows(dst, start + (s / 4) as u64, key, limit, on, off);
    });
}

/// [`keep_fill`] of one chunk starting on a block boundary, per ISA.
fn keep_rows<T: Element>(dst: &mut [T], block0: u64, key: u64, limit: u32, on: T, off: T) {
    #[inline(always)]
    fn body<T: Element>(dst: &mut [T], block0: u64, key: u64, limit: u32, on: T, off: T) {
        for (g, chunk) in dst.chunks_mut(64).enumerate() {
            let b = philox16(block0 + 16 * g as u64, key);
            let mut keep = [false; 64];
            for j in 0..16 {
                for l in 0..4 {
                    keep[4 * j + l] = (b[l][j] >> 8) < limit;
                }
            }
            for (o, &k) in chunk.iter_mut().zip(&keep) {
                *o = if k { on } else { off };
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn avx512<T: Element>(d: &mut [T], b: u64, k: u64, l: u32, on: T, off: T) {
            body(d, b, k, l, on, off)
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<T: Element>(d: &mut [T], b: u64, k: u64, l: u32, on: T, off: T) {
            body(d, b, k, l, on, off)
        }
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: the CPU has the features `avx512` is compiled for.
            return unsafe { avx512(dst, block0, key, limit, on, off) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features `avx2` is compiled for.
            return unsafe { avx2(dst, block0, key, limit, on, off) };
        }
    }
    body(dst, block0, key, limit, on, off)
}

/// `torch.randperm(n)` by Fisher-Yates, in place in the output buffer.
pub fn randperm(n: i64, dtype: DType, gen: &Generator) -> Result<Tensor> {
    if n < 0 {
        return Err(Error::Runtime(format!("n must be non-negative, got{n}")));
    }
    let n = n as usize;
    let perm = Tensor::empty(&[n], DType::I64)?;
    let p = perm.data_ptr::<i64>();
    let (key, start) = gen.reserve(n.div_ceil(2) as u64);
    // SAFETY: `perm` is a fresh contiguous buffer of `n` elements, and
    // `j <= i < n` below.
    unsafe {
        for i in 0..n {
            *p.add(i) = i as i64;
        }
        for i in (1..n).rev() {
            let r = wide(&philox(start + (i / 2) as u64, 0, key), i % 2);
            let j = (r % (i as u64 + 1)) as usize;
            std::ptr::swap(p.add(i), p.add(j));
        }
    }
    copy::to_dtype(&perm, dtype, false)
}
