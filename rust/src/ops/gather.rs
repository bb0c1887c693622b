//! Index-driven reads and writes along a dim: gather/scatter (and their
//! reductions), index_select/add/copy/fill/put, masked_select/scatter,
//! take, take_along_dim and nonzero. Each in-place op is the primitive; the
//! out-of-place form clones and calls it, as PyTorch does.

use crate::autograd::Recorder;
use crate::cpu::iter::{for_each_offset, for_each_row};
use crate::cpu::parallel::for_ranges;
use crate::dispatch;
use crate::error::{try_vec, wrap_dim, Error, Result};
use crate::ops::binary::BinaryOp;
use crate::ops::index::{self, TensorIndex};
use crate::ops::join::{copy_into, SendPtr};
use crate::ops::{arith, copy, creation, shape};
use crate::tensor::layout::{broadcast_shapes, fmt_shape};
use crate::tensor::{DType, Element, Scalar, Tensor};

/// How a written value combines with the one already there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reduce {
    Assign,
    Sum,
    Prod,
    Mean,
    Amax,
    Amin,
}

impl Reduce {
    /// `scatter_reduce`'s names, and `scatter`'s legacy 'add'/'multiply'.
    pub fn parse(name: &str) -> Option<Reduce> {
        Some(match name {
            "sum" | "add" => Reduce::Sum,
            "prod" | "multiply" => Reduce::Prod,
            "mean" => Reduce::Mean,
            "amax" => Reduce::Amax,
            "amin" => Reduce::Amin,
            _ => return None,
        })
    }

    /// Integers wrap as in C++; bool sums are `or`, products `and`.
    #[inline]
    pub(crate) fn apply<T: Element>(self, a: T, b: T) -> T {
        let float = T::DTYPE.is_floating_point();
        match self {
            Reduce::Assign => b,
            Reduce::Sum | Reduce::Mean if float => T::from_f64(a.to_f64() + b.to_f64()),
            Reduce::Sum | Reduce::Mean => T::from_i64(a.to_i64().wrapping_add(b.to_i64())),
            Reduce::Prod if float => T::from_f64(a.to_f64() * b.to_f64()),
            Reduce::Prod => T::from_i64(a.to_i64().wrapping_mul(b.to_i64())),
            Reduce::Amax | Reduce::Amin
                if float && (a.to_f64().is_nan() || b.to_f64().is_nan()) =>
            {
                T::from_f64(f64::NAN)
            }
            Reduce::Amax => {
                if b > a {
                    b
                } else {
                    a
                }
            }
            Reduce::Amin => {
                if b < a {
                    b
                } else {
                    a
                }
            }
        }
    }

    /// The value that leaves any other unchanged.
    fn identity<T: Element>(self) -> T {
        match self {
            Reduce::Prod => T::from_i64(1),
            Reduce::Amax if T::DTYPE.is_floating_point() => T::from_f64(f64::NEG_INFINITY),
            Reduce::Amin if T::DTYPE.is_floating_point() => T::from_f64(f64::INFINITY),
            Reduce::Amax => T::from_i64(min_int(T::DTYPE)),
            Reduce::Amin => T::from_i64(max_int(T::DTYPE)),
            _ => T::default(),
        }
    }
}

fn min_int(d: DType) -> i64 {
    match d {
        DType::I8 => i8::MIN as i64,
        DType::I16 => i16::MIN as i64,
        DType::I32 => i32::MIN as i64,
        DType::I64 => i64::MIN,
        _ => 0,
    }
}

fn max_int(d: DType) -> i64 {
    match d {
        DType::I8 => i8::MAX as i64,
        DType::I16 => i16::MAX as i64,
        DType::I32 => i32::MAX as i64,
        DType::U8 => u8::MAX as i64,
        DType::Bool => 1,
        _ => i64::MAX,
    }
}

// ---------------------------------------------------------------- gather/scatter

/// PyTorch's checks shared by gather and scatter: int64 index with the
/// target's rank, no larger than `target` (and `src`) outside `dim`.
fn check_index(
    op: &str,
    target: &Tensor,
    d: usize,
    index: &Tensor,
    src: Option<&Tensor>,
) -> Result<()> {
    if index.dtype() != DType::I64 {
        return Err(Error::Runtime(format!(
            "{op}(): Expected dtype int64 for index"
        )));
    }
    let nd = |t: &Tensor| t.ndim().max(1);
    let gather = op == "gather";
    if nd(index) != nd(target) && index.numel() != 0 {
        return Err(Error::Runtime(format!(
            "Index tensor must have the same number of dimensions as {} tensor",
            if gather { "input" } else { "self" }
        )));
    }
    if let Some(s) = src {
        if nd(index) != nd(s) && index.numel() != 0 {
            return Err(Error::Runtime(
                "Index tensor must have the same number of dimensions as src tensor".into(),
            ));
        }
    }
    if index.ndim() == 0 || target.ndim() == 0 {
        return Ok(());
    }
    for k in 0..index.ndim() {
        let i = index.shape()[k];
        let too_big = k != d && i > target.shape()[k];
        let src_small = src.is_some_and(|s| s.ndim() > k && i > s.shape()[k]);
        if gather && too_big {
            return Err(Error::Runtime(format!(
                "Size does not match at dimension {k} expected index {} to be smaller than self {} apart from dimension {d}",
                fmt_shape(index.shape()),
                fmt_shape(target.shape())
            )));
        }
        if !gather && (too_big || src_small) {
            let srcs = src.map_or(String::new(), |s| {
                format!(" and to be smaller size than src {}", fmt_shape(s.shape()))
            });
            return Err(Error::Runtime(format!(
                "Expected index {} to be smaller than self {} apart from dimension {d}{srcs}",
                fmt_shape(index.shape()),
                fmt_shape(target.shape())
            )));
        }
    }
    Ok(())
}

/// Strides of `t` seen as having `ndim` dims (0-d tensors as `[1]`).
fn strides_of(t: &Tensor, ndim: usize) -> Vec<isize> {
    let mut s = t.strides().to_vec();
    s.resize(ndim, 0);
    s
}

/// Walks the index: for each element, calls `f(target_offset, other_offset)`
/// where the target offset has `index` substituted along `d`. Fails on an
/// out-of-range index before `f` sees it.
fn walk(
    index: &Tensor,
    target: &Tensor,
    d: usize,
    other: &[isize],
    mut f: impl FnMut(isize, isize),
) -> Result<()> {
    if index.numel() == 0 {
        return Ok(());
    }
    let nd = index.ndim().max(1);
    let shape: Vec<usize> = if index.ndim() == 0 {
        vec![1]
    } else {
        index.shape().to_vec()
    };
    let mut ts = strides_of(target, nd);
    let (size, dstride) = (target.shape().get(d).copied().unwrap_or(1) as i64, ts[d]);
    ts[d] = 0;
    let is = strides_of(index, nd);
    let pi = index.data_ptr::<i64>();
    let mut err = None;
    for_each_row(
        &shape,
        [&is, &ts, other],
        |[oi, ot, oo], len, [si, st, so]| {
            if err.is_some() {
                return;
            }
            for k in 0..len as isize {
                // SAFETY: offsets come from the index's validated layout.
                // PyTorch's gather/scatter take no negative indices.
                let i = unsafe { *pi.offset(oi + k * si) };
                if i < 0 || i >= size {
                    err = Some(Error::Runtime(format!(
                        "index {i} is out of bounds for dimension {d} with size {size}"
                    )));
                    return;
                }
                f(ot + k * st + i as isize * dstride, oo + k * so);
            }
        },
    );
    err.map_or(Ok(()), Err)
}

pub fn gather(t: &Tensor, dim: i64, index: &Tensor) -> Result<Tensor> {
    let d = wrap_dim(dim, t.ndim())?;
    check_index("gather", t, d, index, None)?;
    let rec = Recorder::new("GatherBackward0", &[t]);
    let out = Tensor::empty(index.shape(), t.dtype())?;
    if out.numel() > 0 {
        let os = strides_of(&out, index.ndim().max(1));
        dispatch!(t.dtype(), T => {
            let (src, dst) = (t.data_ptr::<T>(), out.data_ptr::<T>());
            // SAFETY: `walk` bounds-checks the target offset; `o` walks `out`.
            walk(index, t, d, &os, |s, o| unsafe { *dst.offset(o) = *src.offset(s) })?;
        });
    }
    if let Some(mut rec) = rec {
        let ii = rec.save(index)?;
        let shape = t.shape().to_vec();
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            let z = creation::full(&shape, Scalar::Int(0), g.dtype())?;
            Ok(vec![Some(scatter_add(&z, dim, &ctx.saved(ii)?, &g)?)])
        });
    }
    Ok(out)
}

/// `t.scatter(dim, index, src)`: a copy of `t` with `scatter_` applied.
pub fn scatter(
    t: &Tensor,
    dim: i64,
    index: &Tensor,
    src: Source<'_>,
    reduce: Reduce,
) -> Result<Tensor> {
    let out = copy::clone(t)?;
    scatter_(&out, dim, index, src, reduce)?;
    Ok(out)
}

pub fn scatter_add(t: &Tensor, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
    scatter(t, dim, index, Source::Tensor(src), Reduce::Sum)
}

/// `g` (shaped like a prefix-box of `shape`, as a gather by a smaller
/// index gives) zero-padded up to `shape`.
fn pad_to(g: Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g);
    }
    let z = creation::full(shape, Scalar::Int(0), g.dtype())?;
    let mut v = z.clone();
    for (k, &n) in g.shape().iter().enumerate() {
        v = shape::narrow(&v, k as i64, 0, n as i64)?;
    }
    copy::copy_(&v, &g)?;
    Ok(z)
}

/// `t` narrowed to the leading box of `shape` (the part an index of that
/// shape reads).
fn narrow_to(t: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let mut v = t.clone();
    for (k, &n) in shape.iter().enumerate() {
        if v.ndim() > k && v.shape()[k] != n {
            v = shape::narrow(&v, k as i64, 0, n as i64)?;
        }
    }
    Ok(v)
}

/// What `scatter` writes: elements of a tensor, or one value.
pub enum Source<'a> {
    Tensor(&'a Tensor),
    Value(Scalar),
}

/// `t.scatter_(dim, index, src, reduce=)` and `scatter_add_`.
pub fn scatter_(
    t: &Tensor,
    dim: i64,
    index: &Tensor,
    src: Source<'_>,
    reduce: Reduce,
) -> Result<()> {
    let op = match reduce {
        Reduce::Sum if matches!(src, Source::Tensor(_)) => "scatter_add",
        _ => "scatter",
    };
    let d = wrap_dim(dim, t.ndim())?;
    let st = match src {
        Source::Tensor(s) => Some(s),
        Source::Value(_) => None,
    };
    check_index(op, t, d, index, st)?;
    if let Some(s) = st {
        if s.dtype() != t.dtype() {
            return Err(Error::Runtime(format!(
                "{op}(): Expected self.dtype to be equal to src.dtype"
            )));
        }
    }
    copy::check_no_internal_overlap(t)?;
    let name = match (st, reduce) {
        (Some(_), Reduce::Assign) => "ScatterBackward0",
        (None, Reduce::Assign) => "ScatterBackward1",
        (Some(_), Reduce::Sum) => "ScatterAddBackward0",
        (Some(_), _) => "ScatterReduceBackward1",
        (None, _) => "ScatterBackward2",
    };
    let rec = Recorder::new_inplace(name, t, &[st])?;
    let nd = index.ndim().max(1);
    dispatch!(t.dtype(), T => {
        let dst = t.data_ptr::<T>();
        match src {
            Source::Tensor(s) => {
                let s = if s.same_storage(t) { copy::contiguous_copy(s)? } else { s.clone() };
                let ps = s.data_ptr::<T>();
                let ss = strides_of(&s, nd);
                // SAFETY: target offsets are bounds-checked; source offsets walk
                // the index shape, which fits inside `s` (checked above).
                walk(index, t, d, &ss, |o, so| unsafe {
                    *dst.offset(o) = reduce.apply(*dst.offset(o), *ps.offset(so))
                })?;
            }
            Source::Value(v) => {
                let v = v.to::<T>();
                let zeros = vec![0isize; nd];
                // SAFETY: as above.
                walk(index, t, d, &zeros, |o, _| unsafe {
                    *dst.offset(o) = reduce.apply(*dst.offset(o), v)
                })?;
            }
        }
    });
    t.bump_version();
    if let Some(mut rec) = rec {
        let ii = rec.save(index)?;
        let src_shape = st.map(|s| s.shape().to_vec());
        rec.finish_inplace(t, move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None]);
            };
            let idx = ctx.saved(ii)?;
            let gt = match reduce {
                _ if !ctx.needs(0) => None,
                Reduce::Assign => Some(scatter(
                    &g,
                    dim,
                    &idx,
                    Source::Value(Scalar::Int(0)),
                    reduce,
                )?),
                Reduce::Sum if src_shape.is_some() => Some(g.clone()),
                _ => {
                    return Err(Error::NotImplemented(
                        "the derivative for 'scatter with reduce' is not implemented.".into(),
                    ))
                }
            };
            let gs = match &src_shape {
                Some(shape) if ctx.needs(1) => Some(pad_to(gather(&g, dim, &idx)?, shape)?),
                _ => None,
            };
            Ok(vec![gt, gs])
        })?;
    }
    Ok(())
}

/// `scatter_reduce(dim, index, src, reduce, include_self)`, out of place.
pub fn scatter_reduce(
    t: &Tensor,
    dim: i64,
    index: &Tensor,
    src: &Tensor,
    reduce: Reduce,
    include_self: bool,
) -> Result<Tensor> {
    let d = wrap_dim(dim, t.ndim())?;
    check_index("scatter_reduce", t, d, index, Some(src))?;
    if src.dtype() != t.dtype() {
        return Err(Error::Runtime(
            "scatter_reduce(): Expected self.dtype to be equal to src.dtype".into(),
        ));
    }
    let rec = Recorder::new("ScatterReduceBackward0", &[t, src]);
    // A dense copy, so element offsets index the per-element counts below.
    let out = copy::contiguous_copy(t)?;
    let nd = index.ndim().max(1);
    let ss = strides_of(src, nd);
    let mut counts: Vec<u32> = try_vec(out.numel())?;
    counts.resize(out.numel(), u32::from(include_self));
    dispatch!(t.dtype(), T => {
        let (dst, ps) = (out.data_ptr::<T>(), src.data_ptr::<T>());
        let zeros = vec![0isize; nd];
        if !include_self {
            let id = reduce.identity::<T>();
            // SAFETY: offsets are bounds-checked by `walk`.
            walk(index, &out, d, &zeros, |o, _| unsafe { *dst.offset(o) = id })?;
        }
        // SAFETY: as in `scatter_`.
        walk(index, &out, d, &ss, |o, so| unsafe {
            *dst.offset(o) = reduce.apply(*dst.offset(o), *ps.offset(so));
            counts[o as usize] += 1;
        })?;
        if reduce == Reduce::Mean {
            for (i, &c) in counts.iter().enumerate() {
                if c > 1 || (!include_self && c == 1) {
                    // SAFETY: `out` is contiguous with `counts.len()` elements.
                    unsafe {
                        let p = dst.add(i);
                        *p = if T::DTYPE.is_floating_point() {
                            T::from_f64((*p).to_f64() / c as f64)
                        } else {
                            T::from_i64((*p).to_i64().div_euclid(c as i64))
                        };
                    }
                }
            }
        }
    });
    if let Some(mut rec) = rec {
        let (it, ii, is) = (rec.save(t)?, rec.save(index)?, rec.save(src)?);
        let io = rec.save_output(&out, 0)?;
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None]);
            };
            let (t, index, src, out) = (
                ctx.saved(it)?,
                ctx.saved(ii)?,
                ctx.saved(is)?,
                ctx.saved(io)?,
            );
            let (gt, gs) =
                scatter_reduce_backward(&g, &t, dim, &index, &src, &out, reduce, include_self)?;
            let gs = pad_to(gs, src.shape())?;
            Ok(vec![ctx.needs(0).then_some(gt), ctx.needs(1).then_some(gs)])
        });
    }
    Ok(out)
}

/// The gradients of `out = t.scatter_reduce(dim, index, src, reduce,
/// include_self)` for `t` and for the part of `src` that `index` reads.
/// Where several elements tie for amax/amin, they share the gradient
/// evenly; prod divides by the factor unless it is the one zero in its
/// group (then it is the product of the others), as PyTorch.
#[allow(clippy::too_many_arguments)]
fn scatter_reduce_backward(
    g: &Tensor,
    t: &Tensor,
    dim: i64,
    index: &Tensor,
    src: &Tensor,
    out: &Tensor,
    reduce: Reduce,
    include_self: bool,
) -> Result<(Tensor, Tensor)> {
    let src = narrow_to(src, index.shape())?;
    let dtype = g.dtype();
    let zeros = |shape: &[usize]| creation::full(shape, Scalar::Int(0), dtype);
    let as_float = |b: &Tensor| copy::to_dtype(b, dtype, false);
    let where1 = |cond: &Tensor, x: &Tensor| {
        crate::ops::ternary::where_(
            cond,
            &crate::ops::Operand::Scalar(Scalar::Int(1)),
            &crate::ops::Operand::Tensor(x.clone()),
        )
    };
    // Zero at the positions of `t` some index writes to (which take no
    // part when `include_self` is false).
    let unhit = |x: &Tensor| scatter(x, dim, index, Source::Value(Scalar::Int(0)), Reduce::Assign);
    let (gt, gs) = match reduce {
        Reduce::Sum | Reduce::Assign => (g.clone(), gather(g, dim, index)?),
        Reduce::Mean => {
            let ones = creation::full(index.shape(), Scalar::Int(1), dtype)?;
            let base = creation::full(t.shape(), Scalar::Int(i64::from(include_self)), dtype)?;
            let n = scatter_add(&base, dim, index, &ones)?;
            let n = where1(&arith::cmp_s(BinaryOp::Eq, &n, 0.0)?, &n)?;
            let gn = arith::div(g, &n)?;
            (gn.clone(), gather(&gn, dim, index)?)
        }
        Reduce::Amax | Reduce::Amin => {
            let value = gather(out, dim, index)?;
            let mut self_is = as_float(&arith::cmp(BinaryOp::Eq, t, out)?)?;
            if !include_self {
                self_is = unhit(&self_is)?;
            }
            let src_is = as_float(&arith::cmp(BinaryOp::Eq, &src, &value)?)?;
            let n = scatter_add(&self_is, dim, index, &src_is)?;
            let gd = arith::div(g, &n)?;
            (
                arith::mul(&self_is, &gd)?,
                arith::mul(&src_is, &gather(&gd, dim, index)?)?,
            )
        }
        Reduce::Prod => {
            let self_zero = arith::cmp_s(BinaryOp::Eq, t, 0.0)?;
            let masked_self = where1(&self_zero, t)?;
            let others = scatter_reduce(&masked_self, dim, index, &src, reduce, include_self)?;
            let gt = arith::div(&arith::mul(g, &others)?, &masked_self)?;
            let src_zero = arith::cmp_s(BinaryOp::Eq, &src, 0.0)?;
            let zeros_in_group = gather(
                &scatter_add(&zeros(t.shape())?, dim, index, &as_float(&src_zero)?)?,
                dim,
                index,
            )?;
            let single = arith::and(
                &src_zero,
                &arith::cmp_s(BinaryOp::Eq, &zeros_in_group, 1.0)?,
            )?;
            let without =
                scatter_reduce(t, dim, index, &where1(&single, &src)?, reduce, include_self)?;
            let gs = crate::ops::ternary::where_(
                &single,
                &crate::ops::Operand::Tensor(gather(&arith::mul(g, &without)?, dim, index)?),
                &crate::ops::Operand::Tensor(arith::div(
                    &gather(&arith::mul(g, out)?, dim, index)?,
                    &where1(&src_zero, &src)?,
                )?),
            )?;
            (gt, gs)
        }
    };
    let gt = if include_self { gt } else { unhit(&gt)? };
    Ok((gt, gs))
}

// ---------------------------------------------------------------- index_*

/// An index vector as int64 values, with PyTorch's dtype and rank checks.
fn index_vector(op: &str, index: &Tensor) -> Result<Vec<i64>> {
    if index.ndim() > 1 {
        return Err(Error::Index(format!(
            "{op}(): Index is supposed to be a vector"
        )));
    }
    if !matches!(index.dtype(), DType::I64 | DType::I32) {
        let what = if op == "index_select" {
            "int32 or int64"
        } else {
            "int32/int64"
        };
        return Err(Error::Index(format!(
            "{op}(): Expected dtype {what} for index"
        )));
    }
    copy::to_vec::<i64>(index)
}

/// `t` seen with at least one dim (a 0-d tensor as `[1]`).
fn at_least_1d(t: &Tensor) -> Result<Tensor> {
    if t.ndim() == 0 {
        shape::reshape(t, &[1])
    } else {
        Ok(t.clone())
    }
}

pub fn index_select(t: &Tensor, dim: i64, index: &Tensor) -> Result<Tensor> {
    let d = wrap_dim(dim, t.ndim())?;
    let ix = index_vector("index_select", index)?;
    let src = at_least_1d(t)?;
    let n = src.shape()[d] as i64;
    if ix.iter().any(|&i| i < 0 || i >= n) {
        return Err(Error::Index("index out of range in self".into()));
    }
    let rec = Recorder::new("IndexSelectBackward0", &[t]);
    let mut shape: Vec<usize> = src.shape().to_vec();
    shape[d] = ix.len();
    let out = Tensor::empty(&shape, t.dtype())?;
    if out.numel() > 0 {
        if src.is_contiguous() {
            // [outer, n, inner] -> [outer, len, inner]: one memcpy per
            // (outer, index) row, rows split across threads.
            let inner: usize = shape[d + 1..].iter().product();
            let outer: usize = shape[..d].iter().product();
            let (len, row) = (ix.len(), inner * t.dtype().size());
            let (ps, po) = (
                SendPtr(src.raw_ptr() as usize),
                SendPtr(out.raw_ptr() as usize),
            );
            let ix = &ix;
            for_ranges(outer * len, inner.max(1), 1, |a, b| {
                let (ps, po) = (ps, po);
                for r in a..b {
                    let (o, k) = (r / len, r % len);
                    let from = (o * n as usize + ix[k] as usize) * row;
                    // SAFETY: `ix[k]` < n was checked; both tensors are dense
                    // row-major buffers of these shapes; rows are disjoint.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            (ps.0 as *const u8).add(from),
                            (po.0 as *mut u8).add(r * row),
                            row,
                        )
                    };
                }
            });
        } else {
            let dd = d as i64;
            for (k, &i) in ix.iter().enumerate() {
                let dst = shape::select(&out, dd, k as i64)?;
                copy_into(&dst, &shape::select(&src, dd, i)?)?;
            }
        }
    }
    let out = if t.ndim() == 0 && index.ndim() == 0 {
        shape::reshape(&out, &[])?
    } else {
        out
    };
    if let Some(mut rec) = rec {
        let ii = rec.save(index)?;
        let shape = t.shape().to_vec();
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            let z = creation::full(&shape, Scalar::Int(0), g.dtype())?;
            Ok(vec![Some(index_add(
                &z,
                dim,
                &ctx.saved(ii)?,
                &g,
                Scalar::Int(1),
            )?)])
        });
    }
    Ok(out)
}

/// `g.index_select(dim, index)` shaped like `src` (a 0-d source of a 0-d
/// target gets a 0-d gradient).
fn select_like(g: &Tensor, dim: i64, index: &Tensor, src: &[usize]) -> Result<Tensor> {
    let r = index_select(g, dim, index)?;
    if r.shape() == src {
        return Ok(r);
    }
    shape::reshape(&r, &src.iter().map(|&x| x as i64).collect::<Vec<_>>())
}

pub fn index_add(
    t: &Tensor,
    dim: i64,
    index: &Tensor,
    src: &Tensor,
    alpha: Scalar,
) -> Result<Tensor> {
    let out = copy::clone(t)?;
    index_add_(&out, dim, index, src, alpha)?;
    Ok(out)
}

pub fn index_copy(t: &Tensor, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
    let out = copy::clone(t)?;
    index_copy_(&out, dim, index, src)?;
    Ok(out)
}

pub fn index_fill(t: &Tensor, dim: i64, index: &Tensor, value: Scalar) -> Result<Tensor> {
    let out = copy::clone(t)?;
    index_fill_(&out, dim, index, value)?;
    Ok(out)
}

/// Checks shared by index_add_/index_copy_: same dtype, one source slice per index.
fn check_source(op: &str, t: &Tensor, d: usize, n: usize, src: &Tensor) -> Result<()> {
    if src.dtype() != t.dtype() {
        return Err(Error::Runtime(format!(
            "{op}(): self ({}) and source ({}) must have the same scalar type",
            t.dtype().scalar_name(),
            src.dtype().scalar_name()
        )));
    }
    let ssize = if src.ndim() == 0 {
        1
    } else {
        src.shape().get(d).copied().unwrap_or(1)
    };
    if ssize != n {
        return Err(Error::Index(format!(
            "{op}(): Number of indices ({n}) should be equal to source.size(dim) ({ssize})"
        )));
    }
    let mut want: Vec<usize> = t.shape().to_vec();
    if !want.is_empty() {
        want[d] = n;
    }
    if src.ndim() > 0 && t.ndim() > 0 && src.shape() != want.as_slice() {
        return Err(Error::Runtime(format!(
            "{op}(): Source/destination tensor must have same slice shapes. Destination slice shape: {} at dimension {d} and source slice shape: {} at dimension 0.",
            fmt_shape(t.shape()),
            fmt_shape(src.shape())
        )));
    }
    Ok(())
}

/// `t.index_add_(dim, index, source, alpha=)`.
pub fn index_add_(t: &Tensor, dim: i64, index: &Tensor, src: &Tensor, alpha: Scalar) -> Result<()> {
    let d = wrap_dim(dim, t.ndim())?;
    let ix = index_vector("index_add_", index)?;
    check_source("index_add_", t, d, ix.len(), src)?;
    copy::check_no_internal_overlap(t)?;
    let (dst, s) = (at_least_1d(t)?, at_least_1d(src)?);
    let n = dst.shape()[d] as i64;
    if ix.iter().any(|&i| i < 0 || i >= n) {
        return Err(Error::Index("index out of range in self".into()));
    }
    let rec = Recorder::new_inplace("IndexAddBackward0", t, &[Some(src)])?;
    let s = if s.same_storage(t) {
        copy::contiguous_copy(&s)?
    } else {
        s
    };
    let dd = d as i64;
    dispatch!(t.dtype(), T => {
        let a = alpha.to::<T>();
        let scaled = alpha != Scalar::Int(1) && alpha != Scalar::Float(1.0);
        for (k, &i) in ix.iter().enumerate() {
            let (dv, sv) = (shape::select(&dst, dd, i)?, shape::select(&s, dd, k as i64)?);
            let (pd, ps) = (dv.data_ptr::<T>(), sv.data_ptr::<T>());
            for_each_row(dv.shape(), [dv.strides(), sv.strides()], |[od, os], len, [sd, ss]| {
                for e in 0..len as isize {
                    // SAFETY: both views are validated and of one shape.
                    unsafe {
                        let x = *ps.offset(os + e * ss);
                        let x = if scaled { Reduce::Prod.apply(x, a) } else { x };
                        let p = pd.offset(od + e * sd);
                        *p = Reduce::Sum.apply(*p, x);
                    }
                }
            });
        }
    });
    t.bump_version();
    if let Some(mut rec) = rec {
        let ii = rec.save(index)?;
        let src_shape = src.shape().to_vec();
        rec.finish_inplace(t, move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None]);
            };
            let gs = if ctx.needs(1) {
                let r = select_like(&g, dim, &ctx.saved(ii)?, &src_shape)?;
                Some(if alpha.to_f64() == 1.0 {
                    r
                } else {
                    arith::scale(&r, alpha.to_f64())?
                })
            } else {
                None
            };
            Ok(vec![ctx.needs(0).then_some(g), gs])
        })?;
    }
    Ok(())
}

pub fn index_copy_(t: &Tensor, dim: i64, index: &Tensor, src: &Tensor) -> Result<()> {
    let d = wrap_dim(dim, t.ndim())?;
    if index.dtype() != DType::I64 {
        return Err(Error::Runtime(
            "index_copy_(): Expected a long tensor for index, but got ".to_string()
                + index.dtype().scalar_name(),
        ));
    }
    let ix = index_vector("index_copy_", index)?;
    if src.dtype() != t.dtype() {
        return Err(Error::Runtime(format!(
            "index_copy_(): self and source expected to have the same dtype, but got (self) {} and (source) {}",
            t.dtype().scalar_name(),
            src.dtype().scalar_name()
        )));
    }
    check_source("index_copy_", t, d, ix.len(), src)?;
    copy::check_no_internal_overlap(t)?;
    let (dst, s) = (at_least_1d(t)?, at_least_1d(src)?);
    let n = dst.shape()[d] as i64;
    if let Some(&i) = ix.iter().find(|&&i| i < 0 || i >= n) {
        return Err(Error::Index(format!(
            "index_copy_(): index {i} is out of bounds for dimension {d} with size {n}"
        )));
    }
    let rec = Recorder::new_inplace("IndexCopyBackward0", t, &[Some(src)])?;
    let s = if s.same_storage(t) {
        copy::contiguous_copy(&s)?
    } else {
        s
    };
    let dd = d as i64;
    for (k, &i) in ix.iter().enumerate() {
        copy_into(
            &shape::select(&dst, dd, i)?,
            &shape::select(&s, dd, k as i64)?,
        )?;
    }
    t.bump_version();
    if let Some(mut rec) = rec {
        let ii = rec.save(index)?;
        let src_shape = src.shape().to_vec();
        rec.finish_inplace(t, move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None]);
            };
            let idx = ctx.saved(ii)?;
            let gt = match ctx.needs(0) {
                true => Some(index_fill(&g, dim, &idx, Scalar::Int(0))?),
                false => None,
            };
            let gs = match ctx.needs(1) {
                true => Some(select_like(&g, dim, &idx, &src_shape)?),
                false => None,
            };
            Ok(vec![gt, gs])
        })?;
    }
    Ok(())
}

pub fn index_fill_(t: &Tensor, dim: i64, index: &Tensor, value: Scalar) -> Result<()> {
    let d = wrap_dim(dim, t.ndim())?;
    if index.dtype() != DType::I64 {
        return Err(Error::Index(
            "index_fill_(): Expected dtype int64 for index.".into(),
        ));
    }
    let ix = index_vector("index_fill_", index)?;
    copy::check_no_internal_overlap(t)?;
    let dst = at_least_1d(t)?;
    let n = dst.shape()[d] as i64;
    if let Some(&i) = ix.iter().find(|&&i| i < -n || i >= n) {
        return Err(Error::Index(format!(
            "index {i} is out of bounds for dimension {d} with size {n}"
        )));
    }
    let rec = Recorder::new_inplace("IndexFillBackward0", t, &[])?;
    for &i in &ix {
        let i = if i < 0 { i + n } else { i };
        copy::fill_(&shape::select(&dst, d as i64, i)?, value)?;
    }
    t.bump_version();
    if let Some(mut rec) = rec {
        let ii = rec.save(index)?;
        rec.finish_inplace(t, move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            Ok(vec![Some(index_fill(
                &g,
                dim,
                &ctx.saved(ii)?,
                Scalar::Int(0),
            )?)])
        })?;
    }
    Ok(())
}

/// `t.index_put_(indices, values, accumulate)`.
pub fn index_put_(t: &Tensor, indices: &[Tensor], values: &Tensor, accumulate: bool) -> Result<()> {
    if indices.len() > t.ndim().max(1) {
        return Err(Error::Index(format!(
            "too many indices for tensor of dimension {} (got {})",
            t.ndim(),
            indices.len()
        )));
    }
    let items: Vec<TensorIndex> = indices
        .iter()
        .map(|i| TensorIndex::Tensor(i.clone()))
        .collect();
    index::index_put_with(t, &items, values, accumulate)
}

// ---------------------------------------------------------------- masks

fn check_bool_mask(op: &str, mask: &Tensor) -> Result<()> {
    if mask.dtype() != DType::Bool {
        return Err(Error::Runtime(format!(
            "{op}: expected BoolTensor for mask"
        )));
    }
    Ok(())
}

pub fn masked_select(t: &Tensor, mask: &Tensor) -> Result<Tensor> {
    check_bool_mask("masked_select", mask)?;
    let sh = broadcast_shapes(t.shape(), mask.shape())?;
    let s: Vec<i64> = sh.iter().map(|&x| x as i64).collect();
    let rec = Recorder::new("MaskedSelectBackward0", &[t]);
    let (te, m) = (shape::expand(t, &s)?, shape::expand(mask, &s)?);
    let out = if sh.is_empty() {
        let keep = m.get_scalar(0).to_bool();
        let r = shape::reshape(&te, &[1])?;
        copy::contiguous_copy(&shape::narrow(&r, 0, 0, keep as i64)?)?
    } else {
        index::index(&te, &[TensorIndex::Tensor(m)])?
    };
    if let Some(mut rec) = rec {
        let im = rec.save(mask)?;
        let shape = sh.to_vec();
        // The engine sums the broadcast-shaped gradient down to `t`.
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            let z = creation::full(&shape, Scalar::Int(0), g.dtype())?;
            Ok(vec![Some(masked_scatter(&z, &ctx.saved(im)?, &g)?)])
        });
    }
    Ok(out)
}

/// `t.masked_scatter_(mask, source)`: the true positions of `mask`, in
/// row-major order, take consecutive elements of `source`.
pub fn masked_scatter_(t: &Tensor, mask: &Tensor, source: &Tensor) -> Result<()> {
    if mask.dtype() != DType::Bool {
        return Err(Error::Runtime(format!(
            "masked_scatter_ only supports boolean masks, but got mask with dtype {}",
            mask.dtype().scalar_name()
        )));
    }
    if source.dtype() != t.dtype() {
        return Err(Error::Runtime(format!(
            "masked_scatter_: expected self and source to have same dtypes but got{} and {}",
            t.dtype().scalar_name(),
            source.dtype().scalar_name()
        )));
    }
    let s: Vec<i64> = t.shape().iter().map(|&x| x as i64).collect();
    let m = shape::expand(mask, &s)?;
    copy::check_no_internal_overlap(t)?;
    let src = copy::contiguous_copy(source)?;
    let ms = m.strides().to_vec();
    let pm = m.data_ptr::<crate::tensor::dtype::Bool>();
    let mut ones = 0usize;
    // SAFETY: offsets come from the validated layout of the expanded mask.
    for_each_offset(m.shape(), &ms, |o| {
        ones += unsafe { (*pm.offset(o)).0 != 0 } as usize
    });
    if ones > src.numel() {
        return Err(Error::Runtime(
            "Number of elements of source < number of ones in mask".into(),
        ));
    }
    let rec = Recorder::new_inplace("MaskedScatterBackward0", t, &[Some(source)])?;
    dispatch!(t.dtype(), T => {
        let (pd, ps) = (t.data_ptr::<T>(), src.data_ptr::<T>());
        let mut k = 0usize;
        for_each_row(t.shape(), [t.strides(), &ms], |[od, om], len, [sd, sm]| {
            for e in 0..len as isize {
                // SAFETY: validated layouts; `k` < ones <= src.numel().
                unsafe {
                    if (*pm.offset(om + e * sm)).0 != 0 {
                        *pd.offset(od + e * sd) = *ps.add(k);
                        k += 1;
                    }
                }
            }
        });
    });
    t.bump_version();
    if let Some(mut rec) = rec {
        let im = rec.save(mask)?;
        let src_shape: Vec<i64> = source.shape().iter().map(|&x| x as i64).collect();
        let src_numel = source.numel();
        rec.finish_inplace(t, move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None]);
            };
            let mask = ctx.saved(im)?;
            let gt = match ctx.needs(0) {
                // `g` with zeros written where the mask is set.
                true => Some(masked_scatter(&g, &mask, &arith::zeros_like(&g)?)?),
                false => None,
            };
            let gs = match ctx.needs(1) {
                true => {
                    // The used prefix of `source`, zero-padded to its size.
                    let picked = masked_select(&g, &mask)?;
                    let rest =
                        creation::full(&[src_numel - picked.numel()], Scalar::Int(0), g.dtype())?;
                    let flat = crate::ops::join::cat(&[picked, rest], 0)?;
                    Some(shape::reshape(&flat, &src_shape)?)
                }
                false => None,
            };
            Ok(vec![gt, gs])
        })?;
    }
    Ok(())
}

pub fn masked_scatter(t: &Tensor, mask: &Tensor, source: &Tensor) -> Result<Tensor> {
    let sh = broadcast_shapes(t.shape(), mask.shape())?;
    let s: Vec<i64> = sh.iter().map(|&x| x as i64).collect();
    let out = copy::contiguous_copy(&shape::expand(t, &s)?)?;
    masked_scatter_(&out, mask, source)?;
    Ok(out)
}

// ---------------------------------------------------------------- take

pub fn take(t: &Tensor, index: &Tensor) -> Result<Tensor> {
    if index.dtype() != DType::I64 {
        return Err(Error::Runtime(format!(
            "take(): Expected a long tensor for index, but got {}",
            index.dtype().scalar_name()
        )));
    }
    let src = copy::contiguous(t)?;
    let n = src.numel() as i64;
    let ix = copy::to_vec::<i64>(index)?;
    if let Some(&i) = ix.iter().find(|&&i| i < -n || i >= n) {
        return Err(Error::Index(format!(
            "out of range: tried to access index {i} on a tensor of {n} elements."
        )));
    }
    let rec = Recorder::new("TakeBackward0", &[t]);
    let out = Tensor::empty(index.shape(), t.dtype())?;
    dispatch!(t.dtype(), T => {
        let (ps, po) = (src.data_ptr::<T>(), out.data_ptr::<T>());
        for (k, &i) in ix.iter().enumerate() {
            let i = if i < 0 { i + n } else { i };
            // SAFETY: `i` is in range; `out` has `ix.len()` elements.
            unsafe { *po.add(k) = *ps.add(i as usize) };
        }
    });
    if let Some(mut rec) = rec {
        let ii = rec.save(index)?;
        let shape: Vec<i64> = t.shape().iter().map(|&x| x as i64).collect();
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            // Repeated indices add up: put_(index, g, accumulate=True).
            let flat = creation::full(&[n as usize], Scalar::Int(0), g.dtype())?;
            let idx = shape::reshape(&ctx.saved(ii)?, &[-1])?;
            let gv = shape::reshape(&g, &[-1])?;
            index::index_put_with(&flat, &[TensorIndex::Tensor(idx)], &gv, true)?;
            Ok(vec![Some(shape::reshape(&flat, &shape)?)])
        });
    }
    Ok(out)
}

pub fn take_along_dim(t: &Tensor, index: &Tensor, dim: Option<i64>) -> Result<Tensor> {
    if index.dtype() != DType::I64 {
        return Err(Error::Runtime(format!(
            "torch.take_along_dim(): dtype of indices should be Long but got {}",
            index.dtype().scalar_name()
        )));
    }
    let Some(dim) = dim else {
        let flat = shape::reshape(t, &[-1])?;
        return gather(&flat, 0, &shape::reshape(index, &[-1])?);
    };
    if t.ndim() != index.ndim() {
        return Err(Error::Runtime(format!(
            "torch.take_along_dim(): input and indices should have the same number of dimensions, but got {} dimensions for input, and {} dimensions for indices",
            t.ndim(),
            index.ndim()
        )));
    }
    let d = crate::error::wrap_dim_strict(dim, t.ndim())?;
    // Broadcast every dim but `d`.
    let mut ts: Vec<usize> = t.shape().to_vec();
    let mut is: Vec<usize> = index.shape().to_vec();
    ts[d] = 1;
    is[d] = 1;
    let b = broadcast_shapes(&ts, &is)?;
    let mut st: Vec<i64> = b.iter().map(|&x| x as i64).collect();
    let mut si = st.clone();
    st[d] = t.shape()[d] as i64;
    si[d] = index.shape()[d] as i64;
    gather(&shape::expand(t, &st)?, dim, &shape::expand(index, &si)?)
}

// ---------------------------------------------------------------- nonzero

/// `nonzero(t)`: an `[n, ndim]` int64 tensor of coordinates.
pub fn nonzero(t: &Tensor) -> Result<Tensor> {
    if t.ndim() == 0 {
        let n = t.get_scalar(0).to_bool() as usize;
        return Tensor::zeros(&[n, 0], DType::I64);
    }
    let cols = index::nonzero(t)?;
    let n = cols.first().map_or(0, |c| c.numel());
    let out = Tensor::empty(&[n, t.ndim()], DType::I64)?;
    for (j, c) in cols.iter().enumerate() {
        copy::copy_(&shape::select(&out, 1, j as i64)?, c)?;
    }
    Ok(out)
}

/// `nonzero(t, as_tuple=True)`: one coordinate vector per dim.
pub fn nonzero_tuple(t: &Tensor) -> Result<Vec<Tensor>> {
    index::nonzero(&at_least_1d(t)?)
}
