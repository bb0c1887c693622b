//! `tensor[...]` and `tensor[...] = value`, with NumPy/PyTorch semantics:
//! basic indices (ints, slices, None, Ellipsis, bools) make a view; integer
//! and boolean tensors index "advanced"-ly and gather into a new tensor.

use crate::cpu::iter::for_each_offset;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::ops::copy;
use crate::tensor::layout::{broadcast_shapes, fmt_shape, Dims, Layout};
use crate::tensor::{DType, Tensor};

#[derive(Clone, Debug)]
pub enum TensorIndex {
    Int(i64),
    Slice {
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
    },
    None,
    Ellipsis,
    Bool(bool),
    Tensor(Tensor),
}

/// The result of applying the basic part of an index: a view plus the
/// advanced (tensor) indices still to apply, by dim of that view.
struct Plan {
    view: Layout,
    advanced: Vec<(usize, Tensor)>,
}

fn consumed(ix: &TensorIndex) -> usize {
    match ix {
        TensorIndex::Int(_) | TensorIndex::Slice { .. } => 1,
        TensorIndex::Tensor(t) if is_mask(t) => t.ndim(),
        TensorIndex::Tensor(_) => 1,
        _ => 0,
    }
}

fn is_mask(t: &Tensor) -> bool {
    matches!(t.dtype(), DType::Bool | DType::U8)
}

/// Python's `slice.indices` clamping, with PyTorch's refusal of steps <= 0.
fn clamp_slice(
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
    size: usize,
) -> Result<(usize, usize, usize)> {
    let step = step.unwrap_or(1);
    if step <= 0 {
        return Err(Error::Value("step must be greater than zero".into()));
    }
    let n = size as i64;
    let norm = |v: i64| if v < 0 { (v + n).max(0) } else { v.min(n) };
    let s = start.map_or(0, norm);
    let e = stop.map_or(n, norm);
    let len = if e > s { (e - s + step - 1) / step } else { 0 };
    Ok((s as usize, len as usize, step as usize))
}

fn plan(t: &Tensor, indices: &[TensorIndex]) -> Result<Plan> {
    let used: usize = indices.iter().map(consumed).sum();
    let ellipses = indices
        .iter()
        .filter(|i| matches!(i, TensorIndex::Ellipsis))
        .count();
    if ellipses > 1 {
        return Err(Error::Index(
            "an index can only have a single ellipsis ('...')".into(),
        ));
    }
    if t.ndim() == 0 && indices.iter().any(|i| matches!(i, TensorIndex::Int(_))) {
        return Err(Error::Index(
            "invalid index of a 0-dim tensor. Use `tensor.item()` in Python or `tensor.item<T>()` in C++ to convert a 0-dim tensor to a number".into(),
        ));
    }
    if used > t.ndim() {
        return Err(Error::Index(format!(
            "too many indices for tensor of dimension {}",
            t.ndim()
        )));
    }
    let mut view = t.layout().clone();
    let mut advanced = Vec::new();
    // `dim` walks the view being built; `real` counts dims of `t` consumed,
    // which is what error messages name.
    let mut dim = 0usize;
    let mut real = 0usize;
    for ix in indices {
        let real_dim = real;
        real += consumed(ix);
        match ix {
            TensorIndex::Int(i) => {
                view = view.select(dim as i64, *i).map_err(|_| {
                    Error::Index(format!(
                        "index {i} is out of bounds for dimension {real_dim} with size {}",
                        view.shape[dim]
                    ))
                })?;
            }
            TensorIndex::Slice { start, stop, step } => {
                let (s, len, st) = clamp_slice(*start, *stop, *step, view.shape[dim])?;
                view = view.slice(dim, s, len, st);
                dim += 1;
            }
            TensorIndex::None => {
                view = view.unsqueeze(dim as i64)?;
                dim += 1;
            }
            TensorIndex::Bool(b) => {
                view = view.unsqueeze(dim as i64)?;
                if !b {
                    view = view.slice(dim, 0, 0, 1);
                }
                dim += 1;
            }
            TensorIndex::Ellipsis => {
                dim += t.ndim() - used;
                real += t.ndim() - used;
            }
            TensorIndex::Tensor(ix) if is_mask(ix) => {
                for (j, &m) in ix.shape().iter().enumerate() {
                    if m != view.shape[dim + j] {
                        return Err(Error::Index(format!(
                            "The shape of the mask {} at index {j} does not match the shape of the indexed tensor {} at index {}",
                            fmt_shape(ix.shape()),
                            fmt_shape(&view.shape),
                            dim + j
                        )));
                    }
                }
                if ix.ndim() == 0 {
                    // A 0-d mask acts like a bool index.
                    view = view.unsqueeze(dim as i64)?;
                    if !ix.get_scalar(0).to_bool() {
                        view = view.slice(dim, 0, 0, 1);
                    }
                    dim += 1;
                    continue;
                }
                for (j, coords) in nonzero(ix)?.into_iter().enumerate() {
                    advanced.push((dim + j, coords));
                }
                dim += ix.ndim();
            }
            TensorIndex::Tensor(ix) => {
                if !matches!(ix.dtype(), DType::I64 | DType::I32 | DType::I16 | DType::I8) {
                    return Err(Error::Index(
                        "tensors used as indices must be long, int, byte or bool tensors".into(),
                    ));
                }
                advanced.push((dim, ix.clone()));
                dim += 1;
            }
        }
    }
    Ok(Plan { view, advanced })
}

/// The coordinates of the non-zero elements of `t`, one int64 tensor per dim.
pub fn nonzero(t: &Tensor) -> Result<Vec<Tensor>> {
    let count = count_nonzero(t);
    let mut coords: Vec<Vec<i64>> = (0..t.ndim())
        .map(|_| crate::error::try_vec(count))
        .collect::<Result<_>>()?;
    let mut idx = vec![0usize; t.ndim()];
    dispatch!(t.dtype(), T => {
        let p = t.data_ptr::<T>();
        for_each_offset(t.shape(), t.strides(), |o| {
            // SAFETY: offsets come from the validated layout of `t`.
            if crate::tensor::Element::to_bool(unsafe { *p.offset(o) }) {
                for (c, &i) in coords.iter_mut().zip(&idx) {
                    c.push(i as i64);
                }
            }
            // Advance the row-major multi-index alongside the offsets.
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < t.shape()[d] {
                    break;
                }
                idx[d] = 0;
            }
        });
    });
    coords
        .into_iter()
        .map(|c| {
            let n = c.len();
            Tensor::from_slice(&c, &[n])
        })
        .collect()
}

fn count_nonzero(t: &Tensor) -> usize {
    let mut n = 0;
    dispatch!(t.dtype(), T => {
        let p = t.data_ptr::<T>();
        // SAFETY: offsets come from the validated layout of `t`.
        for_each_offset(t.shape(), t.strides(), |o| n += crate::tensor::Element::to_bool(unsafe { *p.offset(o) }) as usize);
    });
    n
}

/// The gather plan of advanced indexing: output shape, and for each output
/// block its source offset; each block has the shape/strides of `post`.
struct Gather {
    out_shape: Dims,
    bases: Vec<isize>,
    post: Layout,
}

fn gather_plan(p: &Plan) -> Result<Gather> {
    let v = &p.view;
    let mut bshape: Dims = Dims::new();
    for (_, ix) in &p.advanced {
        bshape = broadcast_shapes(&bshape, ix.shape()).map_err(|_| {
            let shapes: Vec<String> = p
                .advanced
                .iter()
                .map(|(_, t)| fmt_shape(t.shape()))
                .collect();
            Error::Index(format!(
                "shape mismatch: indexing tensors could not be broadcast together with shapes {}",
                shapes.join(", ")
            ))
        })?;
    }
    let nb: usize = bshape.iter().product();
    let mut adv_off = crate::error::try_vec::<isize>(nb)?;
    adv_off.resize(nb, 0);
    for (d, ix) in &p.advanced {
        let (size, stride) = (v.shape[*d] as i64, v.strides[*d]);
        let src = copy::cast_copy(ix, DType::I64)?;
        let ix = src.layout().broadcast_to(&bshape)?;
        let pi = src.data_ptr::<i64>();
        let mut k = 0;
        let mut err = None;
        for_each_offset(&bshape, &ix.strides, |o| {
            // SAFETY: `src` is contiguous with the index's own shape, and `ix`
            // strides are that shape broadcast to `bshape`.
            let i = unsafe { *pi.offset(o) };
            if i < -size || i >= size {
                err.get_or_insert(Error::Index(format!(
                    "index {i} is out of bounds for dimension {d} with size {size}"
                )));
            } else {
                adv_off[k] += (if i < 0 { i + size } else { i }) as isize * stride;
            }
            k += 1;
        });
        if let Some(e) = err {
            return Err(e);
        }
    }
    let adv_dims: Vec<usize> = p.advanced.iter().map(|(d, _)| *d).collect();
    let mut sorted = adv_dims.clone();
    sorted.dedup();
    let adjacent = sorted.windows(2).all(|w| w[1] == w[0] + 1);
    let first = sorted.first().copied().unwrap_or(0);
    let rest: Vec<usize> = (0..v.ndim()).filter(|d| !sorted.contains(d)).collect();
    let (pre, post): (Vec<usize>, Vec<usize>) = if adjacent {
        rest.iter().partition(|&&d| d < first)
    } else {
        (Vec::new(), rest)
    };
    let pre_l = Layout {
        shape: pre.iter().map(|&d| v.shape[d]).collect(),
        strides: pre.iter().map(|&d| v.strides[d]).collect(),
        offset: 0,
    };
    let post = Layout {
        shape: post.iter().map(|&d| v.shape[d]).collect(),
        strides: post.iter().map(|&d| v.strides[d]).collect(),
        offset: 0,
    };
    let mut bases = crate::error::try_vec(pre_l.numel().saturating_mul(nb))?;
    for_each_offset(&pre_l.shape, &pre_l.strides, |po| {
        bases.extend(adv_off.iter().map(|&a| v.offset as isize + po + a));
    });
    let mut out_shape = pre_l.shape.clone();
    out_shape.extend_from_slice(&bshape);
    out_shape.extend_from_slice(&post.shape);
    Ok(Gather {
        out_shape,
        bases,
        post,
    })
}

/// `t[indices]`: a view for basic indices, a gather (copy) otherwise.
pub fn index(t: &Tensor, indices: &[TensorIndex]) -> Result<Tensor> {
    let rec = if t.dtype().is_floating_point() {
        crate::autograd::Recorder::new("IndexBackward0", &[t])
    } else {
        None
    };
    let mut is_view = false;
    let out = index_impl(t, indices, &mut is_view)?;
    if is_view {
        drop(rec);
        let idx = indices.to_vec();
        let name = match indices {
            [TensorIndex::Int(_)] => "SelectBackward0",
            _ => "SliceBackward0",
        };
        crate::autograd::record_view(name, t, &out, move |x| index(x, &idx), None);
    } else if let Some(rec) = rec {
        let idx = indices.to_vec();
        let shape = t.shape().to_vec();
        rec.finish(&[&out], move |_ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            let z = crate::ops::creation::full(&shape, crate::tensor::Scalar::Int(0), g.dtype())?;
            index_put_with(&z, &idx, &g, true)?;
            Ok(vec![Some(z)])
        });
    }
    Ok(out)
}

fn index_impl(t: &Tensor, indices: &[TensorIndex], is_view: &mut bool) -> Result<Tensor> {
    if let [TensorIndex::Tensor(m)] = indices {
        if is_mask(m) && m.shape() == t.shape() && t.ndim() > 0 {
            return masked_gather(t, m);
        }
    }
    let p = plan(t, indices)?;
    if p.advanced.is_empty() {
        *is_view = true;
        return t.view_with(p.view);
    }
    let g = gather_plan(&p)?;
    let out = Tensor::empty(&g.out_shape, t.dtype())?;
    if out.numel() == 0 {
        return Ok(out);
    }
    let base = t.storage().as_ptr();
    dispatch!(t.dtype(), T => {
        let (src, dst) = (base as *const T, out.data_ptr::<T>());
        let mut pos = 0usize;
        for &b in &g.bases {
            for_each_offset(&g.post.shape, &g.post.strides, |o| {
                // SAFETY: `b + o` addresses an element of the validated view
                // (indices were bounds-checked); `pos` < out.numel().
                unsafe { *dst.add(pos) = *src.offset(b + o) };
                pos += 1;
            });
        }
    });
    Ok(out)
}

/// `t[mask]` for a mask of `t`'s own shape: one pass, no coordinates.
fn masked_gather(t: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let out = Tensor::empty(&[count_nonzero(mask)], t.dtype())?;
    // Bool and uint8 masks are both one byte per element; non-zero selects.
    let pm = mask.raw_ptr() as *const u8;
    dispatch!(t.dtype(), T => {
        let (pt, po) = (t.data_ptr::<T>(), out.data_ptr::<T>());
        let mut k = 0usize;
        crate::cpu::iter::for_each_row(t.shape(), [t.strides(), mask.strides()], |[ot, om], len, [st, sm]| {
            for i in 0..len as isize {
                // SAFETY: offsets come from the validated layouts of `t` and
                // `mask` (same shape); `k` stays below the counted non-zeros.
                unsafe {
                    if *pm.offset(om + i * sm) != 0 {
                        *po.add(k) = *pt.offset(ot + i * st);
                        k += 1;
                    }
                }
            }
        });
    });
    Ok(out)
}

/// `t[indices] = value`.
pub fn index_put_(t: &Tensor, indices: &[TensorIndex], value: &Tensor) -> Result<()> {
    index_put_with(t, indices, value, false)
}

/// `t[indices] = value`, or `+=` with `accumulate` (repeated indices add up).
pub fn index_put_with(
    t: &Tensor,
    indices: &[TensorIndex],
    value: &Tensor,
    accumulate: bool,
) -> Result<()> {
    let p = plan(t, indices)?;
    if p.advanced.is_empty() && !accumulate {
        // Through a tracked view, so autograd sees the write reach `t`.
        let target = index(t, indices)?;
        let value = strip_leading_ones(value, target.ndim())?;
        // Assignment broadcasts like `expand`, with its error message.
        value.layout().broadcast_to(target.shape())?;
        return copy::copy_(&target, &value);
    }
    copy::check_no_internal_overlap(t)?;
    let rec = if t.dtype().is_floating_point() {
        crate::autograd::Recorder::new_inplace("IndexPutBackward0", t, &[Some(value)])?
    } else {
        None
    };
    index_put_advanced(t, p, value, accumulate)?;
    if let Some(rec) = rec {
        let idx = indices.to_vec();
        let vshape: Vec<i64> = value.shape().iter().map(|&d| d as i64).collect();
        rec.finish_inplace(t, move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None]);
            };
            let gv = if ctx.needs(1) {
                let picked = index(&g, &idx)?;
                let n = picked.ndim().saturating_sub(vshape.len());
                let lead: Vec<i64> = (0..n as i64).collect();
                let summed = if lead.is_empty() {
                    picked
                } else {
                    crate::ops::reduce::sum(&picked, Some(&lead), false, None)?
                };
                let stripped = strip_leading_ones_shape(&vshape, summed.ndim());
                Some(crate::ops::shape::reshape(
                    &crate::autograd::sum_to(&summed, &stripped)?,
                    &vshape,
                )?)
            } else {
                None
            };
            let gt = if ctx.needs(0) {
                if accumulate {
                    Some(g)
                } else {
                    let gt = copy::clone(&g)?;
                    let zero =
                        crate::ops::creation::full(&[], crate::tensor::Scalar::Int(0), g.dtype())?;
                    index_put_with(&gt, &idx, &zero, false)?;
                    Some(gt)
                }
            } else {
                None
            };
            Ok(vec![gt, gv])
        })?;
    }
    Ok(())
}

/// `shape` without leading ones beyond `ndim` dims, as `usize`.
fn strip_leading_ones_shape(shape: &[i64], ndim: usize) -> Vec<usize> {
    let mut s: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    while s.len() > ndim && s.first() == Some(&1) {
        s.remove(0);
    }
    s
}

fn index_put_advanced(t: &Tensor, p: Plan, value: &Tensor, accumulate: bool) -> Result<()> {
    let p = if p.advanced.is_empty() {
        // `accumulate` with only basic indices: the whole view, one block.
        Plan {
            advanced: Vec::new(),
            view: p.view,
        }
    } else {
        p
    };
    let g = gather_plan(&p)?;
    let value = strip_leading_ones(value, g.out_shape.len())?;
    let vexp = value.layout().broadcast_to(&g.out_shape).map_err(|_| {
        Error::Runtime(format!(
            "shape mismatch: value tensor of shape {} cannot be broadcast to indexing result of shape {}",
            fmt_shape(value.shape()),
            fmt_shape(&g.out_shape)
        ))
    })?;
    let vals = copy::cast_copy(&value.view_with(vexp)?, t.dtype())?;
    let base = t.storage().as_ptr();
    dispatch!(t.dtype(), T => {
        let (dst, src) = (base as *mut T, vals.data_ptr::<T>());
        let mut pos = 0usize;
        for &b in &g.bases {
            for_each_offset(&g.post.shape, &g.post.strides, |o| {
                // SAFETY: as in `index`; `vals` is contiguous with the output shape.
                unsafe {
                    let d = dst.offset(b + o);
                    *d = if accumulate {
                        crate::ops::gather::Reduce::Sum.apply(*d, *src.add(pos))
                    } else {
                        *src.add(pos)
                    };
                }
                pos += 1;
            });
        }
    });
    t.bump_version();
    Ok(())
}

/// PyTorch lets a value carry extra leading size-1 dims in assignments.
fn strip_leading_ones(v: &Tensor, ndim: usize) -> Result<Tensor> {
    let mut shape: Vec<i64> = v.shape().iter().map(|&d| d as i64).collect();
    while shape.len() > ndim && shape[0] == 1 {
        shape.remove(0);
    }
    if shape.len() == v.ndim() {
        Ok(v.clone())
    } else {
        crate::ops::shape::view(v, &shape)
    }
}
