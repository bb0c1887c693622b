//! Random fills: `uniform_`, `normal_`, `random_`, `bernoulli`, `randperm`.
//! Element `i` of a fill uses Philox block `offset + i / per_block`.

use crate::dispatch;
use crate::error::{Error, Result};
use crate::ops::copy;
use crate::random::{philox, u32_to_unit_f32, u64_to_unit_f64, Generator};
use crate::tensor::{DType, Element, Tensor};

/// Draws `n` values, `per_block` from each Philox block, via `f(block, lane)`.
fn draw<V>(
    gen: &Generator,
    n: usize,
    per_block: usize,
    mut f: impl FnMut(&[u32; 4], usize) -> V,
) -> Vec<V> {
    let blocks = n.div_ceil(per_block) as u64;
    let (key, start) = gen.reserve(blocks);
    let mut out = Vec::with_capacity(n);
    let mut block = [0u32; 4];
    for i in 0..n {
        if i % per_block == 0 {
            block = philox(start + (i / per_block) as u64, 0, key);
        }
        out.push(f(&block, i % per_block));
    }
    out
}

fn wide(b: &[u32; 4], lane: usize) -> u64 {
    ((b[2 * lane] as u64) << 32) | b[2 * lane + 1] as u64
}

/// Writes `vals` (row-major) into `t` and records the write.
fn write_f64(t: &Tensor, vals: &[f64]) -> Result<()> {
    let src = Tensor::from_slice(vals, t.shape())?;
    copy::copy_(t, &src)
}

fn uniforms(gen: &Generator, n: usize, dtype: DType) -> Vec<f64> {
    if dtype == DType::F64 {
        draw(gen, n, 2, |b, l| u64_to_unit_f64(wide(b, l)))
    } else {
        draw(gen, n, 4, |b, l| u32_to_unit_f32(b[l]))
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
    let u = uniforms(gen, t.numel(), t.dtype());
    let vals: Vec<f64> = u.iter().map(|&x| from + (to - from) * x).collect();
    write_f64(t, &vals)
}

/// Standard normal samples by Box-Muller, two per pair of uniforms.
pub fn standard_normal(gen: &Generator, n: usize, dtype: DType) -> Vec<f64> {
    let pairs = n.div_ceil(2);
    let u = uniforms(gen, pairs * 2, dtype);
    let mut out = Vec::with_capacity(pairs * 2);
    for p in u.chunks_exact(2) {
        // 1 - u lies in (0, 1], so the log is finite.
        let r = (-2.0 * (1.0 - p[0]).ln()).sqrt();
        let th = std::f64::consts::TAU * p[1];
        out.push(r * th.cos());
        out.push(r * th.sin());
    }
    out.truncate(n);
    out
}

pub fn normal_(t: &Tensor, mean: f64, std: f64, gen: &Generator) -> Result<()> {
    require_float(t, "normal_kernel_cpu")?;
    if std < 0.0 {
        return Err(Error::Runtime(format!(
            "normal expects std >= 0.0, but found std {std}"
        )));
    }
    let vals: Vec<f64> = standard_normal(gen, t.numel(), t.dtype())
        .iter()
        .map(|&z| mean + std * z)
        .collect();
    write_f64(t, &vals)
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
    let vals: Vec<i64> = draw(gen, t.numel(), 2, |b, l| {
        (low as i128 + (wide(b, l) as u128 % range) as i128) as i64
    });
    let src = Tensor::from_slice(&vals, t.shape())?;
    copy::copy_(t, &src)
}

/// `torch.bernoulli(p)`: 1 where a uniform draw falls below `p`.
pub fn bernoulli(p: &Tensor, gen: &Generator) -> Result<Tensor> {
    let probs = copy::to_vec::<f64>(p);
    if probs.iter().any(|&x| !(0.0..=1.0).contains(&x)) {
        return Err(Error::Runtime(
            "Expected p_in >= 0 && p_in <= 1 to be true, but got false.".into(),
        ));
    }
    let u = uniforms(gen, probs.len(), DType::F64);
    let vals: Vec<f64> = u
        .iter()
        .zip(&probs)
        .map(|(&x, &q)| (x < q) as u8 as f64)
        .collect();
    let out = Tensor::empty(p.shape(), p.dtype())?;
    write_f64(&out, &vals)?;
    Ok(out)
}

/// `torch.randperm(n)` by Fisher-Yates.
pub fn randperm(n: i64, dtype: DType, gen: &Generator) -> Result<Tensor> {
    if n < 0 {
        return Err(Error::Runtime(format!("n must be non-negative, got{n}")));
    }
    let n = n as usize;
    let mut perm: Vec<i64> = (0..n as i64).collect();
    let r = draw(gen, n, 2, wide);
    for i in (1..n).rev() {
        let j = (r[i] % (i as u64 + 1)) as usize;
        perm.swap(i, j);
    }
    copy::cast_copy(&Tensor::from_slice(&perm, &[n])?, dtype)
}
