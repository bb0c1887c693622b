//! Factory functions: `full`, `arange`, `linspace`, `logspace`, `eye`.

use crate::dispatch;
use crate::error::{Error, Result};
use crate::ops::copy;
use crate::tensor::{DType, Element, Scalar, Tensor};

pub fn full(shape: &[usize], v: Scalar, dtype: DType) -> Result<Tensor> {
    let zero = match v {
        Scalar::Bool(b) => !b,
        Scalar::Int(i) => i == 0,
        Scalar::Float(f) => f == 0.0 && f.is_sign_positive(),
    };
    if zero {
        return Tensor::zeros(shape, dtype);
    }
    let t = Tensor::empty(shape, dtype)?;
    copy::fill_(&t, v)?;
    Ok(t)
}

/// Fills a fresh 1-d tensor with `f(i)` for `i` in `0..n`.
fn from_fn(n: usize, dtype: DType, f: impl Fn(usize) -> Scalar) -> Result<Tensor> {
    let t = Tensor::empty(&[n], dtype)?;
    dispatch!(dtype, T => {
        let p = t.data_ptr::<T>();
        for i in 0..n {
            // SAFETY: `t` is a fresh contiguous buffer of `n` elements.
            unsafe { *p.add(i) = f(i).to::<T>() };
        }
    });
    Ok(t)
}

/// `torch.arange(start, end, step)`; the dtype is decided by the caller.
pub fn arange(start: Scalar, end: Scalar, step: Scalar, dtype: DType) -> Result<Tensor> {
    let (s, e, st) = (start.to_f64(), end.to_f64(), step.to_f64());
    if st == 0.0 {
        return Err(Error::Runtime("step must be nonzero".into()));
    }
    if !(s.is_finite() && e.is_finite()) {
        return Err(Error::Runtime(format!("unsupported range: {s} -> {e}")));
    }
    if (st > 0.0 && e < s) || (st < 0.0 && e > s) {
        return Err(Error::Runtime(
            "upper bound and larger bound inconsistent with step sign".into(),
        ));
    }
    let n = ((e - s) / st).ceil().max(0.0) as usize;
    if dtype.is_floating_point() {
        from_fn(n, dtype, |i| Scalar::Float(s + i as f64 * st))
    } else {
        let (si, sti) = (start.to_i64(), step.to_i64());
        if matches!(step, Scalar::Float(_)) || matches!(start, Scalar::Float(_)) {
            from_fn(n, dtype, |i| Scalar::Int((s + i as f64 * st) as i64))
        } else {
            from_fn(n, dtype, |i| Scalar::Int(si + i as i64 * sti))
        }
    }
}

/// `torch.linspace`: symmetric from both ends like PyTorch, so the last value is exact.
pub fn linspace(start: f64, end: f64, steps: i64, dtype: DType) -> Result<Tensor> {
    if steps < 0 {
        return Err(Error::Runtime(
            "number of steps must be non-negative".into(),
        ));
    }
    let n = steps as usize;
    let step = if n > 1 {
        (end - start) / (n - 1) as f64
    } else {
        0.0
    };
    let half = n / 2;
    from_fn(n, dtype, |i| {
        let v = if i < half || n == 1 {
            start + step * i as f64
        } else {
            end - step * (n - 1 - i) as f64
        };
        if dtype.is_floating_point() {
            Scalar::Float(v)
        } else {
            Scalar::Int(v as i64)
        }
    })
}

pub fn logspace(start: f64, end: f64, steps: i64, base: f64, dtype: DType) -> Result<Tensor> {
    let exps = linspace(start, end, steps, DType::F64)?;
    let vals = Tensor::empty(exps.shape(), DType::F64)?;
    crate::cpu::kernels::map1::<f64, f64>(&exps, exps.strides(), &vals, |e| base.powf(e));
    copy::cast_copy(&vals, dtype)
}

pub fn eye(n: i64, m: i64, dtype: DType) -> Result<Tensor> {
    if n < 0 {
        return Err(Error::Runtime(format!(
            "n must be greater or equal to 0, got {n}"
        )));
    }
    if m < 0 {
        return Err(Error::Runtime(format!(
            "m must be greater or equal to 0, got {m}"
        )));
    }
    let (n, m) = (n as usize, m as usize);
    let t = Tensor::zeros(&[n, m], dtype)?;
    dispatch!(dtype, T => {
        let p = t.data_ptr::<T>();
        for i in 0..n.min(m) {
            // SAFETY: i * m + i < n * m for i < min(n, m).
            unsafe { *p.add(i * m + i) = T::from_bool(true) };
        }
    });
    Ok(t)
}

/// A tensor whose values are `data` converted to `dtype`.
pub fn from_scalars(data: &[Scalar], shape: &[usize], dtype: DType) -> Result<Tensor> {
    let t = Tensor::empty(shape, dtype)?;
    if t.numel() != data.len() {
        return Err(Error::Runtime(
            "from_scalars: shape does not match data".into(),
        ));
    }
    dispatch!(dtype, T => {
        let p = t.data_ptr::<T>();
        for (i, v) in data.iter().enumerate() {
            // SAFETY: `t` is a fresh contiguous buffer of `data.len()` elements.
            unsafe { *p.add(i) = v.to::<T>() };
        }
    });
    Ok(t)
}

/// Values of a contiguous typed slice as a tensor (used by `Element` callers).
pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
    Tensor::from_slice(&data, shape)
}
