//! `nll_loss` (and so `cross_entropy` = `log_softmax` + `nll_loss`): one
//! pass over the rows instead of the dozen indexing and masking ops the
//! composition takes, which dominate a small classifier's loss step.

use crate::autograd::Recorder;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::ops::copy;
use crate::tensor::{DType, Element, Tensor};

/// PyTorch's `reduction` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    None,
    Mean,
    Sum,
}

/// `-weight[t_i] * input[i, t_i]` per row of a `(M, C)` `input`, reduced.
/// Rows whose target is `ignore_index` count nothing (nor toward the mean's
/// total weight). `target` is int64 `(M)`, `weight` (if any) `(C)` of
/// `input`'s dtype. Derivative: `-w_i * g` at `(i, t_i)`, zero elsewhere.
pub fn nll_loss(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    ignore_index: i64,
) -> Result<Tensor> {
    let (m, c) = check(input, target, weight)?;
    let rec = Recorder::new("NllLossBackward0", &[input]);
    let x = copy::contiguous(input)?;
    let t = copy::contiguous(target)?;
    let w = weight.map(copy::contiguous).transpose()?;
    let targets = row_targets(&t, m, c, ignore_index)?;
    let out = dispatch_float(input.dtype(), |dtype| {
        let shape: &[usize] = if reduction == Reduction::None {
            &[m]
        } else {
            &[]
        };
        let out = Tensor::empty(shape, dtype)?;
        dispatch!(dtype, T => {
            let (px, po) = (x.data_ptr::<T>(), out.data_ptr::<T>());
            let wv = row_weights::<T>(w.as_ref(), &targets)?;
            let mut total = 0.0f64;
            let mut sum_w = 0.0f64;
            for (i, (tgt, wi)) in targets.iter().zip(&wv).enumerate() {
                let v = match tgt {
                    // SAFETY: `x` is contiguous (m, c) and `t < c` (checked).
                    Some(t) => -unsafe { *px.add(i * c + t) }.to_f64() * wi,
                    None => 0.0,
                };
                if reduction == Reduction::None {
                    // SAFETY: `out` has `m` elements.
                    unsafe { *po.add(i) = T::from_f64(v) };
                }
                total += v;
                sum_w += wi;
            }
            let r = match reduction {
                Reduction::None => return Ok(out),
                Reduction::Sum => total,
                Reduction::Mean => total / sum_w,
            };
            // SAFETY: a reduced `out` has one element.
            unsafe { *po = T::from_f64(r) };
        });
        Ok(out)
    })?;
    if let Some(rec) = rec {
        let (t, w) = (t.clone(), w.clone());
        rec.finish(&[&out], move |_ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            let gx = nll_loss_backward(&g, &t, w.as_ref(), reduction, ignore_index, m, c)?;
            Ok(vec![Some(gx)])
        });
    }
    Ok(out)
}

/// The `(M, C)` gradient of `nll_loss` for its output gradient `g`. Linear
/// in `g`, so its own derivative is `nll_loss` of the incoming gradient.
fn nll_loss_backward(
    g: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    ignore_index: i64,
    m: usize,
    c: usize,
) -> Result<Tensor> {
    let rec = Recorder::new("NllLossBackwardBackward0", &[g]);
    let targets = row_targets(target, m, c, ignore_index)?;
    let gc = copy::contiguous(g)?;
    let gx = Tensor::zeros(&[m, c], g.dtype())?;
    dispatch!(g.dtype(), T => {
        let (pg, px) = (gc.data_ptr::<T>(), gx.data_ptr::<T>());
        let wv = row_weights::<T>(weight, &targets)?;
        let scale = match reduction {
            Reduction::Mean => 1.0 / wv.iter().sum::<f64>(),
            _ => 1.0,
        };
        for (i, (tgt, wi)) in targets.iter().zip(&wv).enumerate() {
            if let Some(t) = tgt {
                // SAFETY: `g` has `m` elements (unreduced) or one; `gx` is
                // (m, c) and `t < c`.
                unsafe {
                    let gi = if reduction == Reduction::None { *pg.add(i) } else { *pg };
                    *px.add(i * c + t) = T::from_f64(-gi.to_f64() * wi * scale);
                }
            }
        }
    });
    if let Some(rec) = rec {
        let (t, w) = (target.clone(), weight.cloned());
        rec.finish(&[&gx], move |_ctx, grads| {
            let Some(gg) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            Ok(vec![Some(nll_loss(
                &gg,
                &t,
                w.as_ref(),
                reduction,
                ignore_index,
            )?)])
        });
    }
    Ok(gx)
}

fn dispatch_float(dtype: DType, f: impl FnOnce(DType) -> Result<Tensor>) -> Result<Tensor> {
    if !dtype.is_floating_point() {
        return Err(Error::Runtime(format!(
            "\"nll_loss_out_frame\" not implemented for '{}'",
            dtype.scalar_name()
        )));
    }
    f(dtype)
}

fn check(input: &Tensor, target: &Tensor, weight: Option<&Tensor>) -> Result<(usize, usize)> {
    let &[m, c] = input.shape() else {
        return Err(Error::Runtime(format!(
            "nll_loss: expected a 2-D (rows, classes) input, got {}-D",
            input.ndim()
        )));
    };
    if target.dtype() != DType::I64 || target.shape() != [m] {
        return Err(Error::Runtime(format!(
            "nll_loss: expected an int64 target of shape [{m}], got {} of shape {}",
            target.dtype().scalar_name(),
            crate::tensor::layout::fmt_shape(target.shape())
        )));
    }
    if let Some(w) = weight {
        if w.numel() != c || w.dtype() != input.dtype() {
            return Err(Error::Runtime(format!(
                "weight tensor should be defined either for all {c} classes or no classes but got weight tensor of shape: {}",
                crate::tensor::layout::fmt_shape(w.shape())
            )));
        }
    }
    Ok((m, c))
}

/// Each row's class, `None` for `ignore_index`; PyTorch's IndexError for
/// a class outside `0..c`.
fn row_targets(
    target: &Tensor,
    m: usize,
    c: usize,
    ignore_index: i64,
) -> Result<Vec<Option<usize>>> {
    let p = target.data_ptr::<i64>();
    (0..m)
        .map(|i| {
            // SAFETY: `target` is a contiguous int64 tensor of `m` elements.
            let t = unsafe { *p.add(i) };
            if t == ignore_index {
                Ok(None)
            } else if (0..c as i64).contains(&t) {
                Ok(Some(t as usize))
            } else {
                Err(Error::Index(format!("Target {t} is out of bounds.")))
            }
        })
        .collect()
}

/// Each row's class weight (zero for ignored rows).
fn row_weights<T: Element>(weight: Option<&Tensor>, targets: &[Option<usize>]) -> Result<Vec<f64>> {
    let w = weight.map(copy::contiguous).transpose()?;
    let pw = w.as_ref().map(|w| w.data_ptr::<T>());
    Ok(targets
        .iter()
        .map(|t| match (t, pw) {
            (None, _) => 0.0,
            // SAFETY: `weight` is contiguous with `c` elements and `t < c`.
            (Some(t), Some(pw)) => unsafe { *pw.add(*t) }.to_f64(),
            (Some(_), None) => 1.0,
        })
        .collect())
}
