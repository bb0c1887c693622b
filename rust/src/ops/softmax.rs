//! `softmax` and `log_softmax` along one dim: rows along the last dim, with
//! a vectorised float32 kernel; other dims are moved last first.

use crate::cpu::parallel;
use crate::cpu::simd::{exp_f32, pow2i};
use crate::dispatch;
use crate::error::{wrap_dim, Error, Result};
use crate::multiversion;
use crate::ops::{copy, shape};
use crate::tensor::{DType, Element, Tensor};

/// `softmax(x, dim)` (`log = false`) or `log_softmax(x, dim)`, computed in
/// `dtype` when given. Derivatives: `y * (g - sum(g * y))` and
/// `g - exp(y) * sum(g)` along `dim`.
pub fn softmax(x: &Tensor, dim: i64, log: bool, dtype: Option<DType>) -> Result<Tensor> {
    let name = if log {
        "LogSoftmaxBackward0"
    } else {
        "SoftmaxBackward0"
    };
    let rec = crate::autograd::Recorder::new(name, &[x]);
    let out = softmax_impl(x, dim, log, dtype)?;
    if let Some(mut rec) = rec {
        let iy = rec.save_output(&out, 0)?;
        rec.finish(&[&out], move |ctx, grads| {
            use crate::ops::arith::{mul, sub, un};
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            let y = ctx.saved(iy)?;
            if !crate::autograd::is_grad_enabled() {
                if let Some(gx) = backward_rows(&g, &y, dim, log)? {
                    return Ok(vec![Some(gx)]);
                }
            }
            let d = [dim];
            let gx = if log {
                let s = crate::ops::reduce::sum(&g, Some(&d), true, None)?;
                sub(&g, &mul(&un(crate::ops::unary::Unary::Exp, &y)?, &s)?)?
            } else {
                let s = crate::ops::reduce::sum(&mul(&g, &y)?, Some(&d), true, None)?;
                mul(&y, &sub(&g, &s)?)?
            };
            Ok(vec![Some(gx)])
        });
    }
    Ok(out)
}

/// The backward of a softmax along the last dim of contiguous rows, fused
/// into one pass per row (the composition takes four ops and three
/// temporaries). `None` when the layout does not fit; only used when the
/// gradient need not be differentiable again.
fn backward_rows(g: &Tensor, y: &Tensor, dim: i64, log: bool) -> Result<Option<Tensor>> {
    let last = y.ndim().saturating_sub(1);
    if wrap_dim(dim, y.ndim())? != last
        || g.dtype() != y.dtype()
        || g.shape() != y.shape()
        || !y.is_contiguous()
        || !y.dtype().is_floating_point()
        || y.numel() == 0
    {
        return Ok(None);
    }
    if crate::cpu::half::is_half(y.dtype()) {
        let wide = |t: &Tensor| copy::to_dtype(t, DType::F32, false);
        return backward_rows(&wide(g)?, &wide(y)?, dim, log)?
            .map(|gx| copy::to_dtype(&gx, y.dtype(), false))
            .transpose();
    }
    let g = copy::contiguous(g)?;
    let out = Tensor::empty(y.shape(), y.dtype())?;
    let n = y.shape().last().copied().unwrap_or(1);
    let rows = y.numel() / n;
    let (pg, py, po) = (
        g.raw_ptr() as usize,
        y.raw_ptr() as usize,
        out.raw_ptr() as usize,
    );
    if y.dtype() == DType::F32 {
        parallel::for_ranges(rows, n * 4, 1, |s, e| {
            let len = (e - s) * n;
            // SAFETY: `g`, `y` and `out` are contiguous `rows * n` float32
            // buffers; rows [s, e) belong to this chunk only.
            let (g, y, o) = unsafe {
                (
                    std::slice::from_raw_parts((pg as *const f32).add(s * n), len),
                    std::slice::from_raw_parts((py as *const f32).add(s * n), len),
                    std::slice::from_raw_parts_mut((po as *mut f32).add(s * n), len),
                )
            };
            backward_rows_f32(g, y, o, n, log);
        });
        return Ok(Some(out));
    }
    dispatch!(y.dtype(), T => {
        parallel::for_ranges(rows, n * 4, 1, |s, e| {
            for r in s..e {
                // SAFETY: `g`, `y` and `out` are contiguous `rows * n`
                // buffers; row `r` is [r * n, (r + 1) * n).
                let (g, y, o) = unsafe {
                    (
                        std::slice::from_raw_parts((pg as *const T).add(r * n), n),
                        std::slice::from_raw_parts((py as *const T).add(r * n), n),
                        std::slice::from_raw_parts_mut((po as *mut T).add(r * n), n),
                    )
                };
                if T::DTYPE == DType::F32 {
                    // SAFETY: T is f32 here (checked via DTYPE).
                    let (g, y, o) = unsafe {
                        (
                            std::slice::from_raw_parts(g.as_ptr().cast::<f32>(), n),
                            std::slice::from_raw_parts(y.as_ptr().cast::<f32>(), n),
                            std::slice::from_raw_parts_mut(o.as_mut_ptr().cast::<f32>(), n),
                        )
                    };
                    backward_row_f32(g, y, o, log);
                } else if log {
                    let s: f64 = g.iter().map(|v| v.to_f64()).sum();
                    for ((o, g), y) in o.iter_mut().zip(g).zip(y) {
                        *o = T::from_f64(g.to_f64() - y.to_f64().exp() * s);
                    }
                } else {
                    let s: f64 = g.iter().zip(y).map(|(g, y)| g.to_f64() * y.to_f64()).sum();
                    for ((o, g), y) in o.iter_mut().zip(g).zip(y) {
                        *o = T::from_f64(y.to_f64() * (g.to_f64() - s));
                    }
                }
            }
        });
    });
    Ok(Some(out))
}

fn softmax_impl(x: &Tensor, dim: i64, log: bool, dtype: Option<DType>) -> Result<Tensor> {
    let dtype = dtype.unwrap_or(x.dtype());
    if !dtype.is_floating_point() {
        return Err(Error::Runtime(format!(
            "\"{}\" not implemented for '{}'",
            if log {
                "log_softmax_lastdim_kernel_impl"
            } else {
                "softmax_lastdim_kernel_impl"
            },
            dtype.scalar_name()
        )));
    }
    if crate::cpu::half::is_half(dtype) {
        // Half math in float, as PyTorch: widen, run the f32 kernel, narrow.
        let wide = softmax_impl(&copy::to_dtype(x, DType::F32, false)?, dim, log, None)?;
        return copy::to_dtype(&wide, dtype, false);
    }
    let d = wrap_dim(dim, x.ndim())?;
    let last = x.ndim().saturating_sub(1);
    if d != last {
        // Other dims: move `dim` last, softmax rows, move it back.
        let moved = shape::transpose(x, d as i64, last as i64)?;
        let r = softmax_impl(&moved, -1, log, Some(dtype))?;
        return copy::contiguous(&shape::transpose(&r, d as i64, last as i64)?);
    }
    let src = copy::contiguous(&copy::to_dtype(x, dtype, false)?)?;
    let out = Tensor::empty(x.shape(), dtype)?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let n = x.shape().last().copied().unwrap_or(1);
    let rows = out.numel() / n;
    let (ps, pd) = (src.raw_ptr() as usize, out.raw_ptr() as usize);
    if dtype == DType::F32 {
        parallel::for_ranges(rows, n * 4, 1, |s, e| {
            // SAFETY: `src` and `out` are contiguous `rows * n` float32
            // buffers; rows [s, e) belong to this chunk only.
            let (x, y) = unsafe {
                (
                    std::slice::from_raw_parts((ps as *const f32).add(s * n), (e - s) * n),
                    std::slice::from_raw_parts_mut((pd as *mut f32).add(s * n), (e - s) * n),
                )
            };
            rows_f32(x, y, n, log);
        });
        return Ok(out);
    }
    dispatch!(dtype, T => {
        parallel::for_ranges(rows, n * 4, 1, |s, e| {
            for r in s..e {
                // SAFETY: `src` and `out` are contiguous `rows * n` buffers;
                // row `r` is [r * n, (r + 1) * n).
                let (x, y) = unsafe {
                    (
                        std::slice::from_raw_parts((ps as *const T).add(r * n), n),
                        std::slice::from_raw_parts_mut((pd as *mut T).add(r * n), n),
                    )
                };
                row::<T>(x, y, log);
            }
        });
    });
    Ok(out)
}

multiversion! {
    /// [`row_f32`] over consecutive rows of length `n`, in one call: short
    /// rows (attention's, 64 long) paid a dispatch per row otherwise.
    pub fn rows_f32(x: &[f32], y: &mut [f32], n: usize, log: bool) {
        for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
            row_body(xr, yr, log);
        }
    }
}

/// One contiguous row.
fn row<T: Element>(x: &[T], y: &mut [T], log: bool) {
    if T::DTYPE == DType::F32 {
        // SAFETY: T is f32 here (checked via DTYPE): same size and layout.
        let (x, y) = unsafe {
            (
                std::slice::from_raw_parts(x.as_ptr() as *const f32, x.len()),
                std::slice::from_raw_parts_mut(y.as_mut_ptr() as *mut f32, y.len()),
            )
        };
        return row_f32(x, y, log);
    }
    let m = x.iter().fold(f64::NEG_INFINITY, |m, v| m.max(v.to_f64()));
    let sum: f64 = x.iter().map(|v| (v.to_f64() - m).exp()).sum();
    for (o, v) in y.iter_mut().zip(x) {
        let z = v.to_f64() - m;
        *o = T::from_f64(if log { z - sum.ln() } else { z.exp() / sum });
    }
}

/// e^x for the `x - max` of a softmax row (`x <= 0` or -inf, never NaN):
/// [`exp_f32`]'s range reduction and polynomial without its overflow and
/// NaN selects, and with fused multiply-adds (each Horner step one
/// instruction instead of a dependent multiply and add; the softmax of
/// attention's 64-long rows is mostly this).
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' constants as published, like `exp_f32`.
fn exp_nonpos(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0;
    let xc = x.max(-104.0);
    let n = xc.mul_add(LOG2E, ROUND) - ROUND;
    let r = n.mul_add(2.121_944_4e-4, n.mul_add(-0.693_359_4, xc));
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 5.000_000_1e-1);
    let y = (p * r).mul_add(r, r) + 1.0;
    // Scale in two steps so results down to subnormals stay exact.
    let n1 = (n * 0.5 + ROUND) - ROUND;
    y * pow2i(n1) * pow2i(n - n1)
}

/// `f`-reduction of `v`'s lanes as a tree (halves folded onto each other:
/// a few vector shuffles, not a chain of `L` scalar steps).
#[inline(always)]
fn tree<const L: usize>(mut v: [f32; L], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut w = L / 2;
    while w > 0 {
        for k in 0..w {
            v[k] = f(v[k], v[k + w]);
        }
        w /= 2;
    }
    v[0]
}

multiversion! {
    /// Softmax of one contiguous float32 row. Max (with the NaN check) and
    /// exp with the sum run on 16 independent lanes so they vectorise (a
    /// single accumulator would serialise on its dependency chain), folded
    /// at the end as a tree: short rows (attention's) cost little beyond
    /// their vectors.
    pub fn row_f32(x: &[f32], y: &mut [f32], log: bool) {
        row_body(x, y, log)
    }
}

/// The body of [`row_f32`], inlined into each instruction-set version.
#[inline(always)]
fn row_body(x: &[f32], y: &mut [f32], log: bool) {
    {
        const L: usize = 16;
        let mut lanes = [f32::NEG_INFINITY; L];
        let mut nan = [false; L];
        let chunks = x.chunks_exact(L);
        let tail = chunks.remainder();
        for c in chunks {
            for k in 0..L {
                lanes[k] = lanes[k].max(c[k]);
                nan[k] |= c[k].is_nan();
            }
        }
        let mut m = tree(lanes, f32::max);
        let mut bad = nan.contains(&true);
        for &v in tail {
            m = m.max(v);
            bad |= v.is_nan();
        }
        if m == f32::NEG_INFINITY || bad {
            // All -inf, or a NaN: PyTorch gives NaN.
            y.fill(f32::NAN);
            return;
        }
        let mut acc = [0.0f32; L];
        let n = x.len() - tail.len();
        for (yc, xc) in y[..n].chunks_exact_mut(L).zip(x[..n].chunks_exact(L)) {
            for k in 0..L {
                let e = exp_nonpos(xc[k] - m);
                yc[k] = e;
                acc[k] += e;
            }
        }
        let mut sum = tree(acc, |a, b| a + b);
        for (o, &v) in y[n..].iter_mut().zip(tail) {
            *o = exp_nonpos(v - m);
            sum += *o;
        }
        if log {
            let ls = m + sum.ln();
            for (o, &v) in y.iter_mut().zip(x) {
                *o = v - ls;
            }
        } else {
            let r = 1.0 / sum;
            for o in y.iter_mut() {
                *o *= r;
            }
        }
    }
}

multiversion! {
    /// One float32 row of the softmax backward: `g - exp(y) * sum(g)` (log)
    /// or `y * (g - sum(g * y))`, sums on 16 lanes so they vectorise.
    pub fn backward_row_f32(g: &[f32], y: &[f32], o: &mut [f32], log: bool) {
        backward_body(g, y, o, log)
    }
}

multiversion! {
    /// [`backward_row_f32`] over consecutive rows of length `n`, in one call.
    pub fn backward_rows_f32(g: &[f32], y: &[f32], o: &mut [f32], n: usize, log: bool) {
        for ((gr, yr), or) in g.chunks_exact(n).zip(y.chunks_exact(n)).zip(o.chunks_exact_mut(n)) {
            backward_body(gr, yr, or, log);
        }
    }
}

/// The body of [`backward_row_f32`], inlined into each instruction-set version.
#[inline(always)]
fn backward_body(g: &[f32], y: &[f32], o: &mut [f32], log: bool) {
    {
        const L: usize = 16;
        let mut acc = [0.0f32; L];
        let (gc, yc) = (g.chunks_exact(L), y.chunks_exact(L));
        let (gt, yt) = (gc.remainder(), yc.remainder());
        let mut tail = 0.0f32;
        if log {
            for c in gc {
                for k in 0..L {
                    acc[k] += c[k];
                }
            }
            tail += gt.iter().sum::<f32>();
        } else {
            for (a, b) in gc.zip(yc) {
                for k in 0..L {
                    acc[k] += a[k] * b[k];
                }
            }
            tail += gt.iter().zip(yt).map(|(a, b)| a * b).sum::<f32>();
        }
        let s = acc.iter().sum::<f32>() + tail;
        if log {
            for ((o, &g), &y) in o.iter_mut().zip(g).zip(y) {
                *o = g - exp_f32(y) * s;
            }
        } else {
            for ((o, &g), &y) in o.iter_mut().zip(g).zip(y) {
                *o = y * (g - s);
            }
        }
    }
}
