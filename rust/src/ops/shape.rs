//! Views: new layouts over the same storage. Each result is validated
//! against the storage in `Tensor::view_with`.

use smallvec::SmallVec;

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
    t.view_with(Layout {
        shape,
        strides,
        offset: t.offset(),
    })
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
        if last % ratio != 0 {
            return Err(Error::Runtime(format!(
                "self.size(-1) must be divisible by {ratio} {what}, but got {last}"
            )));
        }
        if t.offset() % ratio != 0 {
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
    match t.layout().view_strides(&shape) {
        Some(strides) => t.view_with(Layout {
            shape,
            strides,
            offset: t.offset(),
        }),
        None => {
            let c = copy::contiguous_copy(t)?;
            c.view_with(Layout::contiguous(&shape))
        }
    }
}

pub fn permute(t: &Tensor, dims: &[i64]) -> Result<Tensor> {
    t.view_with(t.layout().permute(dims)?)
}

pub fn transpose(t: &Tensor, d0: i64, d1: i64) -> Result<Tensor> {
    t.view_with(t.layout().transpose(d0, d1)?)
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
        return Ok(x.alias());
    }
    transpose(x, 0, 1)
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
    t.view_with(t.layout().expand(sizes)?)
}

pub fn squeeze(t: &Tensor, dims: Option<&[i64]>) -> Result<Tensor> {
    let wrapped: Option<Vec<usize>> = dims
        .map(|ds| ds.iter().map(|&d| wrap_dim(d, t.ndim())).collect())
        .transpose()?;
    t.view_with(t.layout().squeeze_dims(wrapped.as_deref()))
}

pub fn unsqueeze(t: &Tensor, dim: i64) -> Result<Tensor> {
    t.view_with(t.layout().unsqueeze(dim)?)
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
        return Ok(t.alias());
    }
    let mut sizes: Vec<i64> = t.shape()[..s].iter().map(|&d| d as i64).collect();
    sizes.push(t.shape()[s..=e].iter().product::<usize>() as i64);
    sizes.extend(t.shape()[e + 1..].iter().map(|&d| d as i64));
    reshape(t, &sizes)
}

pub fn unflatten(t: &Tensor, dim: i64, sizes: &[i64]) -> Result<Tensor> {
    let d = wrap_dim(dim, t.ndim())?;
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
    t.view_with(t.layout().narrow(dim, start, length)?)
}

pub fn select(t: &Tensor, dim: i64, index: i64) -> Result<Tensor> {
    t.view_with(t.layout().select(dim, index)?)
}

pub fn unfold(t: &Tensor, dim: i64, size: i64, step: i64) -> Result<Tensor> {
    t.view_with(t.layout().unfold(dim, size, step)?)
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
    t.view_with(Layout {
        shape,
        strides,
        offset: offset as usize,
    })
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
    t.view_with(Layout {
        shape,
        strides,
        offset: off as usize,
    })
}
