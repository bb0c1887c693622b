//! `softmax` and `log_softmax` along one dim: rows along the last dim, with
//! a vectorised float32 kernel; other dims are moved last first.

use crate::cpu::parallel;
use crate::cpu::simd::exp_f32;
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

multiversion! {
    /// Softmax of one contiguous float32 row. Max and sum run on 16
    /// independent lanes so they vectorise (a single accumulator would
    /// serialise on its dependency chain).
    pub fn row_f32(x: &[f32], y: &mut [f32], log: bool) {
        const L: usize = 16;
        let mut lanes = [f32::NEG_INFINITY; L];
        let chunks = x.chunks_exact(L);
        let tail = chunks.remainder();
        for c in chunks {
            for k in 0..L {
                lanes[k] = lanes[k].max(c[k]);
            }
        }
        let m = tail.iter().chain(&lanes).fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        if m == f32::NEG_INFINITY || x.iter().any(|v| v.is_nan()) {
            // All -inf, or a NaN: PyTorch gives NaN.
            y.fill(f32::NAN);
            return;
        }
        for (o, &v) in y.iter_mut().zip(x) {
            *o = exp_f32(v - m);
        }
        let mut acc = [0.0f32; L];
        let chunks = y.chunks_exact(L);
        let tail: f32 = chunks.remainder().iter().sum();
        for c in chunks {
            for k in 0..L {
                acc[k] += c[k];
            }
        }
        let sum = acc.iter().sum::<f32>() + tail;
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
