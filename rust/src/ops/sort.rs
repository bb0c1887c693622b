//! Sorting and order statistics (sort, topk, kthvalue, median, mode,
//! quantile), uniqueness, counting and binary search. Rows along one dim run
//! on the reduction driver in `reduce.rs`; float order puts NaN last, as
//! PyTorch does.

use std::cmp::Ordering;

use crate::autograd::Recorder;
use crate::dispatch;
use crate::error::{try_vec, wrap_dim, Error, Result};
use crate::ops::reduce::{
    for_each_row, lanes_back, map_lanes, reduced_shape, scatter_add_backward, Out,
};
use crate::ops::{arith, copy};
use crate::tensor::{DType, Element, Tensor};

#[allow(clippy::eq_op)]
#[inline(always)]
fn is_nan<T: Element>(x: T) -> bool {
    x != x
}

/// Total order with NaN greater than everything.
#[inline(always)]
fn cmp_nan_last<T: Element>(a: &T, b: &T) -> Ordering {
    a.partial_cmp(b)
        .unwrap_or_else(|| is_nan(*a).cmp(&is_nan(*b)))
}

/// Indices of `row` in sorted order (stable).
fn argsort_row<T: Element>(row: &[T], descending: bool) -> Result<Vec<usize>> {
    let mut idx = try_vec(row.len())?;
    idx.extend(0..row.len());
    if descending {
        idx.sort_by(|&i, &j| cmp_nan_last(&row[j], &row[i]));
    } else {
        idx.sort_by(|&i, &j| cmp_nan_last(&row[i], &row[j]));
    }
    Ok(idx)
}

/// The first `k` of `argsort_row(row, descending)` without sorting the
/// rest: a selection (O(n)) puts them in front, then only they are sorted.
/// Ties are broken by index, so the result equals the stable sort's prefix.
fn argselect_row<T: Element>(row: &[T], k: usize, descending: bool) -> Result<Vec<usize>> {
    if k >= row.len() / 4 {
        let mut idx = argsort_row(row, descending)?;
        idx.truncate(k);
        return Ok(idx);
    }
    let mut idx = try_vec(row.len())?;
    idx.extend(0..row.len());
    let order = |&i: &usize, &j: &usize| {
        let by_value = if descending {
            cmp_nan_last(&row[j], &row[i])
        } else {
            cmp_nan_last(&row[i], &row[j])
        };
        by_value.then(i.cmp(&j))
    };
    if k > 0 {
        idx.select_nth_unstable_by(k - 1, order);
    }
    idx.truncate(k);
    idx.sort_unstable_by(order);
    Ok(idx)
}

fn lane_dim(t: &Tensor, dim: i64) -> Result<(usize, usize)> {
    let d = wrap_dim(dim, t.ndim())?;
    let n = if t.ndim() == 0 { 1 } else { t.shape()[d] };
    Ok((d, n))
}

/// Runs `f(row, out_vals, out_idx)` along `dim` with `k` outputs per row.
fn lanes_with_indices<T: Element>(
    t: &Tensor,
    d: usize,
    k: usize,
    f: impl Fn(&[T], &mut [T], &mut [i64]) + Sync,
) -> Result<(Tensor, Tensor)> {
    let mut shape = reduced_shape(t.shape(), &[d], false);
    shape.push(k);
    let (v, i) = (
        Tensor::empty(&shape, T::DTYPE)?,
        Tensor::empty(&shape, DType::I64)?,
    );
    let (ov, oi) = (Out::<T>::new(&v), Out::<i64>::new(&i));
    let dims = if t.ndim() == 0 { vec![] } else { vec![d] };
    for_each_row::<T>(t, &dims, 16, |r, row| {
        // SAFETY: output row `r` belongs to this call only.
        let (a, b) = unsafe { (ov.slice(r * k, k), oi.slice(r * k, k)) };
        f(row, a, b)
    })?;
    Ok((lanes_back(&v, d, t.ndim())?, lanes_back(&i, d, t.ndim())?))
}

/// `sort(t, dim, descending, stable)`: values and indices (always stable).
pub fn sort(t: &Tensor, dim: i64, descending: bool) -> Result<(Tensor, Tensor)> {
    let (d, n) = lane_dim(t, dim)?;
    let rec = float_rec("SortBackward0", t);
    let (v, i) = topk_impl(t, d, n, descending)?;
    record_picked(rec, t, &v, &i, d, true);
    Ok((v, i))
}

fn float_rec(name: &'static str, t: &Tensor) -> Option<Recorder> {
    if t.dtype().is_floating_point() {
        Recorder::new(name, &[t])
    } else {
        None
    }
}

/// Records an op whose values `v` are the elements of `t` at `indices`
/// along `d` (kept dims when `keepdim`): the gradient goes back to those
/// positions (PyTorch's `value_selecting_reduction_backward`).
fn record_picked(
    rec: Option<Recorder>,
    t: &Tensor,
    v: &Tensor,
    indices: &Tensor,
    d: usize,
    keepdim: bool,
) {
    let Some(rec) = rec else { return };
    let (shape_, idx) = (t.shape().to_vec(), indices.clone());
    rec.finish(&[v], move |_ctx, grads| {
        let Some(g) = grads.into_iter().next().flatten() else {
            return Ok(vec![None]);
        };
        let (g, idx) = if keepdim || shape_.is_empty() {
            (g, idx.clone())
        } else {
            let d = d as i64;
            (
                crate::ops::shape::unsqueeze(&g, d)?,
                crate::ops::shape::unsqueeze(&idx, d)?,
            )
        };
        Ok(vec![Some(scatter_add_backward(
            &g, &idx, &shape_, d as i64,
        )?)])
    });
}

fn topk_impl(t: &Tensor, d: usize, k: usize, descending: bool) -> Result<(Tensor, Tensor)> {
    dispatch!(t.dtype(), T => lanes_with_indices::<T>(t, d, k, |row, v, ix| {
        let Ok(order) = argselect_row(row, k, descending) else { return };
        for ((dv, di), &j) in v.iter_mut().zip(ix.iter_mut()).zip(&order) {
            *dv = row[j];
            *di = j as i64;
        }
    }))
}

/// `topk(t, k, dim, largest, sorted)`: always sorted.
pub fn topk(t: &Tensor, k: i64, dim: i64, largest: bool) -> Result<(Tensor, Tensor)> {
    let (d, n) = lane_dim(t, dim)?;
    if k < 0 || k as usize > n {
        return Err(Error::Runtime("selected index k out of range".into()));
    }
    let rec = float_rec("TopkBackward0", t);
    let (v, i) = topk_impl(t, d, k as usize, largest)?;
    record_picked(rec, t, &v, &i, d, true);
    Ok((v, i))
}

/// A row reduction producing one (value, index) per row, along `dim`.
fn select_rows<T: Element>(
    t: &Tensor,
    d: usize,
    keepdim: bool,
    f: impl Fn(&[T]) -> (T, i64) + Sync,
) -> Result<(Tensor, Tensor)> {
    let (v, i) = lanes_with_indices::<T>(t, d, 1, |row, v, ix| {
        let (a, b) = f(row);
        v[0] = a;
        ix[0] = b;
    })?;
    if keepdim || t.ndim() == 0 {
        return Ok((v, i));
    }
    let s: Vec<i64> = reduced_shape(t.shape(), &[d], false)
        .iter()
        .map(|&x| x as i64)
        .collect();
    Ok((
        crate::ops::shape::reshape(&v, &s)?,
        crate::ops::shape::reshape(&i, &s)?,
    ))
}

/// `kthvalue(t, k, dim, keepdim)`: the k-th smallest (1-based).
pub fn kthvalue(t: &Tensor, k: i64, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    let (d, n) = lane_dim(t, dim)?;
    if k < 1 || k as usize > n {
        return Err(Error::Runtime(format!(
            "kthvalue(): selected number k out of range for dimension {d}"
        )));
    }
    let k = k as usize - 1;
    let rec = float_rec("KthvalueBackward0", t);
    let (v, i) = dispatch!(t.dtype(), T => select_rows::<T>(t, d, keepdim, |row| {
        let order = argselect_row(row, k + 1, false).unwrap_or_default();
        order.get(k).map_or((T::default(), 0), |&j| (row[j], j as i64))
    }))?;
    record_picked(rec, t, &v, &i, d, keepdim);
    Ok((v, i))
}

/// The lower median of a row and its index; `ignore_nan` skips NaNs,
/// otherwise any NaN is the result.
fn median_row<T: Element>(row: &[T], ignore_nan: bool) -> (T, i64) {
    if !ignore_nan {
        if let Some(j) = row.iter().position(|&x| is_nan(x)) {
            return (row[j], j as i64);
        }
    }
    let valid = row.iter().filter(|&&x| !is_nan(x)).count();
    // NaNs sort last, so the median of the valid values is at (valid-1)/2.
    let order = argselect_row(row, (valid.max(1) - 1) / 2 + 1, false).unwrap_or_default();
    match order.last() {
        Some(&j) if valid > 0 => (row[j], j as i64),
        _ => order
            .first()
            .map_or((T::from_f64(f64::NAN), 0), |&j| (row[j], j as i64)),
    }
}

/// `median()`/`nanmedian()` over all elements: a 0-d tensor.
pub fn median_all(t: &Tensor, ignore_nan: bool) -> Result<Tensor> {
    let node = if ignore_nan {
        "NanmedianBackward0"
    } else {
        "MedianBackward0"
    };
    let rec = float_rec(node, t);
    let flat = crate::ops::shape::reshape(t, &[-1])?;
    let r = if flat.numel() == 0 {
        let nan = Tensor::empty(&[], t.dtype())?;
        copy::fill_(&nan, crate::tensor::Scalar::Float(f64::NAN))?;
        nan
    } else {
        median_dim(&flat, 0, false, ignore_nan)?.0
    };
    if let Some(mut rec) = rec {
        // Shared evenly among the elements equal to the median (PyTorch's
        // `evenly_distribute_backward`); a NaN median goes to the NaNs.
        let ix = rec.save(t)?;
        let iy = rec.save_output(&r, 0)?;
        rec.finish(&[&r], move |ctx, grads| {
            use crate::ops::binary::BinaryOp::{Eq, Ne};
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            let (x, y) = (ctx.saved(ix)?, ctx.saved(iy)?);
            let mask = if y.get_scalar(0).to_f64().is_nan() {
                arith::cmp(Ne, &x, &x)?
            } else {
                arith::cmp(Eq, &x, &y)?
            };
            let m = copy::to_dtype(&mask, g.dtype(), false)?;
            let count = crate::ops::reduce::sum(&m, None, false, None)?;
            Ok(vec![Some(arith::mul(&m, &arith::div(&g, &count)?)?)])
        });
    }
    Ok(r)
}

/// `median(dim)`/`nanmedian(dim)`: values and indices.
pub fn median_dim(
    t: &Tensor,
    dim: i64,
    keepdim: bool,
    ignore_nan: bool,
) -> Result<(Tensor, Tensor)> {
    let (d, n) = lane_dim(t, dim)?;
    if n == 0 {
        let name = if ignore_nan { "nanmedian" } else { "median" };
        return Err(Error::Index(format!(
            "{name}(): Expected reduction dim {d} to have non-zero size."
        )));
    }
    let node = if ignore_nan {
        "NanmedianBackward1"
    } else {
        "MedianBackward1"
    };
    let rec = float_rec(node, t);
    let (v, i) = dispatch!(t.dtype(), T => select_rows::<T>(t, d, keepdim, |row| median_row(row, ignore_nan)))?;
    record_picked(rec, t, &v, &i, d, keepdim);
    Ok((v, i))
}

/// `mode(t, dim, keepdim)`: the most frequent value (the smallest on ties)
/// and the last index where it occurs.
pub fn mode(t: &Tensor, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
    let (d, n) = lane_dim(t, dim)?;
    if n == 0 {
        return Err(Error::Index(format!(
            "mode(): Expected reduction dim {d} to have non-zero size."
        )));
    }
    let rec = float_rec("ModeBackward0", t);
    let (v, i) = dispatch!(t.dtype(), T => select_rows::<T>(t, d, keepdim, |row| {
        let order = argsort_row(row, false).unwrap_or_default();
        let (mut best, mut best_len, mut best_idx) = (0usize, 0usize, 0usize);
        let mut s = 0;
        while s < order.len() {
            let mut e = s + 1;
            while e < order.len() && cmp_nan_last(&row[order[e]], &row[order[s]]) == Ordering::Equal {
                e += 1;
            }
            if e - s > best_len {
                best_len = e - s;
                best = order[s];
                best_idx = order[s..e].iter().copied().max().unwrap_or(order[s]);
            }
            s = e;
        }
        (row[best], best_idx as i64)
    }))?;
    record_picked(rec, t, &v, &i, d, keepdim);
    Ok((v, i))
}

/// `quantile`/`nanquantile(t, q, dim, keepdim, interpolation)`. `q` is a
/// list of probabilities; `q_scalar` drops the leading q dim.
pub fn quantile(
    t: &Tensor,
    q: &[f64],
    q_scalar: bool,
    dim: Option<i64>,
    keepdim: bool,
    interpolation: &str,
    ignore_nan: bool,
) -> Result<Tensor> {
    let name = if ignore_nan {
        "nanquantile"
    } else {
        "quantile"
    };
    if !matches!(t.dtype(), DType::F32 | DType::F64) {
        return Err(Error::Runtime(format!(
            "{name}() input tensor must be either float or double dtype"
        )));
    }
    if q.iter().any(|&x| !(0.0..=1.0).contains(&x)) {
        return Err(Error::Runtime(format!(
            "{name}() q values must be in the range [0, 1]"
        )));
    }
    let mode = match interpolation {
        "linear" | "lower" | "higher" | "midpoint" | "nearest" => interpolation,
        _ => {
            return Err(Error::Runtime(format!(
                "{name}() interpolation must be one of linear, lower, higher, midpoint or nearest. Got {interpolation}"
            )))
        }
    };
    if t.numel() == 0 && dim.is_none()
        || dim.is_some_and(|d| {
            t.ndim() > 0 && t.shape().get(wrap_dim(d, t.ndim()).unwrap_or(0)) == Some(&0)
        })
    {
        return Err(Error::Runtime(format!(
            "{name}() input tensor must be non-empty"
        )));
    }
    let node = if ignore_nan {
        "NanquantileBackward0"
    } else {
        "QuantileBackward0"
    };
    let rec = Recorder::new(node, &[t]);
    let (x, d) = match dim {
        None => (crate::ops::shape::reshape(t, &[-1])?, 0usize),
        Some(d) => (t.clone(), wrap_dim(d, t.ndim())?),
    };
    let nq = q.len();
    let qs: Vec<f64> = q.to_vec();
    let r = dispatch!(x.dtype(), T => map_lanes::<T, T>(&x, d, nq, |row, out| {
        let mut v: Vec<f64> = row.iter().map(|a| a.to_f64()).collect();
        v.sort_by(cmp_nan_last);
        let valid = if ignore_nan { v.iter().filter(|a| !a.is_nan()).count() } else { v.len() };
        let has_nan = v.iter().any(|a| a.is_nan());
        for (o, &p) in out.iter_mut().zip(&qs) {
            if valid == 0 || (!ignore_nan && has_nan) {
                *o = T::from_f64(f64::NAN);
                continue;
            }
            let rank = p * (valid - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            let (a, b) = (v[lo], v[hi]);
            let w = rank - lo as f64;
            *o = T::from_f64(match mode {
                "lower" => a,
                "higher" => b,
                "midpoint" => a + (b - a) * 0.5,
                "nearest" => v[rank.round_ties_even() as usize],
                _ => if w < 0.5 { a + w * (b - a) } else { b - (b - a) * (1.0 - w) },
            });
        }
    }))?;
    // r has the q values along `d`: move them to the front.
    let mut r = r;
    if x.ndim() > 0 {
        let n = x.ndim() as i64;
        let perm: Vec<i64> = std::iter::once(d as i64)
            .chain((0..n).filter(|&k| k != d as i64))
            .collect();
        r = copy::contiguous(&crate::ops::shape::permute(&r, &perm)?)?;
    } else {
        r = crate::ops::shape::reshape(&r, &[nq as i64])?;
    }
    let mut shape: Vec<i64> = vec![nq as i64];
    match dim {
        Some(_) => {
            for (k, &s) in x.shape().iter().enumerate() {
                if k != d {
                    shape.push(s as i64);
                } else if keepdim {
                    shape.push(1);
                }
            }
        }
        None if keepdim => shape.extend(std::iter::repeat_n(1, t.ndim())),
        None => {}
    }
    if q_scalar {
        shape.remove(0);
    }
    let r = crate::ops::shape::reshape(&r, &shape)?;
    if let Some(rec) = rec {
        let picks = quantile_picks(&x, d, q, mode, ignore_nan)?;
        let (xshape, tshape) = (x.shape().to_vec(), t.shape().to_vec());
        rec.finish(&[&r], move |_ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            Ok(vec![Some(quantile_backward(
                &g, &picks, &xshape, &tshape, d, nq,
            )?)])
        });
    }
    Ok(r)
}

/// Where each quantile of `x`'s rows along `d` reads its values: the
/// original indices of the lower and upper order statistics and the weight
/// of the upper one, each shaped like `x` with `nq` entries along `d`.
/// A row holding a NaN (or only NaNs, for `nanquantile`) reads its last
/// sorted element, which is NaN.
fn quantile_picks(
    x: &Tensor,
    d: usize,
    q: &[f64],
    mode: &str,
    ignore_nan: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let nq = q.len();
    let all = dispatch!(x.dtype(), T => map_lanes::<T, f64>(x, d, 3 * nq, |row, out| {
        let order = argsort_row(row, false).unwrap_or_default();
        let n = order.len();
        let valid = row.iter().filter(|&&a| !is_nan(a)).count();
        let has_nan = valid < n;
        for (k, &p) in q.iter().enumerate() {
            let (lo, hi, w) = if n == 0 {
                (0, 0, 0.0)
            } else if valid == 0 || (!ignore_nan && has_nan) {
                (n - 1, n - 1, 0.0)
            } else {
                let rank = p * (valid - 1) as f64;
                let (f, c) = (rank.floor() as usize, rank.ceil() as usize);
                match mode {
                    "lower" => (f, f, 0.0),
                    "higher" => (c, c, 0.0),
                    "midpoint" => (f, c, 0.5),
                    "nearest" => {
                        let r = rank.round_ties_even() as usize;
                        (r, r, 0.0)
                    }
                    _ => (f, c, rank - f as f64),
                }
            };
            let at = |i: usize| order.get(i).copied().unwrap_or(0) as f64;
            out[k] = at(lo);
            out[nq + k] = at(hi);
            out[2 * nq + k] = w;
        }
    }))?;
    let part = |i: i64| crate::ops::shape::narrow(&all, d as i64, i * nq as i64, nq as i64);
    Ok((
        copy::to_dtype(&part(0)?, DType::I64, false)?,
        copy::to_dtype(&part(1)?, DType::I64, false)?,
        part(2)?,
    ))
}

/// The gradient of `quantile`: each output's gradient split between its
/// two order statistics by the interpolation weight.
fn quantile_backward(
    g: &Tensor,
    (lo, hi, w): &(Tensor, Tensor, Tensor),
    xshape: &[usize],
    tshape: &[usize],
    d: usize,
    nq: usize,
) -> Result<Tensor> {
    use crate::ops::shape::reshape;
    let sizes = |s: &[usize]| s.iter().map(|&v| v as i64).collect::<Vec<i64>>();
    if xshape.is_empty() {
        return reshape(&crate::ops::reduce::sum(g, None, false, None)?, &[]);
    }
    // The output with its q dim first, as the lanes were before the permute.
    let mut base = vec![nq as i64];
    base.extend(
        xshape
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != d)
            .map(|(_, &v)| v as i64),
    );
    let gq = crate::ops::join::movedim(&reshape(g, &base)?, &[0], &[d as i64])?;
    let w = copy::to_dtype(w, g.dtype(), false)?;
    let upper = arith::mul(&gq, &w)?;
    let lower = arith::sub(&gq, &upper)?;
    let r = arith::add(
        &scatter_add_backward(&lower, lo, xshape, d as i64)?,
        &scatter_add_backward(&upper, hi, xshape, d as i64)?,
    )?;
    reshape(&r, &sizes(tshape))
}

// ---------------------------------------------------------------------------
// unique, unique_consecutive

/// `unique`/`unique_consecutive` over the flattened tensor: (values,
/// inverse indices shaped like `t`, counts). `consecutive` only merges
/// neighbours; otherwise the values come out sorted.
pub fn unique(t: &Tensor, consecutive: bool) -> Result<(Tensor, Tensor, Tensor)> {
    dispatch!(t.dtype(), T => {
        let v = copy::to_vec::<T>(t)?;
        let order: Vec<usize> = if consecutive { (0..v.len()).collect() } else { argsort_row(&v, false)? };
        let (mut vals, mut counts) = (Vec::new(), Vec::new());
        let mut inverse = try_vec::<i64>(v.len())?;
        inverse.resize(v.len(), 0);
        for &j in &order {
            let same = vals.last().is_some_and(|l: &T| cmp_nan_last(l, &v[j]) == Ordering::Equal && !is_nan(v[j]));
            if !same {
                vals.push(v[j]);
                counts.push(0i64);
            }
            if let Some(c) = counts.last_mut() { *c += 1; }
            inverse[j] = vals.len() as i64 - 1;
        }
        let n = vals.len();
        Ok((
            Tensor::from_slice(&vals, &[n])?,
            Tensor::from_slice(&inverse, t.shape())?,
            Tensor::from_slice(&counts, &[n])?,
        ))
    })
}

/// `unique(dim=d)`/`unique_consecutive(dim=d)`: unique slices along `dim`.
pub fn unique_dim(t: &Tensor, dim: i64, consecutive: bool) -> Result<(Tensor, Tensor, Tensor)> {
    let d = wrap_dim(dim, t.ndim())?;
    let n = t.shape().get(d).copied().unwrap_or(1);
    // Slices along `d` become rows of a contiguous (n, rest) tensor.
    let moved = move_dim(t, d, 0)?;
    let rows = copy::contiguous_copy(&moved)?;
    let width = rows.numel().checked_div(n).unwrap_or(0);
    dispatch!(t.dtype(), T => {
        let v = copy::to_vec::<T>(&rows)?;
        let row = |i: usize| &v[i * width..(i + 1) * width];
        let cmp_rows = |a: &usize, b: &usize| {
            row(*a).iter().zip(row(*b)).map(|(x, y)| cmp_nan_last(x, y)).find(|o| *o != Ordering::Equal).unwrap_or(Ordering::Equal)
        };
        let mut order: Vec<usize> = (0..n).collect();
        if !consecutive { order.sort_by(cmp_rows); }
        let mut keep: Vec<usize> = Vec::new();
        let mut counts: Vec<i64> = Vec::new();
        let mut inverse = vec![0i64; n];
        for &j in &order {
            if keep.last().is_none_or(|l| cmp_rows(l, &j) != Ordering::Equal) {
                keep.push(j);
                counts.push(0);
            }
            if let Some(c) = counts.last_mut() { *c += 1; }
            inverse[j] = keep.len() as i64 - 1;
        }
        let mut data: Vec<T> = Vec::new();
        for &j in &keep { data.extend_from_slice(row(j)); }
        let mut shape = moved.shape().to_vec();
        if let Some(s) = shape.first_mut() { *s = keep.len(); }
        let vals = Tensor::from_slice(&data, &shape)?;
        let vals = copy::contiguous(&move_dim(&vals, 0, d)?)?;
        let k = counts.len();
        Ok((vals, Tensor::from_slice(&inverse, &[n])?, Tensor::from_slice(&counts, &[k])?))
    })
}

// ---------------------------------------------------------------------------
// bincount, histc, searchsorted

/// `bincount(t, weights, minlength)`.
pub fn bincount(t: &Tensor, weights: Option<&Tensor>, minlength: i64) -> Result<Tensor> {
    if minlength < 0 {
        return Err(Error::Runtime("minlength should be >= 0".into()));
    }
    if t.ndim() != 1 || t.dtype().is_floating_point() || t.dtype() == DType::Bool {
        return Err(Error::Runtime(
            "bincount only supports 1-d non-negative integral inputs.".into(),
        ));
    }
    let v = copy::to_vec::<i64>(t)?;
    if v.iter().any(|&x| x < 0) {
        return Err(Error::Runtime(
            "bincount only supports 1-d non-negative integral inputs.".into(),
        ));
    }
    if let Some(w) = weights {
        if w.ndim() != 1 || w.numel() != t.numel() {
            return Err(Error::Runtime(
                "weights should be 1-d and have the same length as input".into(),
            ));
        }
    }
    let len = (v.iter().copied().max().map_or(0, |m| m as usize + 1)).max(minlength as usize);
    let mut bins = try_vec::<f64>(len)?;
    bins.resize(len, 0.0);
    match weights {
        None => {
            let mut counts = try_vec::<i64>(len)?;
            counts.resize(len, 0);
            for &x in &v {
                counts[x as usize] += 1;
            }
            Tensor::from_slice(&counts, &[len])
        }
        Some(w) => {
            let wv = copy::to_vec::<f64>(w)?;
            for (&x, &wt) in v.iter().zip(&wv) {
                bins[x as usize] += wt;
            }
            let out = if w.dtype() == DType::F32 {
                DType::F32
            } else {
                DType::F64
            };
            copy::to_dtype(&Tensor::from_slice(&bins, &[len])?, out, false)
        }
    }
}

/// `histc(t, bins, min, max)`: equal-width bins; `min == max` uses the
/// data's range.
pub fn histc(t: &Tensor, bins: i64, min: f64, max: f64) -> Result<Tensor> {
    if !t.dtype().is_floating_point() {
        return Err(Error::Runtime(format!(
            "\"histogram_cpu\" not implemented for '{}'",
            t.dtype().scalar_name()
        )));
    }
    if bins <= 0 {
        return Err(Error::Runtime("torch.histc(): bins must be > 0".into()));
    }
    let v = copy::to_vec::<f64>(t)?;
    let (mut lo, mut hi) = (min, max);
    if lo == hi && !v.is_empty() {
        lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    }
    if lo == hi {
        lo -= 1.0;
        hi += 1.0;
    }
    if lo > hi {
        return Err(Error::Runtime(
            "torch.histc(): max must be larger than min".into(),
        ));
    }
    if !lo.is_finite() || !hi.is_finite() {
        return Err(Error::Runtime(format!(
            "torch.histc(): range of [{lo}, {hi}] is not finite"
        )));
    }
    let nb = bins as usize;
    let mut h = try_vec::<f64>(nb)?;
    h.resize(nb, 0.0);
    for &x in &v {
        if x >= lo && x <= hi {
            let b = (((x - lo) * nb as f64 / (hi - lo)) as usize).min(nb - 1);
            h[b] += 1.0;
        }
    }
    copy::to_dtype(&Tensor::from_slice(&h, &[nb])?, t.dtype(), false)
}

/// `searchsorted(sorted, values, right, out_int32)`: `sorted` is 1-d, or
/// has the leading dims of `values`.
/// `sorter` holds, per row, the indices that sort an unsorted `seq`.
pub fn searchsorted(
    seq: &Tensor,
    values: &Tensor,
    right: bool,
    out_int32: bool,
    sorter: Option<&Tensor>,
) -> Result<Tensor> {
    let sn = seq.ndim();
    if sn == 0 {
        return Err(Error::Runtime(
            "torch.searchsorted(): boundaries tensor should have positive dimension, but got 0 dimension".into(),
        ));
    }
    if sn > 1 && (values.ndim() != sn || values.shape()[..sn - 1] != seq.shape()[..sn - 1]) {
        return Err(Error::Runtime(format!(
            "torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 dimensions of boundaries tensor and input value tensor must match, but we got boundaries tensor {} and input value tensor {}",
            crate::tensor::layout::fmt_shape(seq.shape()),
            crate::tensor::layout::fmt_shape(values.shape())
        )));
    }
    let dt = seq.dtype().promote(values.dtype());
    let mut s = copy::to_vec::<f64>(&copy::to_dtype(seq, dt, false)?)?;
    let v = copy::to_vec::<f64>(&copy::to_dtype(values, dt, false)?)?;
    let width = seq.shape()[sn - 1];
    if let Some(order) = sorter {
        if order.shape() != seq.shape() || order.dtype() != DType::I64 {
            return Err(Error::Runtime(
                "torch.searchsorted(): boundary and sorter must have the same size and sorter must be a tensor of int64 dtype".into(),
            ));
        }
        let o = copy::to_vec::<i64>(order)?;
        let mut sorted = try_vec::<f64>(s.len())?;
        for (i, &k) in o.iter().enumerate() {
            let row = i / width.max(1) * width;
            match usize::try_from(k).ok().filter(|&k| k < width) {
                Some(k) => sorted.push(s[row + k]),
                None => {
                    return Err(Error::Runtime(
                        "torch.searchsorted(): sorter index out of range".into(),
                    ))
                }
            }
        }
        s = sorted;
    }
    let inner = if sn == 1 {
        v.len().max(1)
    } else {
        values.shape()[sn - 1].max(1)
    };
    let mut out = try_vec::<i64>(v.len())?;
    for (i, &x) in v.iter().enumerate() {
        let row = if sn == 1 { 0 } else { i / inner };
        let r = &s[row * width..(row + 1) * width];
        let pos = if right {
            r.partition_point(|&b| cmp_nan_last(&b, &x) != Ordering::Greater)
        } else {
            r.partition_point(|&b| cmp_nan_last(&b, &x) == Ordering::Less)
        };
        out.push(pos as i64);
    }
    let r = Tensor::from_slice(&out, values.shape())?;
    copy::to_dtype(&r, if out_int32 { DType::I32 } else { DType::I64 }, false)
}

/// A view of `t` with dim `from` moved to position `to`.
fn move_dim(t: &Tensor, from: usize, to: usize) -> Result<Tensor> {
    let mut perm: Vec<i64> = (0..t.ndim() as i64).filter(|&k| k != from as i64).collect();
    perm.insert(to.min(perm.len()), from as i64);
    crate::ops::shape::permute(t, &perm)
}
