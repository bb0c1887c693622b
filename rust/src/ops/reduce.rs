//! Reductions and scans. Every reduction runs on one driver,
//! [`for_each_row`]: the reduced dims are moved innermost, and a slice
//! kernel sees, for each output element, the reduced elements as one slice
//! (borrowed when they are contiguous, gathered otherwise). Associative ops
//! (`sum`, `prod`, `amax`, `amin`) also have a column kernel for reductions
//! over outer dims of a contiguous tensor, and a parallel full reduction.

use std::sync::Mutex;

use smallvec::SmallVec;

use crate::autograd::Recorder;
use crate::cpu::half::{Half, BLOCK};
use crate::cpu::iter;
use crate::cpu::parallel::for_ranges;
use crate::dispatch;
use crate::error::{try_vec, wrap_dim, Error, Result};
use crate::ops::{arith, copy, default_dtype, shape};
use crate::tensor::{DType, Element, Tensor};

// ---------------------------------------------------------------------------
// The driver

/// The reduced dims of `t`: `None` (or an empty list) means all of them.
/// Sorted, wrapped, and checked for repeats.
pub fn reduce_dims(t: &Tensor, dims: Option<&[i64]>) -> Result<Vec<usize>> {
    let n = t.ndim();
    let Some(dims) = dims.filter(|d| !d.is_empty()) else {
        return Ok((0..n).collect());
    };
    let mut out = Vec::with_capacity(dims.len().min(64));
    for &d in dims {
        let w = wrap_dim(d, n)?;
        if out.contains(&w) {
            return Err(Error::Runtime(format!(
                "dim {w} appears multiple times in the list of dims"
            )));
        }
        out.push(w);
    }
    out.sort_unstable();
    // A 0-d tensor reduces over its (single, implicit) element.
    out.retain(|&d| d < n);
    Ok(out)
}

/// The output shape of reducing `dims` of `shape`.
pub fn reduced_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Vec<usize> {
    let mut out = Vec::with_capacity(shape.len());
    for (d, &s) in shape.iter().enumerate() {
        if !dims.contains(&d) {
            out.push(s);
        } else if keepdim {
            out.push(1);
        }
    }
    out
}

/// A raw pointer that closures on several threads may write through; each
/// thread writes disjoint elements.
#[derive(Clone, Copy)]
pub(crate) struct Out<T>(usize, std::marker::PhantomData<T>);

impl<T> Out<T> {
    pub fn new(t: &Tensor) -> Self {
        Out(t.raw_ptr() as usize, std::marker::PhantomData)
    }
    /// Writes element `i` of a contiguous output.
    ///
    /// # Safety
    /// `i` is inside the output and no other thread writes it.
    pub unsafe fn set(self, i: usize, v: T) {
        *(self.0 as *mut T).add(i) = v;
    }
    /// The `len` elements from `i` of a contiguous output, as a slice.
    ///
    /// # Safety
    /// As for `set`, for the whole range.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, i: usize, len: usize) -> &mut [T] {
        std::slice::from_raw_parts_mut((self.0 as *mut T).add(i), len)
    }
}

/// Calls `f(i, row)` for every output element `i` (row-major over the kept
/// dims of `t`), where `row` holds the elements reduced into it, row-major
/// over the reduced `dims`. Runs in parallel when `cost_ns` per input
/// element makes it worth it.
pub(crate) fn for_each_row<T: Element>(
    t: &Tensor,
    dims: &[usize],
    cost_ns: usize,
    f: impl Fn(usize, &[T]) + Sync,
) -> Result<()> {
    let mut kshape: SmallVec<[usize; 8]> = SmallVec::new();
    let mut kstrides: SmallVec<[isize; 8]> = SmallVec::new();
    let mut rshape: SmallVec<[usize; 8]> = SmallVec::new();
    let mut rstrides: SmallVec<[isize; 8]> = SmallVec::new();
    for d in 0..t.ndim() {
        if dims.contains(&d) {
            rshape.push(t.shape()[d]);
            rstrides.push(t.strides()[d]);
        } else {
            kshape.push(t.shape()[d]);
            kstrides.push(t.strides()[d]);
        }
    }
    let n_out: usize = kshape.iter().product();
    let n_red: usize = rshape.iter().product();
    if n_out == 0 {
        return Ok(());
    }
    let mut expected = 1isize;
    let mut contiguous = true;
    for (&s, &st) in rshape.iter().zip(&rstrides).rev() {
        if s != 1 {
            contiguous &= st == expected;
            expected *= s as isize;
        }
    }
    let base = t.data_ptr::<T>() as usize;
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let cost = cost_ns.saturating_mul(n_red.max(1));
    for_ranges(n_out, cost, 1, |start, end| {
        let mut buf: Vec<T> = if contiguous {
            Vec::new()
        } else {
            match try_vec(n_red) {
                Ok(v) => v,
                Err(e) => {
                    if let Ok(mut g) = failed.lock() {
                        *g = Some(e);
                    }
                    return;
                }
            }
        };
        let p = base as *const T;
        for i in start..end {
            let mut off = 0isize;
            let mut rem = i;
            for (&s, &st) in kshape.iter().zip(&kstrides).rev() {
                off += (rem % s) as isize * st;
                rem /= s;
            }
            // SAFETY: offsets come from the layout of `t`, validated against
            // its storage; a contiguous row of `n_red` elements lies inside it.
            unsafe {
                if contiguous {
                    f(i, std::slice::from_raw_parts(p.offset(off), n_red));
                } else {
                    buf.clear();
                    iter::for_each_offset(&rshape, &rstrides, |o| buf.push(*p.offset(off + o)));
                    f(i, &buf);
                }
            }
        }
    });
    match failed.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}

/// Reduces `dims` of `t` with `f(row) -> value` into a new tensor of dtype `O`.
fn reduce_map<T: Element, O: Element>(
    t: &Tensor,
    dims: &[usize],
    keepdim: bool,
    cost_ns: usize,
    f: impl Fn(&[T]) -> O + Sync,
) -> Result<Tensor> {
    let out = Tensor::empty(&reduced_shape(t.shape(), dims, keepdim), O::DTYPE)?;
    let o = Out::<O>::new(&out);
    // SAFETY: each output element is written once, by one thread.
    for_each_row::<T>(t, dims, cost_ns, |i, row| unsafe { o.set(i, f(row)) })?;
    Ok(out)
}

/// Like `reduce_map`, for ops returning a (value, index) pair.
fn reduce_pair<T: Element, O: Element>(
    t: &Tensor,
    dims: &[usize],
    keepdim: bool,
    f: impl Fn(&[T]) -> (O, i64) + Sync,
) -> Result<(Tensor, Tensor)> {
    let shape = reduced_shape(t.shape(), dims, keepdim);
    let (vals, idx) = (
        Tensor::empty(&shape, O::DTYPE)?,
        Tensor::empty(&shape, DType::I64)?,
    );
    let (ov, oi) = (Out::<O>::new(&vals), Out::<i64>::new(&idx));
    for_each_row::<T>(t, dims, 2, |i, row| {
        let (v, k) = f(row);
        // SAFETY: each output element is written once, by one thread.
        unsafe {
            ov.set(i, v);
            oi.set(i, k);
        }
    })?;
    Ok((vals, idx))
}

// ---------------------------------------------------------------------------
// Arithmetic types and slice kernels

/// The types sums and products accumulate in (f32, f64, i64). Integer
/// arithmetic wraps, as PyTorch's int64 sums do (and never panics).
pub trait Num: Element {
    const ZERO: Self;
    const ONE: Self;
    fn plus(self, o: Self) -> Self;
    fn times(self, o: Self) -> Self;
}

macro_rules! impl_num {
    ($t:ty, $zero:expr, $one:expr, $add:expr, $mul:expr) => {
        impl Num for $t {
            const ZERO: $t = $zero;
            const ONE: $t = $one;
            #[inline(always)]
            fn plus(self, o: $t) -> $t {
                #[allow(clippy::redundant_closure_call)]
                ($add)(self, o)
            }
            #[inline(always)]
            fn times(self, o: $t) -> $t {
                #[allow(clippy::redundant_closure_call)]
                ($mul)(self, o)
            }
        }
    };
}
impl_num!(f32, 0.0, 1.0, |a: f32, b| a + b, |a: f32, b| a * b);
impl_num!(f64, 0.0, 1.0, |a: f64, b| a + b, |a: f64, b| a * b);
impl_num!(i64, 0, 1, i64::wrapping_add, i64::wrapping_mul);

#[allow(clippy::eq_op)]
#[inline(always)]
fn is_nan<T: Element>(x: T) -> bool {
    x != x
}

const LEAF: usize = 1024;
const LANES: usize = 64;
/// Lanes the accumulators fold down to before a short tail joins them.
const TAIL_LANES: usize = 16;
/// Levels of the pairwise tree: enough for any slice (at most 2^61
/// elements of 4 bytes or more, so fewer than 2^52 leaves).
const LEVELS: usize = 52;

/// `acc[j] += x[j]` for the whole `LANES`-chunks of `x`, chunk by chunk.
#[inline(always)]
fn add_chunks<T: Num>(acc: &mut [T; LANES], x: &[T]) {
    for c in x.chunks_exact(LANES) {
        for j in 0..LANES {
            acc[j] = acc[j].plus(c[j]);
        }
    }
}

#[inline(always)]
fn add_lanes<T: Num>(acc: &mut [T; LANES], x: &[T; LANES]) {
    for j in 0..LANES {
        acc[j] = acc[j].plus(x[j]);
    }
}

/// Folds the first `live` lanes of `acc` in halves with `f` down to
/// `down_to` lanes (a tree, so it vectorises).
#[inline(always)]
fn fold_halves<T: Copy>(acc: &mut [T; LANES], live: usize, down_to: usize, f: impl Fn(T, T) -> T) {
    let mut w = live / 2;
    while w >= down_to {
        for j in 0..w {
            acc[j] = f(acc[j], acc[j + w]);
        }
        w /= 2;
    }
}

/// The sum of the lanes of `acc` and the elements of `tail` (fewer than
/// `LANES`): the lanes fold to `TAIL_LANES`, the tail's whole chunks of that
/// width add in, then the rest one by one.
#[inline(always)]
fn finish_sum<T: Num>(mut acc: [T; LANES], tail: &[T]) -> T {
    fold_halves(&mut acc, LANES, TAIL_LANES, T::plus);
    let chunks = tail.chunks_exact(TAIL_LANES);
    let rem = chunks.remainder();
    for c in chunks {
        for j in 0..TAIL_LANES {
            acc[j] = acc[j].plus(c[j]);
        }
    }
    fold_halves(&mut acc, TAIL_LANES, 1, T::plus);
    let mut s = acc[0];
    for &v in rem {
        s = s.plus(v);
    }
    s
}

/// Pairwise sum: each leaf of `LEAF` elements is summed into `LANES`
/// accumulators, and the leaves' lane sums combine as a balanced binary
/// tree (a binary counter of partial sums, so no recursion and the whole
/// loop inlines into the SIMD-compiled kernel). Lanes are added together
/// only once, at the end: no horizontal sum per leaf. Error grows as
/// O(log n).
#[inline(always)]
fn pairwise<T: Num>(x: &[T]) -> T {
    if x.len() < TAIL_LANES {
        let mut s = T::ZERO;
        for &v in x {
            s = s.plus(v);
        }
        return s;
    }
    let leaves = x.chunks_exact(LEAF);
    let last = leaves.remainder();
    let mut acc = [T::ZERO; LANES];
    if x.len() >= LEAF {
        // stack[k] holds the lane sums of 2^k leaves when bit k of `count`
        // is set.
        let mut stack = [const { std::mem::MaybeUninit::<[T; LANES]>::uninit() }; LEVELS];
        let mut count = 0usize;
        for leaf in leaves {
            let mut s = [T::ZERO; LANES];
            add_chunks(&mut s, leaf);
            let mut k = 0;
            while count & (1 << k) != 0 {
                // SAFETY: bit k of `count` is set, so stack[k] was written.
                add_lanes(&mut s, unsafe { stack[k].assume_init_ref() });
                k += 1;
            }
            stack[k].write(s);
            count += 1;
        }
        let mut k = 0;
        while count >> k != 0 {
            if count & (1 << k) != 0 {
                // SAFETY: as above.
                add_lanes(&mut acc, unsafe { stack[k].assume_init_ref() });
            }
            k += 1;
        }
    }
    let whole = last.len() / LANES * LANES;
    let mut part = [T::ZERO; LANES];
    add_chunks(&mut part, &last[..whole]);
    add_lanes(&mut acc, &part);
    finish_sum(acc, &last[whole..])
}

/// `a` when it is further out than `v` (larger for `MAX`, smaller
/// otherwise) or NaN, else `v`. So a NaN `v` is taken (`a > NaN` is false)
/// and then kept: NaN propagates. One compare, one NaN test and one
/// select, which vectorise.
#[inline(always)]
fn keep<T: Element, const MAX: bool>(a: T, v: T) -> T {
    let further = if MAX { a > v } else { a < v };
    if further || is_nan(a) {
        a
    } else {
        v
    }
}

/// Max or min of a non-empty slice, NaN-propagating, in `LANES`
/// accumulators folded as a tree at the end.
#[inline(always)]
fn extreme<T: Element, const MAX: bool>(x: &[T]) -> T {
    let first = x[0];
    if x.len() < TAIL_LANES {
        let mut m = first;
        for &v in &x[1..] {
            m = keep::<T, MAX>(m, v);
        }
        return m;
    }
    let mut acc = [first; LANES];
    let chunks = x.chunks_exact(LANES);
    let rem = chunks.remainder();
    for c in chunks {
        for j in 0..LANES {
            acc[j] = keep::<T, MAX>(acc[j], c[j]);
        }
    }
    fold_halves(&mut acc, LANES, TAIL_LANES, keep::<T, MAX>);
    let tail = rem.chunks_exact(TAIL_LANES);
    let rest = tail.remainder();
    for c in tail {
        for j in 0..TAIL_LANES {
            acc[j] = keep::<T, MAX>(acc[j], c[j]);
        }
    }
    fold_halves(&mut acc, TAIL_LANES, 1, keep::<T, MAX>);
    let mut m = acc[0];
    for &v in rest {
        m = keep::<T, MAX>(m, v);
    }
    m
}

/// Multiversioned row kernels for one float type: sums and max/min of
/// each `len`-element row of `x` into `out`.
macro_rules! float_row_kernels {
    ($t:ty, $sum:ident, $extreme:ident) => {
        crate::multiversion! {
            /// `out[i]` = the pairwise sum of row `i` of `x` (rows of
            /// `len` > 0 elements), vectorised.
            pub fn $sum(x: &[$t], len: usize, out: &mut [$t]) {
                for (o, row) in out.iter_mut().zip(x.chunks_exact(len)) {
                    *o = pairwise(row);
                }
            }
        }
        crate::multiversion! {
            /// `out[i]` = the max (`is_max`) or min of row `i` of `x` (rows
            /// of `len` > 0 elements), NaN-propagating, vectorised.
            pub fn $extreme(x: &[$t], len: usize, is_max: bool, out: &mut [$t]) {
                // Plain loops: `for_each` may stay out of line, compiled
                // without the SIMD features.
                let rows = out.iter_mut().zip(x.chunks_exact(len));
                if is_max {
                    for (o, row) in rows {
                        *o = extreme::<$t, true>(row);
                    }
                } else {
                    for (o, row) in rows {
                        *o = extreme::<$t, false>(row);
                    }
                }
            }
        }
    };
}
float_row_kernels!(f32, sum_rows_f32, extreme_rows_f32);
float_row_kernels!(f64, sum_rows_f64, extreme_rows_f64);

crate::multiversion! {
    /// `acc[i] += x[i]` for float32, vectorised.
    pub fn add_f32(acc: &mut [f32], x: &[f32]) {
        for (a, &v) in acc.iter_mut().zip(x) {
            *a += v;
        }
    }
}

crate::multiversion! {
    /// `acc[i] = max or min(acc[i], x[i])` (NaN-propagating) for float32.
    pub fn maxmin_rows_f32(acc: &mut [f32], x: &[f32], is_max: bool) {
        if is_max {
            for (a, &v) in acc.iter_mut().zip(x) {
                *a = pick::<f32, true>(*a, v);
            }
        } else {
            for (a, &v) in acc.iter_mut().zip(x) {
                *a = pick::<f32, false>(*a, v);
            }
        }
    }
}

/// The larger (`MAX`) or smaller of `a` and `b`; NaN wins.
#[inline(always)]
fn pick<T: Element, const MAX: bool>(a: T, b: T) -> T {
    let better = if MAX { b > a } else { b < a };
    if better || is_nan(b) {
        b
    } else {
        a
    }
}

/// The associative reductions with a column kernel and a parallel full reduction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Assoc {
    Sum,
    Prod,
    Max,
    Min,
}

impl Assoc {
    /// Folds a slice (non-empty for Max/Min).
    fn fold<T: Num>(self, x: &[T]) -> T {
        let mut v = [self.identity()];
        if !x.is_empty() {
            self.fold_rows(x, x.len(), &mut v);
        }
        v[0]
    }

    /// The value of an empty sum or product (Max/Min have none: 0).
    fn identity<T: Num>(self) -> T {
        if self == Assoc::Prod {
            T::ONE
        } else {
            T::ZERO
        }
    }

    /// Folds each `len`-element row of `x` into its element of `out`, with
    /// one SIMD dispatch for all the rows. Rows are non-empty for Max/Min.
    fn fold_rows<T: Num>(self, x: &[T], len: usize, out: &mut [T]) {
        if len == 0 {
            out.fill(self.identity());
            return;
        }
        let is_max = self == Assoc::Max;
        match (self, T::DTYPE) {
            (Assoc::Sum, DType::F32) => {
                sum_rows_f32(bytemuck::cast_slice(x), len, bytemuck::cast_slice_mut(out))
            }
            (Assoc::Sum, DType::F64) => {
                sum_rows_f64(bytemuck::cast_slice(x), len, bytemuck::cast_slice_mut(out))
            }
            (Assoc::Max | Assoc::Min, DType::F32) => extreme_rows_f32(
                bytemuck::cast_slice(x),
                len,
                is_max,
                bytemuck::cast_slice_mut(out),
            ),
            (Assoc::Max | Assoc::Min, DType::F64) => extreme_rows_f64(
                bytemuck::cast_slice(x),
                len,
                is_max,
                bytemuck::cast_slice_mut(out),
            ),
            _ => {
                for (o, row) in out.iter_mut().zip(x.chunks_exact(len)) {
                    *o = match self {
                        Assoc::Sum => pairwise(row),
                        Assoc::Prod => row.iter().fold(T::ONE, |a, &b| a.times(b)),
                        Assoc::Max => extreme::<T, true>(row),
                        Assoc::Min => extreme::<T, false>(row),
                    };
                }
            }
        }
    }

    /// `acc[i] = acc[i] op x[i]`.
    fn rows<T: Num>(self, acc: &mut [T], x: &[T]) {
        if T::DTYPE == DType::F32 {
            let (a, v): (&mut [f32], &[f32]) =
                (bytemuck::cast_slice_mut(acc), bytemuck::cast_slice(x));
            match self {
                Assoc::Sum => return add_f32(a, v),
                Assoc::Max | Assoc::Min => return maxmin_rows_f32(a, v, self == Assoc::Max),
                Assoc::Prod => {}
            }
        }
        for (a, &v) in acc.iter_mut().zip(x) {
            *a = match self {
                Assoc::Sum => a.plus(v),
                Assoc::Prod => a.times(v),
                Assoc::Max => pick::<T, true>(*a, v),
                Assoc::Min => pick::<T, false>(*a, v),
            };
        }
    }
}

/// Max (`is_max`) or min of a non-empty slice of any element type.
fn fold_extreme<T: Element>(is_max: bool, x: &[T]) -> T {
    let mut out = [x[0]];
    match T::DTYPE {
        DType::F32 => extreme_rows_f32(
            bytemuck::cast_slice(x),
            x.len(),
            is_max,
            bytemuck::cast_slice_mut(&mut out),
        ),
        DType::F64 => extreme_rows_f64(
            bytemuck::cast_slice(x),
            x.len(),
            is_max,
            bytemuck::cast_slice_mut(&mut out),
        ),
        _ if is_max => out[0] = extreme::<T, true>(x),
        _ => out[0] = extreme::<T, false>(x),
    }
    out[0]
}

/// Reduces `dims` of `t` (already of the accumulation dtype `T`) with `op`.
fn assoc_reduce<T: Num>(op: Assoc, t: &Tensor, dims: &[usize], keepdim: bool) -> Result<Tensor> {
    let shape = reduced_shape(t.shape(), dims, keepdim);
    let out = Tensor::empty(&shape, T::DTYPE)?;
    let n = t.numel();
    let o = Out::<T>::new(&out);
    let (t, dims) = &memory_order(t, dims)?.unwrap_or_else(|| (t.clone(), dims.to_vec()));
    // Full reduction of a dense tensor.
    if dims.len() == t.ndim() && n > 0 {
        if let Some(p) = crate::cpu::kernels::dense_span::<T>(t) {
            let p = p as usize;
            let v = fold_chunks(op, n, |s, e| {
                // SAFETY: the dense span of `t` covers `n` elements.
                op.fold(unsafe { std::slice::from_raw_parts((p as *const T).add(s), e - s) })
            });
            // SAFETY: `out` has one element.
            unsafe { o.set(0, v) };
            return Ok(out);
        }
    }
    // Reducing the trailing dims of a contiguous tensor: each thread folds
    // a block of whole rows in one kernel call (one SIMD dispatch, no
    // per-row index arithmetic).
    if let Some(len) = trailing_len(t, dims) {
        let rows = out.numel();
        let p = t.data_ptr::<T>() as usize;
        for_ranges(rows, len.max(1), 1, |r0, r1| {
            // SAFETY: the input is contiguous with shape (rows, len); this
            // thread owns output elements r0..r1 and reads their rows.
            unsafe {
                let x = std::slice::from_raw_parts((p as *const T).add(r0 * len), (r1 - r0) * len);
                op.fold_rows(x, len, o.slice(r0, r1 - r0));
            }
        });
        return Ok(out);
    }
    // Reducing a block of leading dims of a contiguous tensor: accumulate
    // whole rows (vectorised over the kept inner elements).
    if let Some((a, r, w)) = column_shape(t, dims) {
        if w >= LANES && r > 0 {
            let p = t.data_ptr::<T>() as usize;
            for blk in 0..a {
                for_ranges(w, r, LANES, |c0, c1| {
                    // SAFETY: the input is contiguous with shape (a, r, w);
                    // this thread owns output columns c0..c1 of block `blk`.
                    unsafe {
                        let row = |k: usize| {
                            std::slice::from_raw_parts(
                                (p as *const T).add((blk * r + k) * w + c0),
                                c1 - c0,
                            )
                        };
                        let acc = o.slice(blk * w + c0, c1 - c0);
                        column_fold(op, acc, r, row);
                    }
                });
            }
            return Ok(out);
        }
    }
    for_each_row::<T>(t, dims, 1, |i, row| {
        // SAFETY: each output element is written once, by one thread.
        unsafe { o.set(i, op.fold(row)) }
    })?;
    Ok(out)
}

/// `op` over `0..n` folded in parallel chunks by `fold(start, end)`, the
/// chunk values combined in order.
fn fold_chunks<T: Num>(op: Assoc, n: usize, fold: impl Fn(usize, usize) -> T + Sync) -> T {
    let parts: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::new());
    for_ranges(n, 1, LEAF, |s, e| {
        let v = fold(s, e);
        if let Ok(mut g) = parts.lock() {
            g.push((s, v));
        }
    });
    let mut parts = parts.into_inner().unwrap_or_default();
    parts.sort_by_key(|&(s, _)| s);
    let vals: Vec<T> = parts.into_iter().map(|(_, v)| v).collect();
    match op {
        Assoc::Sum => pairwise(&vals),
        _ => op.fold(&vals),
    }
}

/// Sums and products of a contiguous float16/bfloat16 tensor over all its
/// dims or its trailing dims, in float32: the input is widened an L1 block
/// at a time for the f32 kernels instead of cast whole first (which wrote
/// and reread an f32 copy, 3x PyTorch's time). None for other layouts.
fn staged_half<H: Half>(
    op: Assoc,
    t: &Tensor,
    dims: &[usize],
    keepdim: bool,
) -> Result<Option<Tensor>> {
    let n = t.numel();
    let len = if dims.len() == t.ndim() && t.is_contiguous() {
        n
    } else {
        trailing_len(t, dims).unwrap_or(0)
    };
    if n == 0 || len == 0 {
        return Ok(None);
    }
    let out = Tensor::empty(&reduced_shape(t.shape(), dims, keepdim), DType::F32)?;
    let (p, o) = (t.data_ptr::<H>() as usize, Out::<f32>::new(&out));
    // SAFETY (both closures): `t` is contiguous with `n` elements.
    let span =
        |s: usize, e: usize| unsafe { std::slice::from_raw_parts((p as *const H).add(s), e - s) };
    if len == n {
        // SAFETY: `out` has one element.
        unsafe { o.set(0, fold_chunks(op, n, |s, e| fold_widened(op, span(s, e)))) };
        return Ok(Some(out));
    }
    for_ranges(n / len, len, 1, |r0, r1| {
        if len > BLOCK {
            for r in r0..r1 {
                // SAFETY: this thread alone writes output rows r0..r1.
                unsafe { o.set(r, fold_widened(op, span(r * len, (r + 1) * len))) };
            }
            return;
        }
        // Whole rows, as many as fill a block.
        let mut buf = [0f32; BLOCK];
        let per = BLOCK / len;
        let mut r = r0;
        while r < r1 {
            let k = per.min(r1 - r);
            let wide = &mut buf[..k * len];
            H::widen(span(r * len, (r + k) * len), wide);
            // SAFETY: as above.
            op.fold_rows(wide, len, unsafe { o.slice(r, k) });
            r += k;
        }
    });
    Ok(Some(out))
}

/// `op` over half values, widened a block at a time.
fn fold_widened<H: Half>(op: Assoc, x: &[H]) -> f32 {
    let mut buf = [0f32; BLOCK];
    let mut parts = Vec::with_capacity(x.len().div_ceil(BLOCK));
    for c in x.chunks(BLOCK) {
        let wide = &mut buf[..c.len()];
        H::widen(c, wide);
        parts.push(op.fold(wide));
    }
    match op {
        Assoc::Sum => pairwise(&parts),
        _ => op.fold(&parts),
    }
}

/// A dense but permuted `t` (a transpose, a channels-last tensor) viewed
/// in memory order, with `dims` renumbered, when that keeps the kept dims
/// in order (so the output is written in the same order): the row and
/// column kernels then see contiguous memory instead of gathering.
fn memory_order(t: &Tensor, dims: &[usize]) -> Result<Option<(Tensor, Vec<usize>)>> {
    if t.is_contiguous() || !is_dense(t) {
        return Ok(None);
    }
    let mut perm: Vec<usize> = (0..t.ndim()).collect();
    perm.sort_by_key(|&d| std::cmp::Reverse(t.strides()[d]));
    let kept: Vec<usize> = perm.iter().copied().filter(|d| !dims.contains(d)).collect();
    if !kept.windows(2).all(|w| w[0] < w[1]) {
        return Ok(None);
    }
    let p: Vec<i64> = perm.iter().map(|&d| d as i64).collect();
    let v = crate::ops::shape::permute(t, &p)?;
    if !v.is_contiguous() {
        return Ok(None);
    }
    let mut nd: Vec<usize> = (0..perm.len())
        .filter(|&i| dims.contains(&perm[i]))
        .collect();
    nd.sort_unstable();
    Ok(Some((v, nd)))
}

/// Whether `t` covers a dense block of memory in some dim order.
fn is_dense(t: &Tensor) -> bool {
    let l = t.layout();
    l.strides.as_slice() == l.preserved_strides().as_slice()
}

/// The number of elements reduced into each output element when `t` is
/// contiguous and `dims` are its last dims (each output element then
/// reduces one contiguous row).
fn trailing_len(t: &Tensor, dims: &[usize]) -> Option<usize> {
    let first = *dims.first()?;
    if !t.is_contiguous() || dims.len() != t.ndim() - first || dims.last() != Some(&(t.ndim() - 1))
    {
        return None;
    }
    Some(t.shape()[first..].iter().product())
}

/// `(a, r, w)` when `t` is contiguous and `dims` are consecutive dims with
/// kept dims after them: `t` is then an (a, r, w) block reducing over `r`.
fn column_shape(t: &Tensor, dims: &[usize]) -> Option<(usize, usize, usize)> {
    let (&first, &last) = (dims.first()?, dims.last()?);
    if !t.is_contiguous() || last + 1 - first != dims.len() || last + 1 >= t.ndim() {
        return None;
    }
    let s = t.shape();
    Some((
        s[..first].iter().product(),
        s[first..=last].iter().product(),
        s[last + 1..].iter().product(),
    ))
}

/// Folds rows `row(0..r)` into `acc`. Sums are pairwise over blocks of
/// rows, so the column sums are as accurate as the row sums.
fn column_fold<'a, T: Num>(op: Assoc, acc: &mut [T], r: usize, row: impl Fn(usize) -> &'a [T]) {
    const BLOCK: usize = 64;
    acc.copy_from_slice(row(0));
    if op != Assoc::Sum || r <= BLOCK {
        for k in 1..r {
            op.rows(acc, row(k));
        }
        return;
    }
    // Binary counter over blocks, as in `pairwise`.
    let w = acc.len();
    let mut stack: Vec<Vec<T>> = Vec::new();
    let mut count = 0usize;
    let mut blk = vec![T::ZERO; w];
    for b in (0..r).step_by(BLOCK) {
        blk.copy_from_slice(row(b));
        for k in b + 1..(b + BLOCK).min(r) {
            op.rows(&mut blk, row(k));
        }
        let mut k = 0;
        while count & (1 << k) != 0 {
            let lower = std::mem::take(&mut stack[k]);
            op.rows(&mut blk, &lower);
            stack[k] = lower;
            k += 1;
        }
        if stack.len() <= k {
            stack.push(vec![T::ZERO; w]);
        }
        stack[k].copy_from_slice(&blk);
        count += 1;
    }
    let mut first = true;
    for (k, s) in stack.iter().enumerate() {
        if count & (1 << k) != 0 {
            if first {
                acc.copy_from_slice(s);
                first = false;
            } else {
                op.rows(acc, s);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// sum, prod, mean, nansum, nanmean

/// The dtype a sum or product of `t` computes in, and the result dtype.
fn sum_dtypes(t: &Tensor, dtype: Option<DType>) -> (DType, DType) {
    let out = dtype.unwrap_or(if t.dtype().is_floating_point() {
        t.dtype()
    } else {
        DType::I64
    });
    let acc = match out {
        DType::F64 => DType::F64,
        d if d.is_floating_point() => DType::F32,
        _ => DType::I64,
    };
    (acc, out)
}

fn assoc_typed(op: Assoc, t: &Tensor, dims: &[usize], keepdim: bool, acc: DType) -> Result<Tensor> {
    let staged = match (acc, t.dtype()) {
        (DType::F32, DType::F16) => staged_half::<half::f16>(op, t, dims, keepdim)?,
        (DType::F32, DType::BF16) => staged_half::<half::bf16>(op, t, dims, keepdim)?,
        _ => None,
    };
    if let Some(r) = staged {
        return Ok(r);
    }
    let x = copy::to_dtype(t, acc, false)?;
    match acc {
        DType::F32 => assoc_reduce::<f32>(op, &x, dims, keepdim),
        DType::F64 => assoc_reduce::<f64>(op, &x, dims, keepdim),
        _ => assoc_reduce::<i64>(op, &x, dims, keepdim),
    }
}

/// `sum(t, dim, keepdim, dtype)`: bool and integers sum in int64.
pub fn sum(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<DType>,
) -> Result<Tensor> {
    let name = if dims.is_none() {
        "SumBackward0"
    } else {
        "SumBackward1"
    };
    let d = reduce_dims(t, dims)?;
    let (acc, out) = sum_dtypes(t, dtype);
    let rec = float_rec(name, t, out.is_floating_point());
    let r = copy::to_dtype(&assoc_typed(Assoc::Sum, t, &d, keepdim, acc)?, out, false)?;
    record_reduction(rec, t, &r, d, keepdim, (false, false), |gu, _, _, _| {
        Ok(gu.clone())
    })?;
    Ok(r)
}

/// `prod(t, dim, keepdim, dtype)`.
pub fn prod(t: &Tensor, dim: Option<i64>, keepdim: bool, dtype: Option<DType>) -> Result<Tensor> {
    let d = dim.map(|d| [d]);
    let dims = reduce_dims(t, d.as_ref().map(|d| &d[..]))?;
    let (acc, out) = sum_dtypes(t, dtype);
    let name = if dim.is_none() {
        "ProdBackward0"
    } else {
        "ProdBackward1"
    };
    let rec = float_rec(name, t, out.is_floating_point());
    let r = copy::to_dtype(
        &assoc_typed(Assoc::Prod, t, &dims, keepdim, acc)?,
        out,
        false,
    )?;
    if let Some(mut rec) = rec {
        let ix = rec.save(t)?;
        rec.finish(&[&r], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            let x = copy::to_dtype(&ctx.saved(ix)?, g.dtype(), false)?;
            Ok(vec![Some(prod_backward(&g, &x, dim, keepdim)?)])
        });
    }
    Ok(r)
}

/// The gradient of `prod(x, dim)` given the output gradient `g`, exact
/// with zeros in `x` (PyTorch's `prod_safe_zeros_backward`): each element's
/// derivative is the product of the others, formed from exclusive running
/// products from both ends, so no division by `x` happens.
fn prod_backward(g: &Tensor, x: &Tensor, dim: Option<i64>, keepdim: bool) -> Result<Tensor> {
    if x.ndim() == 0 {
        return shape::reshape(g, &[]);
    }
    let sizes: Vec<i64> = x.shape().iter().map(|&s| s as i64).collect();
    let (xr, gr, d) = match dim {
        None => (shape::reshape(x, &[-1])?, shape::reshape(g, &[1])?, 0),
        Some(d) => {
            let d = wrap_dim(d, x.ndim())? as i64;
            let g = if keepdim {
                g.clone()
            } else {
                shape::unsqueeze(g, d)?
            };
            (x.clone(), g, d)
        }
    };
    let n = xr.shape()[d as usize] as i64;
    if n == 0 {
        return arith::zeros_like(x);
    }
    let mut ones_shape = xr.shape().to_vec();
    ones_shape[d as usize] = 1;
    let ones = crate::ops::creation::full(&ones_shape, crate::tensor::Scalar::Int(1), x.dtype())?;
    let before = crate::ops::join::cat(&[ones.clone(), shape::narrow(&xr, d, 0, n - 1)?], d)?;
    let before = cumulative(&before, d, None, false)?;
    let tail = crate::ops::join::flip(&shape::narrow(&xr, d, 1, n - 1)?, &[d])?;
    let after = cumulative(&crate::ops::join::cat(&[ones, tail], d)?, d, None, false)?;
    let after = crate::ops::join::flip(&after, &[d])?;
    let r = arith::mul(&gr, &arith::mul(&before, &after)?)?;
    shape::reshape(&r, &sizes)
}

/// Number of elements reduced into each output element.
fn reduced_count(t: &Tensor, dims: &[usize]) -> usize {
    dims.iter().map(|&d| t.shape()[d]).product()
}

/// The float dtype `mean`-like ops compute in, or PyTorch's error.
fn mean_dtype(name: &str, t: &Tensor, dtype: Option<DType>) -> Result<DType> {
    let d = dtype.unwrap_or(t.dtype());
    if !d.is_floating_point() {
        return Err(Error::Runtime(format!(
            "{name}(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: {}",
            d.scalar_name()
        )));
    }
    Ok(d)
}

/// Divides every element of the float tensor `s` by `n` (in place).
fn scale(s: &Tensor, n: f64) -> Tensor {
    dispatch!(s.dtype(), T => {
        let p = s.data_ptr::<T>();
        for i in 0..s.numel() {
            // SAFETY: `s` is a fresh contiguous tensor.
            unsafe { *p.add(i) = T::from_f64((*p.add(i)).to_f64() / n) };
        }
    });
    s.clone()
}

/// `mean(t, dim, keepdim, dtype)`; the mean of nothing is NaN.
pub fn mean(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<DType>,
) -> Result<Tensor> {
    let out = mean_dtype("mean", t, dtype)?;
    let name = if dims.is_none() {
        "MeanBackward0"
    } else {
        "MeanBackward1"
    };
    let rec = float_rec(name, t, true);
    let d = reduce_dims(t, dims)?;
    let s = sum(
        t,
        dims,
        keepdim,
        Some(if out == DType::F64 { out } else { DType::F32 }),
    )?;
    let n = reduced_count(t, &d) as f64;
    let s = scale(&s, n);
    let r = copy::to_dtype(&s, out, false)?;
    record_reduction(
        rec,
        t,
        &r,
        d,
        keepdim,
        (false, false),
        move |gu, _, _, _| arith::scale(gu, 1.0 / n),
    )?;
    Ok(r)
}

/// Float tensors with NaN replaced by 0 (for `nansum`/`nanmean`).
fn nan_to_zero(t: &Tensor) -> Result<Tensor> {
    let out = Tensor::empty(t.shape(), t.dtype())?;
    dispatch!(t.dtype(), T => crate::cpu::kernels::map1::<T, T>(t, t.strides(), &out, |x| {
        if is_nan(x) { T::from_f64(0.0) } else { x }
    }));
    Ok(out)
}

/// `nansum`: NaNs count as zero.
pub fn nansum(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<DType>,
) -> Result<Tensor> {
    if !t.dtype().is_floating_point() {
        return sum(t, dims, keepdim, dtype);
    }
    let rec = float_rec("NansumBackward0", t, true);
    let r = sum(&nan_to_zero(t)?, dims, keepdim, dtype)?;
    let d = reduce_dims(t, dims)?;
    record_reduction(rec, t, &r, d, keepdim, (true, false), |gu, x, _, _| {
        let x = x.ok_or_else(|| Error::Runtime("nansum backward lost its input".into()))?;
        arith::where_s(&not_nan(&x)?, gu, 0.0)
    })?;
    Ok(r)
}

/// A bool tensor: where `x` is not NaN.
fn not_nan(x: &Tensor) -> Result<Tensor> {
    arith::cmp(crate::ops::binary::BinaryOp::Eq, x, x)
}

/// `nanmean`: the mean of the non-NaN elements.
pub fn nanmean(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<DType>,
) -> Result<Tensor> {
    if !t.dtype().is_floating_point() {
        return Err(Error::Runtime(format!(
            "nanmean(): expected input to have floating point or complex dtype but got {}",
            t.dtype().scalar_name()
        )));
    }
    let out = dtype.unwrap_or(t.dtype());
    let rec = float_rec("NanmeanBackward0", t, true);
    let s = nansum(t, dims, keepdim, Some(DType::F64))?;
    let d = reduce_dims(t, dims)?;
    let counts = dispatch!(t.dtype(), T => reduce_map::<T, f64>(t, &d, keepdim, 1, |row| {
        row.iter().filter(|&&x| !is_nan(x)).count() as f64
    }))?;
    let (ps, pc) = (s.data_ptr::<f64>(), counts.data_ptr::<f64>());
    for i in 0..s.numel() {
        // SAFETY: both are fresh contiguous tensors of the same shape.
        unsafe { *ps.add(i) /= *pc.add(i) };
    }
    let r = copy::to_dtype(&s, out, false)?;
    // The mean of the non-NaN elements: each gets 1/count of the gradient.
    record_reduction(rec, t, &r, d, keepdim, (true, false), |gu, x, _, dims| {
        let x = x.ok_or_else(|| Error::Runtime("nanmean backward lost its input".into()))?;
        let valid = copy::to_dtype(&not_nan(&x)?, gu.dtype(), false)?;
        let dd: Vec<i64> = dims.iter().map(|&k| k as i64).collect();
        let count = sum(&valid, Some(&dd), true, None)?;
        arith::div(&arith::mul(gu, &valid)?, &count)
    })?;
    Ok(r)
}

// ---------------------------------------------------------------------------
// max, min, amax, amin, argmax, argmin, aminmax

fn empty_full_reduction(name: &str) -> Error {
    Error::Runtime(format!(
        "{name}(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the 'dim' argument."
    ))
}

/// Fails, as ATen's `zero_numel_check_dims`, when a reduced dim of an op
/// without identity is empty.
fn check_nonempty_dims(name: &str, t: &Tensor, dims: &[usize]) -> Result<()> {
    if t.ndim() == 0 && t.numel() == 0 {
        return Err(empty_full_reduction(name));
    }
    if let Some(d) = dims.iter().find(|&&d| t.shape()[d] == 0) {
        return Err(Error::Index(format!(
            "{name}(): Expected reduction dim {d} to have non-zero size."
        )));
    }
    Ok(())
}

fn extreme_reduce(
    name: &str,
    is_max: bool,
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
) -> Result<Tensor> {
    let d = reduce_dims(t, dims)?;
    if t.numel() == 0 && d.len() == t.ndim() && dims.is_none_or(|x| x.is_empty()) {
        return Err(empty_full_reduction(name));
    }
    check_nonempty_dims(name, t, &d)?;
    let op = if is_max { Assoc::Max } else { Assoc::Min };
    match t.dtype() {
        DType::F32 => assoc_reduce::<f32>(op, t, &d, keepdim),
        DType::F64 => assoc_reduce::<f64>(op, t, &d, keepdim),
        DType::I64 => assoc_reduce::<i64>(op, t, &d, keepdim),
        dt => {
            dispatch!(dt, T => reduce_map::<T, T>(t, &d, keepdim, 1, |row| fold_extreme(is_max, row)))
        }
    }
}

/// `amax`/`amin` and full `max`/`min`, recorded: ties share the gradient.
fn extreme_recorded(
    node: &'static str,
    name: &str,
    is_max: bool,
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
) -> Result<Tensor> {
    let rec = float_rec(node, t, true);
    let r = extreme_reduce(name, is_max, t, dims, keepdim)?;
    let d = reduce_dims(t, dims)?;
    record_reduction(
        rec,
        t,
        &r,
        d,
        keepdim,
        (true, true),
        |gu, x, y, dims| match (x, y) {
            (Some(x), Some(y)) => evenly(gu, &x, &y, dims),
            _ => Err(Error::Runtime(
                "amax backward lost its saved tensors".into(),
            )),
        },
    )?;
    Ok(r)
}

/// `amax(t, dim, keepdim)`.
pub fn amax(t: &Tensor, dims: Option<&[i64]>, keepdim: bool) -> Result<Tensor> {
    extreme_recorded("AmaxBackward0", "amax", true, t, dims, keepdim)
}

/// `amin(t, dim, keepdim)`.
pub fn amin(t: &Tensor, dims: Option<&[i64]>, keepdim: bool) -> Result<Tensor> {
    extreme_recorded("AminBackward0", "amin", false, t, dims, keepdim)
}

/// `t.max()` / `t.min()` without a dim: a 0-d tensor.
pub fn max_all(t: &Tensor, is_max: bool) -> Result<Tensor> {
    let name = if is_max { "max" } else { "min" };
    if t.numel() == 0 {
        return Err(empty_full_reduction(name));
    }
    let node = if is_max {
        "MaxBackward1"
    } else {
        "MinBackward1"
    };
    extreme_recorded(node, name, is_max, t, None, false)
}

/// Index of the first max (`is_max`) or min of a non-empty row; NaN wins.
fn arg_extreme<T: Element>(is_max: bool, row: &[T]) -> (T, i64) {
    let (mut best, mut idx) = (row[0], 0usize);
    if is_nan(best) {
        return (best, 0);
    }
    for (i, &v) in row.iter().enumerate().skip(1) {
        if is_nan(v) {
            return (v, i as i64);
        }
        if (is_max && v > best) || (!is_max && v < best) {
            best = v;
            idx = i;
        }
    }
    (best, idx as i64)
}

/// `t.max(dim)` / `t.min(dim)`: values and indices.
pub fn max_dim(t: &Tensor, dim: i64, keepdim: bool, is_max: bool) -> Result<(Tensor, Tensor)> {
    let name = if is_max { "max" } else { "min" };
    let d = reduce_dims(t, Some(&[dim]))?;
    check_nonempty_dims(name, t, &d)?;
    let node = if is_max {
        "MaxBackward0"
    } else {
        "MinBackward0"
    };
    let rec = float_rec(node, t, true);
    let (v, i) = dispatch!(t.dtype(), T => reduce_pair::<T, T>(t, &d, keepdim, |row| arg_extreme(is_max, row)))?;
    if let Some(rec) = rec {
        let (shape_, idx) = (t.shape().to_vec(), i.clone());
        let dd = d.first().copied().unwrap_or(0) as i64;
        rec.finish(&[&v], move |_ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            Ok(vec![Some(select_backward(&g, &idx, &shape_, dd, keepdim)?)])
        });
    }
    Ok((v, i))
}

/// The gradient of an op that picked one element per row along `dim`
/// (`max(dim)`, `median(dim)`, `kthvalue`): `g` scattered to `indices`.
pub fn select_backward(
    g: &Tensor,
    indices: &Tensor,
    shape_: &[usize],
    dim: i64,
    keepdim: bool,
) -> Result<Tensor> {
    let (g, idx) = if keepdim || shape_.is_empty() {
        (g.clone(), indices.clone())
    } else {
        (shape::unsqueeze(g, dim)?, shape::unsqueeze(indices, dim)?)
    };
    let z = crate::ops::creation::full(shape_, crate::tensor::Scalar::Int(0), g.dtype())?;
    if shape_.is_empty() {
        return shape::reshape(&g, &[]);
    }
    crate::ops::gather::scatter_(
        &z,
        dim,
        &idx,
        crate::ops::gather::Source::Tensor(&g),
        crate::ops::gather::Reduce::Assign,
    )?;
    Ok(z)
}

/// `argmax`/`argmin`; `dim=None` reduces the flattened tensor.
pub fn argmax(t: &Tensor, dim: Option<i64>, keepdim: bool, is_max: bool) -> Result<Tensor> {
    let name = if is_max { "argmax" } else { "argmin" };
    let dims = match dim {
        None => {
            if t.numel() == 0 {
                return Err(empty_full_reduction(name));
            }
            (0..t.ndim()).collect()
        }
        Some(d) => {
            let d = reduce_dims(t, Some(&[d]))?;
            if d.iter().any(|&k| t.shape()[k] == 0) {
                return Err(Error::Index(format!(
                    "{name}(): Expected reduction dim {} to have non-zero size.",
                    d[0]
                )));
            }
            d
        }
    };
    dispatch!(t.dtype(), T => reduce_map::<T, i64>(t, &dims, keepdim, 2, |row| arg_extreme(is_max, row).1))
}

/// `aminmax(t, dim, keepdim)`: (min, max).
pub fn aminmax(t: &Tensor, dim: Option<i64>, keepdim: bool) -> Result<(Tensor, Tensor)> {
    if t.numel() == 0 && dim.is_none() {
        return Err(empty_full_reduction("aminmax"));
    }
    let d = dim.map(|d| [d]);
    let d = d.as_ref().map(|d| &d[..]);
    if let (Some(x), true) = (d, t.numel() == 0) {
        let w = reduce_dims(t, Some(x))?;
        if t.shape()[w[0]] == 0 {
            return Err(Error::Index(format!(
                "aminmax(): Expected reduction dim {} to have non-zero size.",
                w[0]
            )));
        }
    }
    Ok((amin(t, d, keepdim)?, amax(t, d, keepdim)?))
}

// ---------------------------------------------------------------------------
// var, std, norms, logsumexp

/// `var`/`std` (and their `_mean` forms) on rows: two passes in f64.
pub fn var_mean(
    t: &Tensor,
    dims: Option<&[i64]>,
    correction: f64,
    keepdim: bool,
    take_sqrt: bool,
) -> Result<(Tensor, Tensor)> {
    if !t.dtype().is_floating_point() {
        return Err(Error::Runtime(
            "std and var only support floating point and complex dtypes".into(),
        ));
    }
    let d = reduce_dims(t, dims)?;
    let shape = reduced_shape(t.shape(), &d, keepdim);
    let (v, m) = (
        Tensor::empty(&shape, DType::F64)?,
        Tensor::empty(&shape, DType::F64)?,
    );
    let (ov, om) = (Out::<f64>::new(&v), Out::<f64>::new(&m));
    dispatch!(t.dtype(), T => for_each_row::<T>(t, &d, 4, |i, row| {
        let n = row.len() as f64;
        let mean = row.iter().map(|x| x.to_f64()).sum::<f64>() / n;
        let ss: f64 = row.iter().map(|x| (x.to_f64() - mean).powi(2)).sum();
        let var = ss / (n - correction).max(0.0);
        // SAFETY: each output element is written once, by one thread.
        unsafe {
            ov.set(i, if take_sqrt { var.sqrt() } else { var });
            om.set(i, mean);
        }
    }))?;
    let (v, m) = (
        copy::to_dtype(&v, t.dtype(), false)?,
        copy::to_dtype(&m, t.dtype(), false)?,
    );
    let node = if take_sqrt {
        "StdMeanBackward0"
    } else {
        "VarMeanBackward0"
    };
    if let Some(mut rec) = float_rec(node, t, true) {
        let ix = rec.save(t)?;
        let iv = rec.save_output(&v, 0)?;
        let n = reduced_count(t, &d) as f64;
        let shape_ = t.shape().to_vec();
        rec.finish(&[&v, &m], move |ctx, grads| {
            let mut it = grads.into_iter();
            let (gv, gm) = (it.next().flatten(), it.next().flatten());
            let x = ctx.saved(ix)?;
            let mut total: Option<Tensor> = None;
            if let Some(gv) = gv {
                let mean = unreduce(
                    &mean(
                        &x,
                        Some(&d.iter().map(|&k| k as i64).collect::<Vec<_>>()),
                        true,
                        None,
                    )?,
                    &shape_,
                    &d,
                    true,
                )?;
                let centered = arith::sub(&x, &mean)?;
                let gu = unreduce(&gv, &shape_, &d, keepdim)?;
                let part = if take_sqrt {
                    let sd = unreduce(&ctx.saved(iv)?, &shape_, &d, keepdim)?;
                    arith::div(
                        &arith::mul(&gu, &centered)?,
                        &arith::scale(&sd, (n - correction).max(0.0))?,
                    )?
                } else {
                    arith::scale(
                        &arith::mul(&gu, &centered)?,
                        2.0 / (n - correction).max(0.0),
                    )?
                };
                total = Some(part);
            }
            if let Some(gm) = gm {
                let part = arith::scale(&unreduce(&gm, &shape_, &d, keepdim)?, 1.0 / n)?;
                total = Some(match total {
                    Some(t) => arith::add(&t, &part)?,
                    None => part,
                });
            }
            Ok(vec![total])
        });
    }
    Ok((v, m))
}

/// `linalg.vector_norm(t, ord, dim, keepdim, dtype)`.
pub fn vector_norm(
    t: &Tensor,
    ord: f64,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<DType>,
) -> Result<Tensor> {
    if !t.dtype().is_floating_point() {
        return Err(Error::Runtime(format!(
            "linalg.vector_norm: Expected a floating point or complex tensor as input. Got {}",
            t.dtype().scalar_name()
        )));
    }
    let d = reduce_dims(t, dims)?;
    // Max-like norms (inf, negative orders) have no identity on empty input.
    if t.numel() == 0 && (ord < 0.0 || ord == f64::INFINITY) {
        let empty_dim = d.iter().any(|&k| t.shape()[k] == 0) || d.is_empty();
        if empty_dim {
            return Err(Error::Runtime(format!(
                "linalg.vector_norm cannot compute the {ord} norm on an empty tensor because the operation does not have an identity"
            )));
        }
    }
    let out = dtype.unwrap_or(t.dtype());
    let rec = float_rec("LinalgVectorNormBackward0", t, true);
    let r = vector_norm_impl(t, ord, &d, keepdim, out)?;
    record_reduction(
        rec,
        t,
        &r,
        d,
        keepdim,
        (true, true),
        move |gu, x, y, dims| {
            let (Some(x), Some(y)) = (x, y) else {
                return Err(Error::Runtime(
                    "vector_norm backward lost its saved tensors".into(),
                ));
            };
            let x = copy::to_dtype(&x, gu.dtype(), false)?;
            use crate::ops::binary::BinaryOp::Eq;
            use crate::ops::unary::Unary::{Abs, Sign};
            if ord == 0.0 {
                arith::zeros_like(&x)
            } else if ord == 1.0 {
                arith::mul(gu, &arith::un(Sign, &x)?)
            } else if ord == 2.0 {
                // x / ||x||, and 0 where the norm is 0.
                let safe = arith::where_t(
                    &arith::cmp_s(Eq, &y, 0.0)?,
                    &arith::add_s(&arith::zeros_like(&y)?, 1.0)?,
                    &y,
                )?;
                let r = arith::mul(gu, &arith::div(&x, &safe)?)?;
                arith::where_t(&arith::cmp_s(Eq, &y, 0.0)?, &arith::zeros_like(&x)?, &r)
            } else if ord.is_infinite() {
                let ax = arith::un(Abs, &x)?;
                let share = evenly(gu, &ax, &y, dims)?;
                arith::mul(&share, &arith::un(Sign, &x)?)
            } else {
                // sign(x) |x|^(p-1) / ||x||^(p-1).
                let ax = arith::un(Abs, &x)?;
                let num = arith::mul(&arith::un(Sign, &x)?, &arith::pow_s(&ax, ord - 1.0)?)?;
                let den = arith::pow_s(&y, ord - 1.0)?;
                let r = arith::mul(gu, &arith::div(&num, &den)?)?;
                arith::where_t(&arith::cmp_s(Eq, &y, 0.0)?, &arith::zeros_like(&x)?, &r)
            }
        },
    )?;
    Ok(r)
}

fn vector_norm_impl(
    t: &Tensor,
    ord: f64,
    d: &[usize],
    keepdim: bool,
    out: DType,
) -> Result<Tensor> {
    let x = copy::to_dtype(t, out, false)?;
    let r = dispatch!(x.dtype(), T => reduce_map::<T, f64>(&x, d, keepdim, 2, |row| {
        let it = row.iter().map(|v| v.to_f64().abs());
        if ord == 2.0 {
            // Scaled to avoid overflow: max * sqrt(sum (x/max)^2).
            let m = it.clone().fold(0.0f64, f64::max);
            if m == 0.0 || !m.is_finite() { return if it.clone().any(f64::is_nan) { f64::NAN } else { m }; }
            m * it.map(|v| (v / m) * (v / m)).sum::<f64>().sqrt()
        } else if ord == 1.0 {
            it.sum()
        } else if ord == f64::INFINITY {
            it.fold(0.0, |a, b| if b.is_nan() || a.is_nan() { f64::NAN } else { a.max(b) })
        } else if ord == f64::NEG_INFINITY {
            it.fold(f64::INFINITY, |a, b| if b.is_nan() || a.is_nan() { f64::NAN } else { a.min(b) })
        } else if ord == 0.0 {
            it.filter(|&v| v != 0.0).count() as f64
        } else {
            it.map(|v| v.powf(ord)).sum::<f64>().powf(1.0 / ord)
        }
    }))?;
    copy::to_dtype(&r, out, false)
}

/// `logsumexp(t, dim, keepdim)`: integers compute in the default float dtype.
pub fn logsumexp(t: &Tensor, dims: &[i64], keepdim: bool) -> Result<Tensor> {
    let out = if t.dtype().is_floating_point() {
        t.dtype()
    } else {
        default_dtype()
    };
    let d = reduce_dims(t, Some(dims))?;
    let rec = float_rec("LogsumexpBackward0", t, true);
    let r = logsumexp_impl(t, &d, keepdim, out)?;
    record_reduction(rec, t, &r, d, keepdim, (true, true), |gu, x, y, _| {
        match (x, y) {
            (Some(x), Some(y)) => arith::mul(
                gu,
                &arith::un(crate::ops::unary::Unary::Exp, &arith::sub(&x, &y)?)?,
            ),
            _ => Err(Error::Runtime(
                "logsumexp backward lost its saved tensors".into(),
            )),
        }
    })?;
    Ok(r)
}

fn logsumexp_impl(t: &Tensor, d: &[usize], keepdim: bool, out: DType) -> Result<Tensor> {
    let r = dispatch!(t.dtype(), T => reduce_map::<T, f64>(t, d, keepdim, 8, |row| {
        let m = row.iter().map(|v| v.to_f64()).fold(f64::NEG_INFINITY, |a, b| if b.is_nan() || a.is_nan() { f64::NAN } else { a.max(b) });
        if !m.is_finite() {
            // -inf (all -inf or empty), +inf or NaN: the sum is that value.
            return if m == f64::NEG_INFINITY { m } else { row.iter().map(|v| v.to_f64()).sum() };
        }
        m + row.iter().map(|v| (v.to_f64() - m).exp()).sum::<f64>().ln()
    }))?;
    copy::to_dtype(&r, out, false)
}

// ---------------------------------------------------------------------------
// all, any, count_nonzero

/// `all`/`any`: bool results (uint8 for uint8 input, as PyTorch).
pub fn all_any(t: &Tensor, dims: Option<&[i64]>, keepdim: bool, is_all: bool) -> Result<Tensor> {
    let d = reduce_dims(t, dims)?;
    let r = dispatch!(t.dtype(), T => reduce_map::<T, crate::tensor::dtype::Bool>(t, &d, keepdim, 1, |row| {
        let zero = T::from_f64(0.0);
        let v = if is_all { row.iter().all(|&x| x != zero) } else { row.iter().any(|&x| x != zero) };
        crate::tensor::dtype::Bool(v as u8)
    }))?;
    if t.dtype() == DType::U8 {
        return copy::to_dtype(&r, DType::U8, false);
    }
    Ok(r)
}

/// `count_nonzero(t, dim)`.
pub fn count_nonzero(t: &Tensor, dims: Option<&[i64]>) -> Result<Tensor> {
    let d = reduce_dims(t, dims)?;
    dispatch!(t.dtype(), T => reduce_map::<T, i64>(t, &d, false, 1, |row| {
        let zero = T::from_f64(0.0);
        row.iter().filter(|&&x| x != zero).count() as i64
    }))
}

// ---------------------------------------------------------------------------
// Ops along one dim (scans, sorts): rows of `dim`, written to a new tensor.

/// Runs `f(i, row, out_row)` over the rows along `dim` of `t`, where the
/// output rows have `k` elements; returns the output with `dim` restored.
pub(crate) fn map_lanes<T: Element, O: Element>(
    t: &Tensor,
    dim: usize,
    k: usize,
    f: impl Fn(&[T], &mut [O]) + Sync,
) -> Result<Tensor> {
    let mut shape = reduced_shape(t.shape(), &[dim], false);
    shape.push(k);
    let out = Tensor::empty(&shape, O::DTYPE)?;
    let o = Out::<O>::new(&out);
    let dims = if t.ndim() == 0 { vec![] } else { vec![dim] };
    // SAFETY: output row `i` (k elements from i*k) belongs to one thread.
    for_each_row::<T>(t, &dims, 4, |i, row| f(row, unsafe { o.slice(i * k, k) }))?;
    lanes_back(&out, dim, t.ndim())
}

/// Moves the last dim of `out` back to `dim`, as a contiguous tensor.
pub(crate) fn lanes_back(out: &Tensor, dim: usize, ndim: usize) -> Result<Tensor> {
    if ndim == 0 {
        return crate::ops::shape::reshape(out, &[]);
    }
    if dim + 1 == ndim {
        return Ok(out.clone());
    }
    let n = ndim as i64;
    let perm: Vec<i64> = (0..n - 1)
        .take(dim)
        .chain(std::iter::once(n - 1))
        .chain(dim as i64..n - 1)
        .collect();
    copy::contiguous(&crate::ops::shape::permute(out, &perm)?)
}

/// `cumsum`/`cumprod(t, dim, dtype)`.
pub fn cumulative(t: &Tensor, dim: i64, dtype: Option<DType>, is_sum: bool) -> Result<Tensor> {
    let d = wrap_dim(dim, t.ndim())?;
    let (acc, out) = sum_dtypes(t, dtype);
    let node = if is_sum {
        "CumsumBackward0"
    } else {
        "CumprodBackward0"
    };
    let rec = float_rec(node, t, out.is_floating_point());
    let r = cumulative_impl(t, d, acc, out, is_sum)?;
    if let Some(mut rec) = rec {
        let ix = if is_sum { None } else { Some(rec.save(t)?) };
        let iy = if is_sum {
            None
        } else {
            Some(rec.save_output(&r, 0)?)
        };
        rec.finish(&[&r], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            if g.ndim() == 0 {
                return Ok(vec![Some(g)]);
            }
            let d = d as i64;
            Ok(vec![Some(match (ix, iy) {
                (Some(ix), Some(iy)) => {
                    let x = copy::to_dtype(&ctx.saved(ix)?, g.dtype(), false)?;
                    cumprod_backward(&g, &x, &ctx.saved(iy)?, d)?
                }
                _ => reverse_cumsum(&g, d)?,
            })])
        });
    }
    Ok(r)
}

/// `flip(cumsum(flip(g)))`: sums from each position to the end of `d`.
fn reverse_cumsum(g: &Tensor, d: i64) -> Result<Tensor> {
    let f = crate::ops::join::flip(g, &[d])?;
    crate::ops::join::flip(&cumulative(&f, d, None, true)?, &[d])
}

/// The gradient of `y = cumprod(x, d)`. Without zeros in `x` it is
/// `reverse_cumsum(g * y) / x`. With zeros, element `k` gets
/// `sum_{j >= k} g_j prod_{i <= j, i != k} x_i`, formed from an n x n table
/// of partial products (O(n^2) memory, only in that case), so every entry
/// stays exact and differentiable.
fn cumprod_backward(g: &Tensor, x: &Tensor, y: &Tensor, d: i64) -> Result<Tensor> {
    use crate::ops::binary::BinaryOp::{Eq, Ge, Gt};
    let zeros = all_any(&arith::cmp_s(Eq, x, 0.0)?, None, false, false)?;
    if !crate::ops::ternary::all_true(&zeros) {
        return arith::div(&reverse_cumsum(&arith::mul(g, y)?, d)?, x);
    }
    let n = x.shape()[d as usize] as i64;
    let last = x.ndim() as i64 - 1;
    let xm = movedim1(x, d, last)?;
    let gm = movedim1(g, d, last)?;
    let mut ones_shape = xm.shape().to_vec();
    ones_shape[last as usize] = 1;
    let ones = crate::ops::creation::full(&ones_shape, crate::tensor::Scalar::Int(1), x.dtype())?;
    let before = crate::ops::join::cat(&[ones, shape::narrow(&xm, last, 0, n - 1)?], last)?;
    let before = cumulative(&before, last, None, false)?;
    let pos = crate::ops::creation::arange(
        crate::tensor::Scalar::Int(0),
        crate::tensor::Scalar::Int(n),
        crate::tensor::Scalar::Int(1),
        DType::I64,
    )?;
    let (k, i) = (
        shape::reshape(&pos, &[n, 1])?,
        shape::reshape(&pos, &[1, n])?,
    );
    // table[.., k, j] = prod_{k < i <= j} x_i (1 when j <= k).
    let xe = shape::unsqueeze(&xm, -2)?;
    let after = arith::where_s(&arith::cmp(Gt, &i, &k)?, &xe, 1.0)?;
    let after = cumulative(&after, -1, None, false)?;
    let terms = arith::mul(&after, &shape::unsqueeze(&gm, -2)?)?;
    let terms = arith::where_s(&arith::cmp(Ge, &i, &k)?, &terms, 0.0)?;
    let s = sum(&terms, Some(&[-1]), false, None)?;
    movedim1(&arith::mul(&before, &s)?, last, d)
}

fn movedim1(t: &Tensor, src: i64, dst: i64) -> Result<Tensor> {
    crate::ops::join::movedim(t, &[src], &[dst])
}

fn cumulative_impl(t: &Tensor, d: usize, acc: DType, out: DType, is_sum: bool) -> Result<Tensor> {
    let x = copy::to_dtype(t, acc, false)?;
    let n = if t.ndim() == 0 { 1 } else { t.shape()[d] };
    fn scan<T: Num>(x: &Tensor, d: usize, n: usize, is_sum: bool) -> Result<Tensor> {
        map_lanes::<T, T>(x, d, n, |row, o| {
            let mut a = if is_sum { T::ZERO } else { T::ONE };
            for (dst, &v) in o.iter_mut().zip(row) {
                a = if is_sum { a.plus(v) } else { a.times(v) };
                *dst = a;
            }
        })
    }
    let r = match acc {
        DType::F32 => scan::<f32>(&x, d, n, is_sum),
        DType::F64 => scan::<f64>(&x, d, n, is_sum),
        _ => scan::<i64>(&x, d, n, is_sum),
    }?;
    copy::to_dtype(&r, out, false)
}

/// `cummax`/`cummin(t, dim)`: running extreme and the index where it was
/// last reached (NaN, once seen, wins), as PyTorch.
pub fn cum_extreme(t: &Tensor, dim: i64, is_max: bool) -> Result<(Tensor, Tensor)> {
    let d = wrap_dim(dim, t.ndim())?;
    let node = if is_max {
        "CummaxBackward0"
    } else {
        "CumminBackward0"
    };
    let rec = float_rec(node, t, true);
    let (vals, idx) = cum_extreme_impl(t, d, is_max)?;
    if let Some(rec) = rec {
        let (shape_, ix) = (t.shape().to_vec(), idx.clone());
        rec.finish(&[&vals], move |_ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            Ok(vec![Some(scatter_add_backward(
                &g, &ix, &shape_, d as i64,
            )?)])
        });
    }
    Ok((vals, idx))
}

/// Zeros shaped `shape_` with `g` added at `indices` along `dim` (the
/// gradient of an op that read `indices`, possibly repeatedly).
pub fn scatter_add_backward(
    g: &Tensor,
    indices: &Tensor,
    shape_: &[usize],
    dim: i64,
) -> Result<Tensor> {
    if shape_.is_empty() {
        return shape::reshape(g, &[]);
    }
    let z = crate::ops::creation::full(shape_, crate::tensor::Scalar::Int(0), g.dtype())?;
    crate::ops::gather::scatter_(
        &z,
        dim,
        indices,
        crate::ops::gather::Source::Tensor(g),
        crate::ops::gather::Reduce::Sum,
    )?;
    Ok(z)
}

fn cum_extreme_impl(t: &Tensor, d: usize, is_max: bool) -> Result<(Tensor, Tensor)> {
    let n = if t.ndim() == 0 { 1 } else { t.shape()[d] };
    let vals = dispatch!(t.dtype(), T => map_lanes::<T, T>(t, d, n, |row, o| {
        let mut best = match row.first() { Some(&v) => v, None => return };
        for (dst, &v) in o.iter_mut().zip(row) {
            if is_nan(v) || (!is_nan(best) && (if is_max { v >= best } else { v <= best })) {
                best = v;
            }
            *dst = best;
        }
    }))?;
    let idx = dispatch!(t.dtype(), T => map_lanes::<T, i64>(t, d, n, |row, o| {
        let (mut best, mut bi) = match row.first() { Some(&v) => (v, 0i64), None => return };
        for (i, (dst, &v)) in o.iter_mut().zip(row).enumerate() {
            if is_nan(v) || (!is_nan(best) && (if is_max { v >= best } else { v <= best })) {
                best = v;
                bi = i as i64;
            }
            *dst = bi;
        }
    }))?;
    Ok((vals, idx))
}

// ---------------------------------------------------------------------------
// Derivatives

/// `g` of a reduction over `dims` (sorted) broadcast back to `shape`.
pub fn unreduce(g: &Tensor, shape_: &[usize], dims: &[usize], keepdim: bool) -> Result<Tensor> {
    let mut g = g.clone();
    if !keepdim {
        for &d in dims {
            g = shape::unsqueeze(&g, d as i64)?;
        }
    }
    let sizes: Vec<i64> = shape_.iter().map(|&d| d as i64).collect();
    shape::expand(&g, &sizes)
}

/// Records a reduction of `t` over `dims` whose derivative is
/// `f(ctx, g_unreduced, saved)`.
#[allow(clippy::too_many_arguments)]
fn record_reduction<F>(
    rec: Option<Recorder>,
    t: &Tensor,
    out: &Tensor,
    dims: Vec<usize>,
    keepdim: bool,
    (save_input, save_output): (bool, bool),
    f: F,
) -> Result<()>
where
    F: Fn(&Tensor, Option<Tensor>, Option<Tensor>, &[usize]) -> Result<Tensor> + Send + 'static,
{
    let Some(mut rec) = rec else { return Ok(()) };
    let ix = if save_input { Some(rec.save(t)?) } else { None };
    let iy = if save_output {
        Some(rec.save_output(out, 0)?)
    } else {
        None
    };
    let shape_ = t.shape().to_vec();
    rec.finish(&[out], move |ctx, grads| {
        let Some(g) = grads.into_iter().next().flatten() else {
            return Ok(vec![None]);
        };
        let x = ix.map(|i| ctx.saved(i)).transpose()?;
        let y = iy
            .map(|i| {
                ctx.saved(i)
                    .and_then(|y| unreduce(&y, &shape_, &dims, keepdim))
            })
            .transpose()?;
        let gu = unreduce(&g, &shape_, &dims, keepdim)?;
        Ok(vec![Some(f(&gu, x, y, &dims)?)])
    });
    Ok(())
}

fn float_rec(name: &'static str, t: &Tensor, out_float: bool) -> Option<Recorder> {
    if out_float && t.dtype().is_floating_point() {
        Recorder::new(name, &[t])
    } else {
        None
    }
}

/// Splits the gradient of a max/min equally among the tied elements.
fn evenly(gu: &Tensor, x: &Tensor, y: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let mask = arith::cmp(crate::ops::binary::BinaryOp::Eq, x, y)?;
    let maskf = copy::to_dtype(&mask, gu.dtype(), false)?;
    let d: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    let count = sum(&maskf, Some(&d), true, None)?;
    arith::div(&arith::mul(gu, &maskf)?, &count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_of_ten_million_ones_is_exact() {
        let x = vec![1.0f32; 10_000_000];
        let mut s = [0.0];
        sum_rows_f32(&x, x.len(), &mut s);
        assert_eq!(s[0], 1e7);
    }

    #[test]
    fn column_sum_matches_row_sum() {
        let t = Tensor::from_slice(&(0..3000).map(|i| i as f32).collect::<Vec<_>>(), &[150, 20])
            .unwrap();
        let s = sum(&t, Some(&[0]), false, None).unwrap();
        let v = copy::to_vec::<f64>(&s).unwrap();
        for (j, &x) in v.iter().enumerate() {
            let want: f64 = (0..150).map(|i| (i * 20 + j) as f64).sum();
            assert_eq!(x, want);
        }
    }
}
