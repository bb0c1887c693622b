//! Joining, splitting, reordering and repeating: cat/stack and friends,
//! split/chunk, flip/roll/rot90, repeat/tile, movedim, broadcasting,
//! tril/triu, diag, meshgrid, combinations.
//!
//! Few primitives: `copy_into` (a strided copy whose unit-stride rows are
//! memcpy) and `flip`; the rest compose views of them. The products
//! (einsum and friends) are in `einsum.rs`.

use crate::autograd::Recorder;
use crate::cpu::iter::{for_each_offset, for_each_row};
use crate::cpu::parallel::for_ranges;
use crate::dispatch;
use crate::error::{try_vec, wrap_dim, Error, Result};
use crate::ops::einsum::contract;
use crate::ops::{copy, result_type, shape, Operand};
use crate::tensor::layout::{broadcast_shapes, checked_numel, fmt_i64s, fmt_shape, Dims, Layout};
use crate::tensor::{DType, Tensor};

/// Records a one-input op whose derivative is `backward(g)`.
fn record_unary<F>(rec: Option<Recorder>, out: &Tensor, backward: F)
where
    F: Fn(&Tensor) -> Result<Tensor> + Send + 'static,
{
    if let Some(rec) = rec {
        rec.finish(&[out], move |_ctx, grads| {
            Ok(vec![match grads.into_iter().next().flatten() {
                Some(g) => Some(backward(&g)?),
                None => None,
            }])
        });
    }
}

fn float_rec(name: &'static str, t: &Tensor) -> Option<Recorder> {
    if t.dtype().is_floating_point() {
        Recorder::new(name, &[t])
    } else {
        None
    }
}

// ---------------------------------------------------------------- copying

/// Copies a strided source into a strided destination of the same shape and
/// element size. Offsets and strides are in elements and may be negative
/// (flip); callers guarantee every addressed element is inside its storage.
fn raw_copy(
    shape: &[usize],
    dst: *mut u8,
    dst_strides: &[isize],
    src: *const u8,
    src_strides: &[isize],
    itemsize: usize,
) {
    fn go<T: Copy>(shape: &[usize], d: *mut T, ds: &[isize], s: *const T, ss: &[isize]) {
        for_each_row(shape, [ds, ss], |[od, os], len, [sd, sst]| {
            // SAFETY: the caller's invariant: all offsets lie inside the storages.
            unsafe {
                let (d, s) = (d.offset(od), s.offset(os));
                if sd == 1 && sst == 1 {
                    std::ptr::copy_nonoverlapping(s, d, len);
                } else if sd == 1 && sst == -1 {
                    // A flipped row: read backwards through a slice so it vectorises.
                    let src = std::slice::from_raw_parts(s.offset(1 - len as isize), len);
                    let dst = std::slice::from_raw_parts_mut(d, len);
                    for (o, &x) in dst.iter_mut().zip(src.iter().rev()) {
                        *o = x;
                    }
                } else {
                    for i in 0..len as isize {
                        *d.offset(i * sd) = *s.offset(i * sst);
                    }
                }
            }
        });
    }
    match itemsize {
        1 => go(shape, dst, dst_strides, src, src_strides),
        2 => go(
            shape,
            dst as *mut u16,
            dst_strides,
            src as *const u16,
            src_strides,
        ),
        4 => go(
            shape,
            dst as *mut u32,
            dst_strides,
            src as *const u32,
            src_strides,
        ),
        _ => go(
            shape,
            dst as *mut u64,
            dst_strides,
            src as *const u64,
            src_strides,
        ),
    }
}

/// Pointers shared with worker threads; each thread writes a disjoint part.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) usize);

/// `raw_copy`, split across threads along the outermost dim when large.
fn par_copy(
    shape: &[usize],
    dst: *mut u8,
    dst_strides: &[isize],
    src: *const u8,
    src_strides: &[isize],
    itemsize: usize,
) {
    let numel: usize = shape.iter().product();
    let dense = |st: &[isize]| {
        Layout {
            shape: shape.into(),
            strides: st.into(),
            offset: 0,
        }
        .is_contiguous()
    };
    let (d, s) = (SendPtr(dst as usize), SendPtr(src as usize));
    if dense(dst_strides) && dense(src_strides) {
        // One flat memcpy, chunked so each thread streams its own part.
        for_ranges(numel, 1, 4096, |a, b| {
            let (d, s) = (d, s);
            // SAFETY: both spans are `numel` dense elements; chunks are disjoint.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    (s.0 as *const u8).add(a * itemsize),
                    (d.0 as *mut u8).add(a * itemsize),
                    (b - a) * itemsize,
                )
            };
        });
        return;
    }
    match shape.first() {
        Some(&n0) if n0 > 1 && numel >= 1 << 18 => {
            let inner = &shape[1..];
            for_ranges(n0, numel / n0, 1, |a, b| {
                let (d, s) = (d, s);
                let mut sh: Dims = inner.into();
                sh.insert(0, b - a);
                raw_copy(
                    &sh,
                    (d.0 as *mut u8)
                        .wrapping_offset(a as isize * dst_strides[0] * itemsize as isize),
                    dst_strides,
                    (s.0 as *const u8)
                        .wrapping_offset(a as isize * src_strides[0] * itemsize as isize),
                    src_strides,
                    itemsize,
                )
            });
        }
        _ => raw_copy(shape, dst, dst_strides, src, src_strides, itemsize),
    }
}

/// `dst[...] = src[...]` for tensors of one shape; `src` is cast when its
/// dtype differs. `dst` must not overlap `src` (fresh outputs).
pub(crate) fn copy_into(dst: &Tensor, src: &Tensor) -> Result<()> {
    if dst.dtype() != src.dtype() {
        return copy::copy_(dst, src);
    }
    par_copy(
        dst.shape(),
        dst.raw_ptr(),
        dst.strides(),
        src.raw_ptr(),
        src.strides(),
        dst.dtype().size(),
    );
    Ok(())
}

pub(crate) fn to_i64s(d: &[usize]) -> Vec<i64> {
    d.iter().map(|&x| x as i64).collect()
}

// ---------------------------------------------------------------- cat/stack

/// `torch.cat(tensors, dim)`: promotes dtypes; 1-d empty tensors are
/// skipped as in PyTorch's legacy rule.
pub fn cat(tensors: &[Tensor], dim: i64) -> Result<Tensor> {
    if tensors.is_empty() {
        return Err(Error::Runtime(
            "torch.cat(): expected a non-empty list of Tensors".into(),
        ));
    }
    for (i, t) in tensors.iter().enumerate() {
        if t.ndim() == 0 {
            return Err(Error::Runtime(format!(
                "zero-dimensional tensor (at position {i}) cannot be concatenated"
            )));
        }
    }
    let ops: Vec<Operand> = tensors.iter().map(|t| Operand::Tensor(t.clone())).collect();
    let dtype = result_type(&ops.iter().collect::<Vec<_>>());
    let skip = |t: &Tensor| t.ndim() == 1 && t.numel() == 0;
    let Some(first) = tensors.iter().position(|t| !skip(t)) else {
        wrap_dim(dim, 1)?;
        return Tensor::empty(&[0], dtype);
    };
    let r = &tensors[first];
    let d = wrap_dim(dim, r.ndim())?;
    let mut out_shape: Dims = r.shape().into();
    out_shape[d] = 0;
    for (i, t) in tensors.iter().enumerate() {
        if skip(t) {
            continue;
        }
        if t.ndim() != r.ndim() {
            return Err(Error::Runtime(format!(
                "Tensors must have same number of dimensions: got {} and {}",
                r.ndim(),
                t.ndim()
            )));
        }
        for k in 0..r.ndim() {
            if k != d && t.shape()[k] != r.shape()[k] {
                return Err(Error::Runtime(format!(
                    "Sizes of tensors must match except in dimension {d}. Expected size {} but got size {} for tensor number {i} in the list.",
                    r.shape()[k],
                    t.shape()[k]
                )));
            }
        }
        out_shape[d] = out_shape[d]
            .checked_add(t.shape()[d])
            .ok_or_else(|| Error::Runtime("cat: size overflow".into()))?;
    }
    checked_numel(&out_shape)?;
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let rec = if dtype.is_floating_point() {
        crate::autograd::Recorder::new("CatBackward0", &refs)
    } else {
        None
    };
    let out = Tensor::empty(&out_shape, dtype)?;
    let mut off = 0;
    let mut spans = Vec::with_capacity(tensors.len());
    for t in tensors.iter() {
        if skip(t) {
            spans.push(None);
            continue;
        }
        let n = t.shape()[d];
        let part = out.view_with(out.layout().narrow(d as i64, off as i64, n as i64)?)?;
        copy_into(&part, t)?;
        spans.push(Some((off as i64, n as i64)));
        off += n;
    }
    if let Some(rec) = rec {
        // Each input's gradient is its slice of the output's gradient.
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None; spans.len()]);
            };
            spans
                .iter()
                .enumerate()
                .map(|(i, s)| match s {
                    Some((start, n)) if ctx.needs(i) => {
                        shape::narrow(&g, d as i64, *start, *n).map(Some)
                    }
                    None if ctx.needs(i) => Tensor::empty(&[0], g.dtype()).map(Some),
                    _ => Ok(None),
                })
                .collect()
        });
    }
    Ok(out)
}

pub fn stack(tensors: &[Tensor], dim: i64) -> Result<Tensor> {
    let Some(r) = tensors.first() else {
        return Err(Error::Runtime(
            "stack expects a non-empty TensorList".into(),
        ));
    };
    for (i, t) in tensors.iter().enumerate() {
        if t.shape() != r.shape() {
            return Err(Error::Runtime(format!(
                "stack expects each tensor to be equal size, but got {} at entry 0 and {} at entry {i}",
                fmt_shape(r.shape()),
                fmt_shape(t.shape())
            )));
        }
    }
    let d = wrap_dim(dim, r.ndim() + 1)? as i64;
    let parts: Vec<Tensor> = tensors
        .iter()
        .map(|t| shape::unsqueeze(t, d))
        .collect::<Result<_>>()?;
    cat(&parts, d)
}

/// `atleast_{1,2,3}d`: views with size-1 dims added as NumPy places them.
pub fn atleast(t: &Tensor, n: usize) -> Result<Tensor> {
    let s = to_i64s(t.shape());
    let shape: Vec<i64> = match (t.ndim(), n) {
        (k, _) if k >= n => return Ok(t.clone()),
        (0, _) => vec![1; n],
        (1, 2) => vec![1, s[0]],
        (1, 3) => vec![1, s[0], 1],
        _ => vec![s[0], s[1], 1],
    };
    shape::reshape(t, &shape)
}

/// `hstack`/`vstack`/`dstack` by `kind` ('h', 'v', 'd').
pub fn hvdstack(tensors: &[Tensor], kind: char) -> Result<Tensor> {
    let name = format!("{kind}stack");
    if tensors.is_empty() {
        return Err(Error::Runtime(format!(
            "{name} expects a non-empty TensorList"
        )));
    }
    let (n, dim) = match kind {
        'h' => (1, if tensors[0].ndim() <= 1 { 0 } else { 1 }),
        'v' => (2, 0),
        _ => (3, 2),
    };
    let parts: Vec<Tensor> = tensors
        .iter()
        .map(|t| atleast(t, n))
        .collect::<Result<_>>()?;
    cat(&parts, dim)
}

// ---------------------------------------------------------------- split

fn dim_size(t: &Tensor, dim: i64) -> Result<(usize, usize)> {
    if t.ndim() == 0 {
        return Err(Error::Runtime(
            "split expects at least a 1-dimensional tensor".into(),
        ));
    }
    let d = wrap_dim(dim, t.ndim())?;
    Ok((d, t.shape()[d]))
}

fn pieces(t: &Tensor, d: usize, lens: &[usize]) -> Result<Vec<Tensor>> {
    let mut start = 0i64;
    lens.iter()
        .map(|&n| {
            let p = shape::narrow(t, d as i64, start, n as i64);
            start += n as i64;
            p
        })
        .collect()
}

/// `split(split_size)`: equal pieces, the last possibly smaller.
pub fn split(t: &Tensor, size: i64, dim: i64) -> Result<Vec<Tensor>> {
    let (d, n) = dim_size(t, dim)?;
    if size < 0 {
        return Err(Error::Runtime(format!(
            "split expects split_size be non-negative, but got split_size={size}"
        )));
    }
    if size == 0 && n != 0 {
        return Err(Error::Runtime(format!(
            "split_size can only be 0 if dimension size is 0, but got dimension size of {n}"
        )));
    }
    let size = size as usize;
    let count = if size == 0 {
        1
    } else {
        n.div_ceil(size).max(1)
    };
    let mut lens = try_vec(count)?;
    for i in 0..count {
        lens.push(size.min(n.saturating_sub(i * size)));
    }
    pieces(t, d, &lens)
}

pub fn split_with_sizes(t: &Tensor, sizes: &[i64], dim: i64) -> Result<Vec<Tensor>> {
    let (d, n) = dim_size(t, dim)?;
    let total: i128 = sizes.iter().map(|&s| s as i128).sum();
    if sizes.iter().any(|&s| s < 0) || total != n as i128 {
        return Err(Error::Runtime(format!(
            "split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at dimension {d}), but got split_sizes={}",
            fmt_i64s(sizes)
        )));
    }
    let lens: Vec<usize> = sizes.iter().map(|&s| s as usize).collect();
    pieces(t, d, &lens)
}

pub fn chunk(t: &Tensor, chunks: i64, dim: i64) -> Result<Vec<Tensor>> {
    if t.ndim() == 0 {
        return Err(Error::Runtime(
            "chunk expects at least a 1-dimensional tensor".into(),
        ));
    }
    if chunks <= 0 {
        return Err(Error::Runtime(format!(
            "chunk expects `chunks` to be greater than 0, got: {chunks}"
        )));
    }
    let (_, n) = dim_size(t, dim)?;
    let size = n.div_ceil(chunks as usize);
    if size == 0 && n == 0 {
        // PyTorch splits an empty dim into `chunks` empty pieces.
        let d = wrap_dim(dim, t.ndim())?;
        let mut lens = try_vec(chunks as usize)?;
        lens.resize(chunks as usize, 0);
        return pieces(t, d, &lens);
    }
    split(t, size as i64, dim)
}

/// `tensor_split(sections)`: the first `n % sections` pieces one longer.
pub fn tensor_split_sections(t: &Tensor, sections: i64, dim: i64) -> Result<Vec<Tensor>> {
    if t.ndim() == 0 {
        return Err(Error::Runtime(
            "tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims"
                .into(),
        ));
    }
    if sections <= 0 {
        return Err(Error::Runtime(format!(
            "number of sections must be larger than 0, got {sections}"
        )));
    }
    let d = wrap_dim(dim, t.ndim())?;
    let n = t.shape()[d];
    let s = sections as usize;
    let mut lens = try_vec(s)?;
    for i in 0..s {
        lens.push(n / s + usize::from(i < n % s));
    }
    pieces(t, d, &lens)
}

/// `tensor_split(indices)`: pieces between the (clamped) split points.
pub fn tensor_split_indices(t: &Tensor, indices: &[i64], dim: i64) -> Result<Vec<Tensor>> {
    if t.ndim() == 0 {
        return Err(Error::Runtime(
            "tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims"
                .into(),
        ));
    }
    let d = wrap_dim(dim, t.ndim())?;
    let n = t.shape()[d] as i64;
    let clamp = |i: i64| if i < 0 { (i + n).max(0) } else { i.min(n) };
    let mut start = 0i64;
    let mut out = Vec::with_capacity(indices.len() + 1);
    for &i in indices.iter().chain(std::iter::once(&n)) {
        let end = clamp(i).max(start);
        out.push(shape::narrow(t, d as i64, start, end - start)?);
        start = end;
    }
    Ok(out)
}

pub fn unbind(t: &Tensor, dim: i64) -> Result<Vec<Tensor>> {
    let d = crate::error::wrap_dim_strict(dim, t.ndim())?;
    (0..t.shape()[d])
        .map(|i| shape::select(t, d as i64, i as i64))
        .collect()
}

// ---------------------------------------------------------------- reorder

pub fn movedim(t: &Tensor, src: &[i64], dst: &[i64]) -> Result<Tensor> {
    let n = t.ndim();
    if src.len() != dst.len() {
        return Err(Error::Runtime(format!(
            "movedim: Invalid source or destination dims: source ({} dims) should contain the same number of dims as destination ({} dims)",
            fmt_i64s(src),
            fmt_i64s(dst)
        )));
    }
    let wrap = |v: &[i64]| -> Result<Vec<usize>> { v.iter().map(|&d| wrap_dim(d, n)).collect() };
    let (s, d) = (wrap(src)?, wrap(dst)?);
    for (v, name, orig) in [(&s, "source", src), (&d, "destination", dst)] {
        let mut seen = vec![false; n.max(1)];
        for &x in v.iter() {
            if std::mem::replace(&mut seen[x], true) {
                return Err(Error::Runtime(format!(
                    "movedim: repeated dim in `{name}` ({})",
                    fmt_i64s(orig)
                )));
            }
        }
    }
    if n == 0 {
        return Ok(t.alias());
    }
    let mut order: Vec<i64> = vec![-1; n];
    for (&a, &b) in s.iter().zip(&d) {
        order[b] = a as i64;
    }
    let mut rest = (0..n).filter(|i| !s.contains(i));
    for o in order.iter_mut().filter(|o| **o < 0) {
        *o = rest.next().unwrap_or(0) as i64;
    }
    shape::permute(t, &order)
}

/// `flip(dims)`: a copy read with negated strides.
pub fn flip(t: &Tensor, dims: &[i64]) -> Result<Tensor> {
    let n = t.ndim();
    let mut flipped = vec![false; n.max(1)];
    for &d in dims {
        let w = wrap_dim(d, n)?;
        if std::mem::replace(&mut flipped[w], true) {
            return Err(Error::Runtime(format!(
                "dim {w} appears multiple times in the list of dims"
            )));
        }
    }
    let rec = float_rec("FlipBackward0", t);
    let out = Tensor::empty_strided(t.shape(), &t.layout().preserved_strides(), t.dtype())?;
    let dims_ = dims.to_vec();
    record_unary(rec, &out, move |g| flip(g, &dims_));
    if out.numel() == 0 {
        return Ok(out);
    }
    let mut strides: Vec<isize> = t.strides().to_vec();
    let mut base = 0isize;
    for d in 0..n {
        if flipped[d] {
            base += (t.shape()[d] as isize - 1) * strides[d];
            strides[d] = -strides[d];
        }
    }
    let item = t.dtype().size() as isize;
    par_copy(
        t.shape(),
        out.raw_ptr(),
        out.strides(),
        t.raw_ptr().wrapping_offset(base * item),
        &strides,
        t.dtype().size(),
    );
    Ok(out)
}

pub fn fliplr(t: &Tensor) -> Result<Tensor> {
    if t.ndim() < 2 {
        return Err(Error::Runtime("Input must be >= 2-d.".into()));
    }
    flip(t, &[1])
}

pub fn flipud(t: &Tensor) -> Result<Tensor> {
    if t.ndim() < 1 {
        return Err(Error::Runtime("Input must be >= 1-d.".into()));
    }
    flip(t, &[0])
}

/// `roll(shifts, dims)`; with no dims the flattened tensor is rolled.
pub fn roll(t: &Tensor, shifts: &[i64], dims: &[i64]) -> Result<Tensor> {
    let rec = float_rec("RollBackward0", t);
    let r = roll_impl(t, shifts, dims)?;
    let back: Vec<i64> = shifts.iter().map(|&s| s.wrapping_neg()).collect();
    let dims_ = dims.to_vec();
    record_unary(rec, &r, move |g| roll(g, &back, &dims_));
    Ok(r)
}

fn roll_impl(t: &Tensor, shifts: &[i64], dims: &[i64]) -> Result<Tensor> {
    if dims.is_empty() {
        if shifts.len() != 1 {
            return Err(Error::Runtime(format!(
                "shifts and dimensions must align. shifts: {}, dims:0",
                shifts.len()
            )));
        }
        let flat = copy::contiguous(t)?;
        let flat = shape::reshape(&flat, &[-1])?;
        let r = roll_impl(&flat, shifts, &[0])?;
        return shape::view(&r, &to_i64s(t.shape()));
    }
    if shifts.len() != dims.len() {
        return Err(Error::Runtime(format!(
            "shifts and dimensions must align. shifts: {}, dims:{}",
            shifts.len(),
            dims.len()
        )));
    }
    let mut cur = t.clone();
    for (&s, &d) in shifts.iter().zip(dims) {
        let d = wrap_dim(d, t.ndim())?;
        let n = cur.shape().get(d).copied().unwrap_or(1) as i64;
        let out = Tensor::empty(cur.shape(), cur.dtype())?;
        if n == 0 || out.numel() == 0 {
            cur = out;
            continue;
        }
        let k = s.rem_euclid(n);
        let di = d as i64;
        copy_into(
            &shape::narrow(&out, di, k, n - k)?,
            &shape::narrow(&cur, di, 0, n - k)?,
        )?;
        copy_into(
            &shape::narrow(&out, di, 0, k)?,
            &shape::narrow(&cur, di, n - k, k)?,
        )?;
        cur = out;
    }
    if cur.same_tensor(t) {
        return copy::clone(t);
    }
    Ok(cur)
}

pub fn rot90(t: &Tensor, k: i64, dims: &[i64]) -> Result<Tensor> {
    if dims.len() != 2 {
        return Err(Error::Runtime(format!(
            "expected total rotation dims == 2, but got dims = {}",
            dims.len()
        )));
    }
    if t.ndim() < 2 {
        return Err(Error::Runtime(format!(
            "expected total dims >= 2, but got total dims = {}",
            t.ndim()
        )));
    }
    let (a, b) = (wrap_dim(dims[0], t.ndim())?, wrap_dim(dims[1], t.ndim())?);
    if a == b {
        return Err(Error::Runtime(format!(
            "expected rotation dims to be different, but got dim0 = {a} and dim1 = {b}"
        )));
    }
    let (a, b) = (a as i64, b as i64);
    match k.rem_euclid(4) {
        1 => shape::transpose(&flip(t, &[b])?, a, b),
        2 => flip(t, &[a, b]),
        3 => shape::transpose(&flip(t, &[a])?, a, b),
        _ => copy::clone(t),
    }
}

// ---------------------------------------------------------------- repeat

pub fn repeat(t: &Tensor, reps: &[i64]) -> Result<Tensor> {
    if reps.len() < t.ndim() {
        return Err(Error::Runtime(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor"
                .into(),
        ));
    }
    let lead = reps.len() - t.ndim();
    let mut out_sizes = Vec::with_capacity(reps.len());
    for (i, &r) in reps.iter().enumerate() {
        let s = if i < lead {
            1
        } else {
            t.shape()[i - lead] as i64
        };
        out_sizes.push(r.checked_mul(s).unwrap_or(i64::MAX));
    }
    if reps.iter().any(|&r| r < 0) {
        return Err(Error::Runtime(format!(
            "Trying to create tensor with negative dimension {}: {}",
            out_sizes.iter().find(|&&s| s < 0).copied().unwrap_or(-1),
            fmt_i64s(&out_sizes)
        )));
    }
    let out_shape = crate::tensor::layout::dims_from_i64(&out_sizes)?;
    checked_numel(&out_shape)?;
    let rec = float_rec("RepeatBackward0", t);
    let out = Tensor::empty(&out_shape, t.dtype())?;
    let (reps_, tshape) = (reps.to_vec(), t.shape().to_vec());
    record_unary(rec, &out, move |g| repeat_backward(g, &reps_, &tshape));
    if out.numel() == 0 {
        return Ok(out);
    }
    // out viewed as [r0, s0, r1, s1, ...]; the source broadcast over each r.
    let (mut sh, mut ds, mut ss): (Dims, Vec<isize>, Vec<isize>) = Default::default();
    for (i, &r) in reps.iter().enumerate() {
        let (s, st) = if i < lead {
            (1, 0)
        } else {
            (t.shape()[i - lead], t.strides()[i - lead])
        };
        let c = out.strides()[i];
        sh.extend([r as usize, s]);
        ds.extend([c * s as isize, c]);
        ss.extend([0, st]);
    }
    par_copy(&sh, out.raw_ptr(), &ds, t.raw_ptr(), &ss, t.dtype().size());
    Ok(out)
}

/// The gradient of `repeat`: `g` viewed as `[r0, s0, r1, s1, ...]`, summed
/// over the repeat dims.
fn repeat_backward(g: &Tensor, reps: &[i64], tshape: &[usize]) -> Result<Tensor> {
    let sizes = to_i64s(tshape);
    if g.numel() == 0 {
        return crate::ops::creation::full(tshape, crate::tensor::Scalar::Int(0), g.dtype());
    }
    let lead = reps.len() - tshape.len();
    let mut split = Vec::with_capacity(2 * reps.len());
    for (i, &r) in reps.iter().enumerate() {
        split.extend([r, if i < lead { 1 } else { sizes[i - lead] }]);
    }
    let rdims: Vec<i64> = (0..reps.len() as i64).map(|i| 2 * i).collect();
    let s = crate::ops::reduce::sum(&shape::reshape(g, &split)?, Some(&rdims), false, None)?;
    shape::reshape(&s, &sizes)
}

pub fn tile(t: &Tensor, reps: &[i64]) -> Result<Tensor> {
    let mut r = vec![1i64; t.ndim().saturating_sub(reps.len())];
    r.extend_from_slice(reps);
    repeat(t, &r)
}

/// `repeat_interleave` with one repeat count for every element.
pub fn repeat_interleave_int(t: &Tensor, repeats: i64, dim: Option<i64>) -> Result<Tensor> {
    if repeats < 0 {
        return Err(Error::Runtime("repeats can not be negative".into()));
    }
    let (src, d) = match dim {
        None => (shape::reshape(t, &[-1])?, 0),
        Some(d) => (t.clone(), wrap_dim(d, t.ndim())?),
    };
    if src.ndim() == 0 {
        return repeat_interleave_int(&shape::reshape(&src, &[1])?, repeats, Some(0));
    }
    // [.., n, repeats, ..] expanded on the new dim, copied, then merged:
    // differentiable through the tracked expand and copy.
    let u = shape::unsqueeze(&src, d as i64 + 1)?;
    let mut esz = to_i64s(u.shape());
    esz[d + 1] = repeats;
    let expanded = shape::expand(&u, &esz)?;
    let mut sizes = to_i64s(src.shape());
    sizes[d] = sizes[d].saturating_mul(repeats);
    let out = copy::contiguous_copy(&expanded)?;
    shape::view(&out, &sizes)
}

/// `repeat_interleave` with a repeat count per slice along `dim`.
pub fn repeat_interleave_tensor(t: &Tensor, repeats: &Tensor, dim: Option<i64>) -> Result<Tensor> {
    if repeats.dtype().is_floating_point() || repeats.dtype() == DType::Bool {
        return Err(Error::Runtime(
            "repeats has to be Long or Int tensor".into(),
        ));
    }
    if repeats.ndim() > 1 {
        return Err(Error::Runtime(
            "repeats must be 0-dim or 1-dim tensor".into(),
        ));
    }
    if repeats.numel() == 1 {
        return repeat_interleave_int(t, repeats.get_scalar(0).to_i64(), dim);
    }
    let (src, d) = match dim {
        None => (shape::reshape(t, &[-1])?, 0),
        Some(d) => (t.clone(), wrap_dim(d, t.ndim())?),
    };
    let n = src.shape().get(d).copied().unwrap_or(1);
    if repeats.numel() != n {
        return Err(Error::Runtime(format!(
            "repeats must have the same size as input along dim, but got repeats.size(0) = {} and input.size({d}) = {n}",
            repeats.numel()
        )));
    }
    let idx = repeat_index(repeats)?;
    crate::ops::gather::index_select(&src, d as i64, &idx)
}

/// `torch.repeat_interleave(repeats)`: `i` repeated `repeats[i]` times.
pub fn repeat_index(repeats: &Tensor) -> Result<Tensor> {
    let reps = copy::to_vec::<i64>(repeats)?;
    if reps.iter().any(|&r| r < 0) {
        return Err(Error::Runtime("repeats can not be negative".into()));
    }
    let total = reps
        .iter()
        .try_fold(0usize, |a, &r| a.checked_add(r as usize))
        .ok_or_else(|| Error::Runtime("repeat_interleave: size overflow".into()))?;
    let mut v = try_vec::<i64>(total)?;
    for (i, &r) in reps.iter().enumerate() {
        v.extend(std::iter::repeat_n(i as i64, r as usize));
    }
    Tensor::from_slice(&v, &[total])
}

pub fn broadcast_to(t: &Tensor, sizes: &[i64]) -> Result<Tensor> {
    shape::expand(t, sizes)
}

pub fn broadcast_tensors(ts: &[Tensor]) -> Result<Vec<Tensor>> {
    let mut sh = Dims::new();
    for t in ts {
        sh = broadcast_shapes(&sh, t.shape())?;
    }
    let s = to_i64s(&sh);
    ts.iter().map(|t| shape::expand(t, &s)).collect()
}

// ---------------------------------------------------------------- triangles

/// Zeroes `t` above (`lower`) or below the `k`-th diagonal, in place.
pub fn tri_(t: &Tensor, k: i64, lower: bool) -> Result<()> {
    let name = if lower { "tril" } else { "triu" };
    if t.ndim() < 2 {
        return Err(Error::Runtime(format!(
            "{name}: input tensor must have at least 2 dimensions"
        )));
    }
    copy::check_no_internal_overlap(t)?;
    let rec = if t.dtype().is_floating_point() {
        Recorder::new_inplace(tri_node(lower), t, &[])?
    } else {
        None
    };
    let n = t.ndim();
    let (rows, cols) = (t.shape()[n - 2] as i64, t.shape()[n - 1]);
    let (rs, cs) = (t.strides()[n - 2], t.strides()[n - 1]);
    dispatch!(t.dtype(), T => {
        let p = t.data_ptr::<T>();
        for_each_offset(&t.shape()[..n - 2], &t.strides()[..n - 2], |b| {
            for i in 0..rows {
                let (lo, hi) = if lower {
                    (i.saturating_add(k).saturating_add(1).clamp(0, cols as i64) as usize, cols)
                } else {
                    (0, i.saturating_add(k).clamp(0, cols as i64) as usize)
                };
                for j in lo..hi {
                    // SAFETY: (i, j) lies inside the validated layout of `t`.
                    unsafe { *p.offset(b + i as isize * rs + j as isize * cs) = T::default() };
                }
            }
        });
    });
    t.bump_version();
    if let Some(rec) = rec {
        rec.finish_inplace(t, move |_ctx, grads| {
            Ok(vec![match grads.into_iter().next().flatten() {
                Some(g) => Some(tri(&g, k, lower)?),
                None => None,
            }])
        })?;
    }
    Ok(())
}

pub fn tri(t: &Tensor, k: i64, lower: bool) -> Result<Tensor> {
    if t.ndim() < 2 {
        return tri_(t, k, lower).map(|_| t.clone());
    }
    let rec = float_rec(tri_node(lower), t);
    let out = copy::clone(t)?;
    tri_(&out, k, lower)?;
    record_unary(rec, &out, move |g| tri(g, k, lower));
    Ok(out)
}

fn tri_node(lower: bool) -> &'static str {
    if lower {
        "TrilBackward0"
    } else {
        "TriuBackward0"
    }
}

// ---------------------------------------------------------------- diagonals

pub fn diag(t: &Tensor, k: i64) -> Result<Tensor> {
    match t.ndim() {
        1 => {
            let rec = float_rec("DiagEmbedBackward0", t);
            let m = t.shape()[0] + k.unsigned_abs() as usize;
            let out = Tensor::zeros(&[m, m], t.dtype())?;
            copy_into(&shape::diagonal(&out, k, 0, 1)?, t)?;
            record_unary(rec, &out, move |g| shape::diagonal(g, k, 0, 1));
            Ok(out)
        }
        2 => copy::contiguous_copy(&shape::diagonal(t, k, 0, 1)?),
        n => Err(Error::Runtime(format!(
            "diag(): Supports 1D or 2D tensors. Got {n}D"
        ))),
    }
}

pub fn diag_embed(t: &Tensor, k: i64, d1: i64, d2: i64) -> Result<Tensor> {
    let nd = t.ndim() + 1;
    let (a, b) = (wrap_dim(d1, nd)?, wrap_dim(d2, nd)?);
    if a == b {
        return Err(Error::Runtime(format!(
            "diagonal dimensions cannot be identical {d1}, {d2}"
        )));
    }
    let last = t.shape().last().copied().unwrap_or(1);
    let m = last + k.unsigned_abs() as usize;
    let batch = t.shape().get(..t.ndim().saturating_sub(1)).unwrap_or(&[]);
    let mut it = batch.iter();
    let shape: Dims = (0..nd)
        .map(|i| {
            if i == a || i == b {
                m
            } else {
                it.next().copied().unwrap_or(1)
            }
        })
        .collect();
    let rec = float_rec("DiagEmbedBackward0", t);
    let out = Tensor::zeros(&shape, t.dtype())?;
    let tshape = to_i64s(t.shape());
    record_unary(rec, &out, move |g| {
        shape::reshape(&shape::diagonal(g, k, a as i64, b as i64)?, &tshape)
    });
    let src = if t.ndim() == 0 {
        shape::reshape(t, &[1])?
    } else {
        t.clone()
    };
    copy_into(&shape::diagonal(&out, k, a as i64, b as i64)?, &src)?;
    Ok(out)
}

pub fn trace(t: &Tensor) -> Result<Tensor> {
    if t.ndim() != 2 {
        return Err(Error::Runtime(format!(
            "trace: expected a matrix, but got tensor with dim {}",
            t.ndim()
        )));
    }
    let rec = float_rec("TraceBackward0", t);
    let (rows, cols) = (t.shape()[0] as i64, t.shape()[1] as i64);
    let d = shape::diagonal(t, 0, 0, 1)?;
    let dtype = if t.dtype().is_floating_point() {
        t.dtype()
    } else {
        DType::I64
    };
    let ones = crate::ops::creation::full(&[d.numel()], crate::tensor::Scalar::Int(1), dtype)?;
    let r = contract_vec(&copy::cast_copy(&d, dtype)?, &ones)?;
    let r = shape::reshape(&r, &[])?;
    record_unary(rec, &r, move |g| {
        let eye = crate::ops::creation::eye(rows, cols, g.dtype())?;
        crate::ops::arith::mul(&eye, g)
    });
    Ok(r)
}

/// Inner product of two contiguous 1-d tensors of one dtype (a 1x1 `contract`).
fn contract_vec(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let n = a.numel();
    contract(
        &shape::reshape(a, &[1, 1, n as i64])?,
        &shape::reshape(b, &[1, n as i64, 1])?,
    )
}

// ---------------------------------------------------------------- grids

pub fn meshgrid(ts: &[Tensor], xy: bool) -> Result<Vec<Tensor>> {
    let Some(first) = ts.first() else {
        return Err(Error::Runtime(
            "torch.meshgrid: Expected at least one tensor in the tensor list".into(),
        ));
    };
    for t in ts {
        if t.ndim() > 1 {
            return Err(Error::Runtime(format!(
                "torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {}D",
                t.ndim()
            )));
        }
        if t.dtype() != first.dtype() {
            return Err(Error::Runtime(
                "torch.meshgrid: expects all tensors to have the same dtype".into(),
            ));
        }
    }
    let mut sizes: Vec<i64> = ts.iter().map(|t| t.numel() as i64).collect();
    let swap = xy && ts.len() >= 2;
    if swap {
        sizes.swap(0, 1);
    }
    ts.iter()
        .enumerate()
        .map(|(i, t)| {
            let pos = if swap && i < 2 { 1 - i } else { i };
            let mut v = vec![1i64; ts.len()];
            v[pos] = -1;
            shape::expand(&shape::reshape(t, &v)?, &sizes)
        })
        .collect()
}

pub fn cartesian_prod(ts: &[Tensor]) -> Result<Tensor> {
    for t in ts {
        if t.ndim() != 1 {
            return Err(Error::Runtime(format!(
                "Expect a 1D vector, but got shape {}",
                fmt_shape(t.shape())
            )));
        }
    }
    if ts.len() == 1 {
        return Ok(ts[0].clone());
    }
    let grids = meshgrid(ts, false)?;
    let flat: Vec<Tensor> = grids
        .iter()
        .map(|g| shape::reshape(g, &[-1]))
        .collect::<Result<_>>()?;
    stack(&flat, 1)
}

pub fn combinations(t: &Tensor, r: i64, with_replacement: bool) -> Result<Tensor> {
    if t.ndim() != 1 {
        return Err(Error::Runtime(format!(
            "Expect a 1D vector, but got shape {}",
            fmt_shape(t.shape())
        )));
    }
    if r < 0 {
        return Err(Error::Runtime(format!(
            "Expect a non-negative number, but got {r}"
        )));
    }
    if r == 0 {
        return Tensor::empty(&[0], t.dtype());
    }
    let (n, r) = (t.numel(), r as usize);
    // Index tuples in lexicographic order, as itertools produces them.
    let mut idx: Vec<usize> = vec![0; r];
    if !with_replacement {
        if r > n {
            return Tensor::empty(&[0, r], t.dtype());
        }
        idx = (0..r).collect();
    }
    // C(n, r), or C(n + r - 1, r) with replacement, computed exactly.
    let top = if with_replacement { n + r - 1 } else { n } as u128;
    let mut count: u128 = u128::from(n > 0);
    for i in 0..r as u128 {
        count = count.saturating_mul(top - i) / (i + 1);
    }
    let total = usize::try_from(count.saturating_mul(r as u128))
        .map_err(|_| Error::Runtime("combinations: too many combinations".into()))?;
    let mut flat: Vec<i64> = try_vec(total)?;
    if n > 0 {
        loop {
            flat.extend(idx.iter().map(|&i| i as i64));
            // Advance to the next tuple.
            let mut j = r;
            let step = usize::from(!with_replacement);
            loop {
                if j == 0 {
                    break;
                }
                j -= 1;
                let max = if with_replacement { n - 1 } else { n - r + j };
                if idx[j] < max {
                    idx[j] += 1;
                    for m in j + 1..r {
                        idx[m] = idx[m - 1] + step;
                    }
                    j = usize::MAX;
                    break;
                }
            }
            if j != usize::MAX {
                break;
            }
        }
    }
    let count = flat.len() / r;
    let ix = Tensor::from_slice(&flat, &[flat.len()])?;
    let vals = crate::ops::gather::index_select(t, 0, &ix)?;
    shape::view(&vals, &[count as i64, r as i64])
}
