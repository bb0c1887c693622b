//! Convolution: `conv{1,2,3}d` and `conv_transpose{1,2,3}d` from one N-d
//! implementation, and `im2col` / `col2im` (`F.unfold` / `F.fold`).
//!
//! Forward: per image, `im2col` lays the receptive fields out as a
//! `(C/g * K) x L` matrix (`K` kernel elements, `L` output positions) and
//! one GEMM per group multiplies the weight `(O/g) x (C/g * K)` into it; the
//! product lands directly in the `N, C, spatial` output (no transpose). A
//! 1x1 kernel with stride 1 and no padding skips `im2col` (the image is its
//! own column matrix). Transposed convolution is the adjoint: one GEMM
//! `W^T @ x` per group, then `col2im` scatter-adds the columns into the
//! output. Batches split over threads, each thread with its own column
//! buffer; a batch smaller than the thread count splits each image's GEMM
//! by columns instead.
//!
//! Stride-1 1-d and 2-d convolutions in float32 with one group run on the
//! direct AVX-512 kernels of [`conv_direct`] instead (no column matrix, the
//! output tile in registers): the forward, a stride-1 transposed
//! convolution (the convolution with the flipped kernel, which is also the
//! input gradient) and the weight gradient. Of those, 3x3 2-d ones with
//! 32 or more channels in and out (forward and transposed, not the weight
//! gradient) run on Winograd F(2x2, 3x3) ([`winograd`]): 16 multiplies
//! per 2x2 outputs where the direct sum takes 36.
//!
//! Derivatives (`ConvolutionBackward0`): grad_input is the transposed
//! convolution of grad (the convolution, for a transposed forward),
//! grad_weight an `im2col` + GEMM reduction over the batch and grad_bias a
//! sum. When the backward itself is recorded (`create_graph=True`) the
//! weight gradient is composed of recorded ops (`im2col`, `matmul`, `sum`),
//! and grad_input is a recorded convolution, so double backward works;
//! otherwise a fused kernel accumulates the weight gradient per thread.

use crate::autograd::{needs_grad, Recorder};
use crate::cpu::conv_direct::{self, Plan, OB};
use crate::cpu::conv_winograd as winograd;
use crate::cpu::parallel::{for_ranges, num_threads};
use crate::cpu::scratch::{Plain, Scratch};
use crate::error::{try_vec, Error, Result};
use crate::ops::{copy, reduce, shape};
use crate::tensor::layout::fmt_shape;
use crate::tensor::{DType, Element, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Most spatial dims handled (PyTorch has 1-d to 3-d convolutions).
const MAX_DIMS: usize = 6;

/// Raw pointers cross into worker threads as addresses.
#[derive(Clone, Copy)]
struct Addr(usize);

impl Addr {
    fn of<T>(p: *const T) -> Addr {
        Addr(p as usize)
    }
    fn at<T>(self, i: usize) -> *mut T {
        (self.0 as *mut T).wrapping_add(i)
    }
}

/// The float types the kernels compute in (others are cast to these).
trait Real: Element + Plain + std::ops::AddAssign {
    const ZERO: Self;
    /// `dst = (read_dst ? dst : 0) + a @ b` for an `m x n` product of depth
    /// `k`; each matrix is (pointer, row stride, column stride).
    ///
    /// # Safety
    /// The matrices must be valid for their shapes and strides and `dst`
    /// must overlap neither input.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        n: usize,
        k: usize,
        dst: (*mut Self, isize, isize),
        read_dst: bool,
        a: (*const Self, isize, isize),
        b: (*const Self, isize, isize),
    );
}

macro_rules! real {
    ($F:ty) => {
        impl Real for $F {
            const ZERO: $F = 0.0;
            unsafe fn gemm(
                m: usize,
                n: usize,
                k: usize,
                dst: (*mut $F, isize, isize),
                read_dst: bool,
                a: (*const $F, isize, isize),
                b: (*const $F, isize, isize),
            ) {
                if m == 0 || n == 0 {
                    return;
                }
                if k == 0 {
                    if !read_dst {
                        for i in 0..m {
                            for j in 0..n {
                                *dst.0.offset(i as isize * dst.1 + j as isize * dst.2) = 0.0;
                            }
                        }
                    }
                    return;
                }
                gemm::gemm::<$F>(
                    m,
                    n,
                    k,
                    dst.0,
                    dst.2,
                    dst.1,
                    read_dst,
                    a.0,
                    a.2,
                    a.1,
                    b.0,
                    b.2,
                    b.1,
                    if read_dst { 1.0 } else { 0.0 },
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            }
        }
    };
}
real!(f32);
real!(f64);

/// One `im2col`/`col2im` geometry: an image of `channels x size` and the
/// grid `out` of kernel placements (`L = prod(out)` columns).
#[derive(Clone, Debug)]
struct Geom {
    channels: usize,
    size: Vec<usize>,
    kernel: Vec<usize>,
    stride: Vec<usize>,
    pad: Vec<usize>,
    dil: Vec<usize>,
    out: Vec<usize>,
    /// The in-image segments, found on first use (see [`Geom::segments`]).
    segs: OnceLock<Segs>,
}

/// The in-image segments of every kernel tap, `(first column, length,
/// image offset)`, with tap `kk`'s at `runs[taps[kk]..taps[kk + 1]]`.
#[derive(Clone, Debug)]
struct Segs {
    runs: Vec<(usize, usize, usize)>,
    taps: Vec<usize>,
}

/// A stride-1 1-d or 2-d geometry laid out on the zero-padded image
/// (`hp x wp`, one channel `pimg` long): output position `(y, x)` sits at
/// `y * wp + x`, so tap `kk`'s column row is the padded channel read from
/// `offs[kk]` on, one contiguous run of `lp` values (the `wp - wo` columns
/// between output lines are computed and dropped). `im2col` is then a
/// `memcpy` per row and `col2im` one vector add per row, where the exact
/// layout needs a short copy per image line and tap.
struct Flat {
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
    wp: usize,
    wo: usize,
    pimg: usize,
    lp: usize,
    offs: Vec<usize>,
}

impl Flat {
    /// `img [c, h, w]` into `xp [c, pimg]` with zero borders. Pieces go
    /// in order, each in 8-element chunks that may spill into the next
    /// piece's place, rewritten right after (a `memcpy` and a `memset` call
    /// per short line cost more than the copy).
    fn pad<T: Real>(&self, img: &[T], xp: &mut [T], c: usize) {
        let (hw, wp) = (self.h * self.w, self.wp);
        for ch in 0..c {
            let dst = &mut xp[ch * self.pimg..(ch + 1) * self.pimg];
            let src = &img[ch * hw..];
            fill_spill(dst, 0, self.ph * wp + self.pw);
            for y in 0..self.h {
                let at = (y + self.ph) * wp + self.pw;
                copy_spill(src, y * self.w, dst, at, self.w);
                fill_spill(dst, at + self.w, (at + wp).min(self.pimg));
            }
            let tail = ((self.h + self.ph) * wp + self.pw).min(self.pimg);
            dst[tail..].fill(T::ZERO);
        }
    }
}

impl Geom {
    fn k(&self) -> usize {
        self.kernel.iter().product()
    }
    fn l(&self) -> usize {
        self.out.iter().product()
    }
    fn img(&self) -> usize {
        self.size.iter().product()
    }
    fn rows(&self) -> usize {
        self.channels * self.k()
    }
    /// The padded-width plan of a stride-1 1-d or 2-d geometry, if it is
    /// one (see [`Flat`]).
    fn flat(&self) -> Option<Flat> {
        let nd = self.size.len();
        if nd > 2 || self.stride.iter().any(|&s| s != 1) {
            return None;
        }
        let dim = |j: usize| {
            (
                self.size[j],
                self.kernel[j],
                self.dil[j],
                self.pad[j],
                self.out[j],
            )
        };
        let (h, kh, dh, ph, ho) = if nd == 2 { dim(0) } else { (1, 1, 1, 0, 1) };
        let (w, kw, dw, pw, wo) = dim(nd - 1);
        let (hp, wp) = (h + 2 * ph, w + 2 * pw);
        if ho == 0 || wo == 0 || ho + dh * (kh - 1) != hp || wo + dw * (kw - 1) != wp {
            return None;
        }
        let offs = (0..kh * kw)
            .map(|kk| (kk / kw) * dh * wp + (kk % kw) * dw)
            .collect();
        Some(Flat {
            h,
            w,
            ph,
            pw,
            wp,
            wo,
            pimg: hp * wp,
            lp: (ho - 1) * wp + wo,
            offs,
        })
    }

    /// The column matrix is the image itself (1x1 kernel, stride 1, no
    /// padding, grid the image's size).
    fn is_identity(&self) -> bool {
        self.kernel.iter().all(|&k| k == 1)
            && self.stride.iter().all(|&s| s == 1)
            && self.pad.iter().all(|&p| p == 0)
            && self.out == self.size
    }

    /// For kernel element `kk` (flat index), visits each line of the grid
    /// along its last dim: `f(start, seg)` with `start` the line's offset in
    /// a column row, and `seg = Some((lo, hi, at))` when the line lies
    /// inside the image: grid positions `lo..hi` read image offsets
    /// `at + (o - lo) * stride_last` (within one channel), the rest padding.
    fn for_each_line(&self, kk: usize, mut f: impl FnMut(usize, Option<(usize, usize, usize)>)) {
        let nd = self.size.len();
        let last = nd - 1;
        let mut kidx = [0usize; MAX_DIMS];
        let mut rem = kk;
        for j in (0..nd).rev() {
            kidx[j] = rem % self.kernel[j];
            rem /= self.kernel[j];
        }
        let (s, n_last, size_last) = (self.stride[last], self.out[last], self.size[last]);
        let off = (kidx[last] * self.dil[last]) as isize - self.pad[last] as isize;
        let lo = if off >= 0 {
            0
        } else {
            ((-off) as usize).div_ceil(s).min(n_last)
        };
        let hi = if off >= size_last as isize {
            0
        } else {
            (((size_last as isize - 1 - off) / s as isize) as usize + 1).min(n_last)
        }
        .max(lo);
        let lines: usize = self.out[..last].iter().product();
        let mut o = [0usize; MAX_DIMS];
        for line in 0..lines {
            let mut base = 0usize;
            let mut inside = lo < hi;
            for j in 0..last {
                let pos =
                    (o[j] * self.stride[j] + kidx[j] * self.dil[j]) as isize - self.pad[j] as isize;
                if pos < 0 || pos >= self.size[j] as isize {
                    inside = false;
                    break;
                }
                base = base * self.size[j] + pos as usize;
            }
            let seg = inside.then(|| {
                let at = base * size_last + (lo as isize * s as isize + off) as usize;
                (lo, hi, at)
            });
            f(line * n_last, seg);
            for j in (0..last).rev() {
                o[j] += 1;
                if o[j] < self.out[j] {
                    break;
                }
                o[j] = 0;
            }
        }
    }

    /// Column rows `r0..r1` of one image: `col` holds those rows only.
    fn im2col_rows<T: Real>(&self, img: &[T], col: &mut [T], r0: usize, r1: usize) {
        self.im2col_rows_ld(img, col, r0, r1, self.l());
    }

    /// `im2col_rows` into a matrix whose rows are `ld >= L` apart (several
    /// images side by side, one GEMM for all of them).
    fn im2col_rows_ld<T: Real>(&self, img: &[T], col: &mut [T], r0: usize, r1: usize, ld: usize) {
        let (k, l, isz) = (self.k(), self.l(), self.img());
        let s = *self.stride.last().unwrap_or(&1);
        let Segs { runs, taps } = self.segments();
        for r in r0..r1 {
            let (c, kk) = (r / k, r % k);
            // To the image's end: a piece may read past the channel.
            let src = &img[c * isz..];
            let row = &mut col[(r - r0) * ld..(r - r0) * ld + l];
            let mut filled = 0;
            for &(from, len, at) in &runs[taps[kk]..taps[kk + 1]] {
                // The padding between runs is zeroed here (the buffer may
                // hold stale values). Gaps and runs go in column order,
                // each written in whole 8-element pieces that may spill
                // into the next one, rewritten right after: the short
                // lines of a small image otherwise cost a memcpy or memset
                // call each.
                fill_spill(row, filled, from);
                if s == 1 {
                    copy_spill(src, at, row, from, len);
                } else {
                    for (i, v) in row[from..from + len].iter_mut().enumerate() {
                        *v = src[at + i * s];
                    }
                }
                filled = from + len;
            }
            row[filled..].fill(T::ZERO);
        }
    }

    /// The in-image segments of every kernel tap, found once per geometry
    /// for all channels and images: walking the lines per channel cost more
    /// than copying the short lines themselves. At stride 1, segments
    /// adjacent in both the column row and the image merge (a tap inside
    /// the image is one run over the whole grid).
    fn segments(&self) -> &Segs {
        self.segs.get_or_init(|| self.find_segments())
    }

    fn find_segments(&self) -> Segs {
        let k = self.k();
        let s = *self.stride.last().unwrap_or(&1);
        let mut segs: Vec<(usize, usize, usize)> = Vec::new();
        let mut taps = Vec::with_capacity(k + 1);
        for kk in 0..k {
            taps.push(segs.len());
            let first = segs.len();
            self.for_each_line(kk, |start, seg| {
                let Some((lo, hi, at)) = seg.filter(|&(lo, hi, _)| hi > lo) else {
                    return;
                };
                let (from, len) = (start + lo, hi - lo);
                let same_tap = segs.len() > first;
                if let Some(prev) = segs.last_mut().filter(|_| s == 1 && same_tap) {
                    if prev.0 + prev.1 == from && prev.2 + prev.1 == at {
                        prev.1 += len;
                        return;
                    }
                }
                segs.push((from, len, at));
            });
        }
        taps.push(segs.len());
        Segs { runs: segs, taps }
    }

    /// The transposed column matrix of one image from its channels-last
    /// copy `xt [size, C]`: row `o` of `colt [L, K * C]` holds grid position
    /// `o`'s receptive field in (tap, channel) order, so each tap is one
    /// copy of `C` adjacent values (im2col then a transpose moves every
    /// element twice, the second time one at a time).
    fn im2row_channels_last<T: Real>(&self, xt: &[T], colt: &mut [T]) {
        let (c, k, l) = (self.channels, self.k(), self.l());
        let ld = k * c;
        let s = *self.stride.last().unwrap_or(&1);
        let Segs { runs, taps } = self.segments();
        for kk in 0..k {
            let mut next = 0;
            let zero = |o0: usize, o1: usize, colt: &mut [T]| {
                for o in o0..o1 {
                    colt[o * ld + kk * c..o * ld + (kk + 1) * c].fill(T::ZERO);
                }
            };
            for &(from, len, at) in &runs[taps[kk]..taps[kk + 1]] {
                zero(next, from, colt);
                for q in 0..len {
                    let (o, i) = (from + q, at + q * s);
                    copy_short(
                        &xt[i * c..(i + 1) * c],
                        &mut colt[o * ld + kk * c..o * ld + (kk + 1) * c],
                    );
                }
                next = from + len;
            }
            zero(next, l, colt);
        }
    }

    /// Adds the columns of channels `c0..c1` into those channels of `img`
    /// (`img` holds the channels `c0..c1` only; `col` the whole matrix).
    fn col2im_channels<T: Real>(&self, col: &[T], img: &mut [T], c0: usize, c1: usize) {
        self.col2im_channels_ld(col, img, c0, c1, self.l());
    }

    /// `col2im_channels` from a matrix whose rows are `ld >= L` apart.
    fn col2im_channels_ld<T: Real>(
        &self,
        col: &[T],
        img: &mut [T],
        c0: usize,
        c1: usize,
        ld: usize,
    ) {
        let (k, l, isz) = (self.k(), self.l(), self.img());
        let s = *self.stride.last().unwrap_or(&1);
        let Segs {
            runs: segs,
            taps: tap_start,
        } = self.segments();
        for c in c0..c1 {
            let dst = &mut img[(c - c0) * isz..(c - c0 + 1) * isz];
            for (kk, taps) in tap_start.windows(2).enumerate() {
                let row = &col[(c * k + kk) * ld..(c * k + kk) * ld + l];
                for &(from, len, at) in &segs[taps[0]..taps[1]] {
                    let src = &row[from..from + len];
                    if s == 1 {
                        add_short(src, &mut dst[at..at + len]);
                    } else {
                        for (i, &v) in src.iter().enumerate() {
                            dst[at + i * s] += v;
                        }
                    }
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for short runs (a few dozen elements), in
/// fixed-size pieces the compiler inlines: a `memcpy` call per run cost
/// more than the copy.
#[inline]
fn copy_short<T: Copy>(src: &[T], dst: &mut [T]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        // Always 8 long (chunks_exact): the arrays make the size constant.
        if let (Ok(d), Ok(s)) = (<&mut [T; 8]>::try_from(d), <&[T; 8]>::try_from(s)) {
            *d = *s;
        }
    }
    for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = s;
    }
}

/// `dst[from..from + len] = src[at..at + len]`, in 8-element pieces that
/// may write up to 7 elements past the run (and read past it) when both
/// slices have room; see [`Geom::im2col_rows_ld`].
#[inline]
fn copy_spill<T: Copy>(src: &[T], at: usize, dst: &mut [T], from: usize, len: usize) {
    let n8 = len.div_ceil(8) * 8;
    if from + n8 <= dst.len() && at + n8 <= src.len() {
        let pieces = dst[from..from + n8]
            .chunks_exact_mut(8)
            .zip(src[at..at + n8].chunks_exact(8));
        for (d, s) in pieces {
            if let (Ok(d), Ok(s)) = (<&mut [T; 8]>::try_from(d), <&[T; 8]>::try_from(s)) {
                *d = *s;
            }
        }
    } else {
        dst[from..from + len].copy_from_slice(&src[at..at + len]);
    }
}

/// Lines of `w` values `src_ld` apart in `src` to `dst_ld` apart in `dst`
/// (as many as fit in `dst`), each plus `v`. Lines go in order in 8-element
/// pieces that may spill into the next line's place, rewritten right after
/// (the last line is exact): image lines are too short for a vector loop.
fn copy_lines<T: Real>(src: &[T], src_ld: usize, dst: &mut [T], dst_ld: usize, w: usize, v: T) {
    if w == 0 {
        return;
    }
    let lines = (dst.len() + dst_ld - w) / dst_ld;
    let n8 = w.div_ceil(8) * 8;
    for y in 0..lines {
        let (s0, d0) = (y * src_ld, y * dst_ld);
        if y + 1 < lines && d0 + n8 <= dst.len() && s0 + n8 <= src.len() {
            let pieces = dst[d0..d0 + n8]
                .chunks_exact_mut(8)
                .zip(src[s0..s0 + n8].chunks_exact(8));
            for (d, s) in pieces {
                if let (Ok(d), Ok(s)) = (<&mut [T; 8]>::try_from(d), <&[T; 8]>::try_from(s)) {
                    for (a, &b) in d.iter_mut().zip(s) {
                        *a = b;
                        *a += v;
                    }
                }
            }
        } else {
            for (a, &b) in dst[d0..d0 + w].iter_mut().zip(&src[s0..s0 + w]) {
                *a = b;
                *a += v;
            }
        }
    }
}

/// `dst[a..b]` zeroed, in 8-element pieces that may spill past `b` as in
/// [`copy_spill`].
#[inline]
fn fill_spill<T: Real>(dst: &mut [T], a: usize, b: usize) {
    if a >= b {
        return;
    }
    let n8 = (b - a).div_ceil(8) * 8;
    if a + n8 <= dst.len() {
        for d in dst[a..a + n8].chunks_exact_mut(8) {
            if let Ok(d) = <&mut [T; 8]>::try_from(d) {
                *d = [T::ZERO; 8];
            }
        }
    } else {
        dst[a..b].fill(T::ZERO);
    }
}

/// `dst += src` elementwise in fixed-size pieces: the lines of a small
/// image are too short for the compiler's vector loop (a 13-long line ran
/// entirely in its scalar tail).
#[inline]
fn add_short<T: Real>(src: &[T], dst: &mut [T]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        if let (Ok(d), Ok(s)) = (<&mut [T; 8]>::try_from(d), <&[T; 8]>::try_from(s)) {
            for (a, &b) in d.iter_mut().zip(s) {
                *a += b;
            }
        }
    }
    for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d += s;
    }
}

/// Collects the first error raised inside worker threads.
struct ErrSlot(parking_lot::Mutex<Option<Error>>);

impl ErrSlot {
    fn new() -> ErrSlot {
        ErrSlot(parking_lot::Mutex::new(None))
    }
    fn set(&self, e: Error) {
        self.0.lock().get_or_insert(e);
    }
    fn into_result(self) -> Result<()> {
        self.0.into_inner().map_or(Ok(()), Err)
    }
}

fn zeroed<T: Real>(n: usize) -> Result<Vec<T>> {
    let mut v = try_vec(n)?;
    v.resize(n, T::ZERO);
    Ok(v)
}

/// Below this many multiply-adds per image, a small batch is not worth
/// splitting by columns.
const SPLIT_WORK: usize = 1 << 20;

/// Columns one forward GEMM should see at least: images smaller than this
/// are batched side by side.
const BATCH_COLUMNS: usize = 2048;
/// Fewer images than this per GEMM do not pay for the extra copy.
const MIN_BATCH: usize = 4;
/// Column matrix bytes one GEMM should see at most: written by `im2col`
/// and read by the GEMM's packing, it should stay in L2.
const COL_BYTES: usize = 1 << 20;

/// Images per GEMM for column matrices of `per_image` elements of `T` with
/// `l` columns each, at most `n`.
fn images_per_gemm<T>(per_image: usize, l: usize, n: usize) -> usize {
    let by_cache = COL_BYTES / (per_image * std::mem::size_of::<T>()).max(1);
    (BATCH_COLUMNS / l.max(1)).min(by_cache).min(n.max(1))
}

/// Sizes of one convolution: `cin` input channels (of `geom`'s image),
/// `cout` outputs, `groups`.
#[derive(Clone, Copy)]
struct Chans {
    n: usize,
    cin: usize,
    cout: usize,
    groups: usize,
}

/// Convolution forward: `x [N, cin, size]`, `w [cout, cin/g, K]`,
/// `out [N, cout, grid]`, all contiguous.
///
/// # Safety
/// The pointers must be valid contiguous buffers of those shapes; `out`
/// overlaps nothing.
unsafe fn conv_kernel<T: Real>(
    g: &Geom,
    ch: Chans,
    x: Addr,
    w: Addr,
    bias: Option<Addr>,
    out: Addr,
) -> Result<()> {
    let (k, l, isz) = (g.k(), g.l(), g.img());
    let (og, ckg) = (ch.cout / ch.groups, ch.cin / ch.groups * k);
    let rows = g.rows();
    let gemms = Gemms::new(ch, k, w, false);
    let identity = g.is_identity();
    // Output columns c0..c1 of image i from its column matrix `src`.
    let product = |i: usize, src: *const T, c0: usize, c1: usize| {
        let o = out.at::<T>(i * ch.cout * l);
        if let Some(b) = bias {
            for oc in 0..ch.cout {
                let v = *b.at::<T>(oc);
                std::slice::from_raw_parts_mut(o.add(oc * l + c0), c1 - c0).fill(v);
            }
        }
        gemms.run((c1 - c0, l), o.add(c0), bias.is_some(), src.add(c0));
    };
    let work = ch.cout * ckg * l;
    let threads = num_threads();
    // Small images: several per GEMM (one call on a [rows, B*L] column
    // matrix into a [cout, B*L] buffer, then copied out per image), since a
    // GEMM of a few hundred columns is mostly packing overhead (64 images of
    // 16x14x14 -> 32 channels: 2.3 ms one GEMM per image).
    let by_images = ch.n >= threads || work < SPLIT_WORK || threads == 1;
    let per_gemm = images_per_gemm::<T>(rows * l, l, ch.n);
    let batched = !identity && per_gemm >= MIN_BATCH && by_images;
    // Larger images multiply straight into the output, one per GEMM.
    if let Some(f) = g.flat().filter(|_| batched) {
        return conv_flat::<T>(g, &f, ch, x, w, bias, out);
    }
    if batched {
        let lens = |b: usize| [rows * b * l, ch.cout * b * l];
        return in_batches::<T, 2>(ch.n, work, per_gemm, lens, |[col, tmp], i0, nb| {
            let ld = nb * l;
            for b in 0..nb {
                // SAFETY: image i0 + b of `x`; `col` is this thread's own.
                let img =
                    std::slice::from_raw_parts(x.at::<T>((i0 + b) * ch.cin * isz), ch.cin * isz);
                g.im2col_rows_ld(img, &mut col[b * l..], 0, rows, ld);
            }
            gemms.run((ld, ld), tmp.as_mut_ptr(), false, col.as_ptr());
            for b in 0..nb {
                let o = out.at::<T>((i0 + b) * ch.cout * l);
                for oc in 0..ch.cout {
                    // SAFETY: image i0 + b's channel oc of `out` belongs
                    // to this thread; `tmp` holds cout x ld values.
                    let dst = std::slice::from_raw_parts_mut(o.add(oc * l), l);
                    let src = &tmp[oc * ld + b * l..oc * ld + (b + 1) * l];
                    match bias {
                        Some(bp) => {
                            let v = *bp.at::<T>(oc);
                            for (d, &x) in dst.iter_mut().zip(src) {
                                *d = x;
                                *d += v;
                            }
                        }
                        None => dst.copy_from_slice(src),
                    }
                }
            }
        });
    }
    if by_images {
        let lens = |_| [if identity { 0 } else { rows * l }];
        return in_batches::<T, 1>(ch.n, work, 1, lens, |[col], i, _| {
            // SAFETY: image i of `x`; `col` is this thread's own.
            let img = std::slice::from_raw_parts(x.at::<T>(i * ch.cin * isz), ch.cin * isz);
            let src = if identity {
                img.as_ptr()
            } else {
                g.im2col_rows(img, col, 0, rows);
                col.as_ptr()
            };
            product(i, src, 0, l);
        });
    }
    let mut col = Scratch::<T>::new(if identity { 0 } else { rows * l })?;
    for i in 0..ch.n {
        let img = std::slice::from_raw_parts(x.at::<T>(i * ch.cin * isz), ch.cin * isz);
        let src = if identity {
            img.as_ptr()
        } else {
            let c = Addr::of(col.as_mut_ptr());
            for_ranges(rows, l, 1, |r0, r1| {
                // SAFETY: rows r0..r1 of the column buffer belong to this call.
                let part = std::slice::from_raw_parts_mut(c.at::<T>(r0 * l), (r1 - r0) * l);
                g.im2col_rows(img, part, r0, r1);
            });
            col.as_ptr()
        };
        let s = Addr::of(src);
        // Column blocks that are multiples of the micro-kernel width.
        for_ranges(l, og * ckg / 16 + 1, 16, |c0, c1| {
            product(i, s.at::<T>(0), c0, c1)
        });
    }
    Ok(())
}

/// [`conv_kernel`] on the padded-width layout of [`Flat`]: threads take
/// batch chunks, several images per GEMM.
///
/// # Safety
/// As [`conv_kernel`].
unsafe fn conv_flat<T: Real>(
    g: &Geom,
    f: &Flat,
    ch: Chans,
    x: Addr,
    w: Addr,
    bias: Option<Addr>,
    out: Addr,
) -> Result<()> {
    let (k, l, isz, lp) = (g.k(), g.l(), g.img(), f.lp);
    let rows = g.rows();
    let gemms = Gemms::new(ch, k, w, false);
    flat_batches::<T>(g, f, ch, ch.cin, ch.cout, |[xp, col, tmp], i0, nb| {
        let ld = nb * lp;
        for b in 0..nb {
            // SAFETY: image i0 + b of `x`; the buffers are this thread's.
            let img = std::slice::from_raw_parts(x.at::<T>((i0 + b) * ch.cin * isz), ch.cin * isz);
            f.pad(img, xp, ch.cin);
            for r in 0..rows {
                let at = (r / k) * f.pimg + f.offs[r % k];
                col[r * ld + b * lp..][..lp].copy_from_slice(&xp[at..at + lp]);
            }
        }
        gemms.run((ld, ld), tmp.as_mut_ptr(), false, col.as_ptr());
        for b in 0..nb {
            for oc in 0..ch.cout {
                let v = bias.map_or(T::ZERO, |bp| *bp.at::<T>(oc));
                // SAFETY: image i0 + b's channel oc of `out` belongs to
                // this thread.
                let dst =
                    std::slice::from_raw_parts_mut(out.at::<T>(((i0 + b) * ch.cout + oc) * l), l);
                copy_lines(&tmp[oc * ld + b * lp..], f.wp, dst, f.wo, f.wo, v);
            }
        }
    })
}

/// [`conv_transpose_kernel`] on the padded-width layout of [`Flat`]: the
/// input spread over the padded grid (zeros between lines), one GEMM for
/// several images, then each column row added into the padded output at
/// its tap's offset and the border cropped.
///
/// # Safety
/// As [`conv_kernel`].
unsafe fn conv_transpose_flat<T: Real>(
    g: &Geom,
    f: &Flat,
    ch: Chans,
    x: Addr,
    w: Addr,
    bias: Option<Addr>,
    out: Addr,
) -> Result<()> {
    let (k, l, isz, lp) = (g.k(), g.l(), g.img(), f.lp);
    let rows = g.rows();
    let gemms = Gemms::new(ch, k, w, true);
    flat_batches::<T>(g, f, ch, ch.cout, ch.cin, |[xp, col, xb], i0, nb| {
        let ld = nb * lp;
        for c in 0..ch.cin {
            for b in 0..nb {
                // SAFETY: channel c of image i0 + b of `x`.
                let from = std::slice::from_raw_parts(x.at::<T>(((i0 + b) * ch.cin + c) * l), l);
                let dst = &mut xb[c * ld + b * lp..][..lp];
                // Each line then the columns after it, which must add
                // nothing; both spill only into the next line.
                for y in 0..l / f.wo.max(1) {
                    copy_spill(from, y * f.wo, dst, y * f.wp, f.wo);
                    fill_spill(dst, y * f.wp + f.wo, ((y + 1) * f.wp).min(lp));
                }
            }
        }
        gemms.run((ld, ld), col.as_mut_ptr(), false, xb.as_ptr());
        for b in 0..nb {
            xp.fill(T::ZERO);
            for r in 0..rows {
                let at = (r / k) * f.pimg + f.offs[r % k];
                for (d, &v) in xp[at..at + lp]
                    .iter_mut()
                    .zip(&col[r * ld + b * lp..][..lp])
                {
                    *d += v;
                }
            }
            for c in 0..ch.cout {
                let v = bias.map_or(T::ZERO, |bp| *bp.at::<T>(c));
                // SAFETY: image i0 + b's channel c of `out` belongs to
                // this thread.
                let dst = std::slice::from_raw_parts_mut(
                    out.at::<T>(((i0 + b) * ch.cout + c) * isz),
                    isz,
                );
                let at = c * f.pimg + f.ph * f.wp + f.pw;
                copy_lines(&xp[at..], f.wp, dst, f.w, f.w, v);
            }
        }
    })
}

/// The GEMMs of a convolution, one per group: `dst_g (og x n) = W_g @
/// src_g` (depth `cin/g * K`), or for a transposed one `dst_g (cout/g * K
/// x n) = W_g^T @ src_g` (depth `cin/g`).
#[derive(Clone, Copy)]
struct Gemms {
    groups: usize,
    m: usize,
    depth: usize,
    w: Addr,
    /// W's strides.
    ws: (isize, isize),
}

impl Gemms {
    fn new(ch: Chans, k: usize, w: Addr, transposed: bool) -> Gemms {
        let (m, depth) = if transposed {
            (ch.cout / ch.groups * k, ch.cin / ch.groups)
        } else {
            (ch.cout / ch.groups, ch.cin / ch.groups * k)
        };
        // W is `m x depth` per group, read transposed for a transposed one.
        let ws = if transposed {
            (1, m as isize)
        } else {
            (depth as isize, 1)
        };
        Gemms {
            groups: ch.groups,
            m,
            depth,
            w,
            ws,
        }
    }

    /// `n` columns of `dst` and `src` (rows `ld` apart), added to `dst`
    /// with `read_dst`.
    ///
    /// # Safety
    /// The pointers must hold those matrices; `dst` overlaps neither input.
    unsafe fn run<T: Real>(
        self,
        (n, ld): (usize, usize),
        dst: *mut T,
        read_dst: bool,
        src: *const T,
    ) {
        let (m, depth) = (self.m, self.depth);
        for gi in 0..self.groups {
            T::gemm(
                m,
                n,
                depth,
                (dst.add(gi * m * ld), ld as isize, 1),
                read_dst,
                (self.w.at::<T>(gi * m * depth), self.ws.0, self.ws.1),
                (src.add(gi * depth * ld), ld as isize, 1),
            );
        }
    }
}

/// The batches of [`conv_flat`] and [`conv_transpose_flat`]: per thread a
/// padded image of `padded` channels, and for up to one GEMM's images a
/// column matrix and a buffer of `other` channels on the padded grid.
fn flat_batches<T: Real>(
    g: &Geom,
    f: &Flat,
    ch: Chans,
    padded: usize,
    other: usize,
    step: impl Fn(&mut [Scratch<T>; 3], usize, usize) + Sync,
) -> Result<()> {
    let (lp, rows) = (f.lp, g.rows());
    let per_gemm = images_per_gemm::<T>(rows * lp, lp, ch.n).max(1);
    let lens = |b: usize| [padded * f.pimg, rows * b * lp, other * b * lp];
    let work = ch.cin * ch.cout / ch.groups.max(1) * g.k() * g.l();
    in_batches::<T, 3>(ch.n, work, per_gemm, lens, step)
}

/// Batch chunks for the batched kernels: threads take contiguous image
/// ranges (`work` multiply-adds per image split the batch), each with `N`
/// scratch buffers of `lens(b_max)` elements, and call `step(buffers, i0,
/// nb)` for images `i0..i0 + nb`, at most `per_gemm` at a time.
fn in_batches<T: Real, const N: usize>(
    n: usize,
    work: usize,
    per_gemm: usize,
    lens: impl Fn(usize) -> [usize; N] + Sync,
    step: impl Fn(&mut [Scratch<T>; N], usize, usize) + Sync,
) -> Result<()> {
    let err = ErrSlot::new();
    for_ranges(n, work / 16 + 1, 1, |s, e| {
        let b_max = per_gemm.min(e - s);
        let mut bufs = Vec::with_capacity(N);
        for len in lens(b_max) {
            match Scratch::new(len) {
                Ok(b) => bufs.push(b),
                Err(er) => return err.set(er),
            }
        }
        let Ok(mut bufs) = <[Scratch<T>; N]>::try_from(bufs) else {
            return;
        };
        let mut i0 = s;
        while i0 < e {
            let nb = b_max.min(e - i0);
            step(&mut bufs, i0, nb);
            i0 += nb;
        }
    });
    err.into_result()
}

/// Padded images (see [`conv_direct`]) held per thread at most, in floats.
const DIRECT_FLOATS: usize = 1 << 16;
/// Output-gradient values one weight-gradient call reads per channel block.
const WG_FLOATS: usize = 4096;

/// The direct-kernel plan of a convolution on `g` (`cin` channels in,
/// `cout` out), when one applies: stride 1, 1-d or 2-d, one group, AVX-512,
/// output lines of at least 8 (a 16-wide vector half used) and not a 1x1
/// kernel on the unpadded image (one GEMM on the image itself).
fn direct_plan(g: &Geom, cin: usize, cout: usize, groups: usize) -> Option<(Flat, Plan)> {
    if groups != 1 || g.is_identity() || !conv_direct::available() {
        return None;
    }
    let f = g.flat().filter(|f| f.wo >= 8)?;
    let ho = g.l() / f.wo;
    let plan = Plan::new(cin, cout, f.pimg, f.wp, ho, f.wo, f.offs.clone());
    Some((f, plan))
}

/// The stride-1 convolution a stride-1 transposed convolution on `g` is
/// (its input `cin` channels over `g.out`): the kernel flipped, padding
/// `d * (k - 1) - p`. None with other strides, groups or an output padding.
fn transposed_as_conv(g: &Geom, p: &ConvParams, cin: usize) -> Option<Geom> {
    if p.groups != 1 || p.stride.iter().any(|&s| s != 1) || p.output_padding.iter().any(|&o| o != 0)
    {
        return None;
    }
    let pad = (0..g.size.len())
        .map(|j| (g.dil[j] * (g.kernel[j] - 1)).checked_sub(g.pad[j]))
        .collect::<Option<Vec<usize>>>()?;
    Some(Geom {
        channels: cin,
        size: g.out.clone(),
        kernel: g.kernel.clone(),
        stride: g.stride.clone(),
        pad,
        dil: g.dil.clone(),
        out: g.size.clone(),
        segs: OnceLock::new(),
    })
}

/// Images `i0..i0 + nb` of `x [N, cin, size]` padded into `xp` (each
/// `plan.img()` long, see [`conv_direct`]).
///
/// # Safety
/// `x` must hold those images contiguous.
unsafe fn pad_images(
    f: &Flat,
    plan: &Plan,
    x: Addr,
    isz: usize,
    i0: usize,
    nb: usize,
    xp: &mut [f32],
) {
    let (cin, img) = (plan.cin, plan.img());
    let lines = conv_direct::Lines {
        h: f.h,
        w: f.w,
        at: f.ph * f.wp + f.pw,
        wp: f.wp,
    };
    for b in 0..nb {
        let dst = &mut xp[b * img..(b + 1) * img];
        conv_direct::pad(plan, &lines, x.at::<f32>((i0 + b) * cin * isz), dst);
    }
}

/// Convolution forward on the direct kernels: `x [N, cin, size]` (`isz`
/// values per channel), weight `w(oc, ic, tap)`, `out [N, cout, grid]`.
/// Threads claim one image at a time (see [`claim_items`]), the last few
/// split by output channels.
///
/// # Safety
/// As [`conv_kernel`].
#[allow(clippy::too_many_arguments)]
unsafe fn direct_conv(
    f: &Flat,
    plan: &Plan,
    n: usize,
    isz: usize,
    x: Addr,
    w: impl Fn(usize, usize, usize) -> f32,
    bias: Option<Addr>,
    out: Addr,
) -> Result<()> {
    let (cout, l, img, blocks) = (plan.cout, plan.l, plan.img(), plan.blocks());
    let wp = plan.pack(w);
    let mut bv = zeroed::<f32>(blocks * OB)?;
    if let Some(b) = bias {
        for (oc, v) in bv.iter_mut().take(cout).enumerate() {
            *v = *b.at::<f32>(oc);
        }
    }
    let work = cout * plan.cin * plan.offs.len() * l;
    let threads = num_threads();
    // Whole images first, then the last `threads` images (all of them in
    // a smaller batch) in `split` ranges of channel blocks, so that threads
    // finishing at different times wait at most a part of an image (each
    // part pads its image again, a small copy).
    let split = threads.min(blocks).max(1);
    let tail = if split > 1 { n.min(threads) } else { 0 };
    let whole = n - tail;
    let items = whole + tail * split;
    let scratch = || Scratch::<f32>::new(img);
    claim_items(items, n * work / items.max(1), scratch, |xp, t| {
        let (i, b0, b1) = if t < whole {
            (t, 0, blocks)
        } else {
            let (j, q) = ((t - whole) / split, (t - whole) % split);
            (whole + j, q * blocks / split, (q + 1) * blocks / split)
        };
        // SAFETY: image i of `x`; its blocks b0..b1 of `out` belong to
        // this item alone; `xp` holds one padded image.
        pad_images(f, plan, x, isz, i, 1, xp);
        let o = out.at::<f32>(i * cout * l);
        conv_direct::forward(plan, 1, xp.as_ptr(), &wp, &bv, o, b0..b1)
    })
}

/// The Winograd plan of a convolution of `n` images on `g` (`cin` channels
/// in, `cout` out), when one applies: 2-d, 3x3 kernel, stride and dilation 1, one
/// group, AVX-512 (as the direct kernels) and channels enough to pay for
/// the transforms (see [`winograd`]).
fn winograd_plan(
    g: &Geom,
    n: usize,
    cin: usize,
    cout: usize,
    groups: usize,
) -> Option<winograd::Plan> {
    let fits = groups == 1
        && g.size.len() == 2
        && g.kernel == [3, 3]
        && g.stride == [1, 1]
        && g.dil == [1, 1]
        && cin >= WINOGRAD_CHANNELS
        && cout >= WINOGRAD_CHANNELS;
    if !fits || !conv_direct::available() {
        return None;
    }
    let plan = winograd::Plan::new(n, cin, cout, (g.size[0], g.size[1]), (g.pad[0], g.pad[1]))?;
    (plan.ho == g.out[0] && plan.wo == g.out[1]).then_some(plan)
}

/// Input and output channels from which [`winograd`] beats the direct
/// kernels (one thread, batch 32 of 16x16 images, time against the direct
/// kernels: 24 -> 24 channels 1.3x, 16 -> 64 1.0x, 32 -> 32 0.9x, 64 -> 64
/// 0.7x, 128 -> 128 on 8x8 images 0.4x).
const WINOGRAD_CHANNELS: usize = 32;

/// Convolution forward on [`winograd`]: `x [N, cin, h, w]`, weight
/// `w(oc, ic, tap)`, `out [N, cout, ho, wo]`. Threads claim blocks of
/// tiles (fixed by the plan, so results do not depend on the thread
/// count).
///
/// # Safety
/// As [`conv_kernel`].
unsafe fn winograd_conv(
    plan: &winograd::Plan,
    x: Addr,
    w: impl Fn(usize, usize, usize) -> f32,
    bias: Option<Addr>,
    out: Addr,
) -> Result<()> {
    let (cin, cout) = (plan.cin, plan.cout);
    let (isz, osz) = (plan.h * plan.w, plan.ho * plan.wo);
    let u = plan.transform_filters(w);
    let mut bv = zeroed::<f32>(cout)?;
    if let Some(b) = bias {
        for (oc, v) in bv.iter_mut().enumerate() {
            *v = *b.at::<f32>(oc);
        }
    }
    let blocks = plan.blocks();
    let work = 16 * cin * cout * plan.max_tiles();
    let scratch = || Scratch::<f32>::new(plan.scratch());
    claim_items(blocks.len(), work, scratch, |s, i| {
        let blk = blocks[i];
        // SAFETY: images b0..b0 + nb of `x`; the block's output lines
        // belong to this item alone.
        let xs = std::slice::from_raw_parts(x.at::<f32>(blk.b0 * cin * isz), blk.nb * cin * isz);
        plan.run_block(blk, xs, &u, &bv, out.at::<f32>(blk.b0 * cout * osz), s);
    })
}

/// Items `0..n` (about `work` multiply-adds each) claimed one at a time
/// from a shared counter by the threads, each with its own state from
/// `init`: a thread the OS runs late, or one slowed by other work, takes
/// fewer items instead of holding up the call with a fixed share.
fn claim_items<S>(
    n: usize,
    work: usize,
    init: impl Fn() -> Result<S> + Sync,
    item: impl Fn(&mut S, usize) + Sync,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let err = ErrSlot::new();
    let slots = num_threads().clamp(1, n.max(1));
    for_ranges(slots, n.saturating_mul(work) / 16 / slots + 1, 1, |s, e| {
        let mut state = match init() {
            Ok(v) => v,
            Err(er) => return err.set(er),
        };
        for _ in s..e {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                item(&mut state, i);
            }
        }
    });
    err.into_result()
}

/// Weight gradient on the direct kernels: `src [N, cin, size]` (`isz`
/// values per channel), `gout [N, cout, grid]`, `dw [cout, cin, K]`.
/// Threads take batch chunks into private sums, or (input channel, tap)
/// pairs (output-channel blocks on [`conv_direct::weight_grad`]) when
/// there are fewer images than threads. With enough output channels the
/// sums are kept transposed (`[cin * K, cout_lanes]`, see
/// [`conv_direct::weight_grad_lanes`]) and transposed back at the end.
///
/// # Safety
/// As [`weight_grad_kernel`].
unsafe fn direct_weight_grad(
    f: &Flat,
    plan: &Plan,
    n: usize,
    isz: usize,
    src: Addr,
    gout: Addr,
    dw: Addr,
) -> Result<()> {
    let (cout, l, img) = (plan.cout, plan.l, plan.img());
    let ckk = plan.cin * plan.offs.len();
    let lanes = plan.lanes_fit();
    let cl = plan.cout_lanes();
    let size = if lanes { ckk * cl } else { cout * ckk };
    // What a single image splits over threads: pairs (whole tiles of 6),
    // or channel blocks.
    let (units, align) = if lanes { (ckk, 6) } else { (plan.blocks(), 1) };
    let threads = num_threads();
    let parts = if n >= threads { threads.max(1) } else { 1 };
    let mut partial = zeroed::<f32>(parts * size)?;
    let pp = Addr::of(partial.as_mut_ptr());
    // Images per kernel call on channel blocks: the gradient rows of one
    // block (`OB x l` per image) should stay in L1 while the tiles of that
    // block run over them (3->64 channels at 32x32: one image, 1.5x faster
    // than sixteen); each call ends in one horizontal sum per accumulator.
    let per = if lanes {
        1
    } else {
        (WG_FLOATS / (OB * l).max(1))
            .min(2 * DIRECT_FLOATS / img)
            .clamp(1, 8)
    };
    let err = ErrSlot::new();
    // Images i0..i1 into sums `acc`, units u0..u1.
    let run = |i0: usize, i1: usize, acc: *mut f32, u0: usize, u1: usize| {
        let nb_max = per.min(i1 - i0).max(1);
        let bufs = (
            Scratch::<f32>::new(nb_max * img),
            Scratch::<f32>::new(if lanes { l * cl } else { 0 }),
        );
        let (mut xp, mut gt) = match bufs {
            (Ok(a), Ok(b)) => (a, b),
            (Err(er), _) | (_, Err(er)) => return err.set(er),
        };
        let mut i = i0;
        while i < i1 {
            let nb = nb_max.min(i1 - i);
            // SAFETY: images i..i + nb of `src` and `gout`; the buffers
            // and the rows of units u0..u1 of `acc` are this call's.
            pad_images(f, plan, src, isz, i, nb, &mut xp);
            let g = gout.at::<f32>(i * cout * l);
            if lanes {
                conv_direct::transpose_lanes(plan, g, gt.as_mut_ptr());
                conv_direct::weight_grad_lanes(plan, xp.as_ptr(), gt.as_ptr(), acc, u0..u1);
            } else {
                conv_direct::weight_grad(plan, nb, xp.as_ptr(), g, acc, u0..u1);
            }
            i += nb;
        }
    };
    let work = size * l;
    if parts > 1 {
        for_ranges(parts, (n / parts) * work / 16 + 1, 1, |s, e| {
            for part in s..e {
                run(
                    part * n / parts,
                    (part + 1) * n / parts,
                    pp.at::<f32>(part * size),
                    0,
                    units,
                );
            }
        });
    } else {
        for_ranges(units, n * work / units / 16 + 1, align, |u0, u1| {
            run(0, n, pp.at::<f32>(0), u0, u1)
        });
    }
    err.into_result()?;
    let (first, rest) = partial.split_at_mut(size);
    for p in rest.chunks(size.max(1)) {
        for (o, &v) in first.iter_mut().zip(p) {
            *o += v;
        }
    }
    let out = std::slice::from_raw_parts_mut(dw.at::<f32>(0), cout * ckk);
    if lanes {
        // [cin * K, cout_lanes] -> [cout_lanes, cin * K], then the first
        // cout rows.
        let mut t = Scratch::<f32>::new(size)?;
        conv_direct::transpose(first.as_ptr(), ckk, cl, t.as_mut_ptr(), ckk);
        out.copy_from_slice(&t[..cout * ckk]);
    } else {
        out.copy_from_slice(first);
    }
    Ok(())
}

/// Transposed convolution forward: `x [N, cin, grid]`, `w [cin, cout/g, K]`,
/// `out [N, cout, size]` (`geom`'s image is the output).
///
/// # Safety
/// As [`conv_kernel`].
unsafe fn conv_transpose_kernel<T: Real>(
    g: &Geom,
    ch: Chans,
    x: Addr,
    w: Addr,
    bias: Option<Addr>,
    out: Addr,
) -> Result<()> {
    let (k, l, isz) = (g.k(), g.l(), g.img());
    let (cg, ckg) = (ch.cin / ch.groups, ch.cout / ch.groups * k);
    let rows = g.rows();
    let gemms = Gemms::new(ch, k, w, true);
    // Columns c0..c1 of image i's column matrix into `col`.
    let product = |i: usize, col: *mut T, c0: usize, c1: usize| {
        gemms.run(
            (c1 - c0, l),
            col.add(c0),
            false,
            x.at::<T>(i * ch.cin * l + c0),
        );
    };
    let init =
        |i: usize, c0: usize, c1: usize| init_channels::<T>(out, bias, ch.cout, isz, i, c0, c1);
    let work = ch.cin * ckg * l;
    let threads = num_threads();
    // Small images: several per GEMM, as in `conv_kernel` (this is also the
    // input gradient of a convolution).
    let by_images = ch.n >= threads || work < SPLIT_WORK || threads == 1;
    let per_gemm = images_per_gemm::<T>(rows * l, l, ch.n);
    let batched = per_gemm >= MIN_BATCH && by_images;
    if let Some(f) = g.flat().filter(|_| batched) {
        return conv_transpose_flat::<T>(g, &f, ch, x, w, bias, out);
    }
    if batched {
        let lens = |b: usize| [rows * b * l, ch.cin * b * l];
        return in_batches::<T, 2>(ch.n, work, per_gemm, lens, |[col, xb], i0, nb| {
            let ld = nb * l;
            for c in 0..ch.cin {
                for b in 0..nb {
                    // SAFETY: channel c of image i0 + b of `x`.
                    let from =
                        std::slice::from_raw_parts(x.at::<T>(((i0 + b) * ch.cin + c) * l), l);
                    xb[c * ld + b * l..c * ld + (b + 1) * l].copy_from_slice(from);
                }
            }
            gemms.run((ld, ld), col.as_mut_ptr(), false, xb.as_ptr());
            for b in 0..nb {
                // SAFETY: image i0 + b of `out` belongs to this thread.
                g.col2im_channels_ld(&col[b * l..], init(i0 + b, 0, ch.cout), 0, ch.cout, ld);
            }
        });
    }
    if by_images {
        return in_batches::<T, 1>(
            ch.n,
            work,
            1,
            |_| [rows * l],
            |[col], i, _| {
                product(i, col.as_mut_ptr(), 0, l);
                // SAFETY: image i of `out` belongs to this thread.
                g.col2im_channels(col, init(i, 0, ch.cout), 0, ch.cout);
            },
        );
    }
    let mut col = Scratch::<T>::new(rows * l)?;
    let c = Addr::of(col.as_mut_ptr());
    for i in 0..ch.n {
        for_ranges(l, cg * ckg / 16 + 1, 16, |c0, c1| {
            product(i, c.at::<T>(0), c0, c1)
        });
        let cols = std::slice::from_raw_parts(c.at::<T>(0), rows * l);
        for_ranges(ch.cout, k * l, 1, |c0, c1| {
            // SAFETY: channels c0..c1 of image i belong to this call.
            g.col2im_channels(cols, init(i, c0, c1), c0, c1)
        });
    }
    Ok(())
}

/// Channels `c0..c1` of output image `i`, filled with the bias (or zero).
///
/// # Safety
/// `out` must hold `[N, cout, isz]` contiguous elements and those channels
/// must belong to the caller alone; `bias` must hold `cout` elements.
unsafe fn init_channels<'a, T: Real>(
    out: Addr,
    bias: Option<Addr>,
    cout: usize,
    isz: usize,
    i: usize,
    c0: usize,
    c1: usize,
) -> &'a mut [T] {
    let o = std::slice::from_raw_parts_mut(out.at::<T>((i * cout + c0) * isz), (c1 - c0) * isz);
    for (c, chunk) in o.chunks_mut(isz.max(1)).enumerate() {
        chunk.fill(bias.map_or(T::ZERO, |b| *b.at::<T>(c0 + c)));
    }
    o
}

/// Weight gradient `dw [cout, cin/g * K] = sum_n gout[n] @ im2col(src[n])^T`
/// per group, for `src [N, cin, size]` (unfolded with `geom`) and
/// `gout [N, cout, grid]`. Threads take batch chunks into private sums.
///
/// # Safety
/// As [`conv_kernel`], `dw` being the output.
unsafe fn weight_grad_kernel<T: Real>(
    g: &Geom,
    ch: Chans,
    src: Addr,
    gout: Addr,
    dw: Addr,
) -> Result<()> {
    let (k, l, isz) = (g.k(), g.l(), g.img());
    let (og, ckg) = (ch.cout / ch.groups, ch.cin / ch.groups * k);
    let (rows, identity, size) = (g.rows(), g.is_identity(), ch.cout * ckg);
    // Wide enough channel runs to copy from a channels-last image (the
    // product then comes out in (tap, channel) order, permuted at the end).
    let channels_last = ch.groups == 1 && ch.cin >= 8 && !identity;
    let chunks = ch.n.min(num_threads()).max(1);
    let mut partial = zeroed::<T>(chunks * size)?;
    let pp = Addr::of(partial.as_mut_ptr());
    let err = ErrSlot::new();
    // Images per GEMM: their transposed column matrices stacked (as many
    // as stay in L2) make one product of depth `b * L`.
    let per = (rows * l).max(1);
    let bmax =
        (COL_BYTES / (per * std::mem::size_of::<T>())).clamp(1, ch.n.div_ceil(chunks).max(1));
    for_ranges(chunks, (ch.n / chunks) * size * l / 16 + 1, 1, |s, e| {
        let bufs = (
            Scratch::<T>::new(if channels_last {
                ch.cin * isz
            } else if identity {
                0
            } else {
                per
            }),
            Scratch::<T>::new(bmax * per),
            Scratch::<T>::new(if bmax > 1 { ch.cout * bmax * l } else { 0 }),
        );
        let (mut col, mut colt, mut gbuf) = match bufs {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            (Err(er), _, _) | (_, Err(er), _) | (_, _, Err(er)) => return err.set(er),
        };
        for chunk in s..e {
            let acc = pp.at::<T>(chunk * size);
            let (i0, i1) = (chunk * ch.n / chunks, (chunk + 1) * ch.n / chunks);
            let mut i = i0;
            while i < i1 {
                let b = bmax.min(i1 - i);
                for j in 0..b {
                    // SAFETY: image i + j of `src`; the buffers and `acc`
                    // are this thread's.
                    let img = std::slice::from_raw_parts(
                        src.at::<T>((i + j) * ch.cin * isz),
                        ch.cin * isz,
                    );
                    if channels_last {
                        transpose(img, &mut col, ch.cin, isz);
                        g.im2row_channels_last(&col, &mut colt[j * per..(j + 1) * per]);
                        continue;
                    }
                    let cm: &[T] = if identity {
                        img
                    } else {
                        g.im2col_rows(img, &mut col, 0, rows);
                        &col
                    };
                    // dw = gout @ col^T per group, with col^T laid out in
                    // memory (L x rows): a right operand read along its rows
                    // packs ~4x faster than a transposed view.
                    transpose(cm, &mut colt[j * per..(j + 1) * per], rows, l);
                }
                // The left operand: the b images' gradients side by side
                // (`cout x b*L`), or image i's own when b is 1.
                let (lhs, lrs) = if b == 1 {
                    (gout.at::<T>(i * ch.cout * l) as *const T, l)
                } else {
                    for o in 0..ch.cout {
                        for j in 0..b {
                            let from = std::slice::from_raw_parts(
                                gout.at::<T>(((i + j) * ch.cout + o) * l),
                                l,
                            );
                            let at = o * b * l + j * l;
                            gbuf[at..at + l].copy_from_slice(from);
                        }
                    }
                    (gbuf.as_ptr(), b * l)
                };
                for gi in 0..ch.groups {
                    T::gemm(
                        og,
                        ckg,
                        b * l,
                        (acc.add(gi * og * ckg), ckg as isize, 1),
                        true,
                        (lhs.add(gi * og * lrs), lrs as isize, 1),
                        (colt.as_ptr().add(gi * ckg), rows as isize, 1),
                    );
                }
                i += b;
            }
        }
    });
    err.into_result()?;
    let (first, rest) = partial.split_at_mut(size);
    for p in rest.chunks(size.max(1)) {
        for (o, &v) in first.iter_mut().zip(p) {
            *o += v;
        }
    }
    let out = std::slice::from_raw_parts_mut(dw.at::<T>(0), size);
    if channels_last {
        // [cout, K, cin] -> [cout, cin, K]
        for (o, from) in out.chunks_mut(ckg).zip(first.chunks(ckg)) {
            transpose(from, o, k, ch.cin);
        }
    } else {
        out.copy_from_slice(first);
    }
    Ok(())
}

/// `dst (cols x rows) = src (rows x cols)^T`, in cache-sized tiles that
/// write along `dst`'s rows.
fn transpose<T: Real>(src: &[T], dst: &mut [T], rows: usize, cols: usize) {
    const B: usize = 16;
    let n = rows * cols;
    if src.len() < n || dst.len() < n {
        return;
    }
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for c0 in (0..cols).step_by(B) {
        let c1 = (c0 + B).min(cols);
        for r0 in (0..rows).step_by(B) {
            let r1 = (r0 + B).min(rows);
            for c in c0..c1 {
                for r in r0..r1 {
                    // SAFETY: r < rows and c < cols, and both buffers hold
                    // rows * cols elements (checked above).
                    unsafe { *d.add(c * rows + r) = *s.add(r * cols + c) };
                }
            }
        }
    }
}

/// The dtype kernels compute in: f32 for single and half precision, f64
/// for double and integers (exact for products below 2^53).
fn compute_dtype(d: DType) -> DType {
    match d {
        DType::F32 | DType::F16 | DType::BF16 => DType::F32,
        _ => DType::F64,
    }
}

/// A contiguous copy of `t` in `dtype` (the tensor itself when it already is).
fn prepared(t: &Tensor, dtype: DType) -> Result<Tensor> {
    copy::contiguous(&copy::to_dtype(t, dtype, false)?)
}

fn addr(t: &Tensor) -> Addr {
    Addr(t.raw_ptr() as usize)
}

/// Legacy tensor type names, as PyTorch's input/weight dtype error.
fn legacy_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "torch.FloatTensor",
        DType::F64 => "torch.DoubleTensor",
        DType::F16 => "torch.HalfTensor",
        DType::BF16 => "torch.BFloat16Tensor",
        DType::I64 => "torch.LongTensor",
        DType::I32 => "torch.IntTensor",
        DType::I16 => "torch.ShortTensor",
        DType::I8 => "torch.CharTensor",
        DType::U8 => "torch.ByteTensor",
        DType::Bool => "torch.BoolTensor",
    }
}

/// C++ type names, as PyTorch's input/bias dtype error.
fn c_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float",
        DType::F64 => "double",
        DType::F16 => "c10::Half",
        DType::BF16 => "c10::BFloat16",
        DType::I64 => "long int",
        DType::I32 => "int",
        DType::I16 => "short int",
        DType::I8 => "signed char",
        DType::U8 => "unsigned char",
        DType::Bool => "bool",
    }
}

fn join(v: &[usize], sep: &str) -> String {
    v.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

fn tuple(v: &[usize]) -> String {
    format!("({})", join(v, ", "))
}

/// Convolution hyper-parameters, one value per spatial dim.
#[derive(Clone, Debug)]
pub struct ConvParams {
    pub stride: Vec<usize>,
    pub padding: Vec<usize>,
    pub dilation: Vec<usize>,
    pub transposed: bool,
    pub output_padding: Vec<usize>,
    pub groups: usize,
}

/// `input` convolved with `weight` (PyTorch's `torch.convolution`): `dim`
/// spatial dims (1, 2 or 3), input batched (`N, C, spatial`) or not
/// (`C, spatial`); `stride`, `padding`, `dilation`, `output_padding` have
/// one value or `dim` values.
#[allow(clippy::too_many_arguments)]
pub fn convolution(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: &[i64],
    padding: &[i64],
    dilation: &[i64],
    transposed: bool,
    output_padding: &[i64],
    groups: i64,
    dim: usize,
) -> Result<Tensor> {
    let name = if transposed {
        format!("conv_transpose{dim}d")
    } else {
        format!("conv{dim}d")
    };
    let nd = input.ndim();
    if nd != dim + 1 && nd != dim + 2 {
        return Err(Error::Runtime(format!(
            "Expected {}D (unbatched) or {}D (batched) input to {name}, but got input of size: {}",
            dim + 1,
            dim + 2,
            fmt_shape(input.shape())
        )));
    }
    let batched = nd == dim + 2;
    let x = if batched {
        input.clone()
    } else {
        shape::unsqueeze(input, 0)?
    };
    let wd = weight.ndim();
    if wd < 3 {
        return Err(Error::Runtime(
            "weight should have at least three dimensions".into(),
        ));
    }
    let k = wd - 2;
    if k > MAX_DIMS {
        return Err(Error::NotImplemented(format!(
            "convolution over more than {MAX_DIMS} spatial dims"
        )));
    }
    let expand = |what: &str, v: &[i64]| -> Result<Vec<i64>> {
        match v.len() {
            1 => Ok(vec![v[0]; k]),
            n if n == k => Ok(v.to_vec()),
            _ => Err(Error::Runtime(format!(
                "expected {what} to be a single integer value or a list of {k} values to match the convolution dimensions, but got {what}={}",
                crate::tensor::layout::fmt_i64s(v)
            ))),
        }
    };
    let (s, p, d) = (
        expand("stride", stride)?,
        expand("padding", padding)?,
        expand("dilation", dilation)?,
    );
    let op = if transposed {
        expand("output_padding", output_padding)?
    } else {
        vec![0; k]
    };
    if x.ndim() != wd {
        return Err(Error::Runtime(format!(
            "Expected {wd}-dimensional input for {wd}-dimensional weight {}, but got {}-dimensional input of size {} instead",
            fmt_shape(weight.shape()),
            x.ndim(),
            fmt_shape(x.shape())
        )));
    }
    if s.iter().any(|&v| v <= 0) {
        return Err(Error::Runtime(
            "non-positive stride is not supported".into(),
        ));
    }
    if p.iter().any(|&v| v < 0) {
        return Err(Error::Runtime("negative padding is not supported".into()));
    }
    if op.iter().any(|&v| v < 0) {
        return Err(Error::Runtime(
            "negative output_padding is not supported".into(),
        ));
    }
    if d.iter().any(|&v| v <= 0) {
        return Err(Error::Runtime(
            "non-positive dilation is not supported".into(),
        ));
    }
    if groups <= 0 {
        return Err(Error::Runtime(
            "non-positive groups is not supported".into(),
        ));
    }
    let u = |v: Vec<i64>| v.into_iter().map(|x| x as usize).collect::<Vec<_>>();
    let params = ConvParams {
        stride: u(s),
        padding: u(p),
        dilation: u(d),
        transposed,
        output_padding: u(op),
        groups: groups as usize,
    };
    let out = conv_nd(&x, weight, bias, &params)?;
    if batched {
        Ok(out)
    } else {
        shape::squeeze(&out, Some(&[0]))
    }
}

/// Checks shapes and dtypes and returns the output spatial size.
fn check_conv(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: &ConvParams) -> Result<Vec<usize>> {
    if x.dtype() != w.dtype() {
        return Err(Error::Runtime(format!(
            "Input type ({}) and weight type ({}) should be the same or input should be a MKLDNN tensor and weight is a dense tensor",
            legacy_name(x.dtype()),
            legacy_name(w.dtype())
        )));
    }
    if let Some(b) = bias {
        if b.dtype() != x.dtype() {
            return Err(Error::Runtime(format!(
                "Input type ({}) and bias type ({}) should be the same",
                c_name(x.dtype()),
                c_name(b.dtype())
            )));
        }
    }
    if x.dtype() == DType::Bool {
        return Err(Error::NotImplemented(format!(
            "\"slow_conv{}d_cpu\" not implemented for 'Bool'",
            x.ndim() - 2
        )));
    }
    let (xs, ws) = (x.shape(), w.shape());
    let g = p.groups;
    let ws_s = fmt_shape(ws);
    if ws[0] % g != 0 {
        return Err(Error::Runtime(format!(
            "Given groups={g}, expected weight to be divisible by {g} at dimension 0, but got weight of size [{ws_s}] instead"
        )));
    }
    let (expect_bias, expect_in) = if p.transposed {
        (ws[1] * g, ws[0])
    } else {
        (ws[0], ws[1] * g)
    };
    if xs[1] != expect_in {
        let head = if p.transposed {
            "Given transposed=1".to_string()
        } else {
            format!("Given groups={g}")
        };
        return Err(Error::Runtime(format!(
            "{head}, weight of size {ws_s}, expected input{} to have {expect_in} channels, but got {} channels instead",
            fmt_shape(xs),
            xs[1]
        )));
    }
    if let Some(b) = bias {
        if b.ndim() != 1 || b.numel() != expect_bias {
            let head = if p.transposed {
                "Given transposed=1, weight"
            } else {
                "Given weight"
            };
            return Err(Error::Runtime(format!(
                "{head} of size {ws_s}, expected bias to be 1-dimensional with {expect_bias} elements, but got bias of size {} instead",
                fmt_shape(b.shape())
            )));
        }
    }
    let k = &ws[2..];
    let ins = &xs[2..];
    let ek: Vec<usize> = k
        .iter()
        .zip(&p.dilation)
        .map(|(&k, &d)| d * (k.max(1) - 1) + 1)
        .collect();
    if p.transposed {
        let bad = p
            .output_padding
            .iter()
            .zip(&p.stride)
            .zip(&p.dilation)
            .any(|((&o, &s), &d)| o >= s && o >= d);
        if bad {
            // 1-d goes through PyTorch's 2-d kernel: a height of 1 first.
            let names: &[&str] = match k.len() {
                1 => &["height", "width"],
                2 => &["height", "width"],
                _ => &["depth", "height", "width"],
            };
            let pad1 = |v: &[usize], fill: usize| -> Vec<usize> {
                if k.len() == 1 {
                    vec![fill, v[0]]
                } else {
                    v.to_vec()
                }
            };
            let mut msg = String::from(
                "output padding must be smaller than either stride or dilation, but got",
            );
            for (label, v) in [
                ("output_padding", pad1(&p.output_padding, 0)),
                ("stride", pad1(&p.stride, 1)),
                ("dilation", pad1(&p.dilation, 1)),
            ] {
                for (n, val) in names.iter().zip(&v) {
                    msg.push_str(&format!(" {label}_{n}: {val}"));
                }
            }
            return Err(Error::Runtime(msg));
        }
        let out: Vec<i64> = (0..k.len())
            .map(|j| {
                (ins[j] as i64 - 1) * p.stride[j] as i64 - 2 * p.padding[j] as i64
                    + ek[j] as i64
                    + p.output_padding[j] as i64
            })
            .collect();
        if out.iter().any(|&o| o < 0) {
            return Err(Error::Runtime(format!(
                "Given input size per channel: {}. Calculated output size per channel: ({}). Output size is too small",
                tuple(ins),
                out.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" x ")
            )));
        }
        return Ok(out.into_iter().map(|o| o as usize).collect());
    }
    let padded: Vec<usize> = ins
        .iter()
        .zip(&p.padding)
        .map(|(&i, &p)| i + 2 * p)
        .collect();
    if padded.iter().zip(&ek).any(|(&a, &b)| a < b) {
        return Err(Error::Runtime(format!(
            "Calculated padded input size per channel: ({}). Kernel size: ({}). Kernel size can't be greater than actual input size",
            join(&padded, " x "),
            join(&ek, " x ")
        )));
    }
    Ok((0..k.len())
        .map(|j| (padded[j] - ek[j]) / p.stride[j] + 1)
        .collect())
}

/// The convolution on batched input, recorded as `ConvolutionBackward0`.
fn conv_nd(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: &ConvParams) -> Result<Tensor> {
    let out_size = check_conv(x, w, bias, p)?;
    let rec = Recorder::new_opt("ConvolutionBackward0", &[Some(x), Some(w), bias]);
    let out = conv_forward(x, w, bias, p, &out_size)?;
    if let Some(mut rec) = rec {
        let ix = if rec.needs(1) {
            Some(rec.save(x)?)
        } else {
            None
        };
        let iw = if rec.needs(0) {
            Some(rec.save(w)?)
        } else {
            None
        };
        let in_size = x.shape()[2..].to_vec();
        let wshape = w.shape().to_vec();
        let p = p.clone();
        rec.finish(&[&out], move |ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None, None, None]);
            };
            let g = dense_grad(g)?;
            let gx = match iw {
                Some(i) if ctx.needs(0) => Some(input_grad(&g, &ctx.saved(i)?, &p, &in_size)?),
                _ => None,
            };
            let gw = match ix {
                Some(i) if ctx.needs(1) => {
                    let x = ctx.saved(i)?;
                    Some(if p.transposed {
                        weight_grad(&g, &x, &wshape, &p)?
                    } else {
                        weight_grad(&x, &g, &wshape, &p)?
                    })
                }
                _ => None,
            };
            let gb = if ctx.needs(2) {
                // Spatial dims first (contiguous rows: fast), then the batch.
                let dims: Vec<i64> = (2..g.ndim() as i64).collect();
                let per_image = reduce::sum(&g, Some(&dims), false, None)?;
                Some(reduce::sum(&per_image, Some(&[0]), false, None)?)
            } else {
                None
            };
            Ok(vec![gx, gw, gb])
        });
    }
    Ok(out)
}

/// The incoming gradient as a contiguous tensor, made once for all three
/// gradients (`y.sum().backward()` hands over an expanded scalar: a fill).
/// Left as is when the backward is recorded.
fn dense_grad(g: Tensor) -> Result<Tensor> {
    if g.is_contiguous() || needs_grad(&[&g]) {
        return Ok(g);
    }
    if g.numel() > 0 && g.strides().iter().all(|&s| s == 0) {
        return crate::ops::creation::full(g.shape(), g.get_scalar(0), g.dtype());
    }
    copy::contiguous(&g)
}

/// grad_input: the adjoint convolution of `g`, cut to the input's size.
fn input_grad(g: &Tensor, w: &Tensor, p: &ConvParams, in_size: &[usize]) -> Result<Tensor> {
    let mut q = p.clone();
    q.transposed = !p.transposed;
    if p.transposed {
        q.output_padding = vec![0; in_size.len()];
    } else {
        // The output padding that restores the rows the stride dropped.
        let gs = &g.shape()[2..];
        let ks = &w.shape()[2..];
        q.output_padding = (0..in_size.len())
            .map(|j| {
                let base = (gs[j] - 1) * p.stride[j] + p.dilation[j] * (ks[j] - 1) + 1;
                (in_size[j] + 2 * p.padding[j]).saturating_sub(base)
            })
            .collect();
        if q.output_padding
            .iter()
            .zip(&q.stride)
            .zip(&q.dilation)
            .any(|((&o, &s), &d)| o >= s && o >= d)
        {
            // Out of conv_transpose's range (never for shapes a forward
            // produced): pad the result instead.
            q.output_padding = vec![0; in_size.len()];
        }
    }
    let r = conv_nd(g, w, None, &q)?;
    fit(&r, in_size)
}

/// `t [N, C, spatial]` narrowed or zero-padded (at the end) to `size`.
fn fit(t: &Tensor, size: &[usize]) -> Result<Tensor> {
    let mut r = t.clone();
    for (j, &want) in size.iter().enumerate() {
        let have = r.shape()[2 + j];
        if have > want {
            r = shape::narrow(&r, 2 + j as i64, 0, want as i64)?;
        } else if have < want {
            let mut zs = r.shape().to_vec();
            zs[2 + j] = want - have;
            let z = Tensor::zeros(&zs, r.dtype())?;
            r = crate::ops::join::cat(&[r, z], 2 + j as i64)?;
        }
    }
    Ok(r)
}

/// grad_weight `[G*og, cg, K]`: `sum_n gout[n] @ im2col(src[n])^T` per
/// group (see [`conv_nd`] for which of input and grad is which).
fn weight_grad(src: &Tensor, gout: &Tensor, wshape: &[usize], p: &ConvParams) -> Result<Tensor> {
    let kernel = &wshape[2..];
    let grid = gout.shape()[2..].to_vec();
    let (n, cin, cout) = (src.shape()[0], src.shape()[1], gout.shape()[1]);
    let groups = p.groups;
    let ck = cin / groups * kernel.iter().product::<usize>();
    let l: usize = grid.iter().product();
    if needs_grad(&[src, gout]) {
        use crate::ops::linalg::matmul;
        let i = |v: &[usize]| v.iter().map(|&d| d as i64).collect::<Vec<i64>>();
        let mut cols = im2col(
            src,
            &i(kernel),
            &i(&p.dilation),
            &i(&p.padding),
            &i(&p.stride),
        )?;
        let full = block_grid(
            &src.shape()[2..],
            kernel,
            &p.dilation,
            &p.padding,
            &p.stride,
        );
        if full != grid {
            let mut s = vec![n as i64, cols.shape()[1] as i64];
            s.extend(full.iter().map(|&d| d as i64));
            cols = fit(&shape::reshape(&cols, &s)?, &grid)?;
        }
        let g = groups as i64;
        let cols = shape::reshape(&cols, &[n as i64, g, ck as i64, l as i64])?;
        let go = shape::reshape(gout, &[n as i64, g, (cout / groups) as i64, l as i64])?;
        let prod = matmul::matmul(&go, &shape::transpose(&cols, 2, 3)?)?;
        let s = reduce::sum(&prod, Some(&[0]), false, None)?;
        return shape::reshape(&s, &i(wshape));
    }
    let cd = compute_dtype(src.dtype());
    let (sc, gc) = (prepared(src, cd)?, prepared(gout, cd)?);
    let dw = Tensor::empty(wshape, cd)?;
    let geom = Geom {
        channels: cin,
        size: src.shape()[2..].to_vec(),
        kernel: kernel.to_vec(),
        stride: p.stride.clone(),
        pad: p.padding.clone(),
        dil: p.dilation.clone(),
        out: grid,
        segs: OnceLock::new(),
    };
    let ch = Chans {
        n,
        cin,
        cout,
        groups,
    };
    let direct = direct_plan(&geom, cin, cout, groups).filter(|_| cd == DType::F32);
    // SAFETY: contiguous tensors of the shapes the kernel expects; `dw` is fresh.
    unsafe {
        match (cd, direct) {
            (_, Some((f, plan))) => {
                let isz = geom.img();
                direct_weight_grad(&f, &plan, n, isz, addr(&sc), addr(&gc), addr(&dw))?
            }
            (DType::F32, None) => {
                weight_grad_kernel::<f32>(&geom, ch, addr(&sc), addr(&gc), addr(&dw))?
            }
            (_, None) => weight_grad_kernel::<f64>(&geom, ch, addr(&sc), addr(&gc), addr(&dw))?,
        }
    }
    copy::to_dtype(&dw, src.dtype(), false)
}

/// The grid of kernel placements over an image of `size` (each
/// `(size + 2p - d(k-1) - 1) / s + 1`, as C integer division).
fn block_grid(size: &[usize], k: &[usize], d: &[usize], p: &[usize], s: &[usize]) -> Vec<usize> {
    block_grid_i(size, k, d, p, s)
        .into_iter()
        .map(|v| v.max(0) as usize)
        .collect()
}

fn block_grid_i(size: &[usize], k: &[usize], d: &[usize], p: &[usize], s: &[usize]) -> Vec<i64> {
    (0..size.len())
        .map(|j| {
            (size[j] as i64 + 2 * p[j] as i64 - d[j] as i64 * (k[j] as i64 - 1) - 1) / s[j] as i64
                + 1
        })
        .collect()
}

/// The forward kernels on prepared copies, cast back to the input dtype.
fn conv_forward(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: &ConvParams,
    out_size: &[usize],
) -> Result<Tensor> {
    let dtype = x.dtype();
    let cd = compute_dtype(dtype);
    let (xc, wc) = (prepared(x, cd)?, prepared(w, cd)?);
    let bc = bias.map(|b| prepared(b, cd)).transpose()?;
    let (n, cin) = (x.shape()[0], x.shape()[1]);
    let cout = if p.transposed {
        w.shape()[1] * p.groups
    } else {
        w.shape()[0]
    };
    let mut oshape = vec![n, cout];
    oshape.extend_from_slice(out_size);
    let out = Tensor::empty(&oshape, cd)?;
    if out.numel() == 0 {
        return copy::to_dtype(&out, dtype, false);
    }
    let (size, grid, channels) = if p.transposed {
        (out_size.to_vec(), x.shape()[2..].to_vec(), cout)
    } else {
        (x.shape()[2..].to_vec(), out_size.to_vec(), cin)
    };
    let geom = Geom {
        channels,
        size,
        kernel: w.shape()[2..].to_vec(),
        stride: p.stride.clone(),
        pad: p.padding.clone(),
        dil: p.dilation.clone(),
        out: grid,
        segs: OnceLock::new(),
    };
    let ch = Chans {
        n,
        cin,
        cout,
        groups: p.groups,
    };
    let (xa, wa, oa, ba) = (addr(&xc), addr(&wc), addr(&out), bc.as_ref().map(addr));
    // SAFETY: `xc`, `wc`, `bc` are contiguous in `cd` with the shapes
    // checked above; `out` is fresh.
    unsafe {
        let k = geom.k();
        let wino = if cd != DType::F32 {
            None
        } else if p.transposed {
            transposed_as_conv(&geom, p, cin)
                .and_then(|e| winograd_plan(&e, n, cin, cout, p.groups))
        } else {
            winograd_plan(&geom, n, cin, cout, p.groups)
        };
        // Winograd's transforms mix a tile's inputs, so an inf or NaN (or a
        // product overflowing there) would spread to outputs whose windows
        // never read it: inputs or weights of 2^60 and more take the direct
        // kernels, which keep PyTorch's values.
        let finite =
            |t: &Tensor| crate::cpu::kernels::all_below_f32(t.data_ptr::<f32>(), t.numel(), 60);
        if let Some(plan) = wino.filter(|_| finite(&xc) && finite(&wc)) {
            if p.transposed {
                // The transposed weight [cin, cout, K], flipped.
                let w = |oc: usize, ic: usize, t: usize| {
                    *wa.at::<f32>((ic * cout + oc) * k + (k - 1 - t))
                };
                winograd_conv(&plan, xa, w, ba, oa)?;
            } else {
                let w = |oc: usize, ic: usize, t: usize| *wa.at::<f32>((oc * cin + ic) * k + t);
                winograd_conv(&plan, xa, w, ba, oa)?;
            }
            return copy::to_dtype(&out, dtype, false);
        }
        let direct = if cd != DType::F32 {
            None
        } else if p.transposed {
            transposed_as_conv(&geom, p, cin)
                .and_then(|e| Some((direct_plan(&e, cin, cout, p.groups)?, e.img())))
        } else {
            direct_plan(&geom, cin, cout, p.groups).map(|d| (d, geom.img()))
        };
        if let Some(((f, plan), isz)) = direct {
            if p.transposed {
                // The transposed weight [cin, cout, K], flipped.
                let w = |oc: usize, ic: usize, t: usize| {
                    *wa.at::<f32>((ic * cout + oc) * k + (k - 1 - t))
                };
                direct_conv(&f, &plan, n, isz, xa, w, ba, oa)?;
            } else {
                let w = |oc: usize, ic: usize, t: usize| *wa.at::<f32>((oc * cin + ic) * k + t);
                direct_conv(&f, &plan, n, isz, xa, w, ba, oa)?;
            }
            return copy::to_dtype(&out, dtype, false);
        }
        match (cd, p.transposed) {
            (DType::F32, false) => conv_kernel::<f32>(&geom, ch, xa, wa, ba, oa)?,
            (DType::F32, true) => conv_transpose_kernel::<f32>(&geom, ch, xa, wa, ba, oa)?,
            (_, false) => conv_kernel::<f64>(&geom, ch, xa, wa, ba, oa)?,
            (_, true) => conv_transpose_kernel::<f64>(&geom, ch, xa, wa, ba, oa)?,
        }
    }
    copy::to_dtype(&out, dtype, false)
}

/// Positive-value checks of `unfold`/`fold` arguments, with PyTorch's
/// 2-d names.
fn check_fold_args(
    kernel: &[i64],
    dilation: &[i64],
    padding: &[i64],
    stride: &[i64],
) -> Result<()> {
    let nd = kernel.len();
    if nd == 0 || nd > MAX_DIMS {
        return Err(Error::Runtime(format!(
            "kernel_size must have between 1 and {MAX_DIMS} elements, but got {nd}"
        )));
    }
    for (what, v) in [
        ("dilation", dilation),
        ("padding", padding),
        ("stride", stride),
    ] {
        if v.len() != nd {
            return Err(Error::Runtime(format!(
                "{what} must have {nd} elements, but got {}",
                v.len()
            )));
        }
    }
    let names: &[&str] = match nd {
        1 => &["width"],
        2 => &["height", "width"],
        _ => &["depth", "height", "width"],
    };
    let fmt = |label: &str, v: &[i64]| -> String {
        v.iter()
            .enumerate()
            .map(|(j, x)| format!("{label}_{}: {x}", names.get(j).unwrap_or(&"dim")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if kernel.iter().any(|&k| k <= 0) {
        return Err(Error::Runtime(format!(
            "kernel size should be greater than zero, but got {}",
            fmt("kernel", kernel)
        )));
    }
    if stride.iter().any(|&k| k <= 0) {
        return Err(Error::Runtime(format!(
            "stride should be greater than zero, but got {}",
            fmt("stride", stride)
        )));
    }
    if dilation.iter().any(|&k| k <= 0) {
        return Err(Error::Runtime(format!(
            "dilation should be greater than zero, but got {}",
            fmt("dilation", dilation)
        )));
    }
    if padding.iter().any(|&k| k < 0) {
        return Err(Error::Runtime(format!(
            "padding should be non-negative, but got {}",
            fmt("pad", padding)
        )));
    }
    Ok(())
}

fn to_usize(v: &[i64]) -> Vec<usize> {
    v.iter().map(|&x| x as usize).collect()
}

fn fmt_i(v: &[i64]) -> String {
    format!(
        "({})",
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `F.unfold`: `input [N, C, spatial]` (or `[C, spatial]`) to its sliding
/// blocks `[N, C * prod(kernel), L]`, recorded as `Im2ColBackward0`
/// (derivative: `col2im`).
pub fn im2col(
    input: &Tensor,
    kernel: &[i64],
    dilation: &[i64],
    padding: &[i64],
    stride: &[i64],
) -> Result<Tensor> {
    let nd = kernel.len();
    check_fold_args(kernel, dilation, padding, stride)?;
    let xs = input.shape();
    let bad_dims = xs.len() != nd + 1 && xs.len() != nd + 2;
    if bad_dims || xs[xs.len() - nd..].contains(&0) || (xs.len() == nd + 2 && xs[1] == 0) {
        return Err(Error::Runtime(format!(
            "Expected {}D or {}D (batch mode) tensor with possibly 0 batch size and other non-zero dimensions for input, but got: {}",
            nd + 1,
            nd + 2,
            fmt_shape(xs)
        )));
    }
    if xs.len() == nd + 1 {
        let r = im2col(
            &shape::unsqueeze(input, 0)?,
            kernel,
            dilation,
            padding,
            stride,
        )?;
        return shape::squeeze(&r, Some(&[0]));
    }
    let (k, d, p, s) = (
        to_usize(kernel),
        to_usize(dilation),
        to_usize(padding),
        to_usize(stride),
    );
    let size = xs[2..].to_vec();
    let grid = block_grid_i(&size, &k, &d, &p, &s);
    if grid.iter().any(|&g| g < 1) {
        return Err(Error::Runtime(format!(
            "Given input with spatial size {}, kernel_size={}, dilation={}, padding={}, calculated shape of the array of sliding blocks as {}, but its components must be at least one.",
            tuple(&size),
            fmt_i(kernel),
            fmt_i(dilation),
            fmt_i(padding),
            fmt_i(&grid)
        )));
    }
    let geom = Geom {
        channels: xs[1],
        size: size.clone(),
        kernel: k,
        stride: s,
        pad: p,
        dil: d,
        out: to_usize(&grid),
        segs: OnceLock::new(),
    };
    let rec = Recorder::new("Im2ColBackward0", &[input]);
    let out = im2col_forward(input, &geom)?;
    if let Some(rec) = rec {
        let (kernel, dilation, padding, stride) = (
            kernel.to_vec(),
            dilation.to_vec(),
            padding.to_vec(),
            stride.to_vec(),
        );
        let osz: Vec<i64> = size.iter().map(|&v| v as i64).collect();
        rec.finish(&[&out], move |_, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            Ok(vec![Some(col2im(
                &g, &osz, &kernel, &dilation, &padding, &stride,
            )?)])
        });
    }
    Ok(out)
}

fn im2col_forward(input: &Tensor, geom: &Geom) -> Result<Tensor> {
    let dtype = input.dtype();
    let cd = compute_dtype(dtype);
    let xc = prepared(input, cd)?;
    let n = input.shape()[0];
    let (rows, l, isz) = (geom.rows(), geom.l(), geom.img() * geom.channels);
    let out = Tensor::empty(&[n, rows, l], cd)?;
    let (xa, oa) = (addr(&xc), addr(&out));
    dispatch_real(cd, |t| match t {
        RealKind::F32 => unfold_all::<f32>(geom, n, rows, l, isz, xa, oa),
        RealKind::F64 => unfold_all::<f64>(geom, n, rows, l, isz, xa, oa),
    });
    copy::to_dtype(&out, dtype, false)
}

enum RealKind {
    F32,
    F64,
}

fn dispatch_real<R>(cd: DType, f: impl FnOnce(RealKind) -> R) -> R {
    if cd == DType::F32 {
        f(RealKind::F32)
    } else {
        f(RealKind::F64)
    }
}

fn unfold_all<T: Real>(g: &Geom, n: usize, rows: usize, l: usize, isz: usize, x: Addr, o: Addr) {
    for_ranges(n * rows, l, 1, |s, e| {
        let mut r = s;
        while r < e {
            let (i, r0) = (r / rows, r % rows);
            let r1 = (r0 + (e - r)).min(rows);
            // SAFETY: image i of the contiguous input and rows r0..r1 of its
            // output matrix, which belong to this call alone.
            unsafe {
                let img = std::slice::from_raw_parts(x.at::<T>(i * isz), isz);
                let col =
                    std::slice::from_raw_parts_mut(o.at::<T>((i * rows + r0) * l), (r1 - r0) * l);
                g.im2col_rows(img, col, r0, r1);
            }
            r += r1 - r0;
        }
    });
}

/// `F.fold`: sliding blocks `[N, C * prod(kernel), L]` (or unbatched) summed
/// back into `[N, C, output_size]`, recorded as `Col2ImBackward0`
/// (derivative: `im2col`).
pub fn col2im(
    input: &Tensor,
    output_size: &[i64],
    kernel: &[i64],
    dilation: &[i64],
    padding: &[i64],
    stride: &[i64],
) -> Result<Tensor> {
    let nd = kernel.len();
    check_fold_args(kernel, dilation, padding, stride)?;
    if output_size.len() != nd {
        return Err(Error::Runtime(format!(
            "It is expected output_size equals to {nd}, but got size {}",
            output_size.len()
        )));
    }
    let xs = input.shape();
    if (xs.len() != 2 && xs.len() != 3) || xs[xs.len() - 2..].contains(&0) {
        return Err(Error::Runtime(format!(
            "Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and non-zero dimensions for input, but got: {}",
            fmt_shape(xs)
        )));
    }
    if xs.len() == 2 {
        let r = col2im(
            &shape::unsqueeze(input, 0)?,
            output_size,
            kernel,
            dilation,
            padding,
            stride,
        )?;
        return shape::squeeze(&r, Some(&[0]));
    }
    let kprod: i64 = kernel.iter().product();
    if xs[1] as i64 % kprod != 0 {
        return Err(Error::Runtime(format!(
            "Expected size of input's dimension 1 to be divisible by the product of kernel_size, but got input.size(1)={} and kernel_size={}.",
            xs[1],
            fmt_i(kernel)
        )));
    }
    if output_size.iter().any(|&v| v < 0) {
        return Err(Error::Runtime(format!(
            "output_size should be non-negative, but got {}",
            fmt_i(output_size)
        )));
    }
    let (k, d, p, s) = (
        to_usize(kernel),
        to_usize(dilation),
        to_usize(padding),
        to_usize(stride),
    );
    let size = to_usize(output_size);
    let grid = block_grid_i(&size, &k, &d, &p, &s);
    let head = format!(
        "Given output_size={}, kernel_size={}, dilation={}, padding={}, stride={}",
        fmt_i(output_size),
        fmt_i(kernel),
        fmt_i(dilation),
        fmt_i(padding),
        fmt_i(stride)
    );
    if grid.iter().any(|&g| g < 1) {
        return Err(Error::Runtime(format!(
            "{head}, calculated shape of the array of sliding blocks as {}, but its components must be at least one.",
            fmt_i(&grid)
        )));
    }
    let l: i64 = grid.iter().product();
    if xs[2] as i64 != l {
        return Err(Error::Runtime(format!(
            "{head}, expected size of input's dimension 2 to match the calculated number of sliding blocks {} = {l}, but got input.size(2)={}.",
            grid.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" * "),
            xs[2]
        )));
    }
    let geom = Geom {
        channels: xs[1] / kprod as usize,
        size,
        kernel: k,
        stride: s,
        pad: p,
        dil: d,
        out: to_usize(&grid),
        segs: OnceLock::new(),
    };
    let rec = Recorder::new("Col2ImBackward0", &[input]);
    let out = col2im_forward(input, &geom)?;
    if let Some(rec) = rec {
        let (kernel, dilation, padding, stride) = (
            kernel.to_vec(),
            dilation.to_vec(),
            padding.to_vec(),
            stride.to_vec(),
        );
        rec.finish(&[&out], move |_, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            Ok(vec![Some(im2col(
                &g, &kernel, &dilation, &padding, &stride,
            )?)])
        });
    }
    Ok(out)
}

fn col2im_forward(input: &Tensor, geom: &Geom) -> Result<Tensor> {
    let dtype = input.dtype();
    let cd = compute_dtype(dtype);
    let xc = prepared(input, cd)?;
    let n = input.shape()[0];
    let (c, isz, csz) = (geom.channels, geom.img(), geom.rows() * geom.l());
    let mut oshape = vec![n, c];
    oshape.extend_from_slice(&geom.size);
    let out = Tensor::zeros(&oshape, cd)?;
    let (xa, oa) = (addr(&xc), addr(&out));
    dispatch_real(cd, |t| match t {
        RealKind::F32 => fold_all::<f32>(geom, n, c, isz, csz, xa, oa),
        RealKind::F64 => fold_all::<f64>(geom, n, c, isz, csz, xa, oa),
    });
    copy::to_dtype(&out, dtype, false)
}

fn fold_all<T: Real>(g: &Geom, n: usize, c: usize, isz: usize, csz: usize, x: Addr, o: Addr) {
    for_ranges(n * c, g.k() * g.l(), 1, |s, e| {
        let mut r = s;
        while r < e {
            let (i, c0) = (r / c, r % c);
            let c1 = (c0 + (e - r)).min(c);
            // SAFETY: image i's column matrix, and channels c0..c1 of its
            // output, which belong to this call alone.
            unsafe {
                let col = std::slice::from_raw_parts(x.at::<T>(i * csz), csz);
                let img =
                    std::slice::from_raw_parts_mut(o.at::<T>((i * c + c0) * isz), (c1 - c0) * isz);
                g.col2im_channels(col, img, c0, c1);
            }
            r += c1 - c0;
        }
    });
}
