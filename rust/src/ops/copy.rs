//! Copies, casts and fills.

use crate::autograd::{Ctx, Recorder};
use crate::cpu::kernels;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::tensor::layout::{broadcast_shapes, fmt_shape};
use crate::tensor::{DType, Element, Scalar, Tensor};

/// `dst.copy_(src)`: broadcasts `src` to `dst`'s shape and casts its dtype.
pub fn copy_(dst: &Tensor, src: &Tensor) -> Result<()> {
    let rec = if dst.dtype().is_floating_point() {
        Recorder::new_inplace("CopyBackwards", dst, &[Some(src)])?
    } else {
        None
    };
    copy_impl(dst, src)?;
    if let Some(rec) = rec {
        rec.finish_inplace(dst, |ctx: &Ctx<'_>, grads: Vec<Option<Tensor>>| {
            let g = grads.into_iter().next().flatten();
            Ok(match g {
                None => vec![None, None],
                Some(g) => vec![
                    if ctx.needs(0) {
                        Some(crate::ops::arith::zeros_like(&g)?)
                    } else {
                        None
                    },
                    Some(g),
                ],
            })
        })?;
    }
    Ok(())
}

/// [`copy_`] without autograd: for kernels filling an output from a
/// temporary.
pub fn copy_raw(dst: &Tensor, src: &Tensor) -> Result<()> {
    copy_impl(dst, src)
}

fn copy_impl(dst: &Tensor, src: &Tensor) -> Result<()> {
    let shape = broadcast_shapes(dst.shape(), src.shape())?;
    if shape.as_slice() != dst.shape() {
        return Err(Error::Runtime(format!(
            "output with shape {} doesn't match the broadcast shape {}",
            fmt_shape(dst.shape()),
            fmt_shape(&shape)
        )));
    }
    let src_layout = src.layout().broadcast_to(dst.shape())?;
    check_no_internal_overlap(dst)?;
    // A source overlapping the destination is read from a snapshot.
    let src = if dst.same_storage(src) && !dst.same_tensor(src) {
        contiguous_copy(src)?
    } else {
        src.clone()
    };
    let src_strides = if dst.same_storage(&src) {
        dst.strides().to_vec()
    } else {
        src_layout.strides.to_vec()
    };
    if !crate::cpu::half::convert(&src, &src_strides, dst) {
        dispatch!(src.dtype(), S => dispatch!(dst.dtype(), D => {
            kernels::map1::<S, D>(&src, &src_strides, dst, D::cast_from);
        }));
    }
    dst.bump_version();
    Ok(())
}

/// PyTorch refuses writes into a tensor whose elements alias each other.
pub fn check_no_internal_overlap(t: &Tensor) -> Result<()> {
    let aliased = t
        .shape()
        .iter()
        .zip(t.strides())
        .any(|(&d, &s)| d > 1 && s == 0);
    if aliased {
        return Err(Error::Runtime(
            "unsupported operation: more than one element of the written-to tensor refers to a single memory location. Please clone() the tensor before performing the operation.".into(),
        ));
    }
    Ok(())
}

/// A fresh contiguous tensor with the same values and dtype.
pub fn contiguous_copy(t: &Tensor) -> Result<Tensor> {
    let rec = Recorder::new("CloneBackward0", &[t]);
    let out = cast_raw(t, t.dtype())?;
    record_identity(rec, &out);
    Ok(out)
}

/// `contiguous_copy`, for `reshape` (named as PyTorch's copy in reshape).
pub fn clone_contiguous(t: &Tensor) -> Result<Tensor> {
    contiguous_copy(t)
}

/// A fresh contiguous tensor holding `t` cast to `dtype`; the gradient is
/// cast back.
pub fn cast_copy(t: &Tensor, dtype: DType) -> Result<Tensor> {
    let rec = if dtype.is_floating_point() {
        Recorder::new("ToCopyBackward0", &[t])
    } else {
        None
    };
    let out = cast_raw(t, dtype)?;
    record_identity(rec, &out);
    Ok(out)
}

fn cast_raw(t: &Tensor, dtype: DType) -> Result<Tensor> {
    let out = Tensor::empty(t.shape(), dtype)?;
    if t.layout().is_contiguous() && crate::cpu::half::convert(t, t.strides(), &out) {
        return Ok(out);
    }
    dispatch!(t.dtype(), S => dispatch!(dtype, D => {
        kernels::map1::<S, D>(t, t.strides(), &out, D::cast_from);
    }));
    Ok(out)
}

/// Ops whose derivative passes the gradient through (the engine casts it
/// to the input's dtype).
fn record_identity(rec: Option<Recorder>, out: &Tensor) {
    if let Some(rec) = rec {
        rec.finish(&[out], |_ctx, grads| Ok(grads));
    }
}

/// `t.clone()`: a fresh copy laid out like `t` (PyTorch's `preserve_format`).
pub fn clone(t: &Tensor) -> Result<Tensor> {
    let rec = Recorder::new("CloneBackward0", &[t]);
    let out = Tensor::empty_strided(t.shape(), &t.layout().preserved_strides(), t.dtype())?;
    dispatch!(t.dtype(), T => kernels::map1::<T, T>(t, t.strides(), &out, |x| x));
    record_identity(rec, &out);
    Ok(out)
}

/// `t.contiguous()`: `t` itself when already contiguous.
pub fn contiguous(t: &Tensor) -> Result<Tensor> {
    if t.is_contiguous() {
        Ok(t.clone())
    } else {
        contiguous_copy(t)
    }
}

/// `t.to(dtype)`: `t` itself when nothing changes, unless `copy`.
pub fn to_dtype(t: &Tensor, dtype: DType, copy: bool) -> Result<Tensor> {
    if t.dtype() == dtype && !copy {
        Ok(t.clone())
    } else {
        cast_copy(t, dtype)
    }
}

/// `t.fill_(v)`.
pub fn fill_(t: &Tensor, v: Scalar) -> Result<()> {
    check_no_internal_overlap(t)?;
    let rec = Recorder::new_inplace("FillBackward0", t, &[])?;
    dispatch!(t.dtype(), T => kernels::fill::<T>(t, v.to::<T>()));
    t.bump_version();
    if let Some(rec) = rec {
        rec.finish_inplace(t, |_ctx, grads: Vec<Option<Tensor>>| {
            Ok(vec![grads
                .into_iter()
                .next()
                .flatten()
                .map(|g| crate::ops::arith::zeros_like(&g))
                .transpose()?])
        })?;
    }
    Ok(())
}

/// The elements of `t` in row-major order, converted to `T`.
pub fn to_vec<T: Element>(t: &Tensor) -> Result<Vec<T>> {
    let mut out = crate::error::try_vec(t.numel())?;
    dispatch!(t.dtype(), S => {
        let p = t.data_ptr::<S>();
        crate::cpu::iter::for_each_offset(t.shape(), t.strides(), |o| {
            // SAFETY: offsets come from the validated layout of `t`.
            out.push(T::cast_from(unsafe { *p.offset(o) }));
        });
    });
    Ok(out)
}
