//! Views: new layouts over the same storage. Each result is validated
//! against the storage in `Tensor::view_with`.

use smallvec::SmallVec;

use crate::autograd::{record_view, reshape_to, sum_to};
use crate::error::{wrap_dim, Error, Result};
use crate::ops::copy;
use crate::tensor::layout::{dims_from_i64, fmt_i64s, infer_size, Layout, Strides};
use crate::tensor::{DType, Tensor};

pub fn view(t: &Tensor, sizes: &[i64]) -> Result<Tensor> {
    let shape = infer_size(sizes, t.numel())?;
    let strides = t.layout().view_strides(&shape).ok_or_else(|| {
        Error::Runtime(
            "view size is not compatible with input tensor's size and stride (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead.".into(),
        )
    })?;
    let out = t.view_with(Layout {
        shape,
        strides,
        offset: t.offset(),
    })?;
    let new = sizes.to_vec();
    record_view(
        "ViewBackward0",
        t,
        &out,
        move |x| view(x, &new),
        Some(reshape_to(t.shape())),
    );
    Ok(out)
}

/// `view(dtype)`: the same bytes read as another dtype. When the element
/// sizes differ the last dimension is rescaled, so it must be dense (PyTorch's
/// rule); the checks and messages are PyTorch's.
pub fn view_dtype(t: &Tensor, dtype: DType) -> Result<Tensor> {
    let (old, new) = (t.dtype().size(), dtype.size());
    if old == new {
        return Tensor::from_parts(t.storage().clone(), t.layout().clone(), dtype);
    }
    let what = format!(
        "to view {} as {} (different element sizes)",
        t.dtype().scalar_name(),
        dtype.scalar_name()
    );
    let n = t.ndim();
    if n == 0 {
        return Err(Error::Runtime(format!("self.dim() cannot be 0 {what}")));
    }
    if t.strides()[n - 1] != 1 {
        return Err(Error::Runtime(format!(
            "self.stride(-1) must be 1 {what}, but got {}",
            t.strides()[n - 1]
        )));
    }
    let mut layout = t.layout().clone();
    if old > new {
        let ratio = old / new;
        // The layout fits the storage, so these only overflow for strides of
        // size-0/1 dims; refuse rather than wrap.
        let overflow = || Error::Runtime(format!("view(dtype): layout overflows {what}"));
        layout.shape[n - 1] = layout.shape[n - 1]
            .checked_mul(ratio)
            .ok_or_else(overflow)?;
        for s in &mut layout.strides[..n - 1] {
            *s = s.checked_mul(ratio as isize).ok_or_else(overflow)?;
        }
        layout.offset = layout.offset.checked_mul(ratio).ok_or_else(overflow)?;
    } else {
        let ratio = new / old;
        let last = t.shape()[n - 1];
        if !last.is_multiple_of(ratio) {
            return Err(Error::Runtime(format!(
                "self.size(-1) must be divisible by {ratio} {what}, but got {last}"
            )));
        }
        if !t.offset().is_multiple_of(ratio) {
            return Err(Error::Runtime(format!(
                "self.storage_offset() must be divisible by {ratio} {what}, but got {}",
                t.offset()
            )));
        }
        for (i, s) in layout.strides[..n - 1].iter_mut().enumerate() {
            if *s % ratio as isize != 0 {
                return Err(Error::Runtime(format!(
                    "self.stride({i}) must be divisible by {ratio} {what}, but got {s}"
                )));
            }
            *s /= ratio as isize;
        }
        layout.shape[n - 1] = last / ratio;
        layout.offset /= ratio;
    }
    Tensor::from_parts(t.storage().clone(), layout, dtype)
}

/// `reshape`: a view when the strides allow it, else a copy.
pub fn reshape(t: &Tensor, sizes: &[i64]) -> Result<Tensor> {
    let shape = infer_size(sizes, t.numel())?;
    if t.layout().view_strides(&shape).is_some() {
        return view(t, sizes);
    }
    // A copy: differentiable through `clone`, then a view of the copy.
    let c = copy::clone_contiguous(t)?;
    view(&c, sizes)
}

pub fn permute(t: &Tensor, dims: &[i64]) -> Result<Tensor> {
    let out = t.view_with(t.layout().permute(dims)?)?;
    let n = t.ndim();
    let wrapped: Vec<usize> = dims
        .iter()
        .map(|&d| wrap_dim(d, n))
        .collect::<Result<_>>()?;
    let mut inverse = vec![0i64; n];
    for (i, &d) in wrapped.iter().enumerate() {
        inverse[d] = i as i64;
    }
    let fwd = dims.to_vec();
    record_view(
        "PermuteBackward0",
        t,
        &out,
        move |x| permute(x, &fwd),
        Some(Box::new(move |g| permute(g, &inverse))),
    );
    Ok(out)
}

pub fn transpose(t: &Tensor, d0: i64, d1: i64) -> Result<Tensor> {
    let out = t.view_with(t.layout().transpose(d0, d1)?)?;
    record_view(
        "TransposeBackward0",
        t,
        &out,
        move |x| transpose(x, d0, d1),
        Some(Box::new(move |g| transpose(g, d0, d1))),
    );
    Ok(out)
}

/// `t()`: transpose of a tensor with at most 2 dims.
pub fn t(x: &Tensor) -> Result<Tensor> {
    if x.ndim() > 2 {
        return Err(Error::Runtime(format!(
            "t() expects a tensor with <= 2 dimensions, but self is {}D",
            x.ndim()
        )));
    }
    if x.ndim() < 2 {
        let out = x.view_with(x.layout().clone())?;
        record_view("TBackward0", x, &out, t, Some(Box::new(t)));
        return Ok(out);
    }
    let out = x.view_with(x.layout().transpose(0, 1)?)?;
    record_view("TBackward0", x, &out, t, Some(Box::new(t)));
    Ok(out)
}

/// `.mT`: transpose of the last two dims.
pub fn matrix_t(x: &Tensor) -> Result<Tensor> {
    if x.ndim() < 2 {
        return Err(Error::Runtime(format!(
            "tensor.mT is only supported on matrices or batches of matrices. Got {}-D tensor.",
            x.ndim()
        )));
    }
    transpose(x, -2, -1)
}

pub fn expand(t: &Tensor, sizes: &[i64]) -> Result<Tensor> {
    let out = t.view_with(t.layout().expand(sizes)?)?;
    let (fwd, shape) = (sizes.to_vec(), t.shape().to_vec());
    record_view(
        "ExpandBackward0",
        t,
        &out,
        move |x| expand(x, &fwd),
        Some(Box::new(move |g| sum_to(g, &shape))),
    );
    Ok(out)
}

pub fn squeeze(t: &Tensor, dims: Option<&[i64]>) -> Result<Tensor> {
    let wrapped: Option<Vec<usize>> = dims
        .map(|ds| ds.iter().map(|&d| wrap_dim(d, t.ndim())).collect())
        .transpose()?;
    let out = t.view_with(t.layout().squeeze_dims(wrapped.as_deref()))?;
    let name = match dims {
        None => "SqueezeBackward0",
        Some([_]) => "SqueezeBackward1",
        Some(_) => "SqueezeBackward2",
    };
    let fwd = dims.map(|d| d.to_vec());
    record_view(
        name,
        t,
        &out,
        move |x| squeeze(x, fwd.as_deref()),
        Some(reshape_to(t.shape())),
    );
    Ok(out)
}

pub fn unsqueeze(t: &Tensor, dim: i64) -> Result<Tensor> {
    let out = t.view_with(t.layout().unsqueeze(dim)?)?;
    record_view(
        "UnsqueezeBackward0",
        t,
        &out,
        move |x| unsqueeze(x, dim),
        Some(reshape_to(t.shape())),
    );
    Ok(out)
}

pub fn flatten(t: &Tensor, start: i64, end: i64) -> Result<Tensor> {
    if t.ndim() == 0 {
        return reshape(t, &[1]);
    }
    let (s, e) = (wrap_dim(start, t.ndim())?, wrap_dim(end, t.ndim())?);
    if s > e {
        return Err(Error::Runtime(
            "flatten() has invalid args: start_dim cannot come after end_dim".into(),
        ));
    }
    if s == e {
        return view(t, &t.shape().iter().map(|&d| d as i64).collect::<Vec<_>>());
    }
    let mut sizes: Vec<i64> = t.shape()[..s].iter().map(|&d| d as i64).collect();
    sizes.push(t.shape()[s..=e].iter().product::<usize>() as i64);
    sizes.extend(t.shape()[e + 1..].iter().map(|&d| d as i64));
    reshape(t, &sizes)
}

pub fn unflatten(t: &Tensor, dim: i64, sizes: &[i64]) -> Result<Tensor> {
    let d = crate::error::wrap_dim_strict(dim, t.ndim())?;
    if sizes.is_empty() {
        return Err(Error::Runtime("unflatten: sizes must be non-empty".into()));
    }
    let inner = infer_size(sizes, t.shape()[d]).map_err(|_| {
        Error::Runtime(format!(
            "unflatten: Provided sizes {} don't multiply up to the size of dim {} ({}) in the input tensor",
            fmt_i64s(sizes),
            dim,
            t.shape()[d]
        ))
    })?;
    let mut new: Vec<i64> = t.shape()[..d].iter().map(|&x| x as i64).collect();
    new.extend(inner.iter().map(|&x| x as i64));
    new.extend(t.shape()[d + 1..].iter().map(|&x| x as i64));
    view(t, &new)
}

pub fn narrow(t: &Tensor, dim: i64, start: i64, length: i64) -> Result<Tensor> {
    let out = t.view_with(t.layout().narrow(dim, start, length)?)?;
    // A negative start counts from the end of the input's dim.
    let start = if start < 0 && t.ndim() > 0 {
        start + t.shape()[wrap_dim(dim, t.ndim())?] as i64
    } else {
        start
    };
    record_view(
        "SliceBackward0",
        t,
        &out,
        move |x| narrow(x, dim, start, length),
        None,
    );
    Ok(out)
}

pub fn select(t: &Tensor, dim: i64, index: i64) -> Result<Tensor> {
    let out = t.view_with(t.layout().select(dim, index)?)?;
    record_view(
        "SelectBackward0",
        t,
        &out,
        move |x| select(x, dim, index),
        None,
    );
    Ok(out)
}

pub fn unfold(t: &Tensor, dim: i64, size: i64, step: i64) -> Result<Tensor> {
    let out = t.view_with(t.layout().unfold(dim, size, step)?)?;
    record_view(
        "UnfoldBackward0",
        t,
        &out,
        move |x| unfold(x, dim, size, step),
        None,
    );
    Ok(out)
}

pub fn as_strided(t: &Tensor, size: &[i64], stride: &[i64], offset: Option<i64>) -> Result<Tensor> {
    if size.len() != stride.len() {
        return Err(Error::Runtime(format!(
            "mismatch in length of strides and shape: {} != {}",
            size.len(),
            stride.len()
        )));
    }
    let shape = dims_from_i64(size)?;
    let strides: Strides = stride.iter().map(|&s| s as isize).collect();
    let offset = offset.unwrap_or(t.offset() as i64);
    if offset < 0 {
        return Err(Error::Runtime(format!(
            "Tensor: invalid storage offset {offset}"
        )));
    }
    let out = t.view_with(Layout {
        shape,
        strides,
        offset: offset as usize,
    })?;
    // The geometry is in storage terms; the derivative replays it on a
    // fresh tensor shaped like the input, relative to the input's offset.
    let (size, stride) = (size.to_vec(), stride.to_vec());
    let rel = offset - t.offset() as i64;
    record_view(
        "AsStridedBackward0",
        t,
        &out,
        move |x| as_strided(x, &size, &stride, Some(x.offset() as i64 + rel)),
        None,
    );
    Ok(out)
}

/// `diagonal(offset, dim1, dim2)` as a view.
pub fn diagonal(t: &Tensor, offset: i64, d1: i64, d2: i64) -> Result<Tensor> {
    let n = t.ndim();
    let (a, b) = (wrap_dim(d1, n)?, wrap_dim(d2, n)?);
    if a == b {
        return Err(Error::Runtime(format!(
            "diagonal dimensions cannot be identical {d1}, {d2}"
        )));
    }
    let l = t.layout();
    let (sa, sb) = (l.shape[a] as i64, l.shape[b] as i64);
    let len = if offset >= 0 {
        sa.min(sb - offset)
    } else {
        (sa + offset).min(sb)
    }
    .max(0);
    let mut off = l.offset as isize;
    if len > 0 {
        off += if offset >= 0 {
            offset as isize * l.strides[b]
        } else {
            -offset as isize * l.strides[a]
        };
    }
    let mut shape: SmallVec<[usize; 6]> = SmallVec::new();
    let mut strides: Strides = SmallVec::new();
    for i in 0..n {
        if i != a && i != b {
            shape.push(l.shape[i]);
            strides.push(l.strides[i]);
        }
    }
    shape.push(len as usize);
    strides.push(l.strides[a] + l.strides[b]);
    let out = t.view_with(Layout {
        shape,
        strides,
        offset: off as usize,
    })?;
    record_view(
        "DiagonalBackward0",
        t,
        &out,
        move |x| diagonal(x, offset, d1, d2),
        None,
    );
    Ok(out)
}
