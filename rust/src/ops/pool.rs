//! Pooling over the trailing 1, 2 or 3 spatial dims: max, average, their
//! adaptive forms and max-unpooling.
//!
//! One N-d implementation serves every rank: the spatial dims are padded to
//! three with unit dims, and each dim is described by an [`Axis`], a table
//! giving for every output position its window (first valid input, number of
//! valid taps, tap step) and its divisor factor. Max pooling, adaptive max,
//! average and adaptive average pooling differ only in how those tables are
//! built. Leading dims are independent planes, split over threads.
//!
//! Derivatives: max pooling's is a scatter-add of the gradient into the
//! argmax positions ([`plane_scatter`]), whose own derivative is a gather
//! with the same indices ([`plane_gather`]), and the other way round, so
//! derivatives of any order work. Average pooling's backward is a recorded
//! linear op whose derivative is average pooling again.

use std::ops::{Add, AddAssign, Div, Mul, Sub};
use std::sync::Arc;

use smallvec::SmallVec;

use crate::autograd::Recorder;
use crate::cpu::parallel;
use crate::error::{Error, Result};
use crate::multiversion;
use crate::ops::copy;
use crate::tensor::{DType, Element, Tensor};

/// Float element types the kernels compute in (half types compute in f32).
pub(crate) trait Fl:
    Element
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
{
    const NEG_INF: Self;
    const ZERO: Self;
    fn nan(self) -> bool;
    /// `if take { a } else { b }` by bit masks, so no branch is emitted
    /// (LLVM turns selects in loops into branches, which mispredict on
    /// random data).
    fn pick(take: bool, a: Self, b: Self) -> Self;
}

impl Fl for f32 {
    const NEG_INF: f32 = f32::NEG_INFINITY;
    const ZERO: f32 = 0.0;
    #[inline(always)]
    fn nan(self) -> bool {
        self.is_nan()
    }
    #[inline(always)]
    fn pick(take: bool, a: f32, b: f32) -> f32 {
        let m = 0u32.wrapping_sub(take as u32);
        f32::from_bits(((a.to_bits() ^ b.to_bits()) & m) ^ b.to_bits())
    }
}

impl Fl for f64 {
    const NEG_INF: f64 = f64::NEG_INFINITY;
    const ZERO: f64 = 0.0;
    #[inline(always)]
    fn nan(self) -> bool {
        self.is_nan()
    }
    #[inline(always)]
    fn pick(take: bool, a: f64, b: f64) -> f64 {
        let m = 0u64.wrapping_sub(take as u64);
        f64::from_bits(((a.to_bits() ^ b.to_bits()) & m) ^ b.to_bits())
    }
}

/// Runs `$body` with `$T` the compute type of `$dt` (F32 or F64).
macro_rules! fdispatch {
    ($dt:expr, $T:ident => $body:expr) => {{
        if $dt == $crate::tensor::DType::F64 {
            type $T = f64;
            $body
        } else {
            type $T = f32;
            $body
        }
    }};
}
pub(crate) use fdispatch;

/// The dtype a kernel computes `t` in: f32/f64 as they are, half types in
/// f32; other dtypes are refused with PyTorch's message.
pub(crate) fn compute_dtype(op: &str, t: &Tensor) -> Result<DType> {
    match t.dtype() {
        DType::F32 | DType::F64 => Ok(t.dtype()),
        DType::F16 | DType::BF16 => Ok(DType::F32),
        d => Err(Error::Runtime(format!(
            "\"{op}\" not implemented for '{}'",
            d.scalar_name()
        ))),
    }
}

/// `t` as a contiguous tensor of `dt`.
pub(crate) fn prep(t: &Tensor, dt: DType) -> Result<Tensor> {
    copy::contiguous(&copy::to_dtype(t, dt, false)?)
}

/// One spatial dim: for each output position its window.
#[derive(Clone, Debug)]
struct Axis {
    inp: usize,
    out: usize,
    step: usize,
    start: Vec<usize>,
    len: Vec<usize>,
    div: Vec<usize>,
    /// `(lo, hi, stride, k)`: outputs `lo..hi` have full windows of `k` taps
    /// starting `stride` apart (the interior, pooled row-at-a-time).
    interior: (usize, usize, usize, usize),
}

impl Axis {
    fn unit() -> Axis {
        Axis {
            inp: 1,
            out: 1,
            step: 1,
            start: vec![0],
            len: vec![1],
            div: vec![1],
            interior: (0, 1, 1, 1),
        }
    }

    /// Finds the interior: the outputs whose windows are full (`k` taps)
    /// and `stride` apart.
    fn with_interior(mut self, k: usize, stride: usize) -> Axis {
        let Some(lo) = self.len.iter().position(|&l| l == k) else {
            return self;
        };
        let mut hi = lo;
        while hi < self.out
            && self.len[hi] == k
            && self.start[hi] == self.start[lo] + (hi - lo) * stride
        {
            hi += 1;
        }
        self.interior = (lo, hi, stride, k);
        self
    }

    /// Windows `o * s - p + j * d` for `j < k`, clipped to the input. The
    /// divisor factor counts the padding (`include_pad`) or not.
    fn window(
        inp: usize,
        out: usize,
        k: usize,
        s: usize,
        p: usize,
        d: usize,
        include_pad: bool,
    ) -> Axis {
        let mut a = Axis {
            inp,
            out,
            step: d,
            start: Vec::with_capacity(out),
            len: Vec::with_capacity(out),
            div: Vec::with_capacity(out),
            interior: (0, 0, 0, 0),
        };
        let (n, p) = (inp as isize, p as isize);
        for o in 0..out {
            let st = (o * s) as isize - p;
            let first = if st < 0 {
                ((-st) as usize).div_ceil(d)
            } else {
                0
            };
            let end = if st >= n {
                0
            } else {
                k.min(((n - st) as usize).div_ceil(d))
            };
            let len = end.saturating_sub(first);
            let start = (st + (first * d) as isize).clamp(0, (n - 1).max(0)) as usize;
            let div = if include_pad {
                ((st + k as isize).min(n + p) - st).max(0) as usize
            } else {
                len
            };
            a.start.push(start);
            a.len.push(len);
            a.div.push(div);
        }
        a.with_interior(k, s)
    }

    /// PyTorch's adaptive windows: `[floor(o * in / out), ceil((o + 1) * in / out))`.
    fn adaptive(inp: usize, out: usize) -> Axis {
        let mut a = Axis {
            inp,
            out,
            step: 1,
            start: Vec::with_capacity(out),
            len: Vec::with_capacity(out),
            div: Vec::with_capacity(out),
            interior: (0, 0, 0, 0),
        };
        for o in 0..out {
            let s = o * inp / out;
            let e = ((o + 1) * inp).div_ceil(out);
            a.start.push(s);
            a.len.push(e - s);
            a.div.push(e - s);
        }
        a
    }
}

/// A pooling: the leading (plane) shape, three spatial axes (unit ones
/// first when fewer than three dims), a fixed divisor if any, and the name
/// its nodes are called by (`MaxPool2DWithIndices`, `AvgPool2D`, ...).
#[derive(Debug)]
struct Plan {
    lead: Vec<usize>,
    nd: usize,
    axes: [Axis; 3],
    divisor: Option<f64>,
    label: String,
}

impl Plan {
    fn new(lead: &[usize], mut spatial: Vec<Axis>, divisor: Option<f64>, label: String) -> Plan {
        let nd = spatial.len();
        while spatial.len() < 3 {
            spatial.insert(0, Axis::unit());
        }
        let mut it = spatial.into_iter();
        let axes = [
            it.next().unwrap_or_else(Axis::unit),
            it.next().unwrap_or_else(Axis::unit),
            it.next().unwrap_or_else(Axis::unit),
        ];
        Plan {
            lead: lead.to_vec(),
            nd,
            axes,
            divisor,
            label,
        }
    }
    fn planes(&self) -> usize {
        self.lead.iter().product()
    }
    fn in_plane(&self) -> usize {
        self.axes.iter().map(|a| a.inp).product()
    }
    fn out_plane(&self) -> usize {
        self.axes.iter().map(|a| a.out).product()
    }
    fn in_shape(&self) -> Vec<usize> {
        let mut s = self.lead.clone();
        s.extend(self.axes[3 - self.nd..].iter().map(|a| a.inp));
        s
    }
    fn out_shape(&self) -> Vec<usize> {
        let mut s = self.lead.clone();
        s.extend(self.axes[3 - self.nd..].iter().map(|a| a.out));
        s
    }
}

/// Calls `f(plane, x_plane, y_plane)` for every plane, in parallel.
fn each_plane<A: Element, B: Element>(
    x: &Tensor,
    y: &Tensor,
    planes: usize,
    cost: usize,
    f: impl Fn(usize, &[A], &mut [B]) + Sync,
) {
    if planes == 0 {
        return;
    }
    let (xn, yn) = (x.numel() / planes, y.numel() / planes);
    let (px, py) = (x.raw_ptr() as usize, y.raw_ptr() as usize);
    parallel::for_ranges(planes, cost.max(1), 1, |s, e| {
        for p in s..e {
            // SAFETY: `x` and `y` are contiguous with `planes` planes of `xn`
            // and `yn` elements of A and B; each plane is visited once, so the
            // mutable slices of `y` never overlap.
            let (xs, ys) = unsafe {
                (
                    std::slice::from_raw_parts((px as *const A).add(p * xn), xn),
                    std::slice::from_raw_parts_mut((py as *mut B).add(p * yn), yn),
                )
            };
            f(p, xs, ys);
        }
    });
}

/// Max over each window of one plane, with the flat index of the maximum
/// (NaN wins; ties keep the first, as PyTorch). Interior outputs of each
/// row (full windows a fixed stride apart) go to [`row_max`] for the common
/// shapes (kernel 2 or 3 with stride 1 or 2, no dilation along the row) and
/// are otherwise pooled tap by tap across the row; edge outputs one by one.
/// Branch-free throughout: compares become masks, not jumps, so random data
/// runs as fast as sorted data.
#[inline(always)]
fn max_plane<T: Fl>(x: &[T], y: &mut [T], ix: &mut [i64], a: &[Axis; 3]) {
    let (h, w) = (a[1].inp, a[2].inp);
    let hw = h * w;
    let (s0, s1, s2) = (a[0].step, a[1].step, a[2].step);
    let (lo, hi, st, kw) = a[2].interior;
    let ow_n = a[2].out;
    // The row kernel keeps indices as i32 offsets.
    let small = x.len() <= i32::MAX as usize;
    let mut rows: SmallVec<[usize; 9]> = SmallVec::new();
    let mut o = 0;
    for od in 0..a[0].out {
        let (sd, ld) = (a[0].start[od], a[0].len[od]);
        for oh in 0..a[1].out {
            let (sh, lh) = (a[1].start[oh], a[1].len[oh]);
            let base = sd * hw + sh * w;
            for ow in (0..lo).chain(hi..ow_n) {
                let (sw, lw) = (a[2].start[ow], a[2].len[ow]);
                let mut best = T::NEG_INF;
                let mut bi = base + sw;
                for i in 0..ld {
                    for j in 0..lh {
                        let r = (sd + i * s0) * hw + (sh + j * s1) * w + sw;
                        for k in 0..lw {
                            let p = r + k * s2;
                            // SAFETY: windows are clipped to the input when the
                            // axes are built, so `p` < d * h * w = x.len().
                            let v = unsafe { *x.get_unchecked(p) };
                            // `|`, not `||`, and masks, not `if`: branch-free.
                            let take = (v > best) | v.nan();
                            best = T::pick(take, v, best);
                            bi ^= (bi ^ p) & 0usize.wrapping_sub(take as usize);
                        }
                    }
                }
                y[o + ow] = best;
                ix[o + ow] = bi as i64;
            }
            if hi > lo {
                let yr = &mut y[o + lo..o + hi];
                let ir = &mut ix[o + lo..o + hi];
                let s_lo = a[2].start[lo];
                rows.clear();
                for i in 0..ld {
                    for j in 0..lh {
                        rows.push((sd + i * s0) * hw + (sh + j * s1) * w + s_lo);
                    }
                }
                let done = small
                    && s2 == 1
                    && match (st, kw) {
                        (1, 2) => row_max::<T, 1, 2>(x, &rows, yr, ir),
                        (1, 3) => row_max::<T, 1, 3>(x, &rows, yr, ir),
                        (2, 2) => row_max::<T, 2, 2>(x, &rows, yr, ir),
                        (2, 3) => row_max::<T, 2, 3>(x, &rows, yr, ir),
                        _ => false,
                    };
                if !done {
                    row_max_any(x, &rows, yr, ir, st, kw, s2);
                }
            }
            o += ow_n;
        }
    }
}

/// [`row_max`] for any stride, kernel width and dilation: tap by tap
/// across the row (independent lanes, no dependency chain per output).
fn row_max_any<T: Fl>(
    x: &[T],
    rows: &[usize],
    y: &mut [T],
    ix: &mut [i64],
    st: usize,
    kw: usize,
    s2: usize,
) {
    y.fill(T::NEG_INF);
    let Some(&r0) = rows.first() else {
        return;
    };
    for (n, v) in ix.iter_mut().enumerate() {
        *v = (r0 + n * st) as i64;
    }
    for &r in rows {
        for k in 0..kw {
            let off = r + k * s2;
            for (n, (b, bi)) in y.iter_mut().zip(ix.iter_mut()).enumerate() {
                let p = off + n * st;
                // SAFETY: interior windows lie inside the input (full
                // windows of `kw` taps), so `p` < x.len().
                let v = unsafe { *x.get_unchecked(p) };
                let take = (v > *b) | v.nan();
                *b = T::pick(take, v, *b);
                *bi ^= (*bi ^ p as i64) & 0i64.wrapping_sub(take as i64);
            }
        }
    }
}

/// Max over `K`-tap windows `S` apart along one output row: output `n`'s
/// window covers `r + n * S + k` (`k < K`) for every window row start `r`
/// of `rows`, taken in order (so the first maximum wins). Outputs go in
/// blocks of `B` lanes (16, 8, 4 or 1 as the row allows; the last block
/// overlaps the one before), each block a fixed-size loop LLVM turns into
/// vector loads, deinterleaves and masked selects. The winning offset is
/// kept as an i32 (the caller checks the plane fits). Returns true.
#[inline(always)]
fn row_max<T: Fl, const S: usize, const K: usize>(
    x: &[T],
    rows: &[usize],
    y: &mut [T],
    ix: &mut [i64],
) -> bool {
    match y.len() {
        n if n >= 16 => row_blocks::<T, S, K, 16>(x, rows, y, ix),
        n if n >= 8 => row_blocks::<T, S, K, 8>(x, rows, y, ix),
        n if n >= 4 => row_blocks::<T, S, K, 4>(x, rows, y, ix),
        _ => row_blocks::<T, S, K, 1>(x, rows, y, ix),
    }
    true
}

#[inline(always)]
fn row_blocks<T: Fl, const S: usize, const K: usize, const B: usize>(
    x: &[T],
    rows: &[usize],
    y: &mut [T],
    ix: &mut [i64],
) {
    let n = y.len().min(ix.len());
    let mut o = 0;
    while o < n {
        let o0 = o.min(n - B);
        let mut best = [T::NEG_INF; B];
        let mut rel = [0i32; B];
        let mut first = true;
        for &r in rows {
            let r = r + o0 * S;
            // Interior windows lie inside the input: a failed slice here
            // would be a bug in the axis tables, not a user error.
            let xs = &x[r..r + (B - 1) * S + K];
            for k in 0..K {
                let at = (r - o0 * S + k) as i32;
                for l in 0..B {
                    let v = xs[l * S + k];
                    let take = (v > best[l]) | v.nan() | first;
                    best[l] = T::pick(take, v, best[l]);
                    rel[l] = if take { at } else { rel[l] };
                }
                first = false;
            }
        }
        y[o0..o0 + B].copy_from_slice(&best);
        for (l, v) in ix[o0..o0 + B].iter_mut().enumerate() {
            *v = rel[l] as i64 + ((o0 + l) * S) as i64;
        }
        o = o0 + B;
    }
}

multiversion! {
    /// [`max_plane`] for float32, compiled for the CPU's vector width.
    fn max_plane_f32(x: &[f32], y: &mut [f32], ix: &mut [i64], a: &[Axis; 3]) {
        max_plane::<f32>(x, y, ix, a)
    }
}

multiversion! {
    /// [`max_plane`] for float64, compiled for the CPU's vector width.
    fn max_plane_f64(x: &[f64], y: &mut [f64], ix: &mut [i64], a: &[Axis; 3]) {
        max_plane::<f64>(x, y, ix, a)
    }
}

/// Average pooling of one plane (`back = false`: `src` is the input plane,
/// `dst` the output's), or its adjoint (`back = true`: `src` is the output
/// gradient's plane, `dst` the input gradient's, each output gradient
/// spread over its window). Per output row, whole input rows are summed
/// into (or spread from) the row of outputs by [`avg_row`]; the taps of each
/// output are added in the same order either way.
#[inline(always)]
fn avg_plane<T: Fl>(src: &[T], dst: &mut [T], a: &[Axis; 3], divisor: Option<f64>, back: bool) {
    let (h, w) = (a[1].inp, a[2].inp);
    let hw = h * w;
    let ow_n = a[2].out;
    // Back: the output gradients of the row over their divisors.
    let mut v = vec![T::ZERO; if back { ow_n } else { 0 }];
    if back {
        dst.fill(T::ZERO);
    }
    let mut o = 0;
    for od in 0..a[0].out {
        let (sd, ld) = (a[0].start[od], a[0].len[od]);
        for oh in 0..a[1].out {
            let (sh, lh) = (a[1].start[oh], a[1].len[oh]);
            let div = |ow: usize| {
                T::from_f64(divisor.unwrap_or((a[0].div[od] * a[1].div[oh] * a[2].div[ow]) as f64))
            };
            if back {
                for (ow, x) in v.iter_mut().enumerate() {
                    *x = src[o + ow] / div(ow);
                }
            } else {
                dst[o..o + ow_n].fill(T::ZERO);
            }
            for i in 0..ld {
                for j in 0..lh {
                    let r = (sd + i) * hw + (sh + j) * w;
                    if back {
                        avg_row(&v, &mut dst[r..r + w], &a[2], true);
                    } else {
                        avg_row(&src[r..r + w], &mut dst[o..o + ow_n], &a[2], false);
                    }
                }
            }
            if !back {
                for (ow, y) in dst[o..o + ow_n].iter_mut().enumerate() {
                    *y = *y / div(ow);
                }
            }
            o += ow_n;
        }
    }
}

/// One input row's part of average pooling: `y[ow] += x[t]` over the taps
/// `t` of each output `ow` (`back = false`, `a = x`, `b = y`), or the
/// adjoint `x[t] += v[ow]` (`back = true`, `a = v`, `b = x`). The interior
/// goes to [`taps`]'s fixed-shape kernels for the common windows.
#[inline(always)]
fn avg_row<T: Fl>(a: &[T], b: &mut [T], ax: &Axis, back: bool) {
    let (lo, hi, s, k) = ax.interior;
    let n = if back { a.len() } else { b.len() };
    let mut ow = 0;
    while ow < n {
        if ow == lo && hi > lo {
            let span = (lo, hi, ax.start[lo]);
            let done = match (s, k) {
                (1, 2) => taps::<T, 1, 2>(a, b, span, back),
                (1, 3) => taps::<T, 1, 3>(a, b, span, back),
                (2, 2) => taps::<T, 2, 2>(a, b, span, back),
                (2, 3) => taps::<T, 2, 3>(a, b, span, back),
                (3, 3) => taps::<T, 3, 3>(a, b, span, back),
                _ => false,
            };
            if done {
                ow = hi;
                continue;
            }
        }
        let (sw, lw) = (ax.start[ow], ax.len[ow]);
        for t in sw..sw + lw {
            if back {
                b[t] += a[ow];
            } else {
                b[ow] += a[t];
            }
        }
        ow += 1;
    }
}

/// [`avg_row`]'s interior outputs `lo..hi`, whose windows start at input
/// `x0`, `S` apart: [`taps_sum`] or [`taps_spread`]. Returns true.
#[inline(always)]
fn taps<T: Fl, const S: usize, const K: usize>(
    a: &[T],
    b: &mut [T],
    (lo, hi, x0): (usize, usize, usize),
    back: bool,
) -> bool {
    if back {
        taps_spread::<T, S, K>(&a[lo..hi], &mut b[x0..])
    } else {
        taps_sum::<T, S, K>(&a[x0..], &mut b[lo..hi])
    }
}

/// `y[n] += x[n * S + k]` for `k < K` (in order): interior outputs along a
/// row, a fixed-shape loop LLVM vectorises. Returns true.
#[inline(always)]
fn taps_sum<T: Fl, const S: usize, const K: usize>(x: &[T], y: &mut [T]) -> bool {
    let n = y.len();
    // Interior windows lie inside the input: a failed slice here would be
    // a bug in the axis tables, not a user error.
    let x = &x[..(n - 1) * S + K];
    for (o, y) in y.iter_mut().enumerate() {
        let mut s = *y;
        for k in 0..K {
            s += x[o * S + k];
        }
        *y = s;
    }
    true
}

/// `x[n * S + k] += v[n]` for `k < K`: the adjoint of [`taps_sum`].
#[inline(always)]
fn taps_spread<T: Fl, const S: usize, const K: usize>(v: &[T], x: &mut [T]) -> bool {
    let n = v.len();
    let x = &mut x[..(n - 1) * S + K];
    for (o, &g) in v.iter().enumerate() {
        for k in 0..K {
            x[o * S + k] += g;
        }
    }
    true
}

multiversion! {
    /// [`avg_plane`] for float32, compiled for the CPU's vector width.
    fn avg_plane_f32(src: &[f32], dst: &mut [f32], a: &[Axis; 3], divisor: Option<f64>, back: bool) {
        avg_plane::<f32>(src, dst, a, divisor, back)
    }
}

multiversion! {
    /// [`avg_plane`] for float64, compiled for the CPU's vector width.
    fn avg_plane_f64(src: &[f64], dst: &mut [f64], a: &[Axis; 3], divisor: Option<f64>, back: bool) {
        avg_plane::<f64>(src, dst, a, divisor, back)
    }
}

/// Max over windows: (values, flat indices within each plane).
fn window_max(x: &Tensor, plan: Arc<Plan>) -> Result<(Tensor, Tensor)> {
    let name = format!("{}Backward0", plan.label);
    let rec = Recorder::new(name, &[x]);
    let dt = compute_dtype(&op_name(&plan), x)?;
    let xs = prep(x, dt)?;
    let shape = plan.out_shape();
    let out = Tensor::empty(&shape, dt)?;
    let idx = Tensor::empty(&shape, DType::I64)?;
    if out.numel() > 0 && xs.numel() > 0 {
        // Measured with the row kernels: about 0.25 ns an input element
        // (0.2 ms for 64x16x28x28 on one thread); threads pay from ~1M.
        let cost = plan.in_plane() + plan.out_plane() * 2;
        let iptr = idx.raw_ptr() as usize;
        let on = plan.out_plane();
        // SAFETY (both closures): plane `p` of the contiguous int64 `idx`
        // ([p * on, (p + 1) * on)) is written by this call only.
        let idx_plane = |p: usize| unsafe {
            std::slice::from_raw_parts_mut((iptr as *mut i64).add(p * on), on)
        };
        if dt == DType::F64 {
            each_plane::<f64, f64>(&xs, &out, plan.planes(), cost, |p, xp, yp| {
                max_plane_f64(xp, yp, idx_plane(p), &plan.axes)
            });
        } else {
            each_plane::<f32, f32>(&xs, &out, plan.planes(), cost, |p, xp, yp| {
                max_plane_f32(xp, yp, idx_plane(p), &plan.axes)
            });
        }
    }
    let out = copy::to_dtype(&out, x.dtype(), false)?;
    if let Some(mut rec) = rec {
        let ii = rec.save(&idx)?;
        let in_shape = plan.in_shape();
        let nd = plan.nd;
        let bw = format!("{}BackwardBackward0", plan.label);
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            let idx = ctx.saved(ii)?;
            Ok(vec![Some(scatter_planes(
                &g, &idx, &in_shape, nd, true, &bw, false,
            )?)])
        });
    }
    Ok((out, idx))
}

/// Checks that every index lies in `[0, n)`; the first one that does not.
fn check_indices(idx: &Tensor, n: usize) -> std::result::Result<(), i64> {
    let v = copy::contiguous(idx).map_err(|_| -1i64)?;
    // SAFETY: `v` is a contiguous int64 tensor of `numel` elements.
    let s = unsafe { std::slice::from_raw_parts(v.raw_ptr() as *const i64, v.numel()) };
    match s.iter().find(|&&i| i < 0 || i as usize >= n) {
        Some(&bad) => Err(bad),
        None => Ok(()),
    }
}

/// `out[p, idx[p, j]] (+)= src[p, j]` into zeros shaped `out_shape`, whose
/// last `nd` dims are the plane; `src` and `idx` share a shape. Recorded as
/// `name`; its derivative is [`plane_gather`].
pub fn plane_scatter(
    src: &Tensor,
    idx: &Tensor,
    out_shape: &[usize],
    nd: usize,
    accumulate: bool,
    name: &str,
) -> Result<Tensor> {
    scatter_planes(src, idx, out_shape, nd, accumulate, name, true)
}

/// [`plane_scatter`]; `checked = false` skips the pass that validates the
/// indices up front, for indices max pooling made itself (its saved copy
/// cannot change unseen: autograd checks its version). The kernel indexes
/// with bounds checks either way.
fn scatter_planes(
    src: &Tensor,
    idx: &Tensor,
    out_shape: &[usize],
    nd: usize,
    accumulate: bool,
    name: &str,
    checked: bool,
) -> Result<Tensor> {
    if src.shape() != idx.shape() {
        return Err(Error::Runtime(format!(
            "Expected shape of indices to be same as that of the input tensor ({:?}) but got indices tensor with shape: {:?}",
            src.shape(),
            idx.shape()
        )));
    }
    let lead = out_shape.len().saturating_sub(nd);
    let oplane: usize = out_shape[lead..].iter().product();
    let planes: usize = out_shape[..lead].iter().product();
    if checked {
        if let Err(bad) = check_indices(idx, oplane) {
            return Err(Error::Runtime(format!(
                "index {bad} is out of bounds for a plane of {oplane} elements"
            )));
        }
    }
    let rec = Recorder::new(name.to_string(), &[src]);
    let dt = compute_dtype("scatter", src)?;
    let ss = prep(src, dt)?;
    let ii = copy::contiguous(idx)?;
    let run = planes > 0 && ss.numel() > 0 && oplane > 0;
    // Each plane is zeroed by the thread that scatters into it, while it
    // is in cache (not by a separate pass over the whole output).
    let out = if run {
        Tensor::empty(out_shape, dt)?
    } else {
        Tensor::zeros(out_shape, dt)?
    };
    if run {
        let sn = ss.numel() / planes;
        let iptr = ii.raw_ptr() as usize;
        let cost = sn * 2 + oplane / 2;
        fdispatch!(dt, T => each_plane::<T, T>(&ss, &out, planes, cost, |p, sp, op| {
            // SAFETY: plane `p` of the contiguous int64 `ii` has `sn` elements.
            let ip = unsafe { std::slice::from_raw_parts((iptr as *const i64).add(p * sn), sn) };
            op.fill(T::ZERO);
            if accumulate {
                for (&v, &i) in sp.iter().zip(ip) {
                    op[i as usize] += v;
                }
            } else {
                for (&v, &i) in sp.iter().zip(ip) {
                    op[i as usize] = v;
                }
            }
        }));
    }
    let out = copy::to_dtype(&out, src.dtype(), false)?;
    if let Some(mut rec) = rec {
        let si = rec.save(idx)?;
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            Ok(vec![Some(plane_gather(&g, &ctx.saved(si)?, nd)?)])
        });
    }
    Ok(out)
}

/// `out[p, j] = src[p, idx[p, j]]`, planes being the last `nd` dims of
/// `src`; the derivative is a scatter-add with the same indices.
pub fn plane_gather(src: &Tensor, idx: &Tensor, nd: usize) -> Result<Tensor> {
    let lead = src.ndim().saturating_sub(nd);
    let splane: usize = src.shape()[lead..].iter().product();
    let planes: usize = src.shape()[..lead].iter().product();
    if let Err(bad) = check_indices(idx, splane) {
        return Err(Error::Runtime(format!(
            "index {bad} is out of bounds for a plane of {splane} elements"
        )));
    }
    let rec = Recorder::new("GatherBackward0", &[src]);
    let dt = compute_dtype("gather", src)?;
    let ss = prep(src, dt)?;
    let ii = copy::contiguous(idx)?;
    let out = Tensor::empty(idx.shape(), dt)?;
    if planes > 0 && out.numel() > 0 {
        let on = out.numel() / planes;
        let iptr = ii.raw_ptr() as usize;
        fdispatch!(dt, T => each_plane::<T, T>(&ss, &out, planes, on * 2, |p, sp, op| {
            // SAFETY: plane `p` of the contiguous int64 `ii` has `on` elements.
            let ip = unsafe { std::slice::from_raw_parts((iptr as *const i64).add(p * on), on) };
            for (o, &i) in op.iter_mut().zip(ip) {
                *o = sp[i as usize];
            }
        }));
    }
    let out = copy::to_dtype(&out, src.dtype(), false)?;
    if let Some(mut rec) = rec {
        let si = rec.save(idx)?;
        let shape = src.shape().to_vec();
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            let idx = ctx.saved(si)?;
            Ok(vec![Some(plane_scatter(
                &g,
                &idx,
                &shape,
                nd,
                true,
                "ScatterAddBackward0",
            )?)])
        });
    }
    Ok(out)
}

fn op_name(plan: &Plan) -> String {
    let base = plan
        .label
        .trim_end_matches("WithIndices")
        .to_ascii_lowercase();
    base.replace("pool", "_pool")
}

/// Averages over windows (`back = false`), or the adjoint (`back = true`:
/// each output gradient spread over its window). Each is recorded with the
/// other as its derivative (both are linear).
fn window_avg(x: &Tensor, plan: Arc<Plan>, back: bool) -> Result<Tensor> {
    let node = if back {
        "BackwardBackward0"
    } else {
        "Backward0"
    };
    let rec = Recorder::new(format!("{}{node}", plan.label), &[x]);
    let dt = compute_dtype(&op_name(&plan), x)?;
    let xs = prep(x, dt)?;
    let out = if back {
        Tensor::zeros(&plan.in_shape(), dt)?
    } else {
        Tensor::empty(&plan.out_shape(), dt)?
    };
    if out.numel() > 0 && xs.numel() > 0 {
        let cost = plan.in_plane() + plan.out_plane() * 2;
        let (planes, axes, divisor) = (plan.planes(), &plan.axes, plan.divisor);
        if dt == DType::F64 {
            each_plane::<f64, f64>(&xs, &out, planes, cost, |_, xp, yp| {
                avg_plane_f64(xp, yp, axes, divisor, back)
            });
        } else {
            each_plane::<f32, f32>(&xs, &out, planes, cost, |_, xp, yp| {
                avg_plane_f32(xp, yp, axes, divisor, back)
            });
        }
    }
    let out = copy::to_dtype(&out, x.dtype(), false)?;
    if let Some(rec) = rec {
        rec.finish(&[&out], move |_, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            Ok(vec![Some(window_avg(&g, plan.clone(), !back)?)])
        });
    }
    Ok(out)
}

/// Splits `x`'s shape into (leading, spatial) for an `nd`-d pooling that
/// takes `nd + 1` or `nd + 2` dims.
fn split(x: &Tensor, nd: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    let n = x.ndim();
    let spatial_ok = n > nd && x.shape()[n - nd - 1..].iter().all(|&s| s > 0);
    if !(n == nd + 1 || n == nd + 2) || !spatial_ok {
        return Err(Error::Runtime(format!(
            "non-empty {}D or {}D (batch mode) tensor expected for input",
            nd + 1,
            nd + 2
        )));
    }
    Ok((x.shape()[..n - nd].to_vec(), x.shape()[n - nd..].to_vec()))
}

/// `v` as sizes, refusing values below 1 with PyTorch's message, which
/// names each dim (`kT`, `kH`, `kW`; a 1-d pooling is a 2-d one of height 1).
fn positive(v: &[i64], what: &str) -> Result<Vec<usize>> {
    if v.iter().any(|&k| k <= 0) {
        if what == "stride" {
            return Err(Error::Runtime("stride should not be zero".into()));
        }
        let mut vals = v.to_vec();
        if vals.len() == 1 {
            vals.insert(0, 1);
        }
        let (prefix, names): (&str, [&str; 3]) = if what == "dilation" {
            (
                "dilation should be greater than zero, but got",
                ["dilationT", "dilationH", "dilationW"],
            )
        } else {
            (
                "kernel size should be greater than zero, but got",
                ["kT", "kH", "kW"],
            )
        };
        let parts: Vec<String> = names[3 - vals.len()..]
            .iter()
            .zip(&vals)
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        return Err(Error::Runtime(format!("{prefix} {}", parts.join(" "))));
    }
    Ok(v.iter().map(|&k| k as usize).collect())
}

/// PyTorch's pooling output size, with ceil mode's rule that the last
/// window must start inside the input or its left padding.
fn out_size(inp: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> i64 {
    let (inp, k, s, p, d) = (inp as i64, k as i64, s as i64, p as i64, d as i64);
    let num = inp + 2 * p - d * (k - 1) - 1 + if ceil { s - 1 } else { 0 };
    let mut out = num.div_euclid(s) + 1;
    if ceil && (out - 1) * s >= inp + p {
        out -= 1;
    }
    out
}

struct Windows {
    lead: Vec<usize>,
    axes: Vec<Axis>,
}

#[allow(clippy::too_many_arguments)]
fn windows(
    x: &Tensor,
    nd: usize,
    op: &str,
    kernel: &[i64],
    stride: &[i64],
    padding: &[i64],
    dilation: &[i64],
    ceil_mode: bool,
    include_pad: bool,
) -> Result<Windows> {
    let (lead, spatial) = split(x, nd)?;
    let fix = |v: &[i64], what: &str| -> Result<Vec<i64>> {
        match v.len() {
            1 => Ok(vec![v[0]; nd]),
            n if n == nd => Ok(v.to_vec()),
            _ => Err(Error::Runtime(format!(
                "{op}: {what} must either be a single int, or a tuple of {nd} ints"
            ))),
        }
    };
    let kv = fix(kernel, "kernel_size")?;
    let st = if stride.is_empty() {
        positive(&kv, "stride")?
    } else {
        positive(&fix(stride, "stride")?, "stride")?
    };
    let k = positive(&kv, "kernel_size")?;
    let d = positive(&fix(dilation, "dilation")?, "dilation")?;
    let pv = fix(padding, "padding")?;
    if pv.iter().any(|&p| p < 0) {
        return Err(Error::Runtime("pad must be non-negative".into()));
    }
    let p: Vec<usize> = pv.iter().map(|&v| v as usize).collect();
    for i in 0..nd {
        let eff = (k[i] - 1) * d[i] + 1;
        if p[i] > eff / 2 {
            return Err(Error::Runtime(format!(
                "pad should be at most half of effective kernel size, but got pad={}, kernel_size={} and dilation={}",
                p[i], k[i], d[i]
            )));
        }
    }
    let outs: Vec<i64> = (0..nd)
        .map(|i| out_size(spatial[i], k[i], st[i], p[i], d[i], ceil_mode))
        .collect();
    if outs.iter().any(|&o| o < 1) {
        let c = x.shape()[x.ndim() - nd - 1];
        let join = |v: Vec<String>| v.join("x");
        return Err(Error::Runtime(format!(
            "Given input size: ({c}x{}). Calculated output size: ({c}x{}). Output size is too small",
            join(spatial.iter().map(|s| s.to_string()).collect()),
            join(outs.iter().map(|s| s.to_string()).collect()),
        )));
    }
    let axes = (0..nd)
        .map(|i| {
            Axis::window(
                spatial[i],
                outs[i] as usize,
                k[i],
                st[i],
                p[i],
                d[i],
                include_pad,
            )
        })
        .collect();
    Ok(Windows { lead, axes })
}

/// `max_pool{nd}d(x, kernel_size, stride, padding, dilation, ceil_mode)`
/// with indices (an empty `stride` means `kernel_size`).
#[allow(clippy::too_many_arguments)]
pub fn max_pool(
    x: &Tensor,
    nd: usize,
    kernel: &[i64],
    stride: &[i64],
    padding: &[i64],
    dilation: &[i64],
    ceil_mode: bool,
) -> Result<(Tensor, Tensor)> {
    let op = format!("max_pool{nd}d");
    let w = windows(
        x, nd, &op, kernel, stride, padding, dilation, ceil_mode, false,
    )?;
    let plan = Plan::new(&w.lead, w.axes, None, format!("MaxPool{nd}DWithIndices"));
    window_max(x, Arc::new(plan))
}

/// `avg_pool{nd}d(x, kernel_size, stride, padding, ceil_mode,
/// count_include_pad, divisor_override)`.
#[allow(clippy::too_many_arguments)]
pub fn avg_pool(
    x: &Tensor,
    nd: usize,
    kernel: &[i64],
    stride: &[i64],
    padding: &[i64],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<i64>,
) -> Result<Tensor> {
    if divisor_override == Some(0) {
        return Err(Error::Runtime("divisor must be not zero".into()));
    }
    let op = format!("avg_pool{nd}d");
    let w = windows(
        x,
        nd,
        &op,
        kernel,
        stride,
        padding,
        &[1],
        ceil_mode,
        count_include_pad,
    )?;
    let plan = Plan::new(
        &w.lead,
        w.axes,
        divisor_override.map(|d| d as f64),
        format!("AvgPool{nd}D"),
    );
    window_avg(x, Arc::new(plan), false)
}

fn adaptive_plan(x: &Tensor, nd: usize, output_size: &[i64], max: bool) -> Result<Plan> {
    let kind = if max { "max" } else { "avg" };
    let n = x.ndim();
    let ok =
        (n == nd + 1 || n == nd + 2) && x.shape()[n.saturating_sub(nd)..].iter().all(|&s| s > 0);
    if !ok {
        return Err(Error::Runtime(format!(
            "adaptive_{kind}_pool{nd}d(): Expected {}D or {}D tensor, but got{} {:?}",
            nd + 1,
            nd + 2,
            if max { ":" } else { "" },
            x.shape()
        )));
    }
    if output_size.len() != nd || output_size.iter().any(|&o| o < 0) {
        return Err(Error::Runtime(format!(
            "adaptive_{kind}_pool{nd}d(): internal error: output_size.size() must be {nd}"
        )));
    }
    let axes = (0..nd)
        .map(|i| Axis::adaptive(x.shape()[n - nd + i], output_size[i] as usize))
        .collect();
    let label = if max {
        format!("AdaptiveMaxPool{nd}D")
    } else {
        format!("AdaptiveAvgPool{nd}D")
    };
    Ok(Plan::new(&x.shape()[..n - nd], axes, None, label))
}

/// `adaptive_avg_pool{nd}d(x, output_size)`.
pub fn adaptive_avg_pool(x: &Tensor, nd: usize, output_size: &[i64]) -> Result<Tensor> {
    window_avg(
        x,
        Arc::new(adaptive_plan(x, nd, output_size, false)?),
        false,
    )
}

/// `adaptive_max_pool{nd}d(x, output_size)` with indices.
pub fn adaptive_max_pool(x: &Tensor, nd: usize, output_size: &[i64]) -> Result<(Tensor, Tensor)> {
    window_max(x, Arc::new(adaptive_plan(x, nd, output_size, true)?))
}

/// `max_unpool{nd}d(x, indices, output_size)`: `x`'s values placed at
/// `indices` in zeros whose spatial shape is `output_size`.
pub fn max_unpool(x: &Tensor, indices: &Tensor, nd: usize, output_size: &[i64]) -> Result<Tensor> {
    if indices.dtype() != DType::I64 {
        return Err(Error::Runtime(format!(
            "elements in indices should be type int64 but got: {}",
            indices.dtype().scalar_name()
        )));
    }
    let n = x.ndim();
    if !(n == nd + 1 || n == nd + 2) {
        return Err(Error::Runtime(format!(
            "Input to max_unpooling{nd}d should be a {}d or {}d Tensor, but got a tensor with {n} dimensions.",
            nd + 1,
            nd + 2
        )));
    }
    if x.shape() != indices.shape() {
        return Err(Error::Runtime(format!(
            "Expected shape of indices to be same as that of the input tensor ({:?}) but got indices tensor with shape: {:?}",
            x.shape(),
            indices.shape()
        )));
    }
    if output_size.len() != nd || output_size.iter().any(|&o| o <= 0) {
        return Err(Error::Runtime(format!(
            "There should be exactly {nd} elements (depth, height, width) in output_size, but got {} elements.",
            output_size.len()
        )));
    }
    let mut shape = x.shape()[..n - nd].to_vec();
    shape.extend(output_size.iter().map(|&o| o as usize));
    let plane: usize = output_size.iter().map(|&o| o as usize).product();
    if let Err(bad) = check_indices(indices, plane) {
        let dims: Vec<String> = output_size.iter().map(|o| o.to_string()).collect();
        return Err(Error::Runtime(format!(
            "Found an invalid max index: {bad} (output volumes are of size {})",
            dims.join("x")
        )));
    }
    plane_scatter(
        x,
        indices,
        &shape,
        nd,
        false,
        &format!("MaxUnpool{nd}DBackward0"),
    )
}
