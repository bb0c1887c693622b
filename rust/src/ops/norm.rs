//! Fused batch, layer and group normalisation.
//!
//! Batch and group norm share one scheme: the input is seen as rows of `S`
//! contiguous elements (one per (sample, channel)); each row belongs to one
//! statistics set (its channel for batch norm, its (sample, group) for group
//! norm) and has one affine channel. Statistics are two passes over each
//! row while it is in cache (mean, then the sum of squared deviations, so
//! large means do not cancel), summed in f64 across blocks of the row and
//! merged exactly across rows. Layer norm normalises each row of the trailing
//! `normalized_shape` and its affine parameters run along the row.
//!
//! Each forward keeps mean and 1/std for its backward, a dedicated kernel of
//! the closed-form gradient. When the backward itself must be differentiated
//! (grad mode on inside it, as under `create_graph=True`), the same gradient
//! is written with differentiable tensor ops instead.

use std::sync::{Arc, Mutex};

use crate::autograd::Recorder;
use crate::cpu::parallel;
use crate::error::{Error, Result};
use crate::multiversion;
use crate::ops::arith::{add_s, mul, pow_s, sub};
use crate::ops::pool::{compute_dtype, fdispatch, prep, Fl};
use crate::ops::{copy, creation, reduce, shape};
use crate::tensor::{DType, Element, Tensor};

/// Lanes per step and elements per block of the `block_*` sums: lanes of
/// the element type within a block (16 terms a lane), f64 across blocks.
/// They vectorise (f64 lanes fed from float32 came out as scalar converts)
/// and stay accurate on long rows. 64 lanes are four independent vector
/// accumulators, so the adds do not wait on one another's latency (twice
/// as fast as one 16-lane accumulator on a layer norm row of 768).
const LANES: usize = 64;
const BLOCK: usize = 1024;

/// The sum of a block's lanes: folded to 16 in the element type, then
/// pairwise in f64.
#[inline(always)]
fn fold<T: Fl>(acc: &[T; LANES]) -> f64 {
    let mut a = [T::ZERO; 16];
    for k in 0..16 {
        a[k] = (acc[k] + acc[k + 16]) + (acc[k + 32] + acc[k + 48]);
    }
    let q: [f64; 4] = std::array::from_fn(|k| {
        (a[k].to_f64() + a[k + 4].to_f64()) + (a[k + 8].to_f64() + a[k + 12].to_f64())
    });
    (q[0] + q[1]) + (q[2] + q[3])
}

/// Sum of `x`.
#[inline(always)]
fn block_sum<T: Fl>(x: &[T]) -> f64 {
    let mut total = 0.0;
    for b in x.chunks(BLOCK) {
        let mut acc = [T::ZERO; LANES];
        let ch = b.chunks_exact(LANES);
        for &v in ch.remainder() {
            total += v.to_f64();
        }
        for c in ch {
            for k in 0..LANES {
                acc[k] += c[k];
            }
        }
        total += fold(&acc);
    }
    total
}

/// Sum of `(x - m)^2`.
#[inline(always)]
fn block_sq_dev<T: Fl>(x: &[T], m: f64) -> f64 {
    let mt = T::from_f64(m);
    let mut total = 0.0;
    for b in x.chunks(BLOCK) {
        let mut acc = [T::ZERO; LANES];
        let ch = b.chunks_exact(LANES);
        for &v in ch.remainder() {
            total += (v.to_f64() - m) * (v.to_f64() - m);
        }
        for c in ch {
            for k in 0..LANES {
                let d = c[k] - mt;
                acc[k] += d * d;
            }
        }
        total += fold(&acc);
    }
    total
}

/// Sum of `g * (x - m)`.
#[inline(always)]
fn block_dot<T: Fl>(g: &[T], x: &[T], m: f64) -> f64 {
    let mt = T::from_f64(m);
    let mut total = 0.0;
    for (gb, xb) in g.chunks(BLOCK).zip(x.chunks(BLOCK)) {
        let mut acc = [T::ZERO; LANES];
        let (gc, xc) = (gb.chunks_exact(LANES), xb.chunks_exact(LANES));
        for (&gv, &xv) in gc.remainder().iter().zip(xc.remainder()) {
            total += gv.to_f64() * (xv.to_f64() - m);
        }
        for (gs, xs) in gc.zip(xc) {
            for k in 0..LANES {
                acc[k] += gs[k] * (xs[k] - mt);
            }
        }
        total += fold(&acc);
    }
    total
}

/// Batch and group norm's per-row kernels, compiled per instruction set
/// (`multiversion!`; the generic loops alone would be SSE2 code) for each
/// float type.
trait RowKernels: Fl {
    /// (mean, sum of squared deviations) of a row: two passes.
    fn moments(x: &[Self]) -> (f64, f64);
    /// (sum of g, sum of g * (x - m)).
    fn dot(g: &[Self], x: &[Self], m: f64) -> (f64, f64);
    /// `y = x * a + b`.
    fn affine(x: &[Self], y: &mut [Self], a: Self, b: Self);
    /// `dx = k.0 * g + k.1 * x + k.2`.
    fn grad(g: &[Self], x: &[Self], dx: &mut [Self], k: (Self, Self, Self));
}

macro_rules! row_kernels {
    ($T:ty, $moments:ident, $dot:ident, $affine:ident, $grad:ident) => {
        multiversion! {
            fn $moments(x: &[$T], out: &mut (f64, f64)) {
                let mu = block_sum(x) / x.len().max(1) as f64;
                *out = (mu, block_sq_dev(x, mu));
            }
        }
        multiversion! {
            fn $dot(g: &[$T], x: &[$T], m: f64, out: &mut (f64, f64)) {
                let n = g.len().min(x.len());
                *out = (block_sum(&g[..n]), block_dot(&g[..n], &x[..n], m));
            }
        }
        multiversion! {
            fn $affine(x: &[$T], y: &mut [$T], a: $T, b: $T) {
                for (o, &v) in y.iter_mut().zip(x) {
                    *o = v * a + b;
                }
            }
        }
        multiversion! {
            fn $grad(g: &[$T], x: &[$T], dx: &mut [$T], k: ($T, $T, $T)) {
                for ((o, &gv), &xv) in dx.iter_mut().zip(g).zip(x) {
                    *o = k.0 * gv + k.1 * xv + k.2;
                }
            }
        }
        impl RowKernels for $T {
            fn moments(x: &[$T]) -> (f64, f64) {
                let mut out = (0.0, 0.0);
                $moments(x, &mut out);
                out
            }
            fn dot(g: &[$T], x: &[$T], m: f64) -> (f64, f64) {
                let mut out = (0.0, 0.0);
                $dot(g, x, m, &mut out);
                out
            }
            fn affine(x: &[$T], y: &mut [$T], a: $T, b: $T) {
                $affine(x, y, a, b)
            }
            fn grad(g: &[$T], x: &[$T], dx: &mut [$T], k: ($T, $T, $T)) {
                $grad(g, x, dx, k)
            }
        }
    };
}

row_kernels!(f32, moments_f32, dot_f32, affine_f32, grad_f32);
row_kernels!(f64, moments_f64, dot_f64, affine_f64, grad_f64);

/// Runs `f(row, x_row, y_row)` over the `rows` rows of length `s` of the
/// contiguous `x` and `y`, in parallel.
fn rows_map<T: Fl>(
    x: &Tensor,
    y: &Tensor,
    rows: usize,
    s: usize,
    f: impl Fn(usize, &[T], &mut [T]) + Sync,
) {
    if rows == 0 || s == 0 {
        return;
    }
    let (px, py) = (x.raw_ptr() as usize, y.raw_ptr() as usize);
    parallel::for_ranges(rows, s * 2, 1, |a, b| {
        for r in a..b {
            // SAFETY: `x` and `y` are contiguous `rows * s` buffers of T;
            // each row is visited once, so the mutable rows never overlap.
            let (xr, yr) = unsafe {
                (
                    std::slice::from_raw_parts((px as *const T).add(r * s), s),
                    std::slice::from_raw_parts_mut((py as *mut T).add(r * s), s),
                )
            };
            f(r, xr, yr);
        }
    });
}

/// Per-row values `f(row, x_row)` over the rows of the contiguous `x`.
fn rows_reduce<T: Fl, R: Send + Copy + Default>(
    x: &Tensor,
    rows: usize,
    s: usize,
    f: impl Fn(usize, &[T]) -> R + Sync,
) -> Vec<R> {
    let mut out = vec![R::default(); rows];
    if s == 0 {
        return out;
    }
    let (px, po) = (x.raw_ptr() as usize, out.as_mut_ptr() as usize);
    parallel::for_ranges(rows, s, 1, |a, b| {
        for r in a..b {
            // SAFETY: row `r` of the contiguous `x` is [r * s, (r + 1) * s);
            // slot `r` of `out` is written by this iteration only.
            unsafe {
                let xr = std::slice::from_raw_parts((px as *const T).add(r * s), s);
                *(po as *mut R).add(r) = f(r, xr);
            }
        }
    });
    out
}

/// Rows of `s` elements grouped into statistics sets (`stat(row)`) and
/// affine channels (`chan(row)`).
struct RowMap {
    rows: usize,
    s: usize,
    nstats: usize,
    nchan: usize,
    /// (C, G): row r is channel r % C, its set is (r / C) * G + (r % C) / (C / G);
    /// batch norm is G = 0 (the set is the channel).
    c: usize,
    g: usize,
}

impl RowMap {
    #[inline(always)]
    fn chan(&self, r: usize) -> usize {
        r % self.c
    }
    #[inline(always)]
    fn stat(&self, r: usize) -> usize {
        if self.g == 0 {
            r % self.c
        } else {
            (r / self.c) * self.g + (r % self.c) / (self.c / self.g)
        }
    }
    fn count(&self) -> f64 {
        (self.rows * self.s) as f64 / self.nstats as f64
    }
}

/// Mean and biased variance of every statistics set. Each row gets its own
/// mean and sum of squared deviations (two passes while the row is in
/// cache, so the input streams from memory once); rows then merge exactly
/// (Chan et al.): `M2 = sum(M2_r) + sum(n_r * (mean_r - mean)^2)`.
fn set_stats<T: RowKernels>(x: &Tensor, m: &RowMap) -> (Vec<f64>, Vec<f64>) {
    let s = m.s as f64;
    let rows = rows_reduce::<T, (f64, f64)>(x, m.rows, m.s, |_, r| T::moments(r));
    let n = m.count();
    let mut mean = vec![0.0; m.nstats];
    for (r, &(mu, _)) in rows.iter().enumerate() {
        mean[m.stat(r)] += mu * s;
    }
    mean.iter_mut().for_each(|v| *v /= n);
    let mut var = vec![0.0; m.nstats];
    for (r, &(mu, m2)) in rows.iter().enumerate() {
        let st = m.stat(r);
        let d = mu - mean[st];
        var[st] += m2 + s * d * d;
    }
    var.iter_mut().for_each(|v| *v /= n);
    (mean, var)
}

/// `y = x * a[row] + b[row]` over rows.
fn affine_rows<T: RowKernels>(x: &Tensor, y: &Tensor, rows: usize, s: usize, a: &[f64], b: &[f64]) {
    rows_map::<T>(x, y, rows, s, |r, xr, yr| {
        T::affine(xr, yr, T::from_f64(a[r]), T::from_f64(b[r]))
    });
}

/// A float tensor's values as f64 (or `fill` repeated `n` times for None).
fn values(t: Option<&Tensor>, n: usize, fill: f64, what: &str) -> Result<Vec<f64>> {
    match t {
        None => Ok(vec![fill; n]),
        Some(t) if t.numel() == n => copy::to_vec::<f64>(t),
        Some(t) => Err(Error::Runtime(format!(
            "{what} should contain {n} elements not {}",
            t.numel()
        ))),
    }
}

/// `t` of `dt` as a fresh tensor of the `f64` values `v`, shaped `shape`.
fn from_f64(v: Vec<f64>, shape: &[usize], dt: DType) -> Result<Tensor> {
    copy::to_dtype(&creation::from_vec(v, shape)?, dt, false)
}

/// What a fast backward needs: the statistics, the layout and the affine
/// weight, for batch/group norm.
struct Saved {
    map: RowMap,
    mean: Vec<f64>,
    rstd: Vec<f64>,
    weight: Vec<f64>,
    training: bool,
}

/// Gradients (dx, dweight, dbias) of batch/group norm by the closed form.
fn rows_backward(
    x: &Tensor,
    g: &Tensor,
    sv: &Saved,
    need_dx: bool,
) -> Result<(Option<Tensor>, Vec<f64>, Vec<f64>)> {
    let dt = compute_dtype("native_batch_norm_backward", x)?;
    let (xs, gs) = (prep(x, dt)?, prep(g, dt)?);
    let m = &sv.map;
    let sums: Vec<(f64, f64)> = fdispatch!(dt, T => {
        let px = xs.raw_ptr() as usize;
        rows_reduce::<T, (f64, f64)>(&gs, m.rows, m.s, |r, gr| {
            // SAFETY: row `r` of the contiguous `xs` (same shape as `gs`).
            let xr = unsafe { std::slice::from_raw_parts((px as *const T).add(r * m.s), m.s) };
            T::dot(gr, xr, sv.mean[m.stat(r)])
        })
    });
    let (mut dw, mut db) = (vec![0.0; m.nchan], vec![0.0; m.nchan]);
    let (mut sa, mut sb) = (vec![0.0; m.nstats], vec![0.0; m.nstats]);
    for (r, &(sdy, sdyx)) in sums.iter().enumerate() {
        let (c, st) = (m.chan(r), m.stat(r));
        dw[c] += sdyx * sv.rstd[st];
        db[c] += sdy;
        sa[st] += sv.weight[c] * sdy;
        sb[st] += sv.weight[c] * sdyx * sv.rstd[st];
    }
    if !need_dx {
        return Ok((None, dw, db));
    }
    let n = m.count();
    let dx = Tensor::empty(x.shape(), dt)?;
    let coef: Vec<(f64, f64, f64)> = (0..m.rows)
        .map(|r| {
            let (c, st) = (m.chan(r), m.stat(r));
            let rs = sv.rstd[st];
            let k1 = rs * sv.weight[c];
            if !sv.training {
                return (k1, 0.0, 0.0);
            }
            let k2 = -rs * rs * sb[st] / n;
            (k1, k2, -rs * sa[st] / n - k2 * sv.mean[st])
        })
        .collect();
    fdispatch!(dt, T => {
        let px = xs.raw_ptr() as usize;
        rows_map::<T>(&gs, &dx, m.rows, m.s, |r, gr, dr| {
            // SAFETY: row `r` of the contiguous `xs` (same shape as `gs`).
            let xr = unsafe { std::slice::from_raw_parts((px as *const T).add(r * m.s), m.s) };
            let (k1, k2, k3) = coef[r];
            T::grad(gr, xr, dr, (T::from_f64(k1), T::from_f64(k2), T::from_f64(k3)));
        });
    });
    Ok((Some(copy::to_dtype(&dx, x.dtype(), false)?), dw, db))
}

/// Which normalisation, for the differentiable fallback.
#[derive(Clone, Copy)]
enum Kind {
    Batch,
    Group(usize),
    Layer(usize),
}

/// The gradients of `kind` written with differentiable tensor ops (for
/// double backward). `eval` holds batch norm's running (mean, rstd).
#[allow(clippy::too_many_arguments)]
fn composite_backward(
    kind: Kind,
    x: &Tensor,
    g: &Tensor,
    w: Option<&Tensor>,
    eval: Option<(&[f64], &[f64])>,
    eps: f64,
    wshape: &[usize],
    bshape: &[usize],
) -> Result<Vec<Option<Tensor>>> {
    let n = x.shape().first().copied().unwrap_or(0) as i64;
    let c = x.shape().get(1).copied().unwrap_or(1) as i64;
    let (vshape, dims, wview, wdims): (Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>) = match kind {
        Kind::Batch => (vec![n, c, -1], vec![0, 2], vec![1, c, 1], vec![0, 2]),
        Kind::Group(gr) => {
            let gr = gr as i64;
            (
                vec![n, gr, c / gr, -1],
                vec![2, 3],
                vec![1, gr, c / gr, 1],
                vec![0, 3],
            )
        }
        Kind::Layer(k) => (vec![-1, k as i64], vec![1], vec![1, k as i64], vec![0]),
    };
    let xv = shape::reshape(x, &vshape)?;
    let gv = shape::reshape(g, &vshape)?;
    let (xhat, rstd, dx_fixed) = match eval {
        Some((mean, rstd)) => {
            let m = shape::reshape(&from_f64(mean.to_vec(), &[mean.len()], x.dtype())?, &wview)?;
            let r = shape::reshape(&from_f64(rstd.to_vec(), &[rstd.len()], x.dtype())?, &wview)?;
            (mul(&sub(&xv, &m)?, &r)?, r, true)
        }
        None => {
            let m = reduce::mean(&xv, Some(&dims), true, None)?;
            let xc = sub(&xv, &m)?;
            let var = reduce::mean(&mul(&xc, &xc)?, Some(&dims), true, None)?;
            let r = pow_s(&add_s(&var, eps)?, -0.5)?;
            (mul(&xc, &r)?, r, false)
        }
    };
    let gh = match w {
        Some(w) => mul(&gv, &shape::reshape(w, &wview)?)?,
        None => gv.clone(),
    };
    let dx = if dx_fixed {
        mul(&gh, &rstd)?
    } else {
        let a = reduce::mean(&gh, Some(&dims), true, None)?;
        let b = reduce::mean(&mul(&gh, &xhat)?, Some(&dims), true, None)?;
        mul(&rstd, &sub(&sub(&gh, &a)?, &mul(&xhat, &b)?)?)?
    };
    let dx = shape::reshape(
        &dx,
        &x.shape().iter().map(|&v| v as i64).collect::<Vec<_>>(),
    )?;
    let to = |s: &[usize]| s.iter().map(|&v| v as i64).collect::<Vec<_>>();
    let dw = reduce::sum(&mul(&gv, &xhat)?, Some(&wdims), false, None)?;
    let db = reduce::sum(&gv, Some(&wdims), false, None)?;
    Ok(vec![
        Some(dx),
        Some(shape::reshape(&dw, &to(wshape))?),
        Some(shape::reshape(&db, &to(bshape))?),
    ])
}

/// `native_batch_norm`: batch statistics (training) or running ones (eval)
/// per channel (dim 1); training also moves the running statistics toward
/// the batch's by `momentum` (the variance's unbiased), in place.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    running_mean: Option<&Tensor>,
    running_var: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Result<Tensor> {
    if x.ndim() < 2 {
        return Err(Error::Value(format!(
            "Expected 2D or more input (got {}D input)",
            x.ndim()
        )));
    }
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let s = x.numel().checked_div(n * c).unwrap_or(0);
    let map = RowMap {
        rows: n * c,
        s,
        nstats: c,
        nchan: c,
        c: c.max(1),
        g: 0,
    };
    norm_rows(
        x,
        weight,
        bias,
        map,
        Kind::Batch,
        running_mean,
        running_var,
        training,
        momentum,
        eps,
    )
}

/// `native_group_norm`: statistics per (sample, group of `C / num_groups`
/// channels), affine per channel.
pub fn group_norm(
    x: &Tensor,
    num_groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    if x.ndim() < 2 {
        return Err(Error::Runtime(format!(
            "Expected at least 2 dimensions for input tensor but received {}",
            x.ndim()
        )));
    }
    let (n, c) = (x.shape()[0], x.shape()[1]);
    if num_groups == 0 || c % num_groups != 0 {
        return Err(Error::Runtime(format!(
            "Expected number of channels in input to be divisible by num_groups, but got input of shape {:?} and num_groups={num_groups}",
            x.shape()
        )));
    }
    let s = x.numel().checked_div(n * c).unwrap_or(0);
    let map = RowMap {
        rows: n * c,
        s,
        nstats: n * num_groups,
        nchan: c,
        c,
        g: num_groups,
    };
    norm_rows(
        x,
        weight,
        bias,
        map,
        Kind::Group(num_groups),
        None,
        None,
        true,
        0.0,
        eps,
    )
}

#[allow(clippy::too_many_arguments)]
fn norm_rows(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    map: RowMap,
    kind: Kind,
    running_mean: Option<&Tensor>,
    running_var: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Result<Tensor> {
    let name = match kind {
        Kind::Batch => "NativeBatchNormBackward0",
        _ => "NativeGroupNormBackward0",
    };
    let op = match kind {
        Kind::Batch => "batch_norm",
        _ => "group_norm",
    };
    let dt = compute_dtype(op, x)?;
    let wv = values(weight, map.nchan, 1.0, "weight")?;
    let bv = values(bias, map.nchan, 0.0, "bias")?;
    let rec = Recorder::new_opt(name, &[Some(x), weight, bias]);
    let xs = prep(x, dt)?;
    let (mean, var) = if training {
        if map.rows == 0 || map.s == 0 {
            (vec![f64::NAN; map.nstats], vec![f64::NAN; map.nstats])
        } else {
            fdispatch!(dt, T => set_stats::<T>(&xs, &map))
        }
    } else {
        let (Some(rm), Some(rv)) = (running_mean, running_var) else {
            return Err(Error::Runtime(
                "running_mean and running_var must be defined in evaluation mode".into(),
            ));
        };
        (
            values(Some(rm), map.nstats, 0.0, "running_mean")?,
            values(Some(rv), map.nstats, 1.0, "running_var")?,
        )
    };
    if training {
        let cnt = map.count();
        let _mode = crate::autograd::GradMode::set(false);
        if let Some(rm) = running_mean {
            let old = values(Some(rm), map.nstats, 0.0, "running_mean")?;
            let new: Vec<f64> = old
                .iter()
                .zip(&mean)
                .map(|(o, m)| (1.0 - momentum) * o + momentum * m)
                .collect();
            copy::copy_(rm, &from_f64(new, rm.shape(), rm.dtype())?)?;
        }
        if let Some(rv) = running_var {
            let old = values(Some(rv), map.nstats, 1.0, "running_var")?;
            let f = cnt / (cnt - 1.0);
            let new: Vec<f64> = old
                .iter()
                .zip(&var)
                .map(|(o, v)| (1.0 - momentum) * o + momentum * v * f)
                .collect();
            copy::copy_(rv, &from_f64(new, rv.shape(), rv.dtype())?)?;
        }
    }
    let rstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let (mut a, mut b) = (vec![0.0; map.rows], vec![0.0; map.rows]);
    for r in 0..map.rows {
        let (ch, st) = (map.chan(r), map.stat(r));
        a[r] = rstd[st] * wv[ch];
        b[r] = bv[ch] - mean[st] * a[r];
    }
    let out = Tensor::empty(x.shape(), dt)?;
    fdispatch!(dt, T => affine_rows::<T>(&xs, &out, map.rows, map.s, &a, &b));
    let out = copy::to_dtype(&out, x.dtype(), false)?;
    if let Some(mut rec) = rec {
        let ix = rec.save(x)?;
        let iw = match weight {
            Some(w) => Some(rec.save(w)?),
            None => None,
        };
        let wshape = weight.map(|w| w.shape().to_vec()).unwrap_or_default();
        let bshape = bias.map(|b| b.shape().to_vec()).unwrap_or_default();
        let wdt = weight.or(bias).map_or(x.dtype(), |t| t.dtype());
        let sv = Arc::new(Saved {
            map,
            mean,
            rstd,
            weight: wv,
            training,
        });
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None, None]);
            };
            let x = ctx.saved(ix)?;
            let w = iw.map(|i| ctx.saved(i)).transpose()?;
            let mut res = if crate::autograd::is_grad_enabled() {
                let eval = (!sv.training).then_some((sv.mean.as_slice(), sv.rstd.as_slice()));
                let ws = if w.is_some() {
                    wshape.clone()
                } else {
                    vec![sv.map.nchan]
                };
                let bs = if bshape.is_empty() {
                    vec![sv.map.nchan]
                } else {
                    bshape.clone()
                };
                composite_backward(kind, &x, &g, w.as_ref(), eval, eps, &ws, &bs)?
            } else {
                let (dx, dw, db) = rows_backward(&x, &g, &sv, ctx.needs(0))?;
                let ws = if wshape.is_empty() {
                    vec![sv.map.nchan]
                } else {
                    wshape.clone()
                };
                let bs = if bshape.is_empty() {
                    vec![sv.map.nchan]
                } else {
                    bshape.clone()
                };
                vec![
                    dx,
                    Some(from_f64(dw, &ws, wdt)?),
                    Some(from_f64(db, &bs, wdt)?),
                ]
            };
            for (i, r) in res.iter_mut().enumerate() {
                if !ctx.needs(i) {
                    *r = None;
                }
            }
            Ok(res)
        });
    }
    Ok(out)
}

/// `native_layer_norm` over the trailing `normalized_shape` dims, with
/// optional elementwise weight and bias of that shape.
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let k = normalized_shape.len();
    let nd = x.ndim();
    if k == 0 || k > nd || x.shape()[nd - k..] != *normalized_shape {
        let dims: Vec<String> = normalized_shape.iter().map(|v| v.to_string()).collect();
        return Err(Error::Runtime(format!(
            "Given normalized_shape={:?}, expected input with shape [*, {}], but got input of size{:?}",
            normalized_shape,
            dims.join(", "),
            x.shape()
        )));
    }
    for (t, what) in [(weight, "weight"), (bias, "bias")] {
        if let Some(t) = t {
            if t.shape() != normalized_shape {
                return Err(Error::Runtime(format!(
                    "Expected {what} to be of same shape as normalized_shape, but got {what} of shape {:?} and normalized_shape = {:?}",
                    t.shape(),
                    normalized_shape
                )));
            }
        }
    }
    let kk: usize = normalized_shape.iter().product();
    let rows = x.numel().checked_div(kk).unwrap_or(0);
    let dt = compute_dtype("layer_norm", x)?;
    let rec = Recorder::new_opt("NativeLayerNormBackward0", &[Some(x), weight, bias]);
    let xs = prep(x, dt)?;
    let wt = weight.map(|w| prep(w, dt)).transpose()?;
    let bt = bias.map(|b| prep(b, dt)).transpose()?;
    let out = Tensor::empty(x.shape(), dt)?;
    let stats =
        fdispatch!(dt, T => ln_forward::<T>(&xs, &out, rows, kk, wt.as_ref(), bt.as_ref(), eps));
    let out = copy::to_dtype(&out, x.dtype(), false)?;
    if let Some(mut rec) = rec {
        let ix = rec.save(x)?;
        let iw = match weight {
            Some(w) => Some(rec.save(w)?),
            None => None,
        };
        let ns = normalized_shape.to_vec();
        let stats = Arc::new(stats);
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None, None]);
            };
            let x = ctx.saved(ix)?;
            let w = iw.map(|i| ctx.saved(i)).transpose()?;
            let mut res = if crate::autograd::is_grad_enabled() {
                composite_backward(Kind::Layer(kk), &x, &g, w.as_ref(), None, eps, &ns, &ns)?
            } else {
                let dt = compute_dtype("layer_norm", &x)?;
                let (xs, gs) = (prep(&x, dt)?, prep(&g, dt)?);
                let wt = w.as_ref().map(|w| prep(w, dt)).transpose()?;
                let dx = Tensor::empty(x.shape(), dt)?;
                let (dw, db) = fdispatch!(dt, T => ln_backward::<T>(&xs, &gs, &dx, rows, kk, wt.as_ref(), &stats, ctx.needs(0)));
                let pdt = w.as_ref().map_or(x.dtype(), |w| w.dtype());
                vec![
                    Some(copy::to_dtype(&dx, x.dtype(), false)?),
                    Some(from_f64(dw, &ns, pdt)?),
                    Some(from_f64(db, &ns, pdt)?),
                ]
            };
            for (i, r) in res.iter_mut().enumerate() {
                if !ctx.needs(i) {
                    *r = None;
                }
            }
            Ok(res)
        });
    }
    Ok(out)
}

/// Slice view of a contiguous tensor of T (None for None).
fn slice_of<T: Element>(t: Option<&Tensor>) -> Option<&[T]> {
    // SAFETY: `t` is contiguous of dtype T (made by `prep`), `numel` elements.
    t.map(|t| unsafe { std::slice::from_raw_parts(t.raw_ptr() as *const T, t.numel()) })
}

/// Normalises each row; returns the (mean, rstd) of every row.
fn ln_forward<T: Fl>(
    x: &Tensor,
    y: &Tensor,
    rows: usize,
    k: usize,
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    eps: f64,
) -> Vec<(f64, f64)> {
    let mut stats = vec![(0.0f64, 0.0f64); rows];
    if rows == 0 || k == 0 {
        return stats;
    }
    let (w, b) = (slice_of::<T>(w), slice_of::<T>(b));
    let ps = stats.as_mut_ptr() as usize;
    let kf = k as f64;
    if T::DTYPE == DType::F32 {
        // SAFETY: T is f32 here (checked via DTYPE): same size and layout.
        let (w, b) = unsafe { (as_f32(w), as_f32(b)) };
        let (px, py) = (x.raw_ptr() as usize, y.raw_ptr() as usize);
        // Streaming stores only when the output cannot stay in this core's
        // cache anyway: they skip reading each destination line first.
        let stream = rows * k * 4 >= STREAM_BYTES;
        parallel::for_ranges(rows, k * 2, 1, |a, e| {
            // SAFETY: `x` and `y` are contiguous `rows * k` f32 buffers and
            // `stats` has `rows` slots; rows [a, e) belong to this chunk only.
            let (xs, ys, st) = unsafe {
                (
                    std::slice::from_raw_parts((px as *const f32).add(a * k), (e - a) * k),
                    std::slice::from_raw_parts_mut((py as *mut f32).add(a * k), (e - a) * k),
                    std::slice::from_raw_parts_mut((ps as *mut (f64, f64)).add(a), e - a),
                )
            };
            ln_rows_f32(
                xs,
                ys,
                k,
                (w.unwrap_or(&[]), b.unwrap_or(&[])),
                eps,
                st,
                stream,
            );
        });
        return stats;
    }
    rows_map::<T>(x, y, rows, k, |r, xr, yr| {
        let m = block_sum(xr) / kf;
        let var = block_sq_dev(xr, m) / kf;
        let rs = 1.0 / (var + eps).sqrt();
        // SAFETY: slot `r` of `stats` is written by this row only.
        unsafe { *(ps as *mut (f64, f64)).add(r) = (m, rs) };
        let (mt, rt) = (T::from_f64(m), T::from_f64(rs));
        match (w, b) {
            (Some(w), Some(b)) => {
                for (((o, &v), &wv), &bv) in yr.iter_mut().zip(xr).zip(w).zip(b) {
                    *o = (v - mt) * rt * wv + bv;
                }
            }
            (Some(w), None) => {
                for ((o, &v), &wv) in yr.iter_mut().zip(xr).zip(w) {
                    *o = (v - mt) * rt * wv;
                }
            }
            (None, Some(b)) => {
                for ((o, &v), &bv) in yr.iter_mut().zip(xr).zip(b) {
                    *o = (v - mt) * rt + bv;
                }
            }
            (None, None) => {
                for (o, &v) in yr.iter_mut().zip(xr) {
                    *o = (v - mt) * rt;
                }
            }
        }
    });
    stats
}

/// Layer norm's closed-form backward: fills `dx` (when `need_dx`) and
/// returns (dweight, dbias) summed over rows.
#[allow(clippy::too_many_arguments)]
fn ln_backward<T: Fl>(
    x: &Tensor,
    g: &Tensor,
    dx: &Tensor,
    rows: usize,
    k: usize,
    w: Option<&Tensor>,
    stats: &[(f64, f64)],
    need_dx: bool,
) -> (Vec<f64>, Vec<f64>) {
    let acc = Mutex::new((vec![0.0f64; k], vec![0.0f64; k]));
    if rows == 0 || k == 0 {
        return acc.into_inner().unwrap_or_default();
    }
    let w = slice_of::<T>(w);
    let (px, pg, pd) = (
        x.raw_ptr() as usize,
        g.raw_ptr() as usize,
        dx.raw_ptr() as usize,
    );
    let kf = T::from_f64(k as f64);
    if T::DTYPE == DType::F32 {
        // SAFETY: T is f32 here (checked via DTYPE): same size and layout.
        let ones;
        let w = match unsafe { as_f32(w) } {
            Some(w) => w,
            None => {
                ones = vec![1.0f32; k];
                &ones[..]
            }
        };
        parallel::for_ranges(rows, k * 4, 1, |a, b| {
            let (mut dw, mut db) = (vec![0.0f32; k], vec![0.0f32; k]);
            for (r, &(m, rs)) in stats.iter().enumerate().take(b).skip(a) {
                // SAFETY: row `r` of the contiguous f32 `x`, `g`, `dx` (all
                // rows * k); each row of `dx` is written by this iteration only.
                let (xr, gr, dr) = unsafe {
                    (
                        std::slice::from_raw_parts((px as *const f32).add(r * k), k),
                        std::slice::from_raw_parts((pg as *const f32).add(r * k), k),
                        std::slice::from_raw_parts_mut((pd as *mut f32).add(r * k), k),
                    )
                };
                ln_back_row_f32(
                    xr,
                    gr,
                    w,
                    (m as f32, rs as f32),
                    (&mut dw, &mut db),
                    dr,
                    need_dx,
                );
            }
            if let Ok(mut acc) = acc.lock() {
                for (t, v) in acc.0.iter_mut().zip(&dw) {
                    *t += *v as f64;
                }
                for (t, v) in acc.1.iter_mut().zip(&db) {
                    *t += *v as f64;
                }
            }
        });
        return acc.into_inner().unwrap_or_default();
    }
    parallel::for_ranges(rows, k * 4, 1, |a, b| {
        let (mut dw, mut db) = (vec![T::ZERO; k], vec![T::ZERO; k]);
        let mut xh = vec![T::ZERO; k];
        let mut gh = vec![T::ZERO; k];
        for (r, &(m, rs)) in stats.iter().enumerate().take(b).skip(a) {
            // SAFETY: row `r` of the contiguous `x`, `g`, `dx` (all rows * k);
            // each row of `dx` is written by this iteration only.
            let (xr, gr, dr) = unsafe {
                (
                    std::slice::from_raw_parts((px as *const T).add(r * k), k),
                    std::slice::from_raw_parts((pg as *const T).add(r * k), k),
                    std::slice::from_raw_parts_mut((pd as *mut T).add(r * k), k),
                )
            };
            let (m, rs) = (T::from_f64(m), T::from_f64(rs));
            for (o, &v) in xh.iter_mut().zip(xr) {
                *o = (v - m) * rs;
            }
            for ((dwv, dbv), (&gv, &xv)) in dw.iter_mut().zip(db.iter_mut()).zip(gr.iter().zip(&xh))
            {
                *dwv += gv * xv;
                *dbv += gv;
            }
            if !need_dx {
                continue;
            }
            match w {
                Some(w) => {
                    for ((o, &gv), &wv) in gh.iter_mut().zip(gr).zip(w) {
                        *o = gv * wv;
                    }
                }
                None => gh.copy_from_slice(gr),
            }
            let (mut sa, mut sb) = ([T::ZERO; 8], [T::ZERO; 8]);
            let (gc, xc) = (gh.chunks_exact(8), xh.chunks_exact(8));
            let (mut ta, mut tb) = (T::ZERO, T::ZERO);
            for (&gv, &xv) in gc.remainder().iter().zip(xc.remainder()) {
                ta += gv;
                tb += gv * xv;
            }
            for (gs, xs) in gc.zip(xc) {
                for l in 0..8 {
                    sa[l] += gs[l];
                    sb[l] += gs[l] * xs[l];
                }
            }
            for l in 0..8 {
                ta += sa[l];
                tb += sb[l];
            }
            let (ma, mb) = (ta / kf, tb / kf);
            for ((o, &gv), &xv) in dr.iter_mut().zip(&gh).zip(&xh) {
                *o = rs * (gv - ma - xv * mb);
            }
        }
        if let Ok(mut acc) = acc.lock() {
            for (t, v) in acc.0.iter_mut().zip(&dw) {
                *t += v.to_f64();
            }
            for (t, v) in acc.1.iter_mut().zip(&db) {
                *t += v.to_f64();
            }
        }
    });
    acc.into_inner().unwrap_or_default()
}

/// `t` (a slice of T, which the caller checked is f32) as f32.
///
/// # Safety
/// T must be f32.
unsafe fn as_f32<T: Element>(t: Option<&[T]>) -> Option<&[f32]> {
    // SAFETY: the caller guarantees T is f32 (same size and layout).
    t.map(|t| unsafe { std::slice::from_raw_parts(t.as_ptr() as *const f32, t.len()) })
}

const L: usize = 16;

/// Outputs at least this large (bytes) are written with streaming stores:
/// larger than a core's L2, they would be evicted before a consumer reads
/// them, and a plain store first reads each line it writes (a third of the
/// memory traffic of layer norm's 64x128x768 forward: 4.9 ms -> 2.8 ms).
const STREAM_BYTES: usize = 8 << 20;

/// How many rows ahead the layer norm forward asks for its input: a row
/// of 768 float32 does not cover a 4 KiB page, and the hardware prefetcher
/// stops at page boundaries.
const PREFETCH_ROWS: usize = 2;

multiversion! {
    /// Layer norm forward over the contiguous float32 rows of length `k` in
    /// `x`: mean and 1/std of each row into `st` (two passes, see
    /// [`block_sum`]), then `y = (x - m) * r * w + b` (`wb` empty slices when
    /// absent), with streaming stores when `stream` (and `y` is 64-byte
    /// aligned).
    pub fn ln_rows_f32(
        x: &[f32],
        y: &mut [f32],
        k: usize,
        wb: (&[f32], &[f32]),
        eps: f64,
        st: &mut [(f64, f64)],
        stream: bool,
    ) {
        let (w, b) = wb;
        let n = k as f64;
        let stream = stream && (y.as_ptr() as usize).is_multiple_of(64) && k.is_multiple_of(16);
        let mut tmp = [0.0f32; BLOCK];
        let rows = st.len().min(x.len() / k.max(1));
        for r in 0..rows {
            #[cfg(target_arch = "x86_64")]
            if r + PREFETCH_ROWS < rows {
                let p = x[(r + PREFETCH_ROWS) * k..].as_ptr() as *const i8;
                for line in (0..k * 4).step_by(64) {
                    // SAFETY: SSE is part of x86_64; a prefetch never faults
                    // (and the address is inside `x`).
                    unsafe {
                        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                            p.wrapping_add(line),
                        )
                    };
                }
            }
            let xr = &x[r * k..(r + 1) * k];
            let yr = &mut y[r * k..(r + 1) * k];
            let m = block_sum(xr) / n;
            let var = block_sq_dev(xr, m) / n;
            let rs = 1.0 / (var + eps).sqrt();
            st[r] = (m, rs);
            let (m, rs) = (m as f32, rs as f32);
            if !stream {
                ln_affine(xr, yr, w, b, m, rs);
                continue;
            }
            for c0 in (0..k).step_by(BLOCK) {
                let c1 = (c0 + BLOCK).min(k);
                let t = &mut tmp[..c1 - c0];
                let (wc, bc) = (w.get(c0..c1).unwrap_or(&[]), b.get(c0..c1).unwrap_or(&[]));
                ln_affine(&xr[c0..c1], t, wc, bc, m, rs);
                stream_copy(&mut yr[c0..c1], t);
            }
        }
        if stream {
            stream_fence();
        }
    }
}

/// `y = (x - m) * r * w + b` over one float32 row (`w`, `b` empty when absent).
#[inline(always)]
fn ln_affine(x: &[f32], y: &mut [f32], w: &[f32], b: &[f32], m: f32, r: f32) {
    match (w.is_empty(), b.is_empty()) {
        (false, false) => {
            for (((o, &v), &wv), &bv) in y.iter_mut().zip(x).zip(w).zip(b) {
                *o = (v - m) * r * wv + bv;
            }
        }
        (false, true) => {
            for ((o, &v), &wv) in y.iter_mut().zip(x).zip(w) {
                *o = (v - m) * r * wv;
            }
        }
        (true, false) => {
            for ((o, &v), &bv) in y.iter_mut().zip(x).zip(b) {
                *o = (v - m) * r + bv;
            }
        }
        (true, true) => {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = (v - m) * r;
            }
        }
    }
}

/// Copies `src` to the 64-byte aligned `dst` (length a multiple of 16)
/// with streaming stores where the CPU has AVX-512, plain ones elsewhere.
#[inline(always)]
fn stream_copy(dst: &mut [f32], src: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn go(dst: &mut [f32], src: &[f32]) {
            use std::arch::x86_64::{_mm512_loadu_ps, _mm512_stream_ps};
            let n = dst.len().min(src.len()) / 16 * 16;
            for i in (0..n).step_by(16) {
                // SAFETY: i + 16 <= n <= both lengths; `dst` is 64-byte
                // aligned and i a multiple of 16 floats, so each store is too.
                unsafe {
                    _mm512_stream_ps(
                        dst.as_mut_ptr().add(i),
                        _mm512_loadu_ps(src.as_ptr().add(i)),
                    )
                };
            }
            dst[n..].copy_from_slice(&src[n..]);
        }
        if std::arch::is_x86_feature_detected!("avx512f")
            && (dst.as_ptr() as usize).is_multiple_of(64)
            && dst.len() == src.len()
        {
            // SAFETY: the CPU has AVX-512F; `go` checks bounds and alignment holds.
            return unsafe { go(dst, src) };
        }
    }
    dst.copy_from_slice(src);
}

/// Orders this thread's streaming stores before whatever follows (another
/// thread reading the output once the parallel region ends).
#[inline(always)]
fn stream_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86_64.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

multiversion! {
    /// Layer norm backward of one float32 row: accumulates `dw += g * xhat`,
    /// `db += g` (`acc`), and (when `need_dx`) writes
    /// `dx = r * (g*w - mean(g*w) - xhat * mean(g*w*xhat))`.
    pub fn ln_back_row_f32(
        x: &[f32],
        g: &[f32],
        w: &[f32],
        mr: (f32, f32),
        acc: (&mut [f32], &mut [f32]),
        dx: &mut [f32],
        need_dx: bool,
    ) {
        let (m, r) = mr;
        let (dw, db) = acc;
        let (mut sa, mut sb) = ([0.0f32; L], [0.0f32; L]);
        let (mut ta, mut tb) = (0.0f32, 0.0f32);
        let n = x.len().min(g.len()).min(w.len()).min(dw.len()).min(db.len());
        let full = n - n % L;
        for i in (0..full).step_by(L) {
            let (xc, gc, wc) = (&x[i..i + L], &g[i..i + L], &w[i..i + L]);
            let (dwc, dbc) = (&mut dw[i..i + L], &mut db[i..i + L]);
            for k in 0..L {
                let xh = (xc[k] - m) * r;
                dwc[k] += gc[k] * xh;
                dbc[k] += gc[k];
                let gh = gc[k] * wc[k];
                sa[k] += gh;
                sb[k] += gh * xh;
            }
        }
        for j in full..n {
            let xh = (x[j] - m) * r;
            dw[j] += g[j] * xh;
            db[j] += g[j];
            let gh = g[j] * w[j];
            ta += gh;
            tb += gh * xh;
        }
        if !need_dx {
            return;
        }
        let nf = n as f32;
        let ma = (sa.iter().sum::<f32>() + ta) / nf;
        let mb = (sb.iter().sum::<f32>() + tb) / nf;
        for (((o, &xv), &gv), &wv) in dx.iter_mut().zip(x).zip(g).zip(w) {
            *o = r * (gv * wv - ma - (xv - m) * r * mb);
        }
    }
}
