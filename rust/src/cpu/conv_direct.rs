//! Direct stride-1 convolution kernels for `f32` on AVX-512: no column
//! matrix, the output tile held in registers.
//!
//! Images are zero-padded first (`hp x wp` per channel, `pimg` values, the
//! channels of an image `pimg` apart, then [`SLACK`] zeros), so the input of
//! kernel tap `kk` for output `(y, x)` sits at `y * wp + x + offs[kk]` in its
//! channel. Each output line splits into 16-wide vectors ([`Chunk`]s, the
//! last one masked). A forward tile is up to [`OB`] output channels times
//! [`RB`] vectors (24 accumulators): per input channel and tap it loads the
//! `RB` input vectors once and multiplies each into `OB` broadcast weights.
//! An image's vectors split evenly into tiles (a 16x16 image's 16 as 5, 5,
//! 6: a short tile of 4 ran the whole image at two thirds of the speed).
//!
//! The weight gradient has two kernels. [`weight_grad`] is the forward
//! loop turned around: a tile of `OB` output channels times [`TB`] (input
//! channel, tap) pairs, each accumulator summing `grad_out * input` over
//! every vector of a few images, then summed across its lanes (vectors of
//! several images go into one tile; lanes past a line's end load as zeros).
//! [`weight_grad_lanes`] puts 16 output channels in the lanes instead: the
//! gradient transposed to `[l, cout]` (see [`transpose_lanes`]), each output
//! position multiplies its gradient row into broadcast inputs, so there
//! are neither horizontal sums nor loads across cache lines (64 -> 64
//! channels: about 165 GFLOP/s on one core, against 125).
//!
//! Lanes past a line's end in the forward compute on whatever follows in
//! the padded image and are dropped by the masked store.
//!
//! The kernels are compiled for AVX-512 with VL: without it the zeroing and
//! register moves of the accumulators use VEX encodings limited to
//! `zmm0-15`, and the 24 accumulators of a tile spilled to the stack.

/// Zeros after an image's last padded channel: a vector that starts in the
/// last line's columns reads up to 15 values past the channel.
pub const SLACK: usize = 16;
/// Output channels per tile.
pub const OB: usize = 4;
/// Output vectors per forward tile.
const RB: usize = 6;
/// (input channel, tap) pairs per weight-gradient tile.
const TB: usize = 6;

/// One 16-wide piece of an output line: its start in the padded input
/// channel (`src`) and in the output channel (`dst`), and its lanes.
#[derive(Clone, Copy, Debug)]
pub struct Chunk {
    pub src: usize,
    pub dst: usize,
    pub mask: u16,
}

/// The geometry of one stride-1 convolution on padded images.
#[derive(Debug)]
pub struct Plan {
    pub cin: usize,
    pub cout: usize,
    /// Padded channel length.
    pub pimg: usize,
    /// Output positions per channel.
    pub l: usize,
    /// Tap offsets in a padded channel.
    pub offs: Vec<usize>,
    /// The output vectors of one image.
    pub chunks: Vec<Chunk>,
    /// Every output position of one image: its index in the output
    /// channel and its offset in the padded input channel.
    pub pix: Vec<(usize, usize)>,
}

impl Plan {
    /// `ho x wo` outputs on channels of `pimg` values, lines `wp` apart.
    pub fn new(
        cin: usize,
        cout: usize,
        pimg: usize,
        wp: usize,
        ho: usize,
        wo: usize,
        offs: Vec<usize>,
    ) -> Plan {
        let mut chunks = Vec::with_capacity(ho * wo.div_ceil(16));
        let mut pix = Vec::with_capacity(ho * wo);
        for y in 0..ho {
            pix.extend((0..wo).map(|x| (y * wo + x, y * wp + x)));
            for x0 in (0..wo).step_by(16) {
                let lanes = (wo - x0).min(16);
                chunks.push(Chunk {
                    src: y * wp + x0,
                    dst: y * wo + x0,
                    mask: (((1u32 << lanes) - 1) & 0xffff) as u16,
                });
            }
        }
        Plan {
            cin,
            cout,
            pimg,
            l: ho * wo,
            offs,
            chunks,
            pix,
        }
    }

    /// Values one padded image takes.
    pub fn img(&self) -> usize {
        self.cin * self.pimg + SLACK
    }

    /// Output channels rounded up to whole vectors, for
    /// [`weight_grad_lanes`].
    pub fn cout_lanes(&self) -> usize {
        self.cout.div_ceil(16) * 16
    }

    /// Whether [`weight_grad_lanes`] beats [`weight_grad`]: three or more
    /// vectors of output channels (tiles of fewer run short of loads), at
    /// most a quarter of their lanes past the last channel, and enough
    /// (input channel, tap) pairs to pay for transposing the gradient
    /// (3 -> 64 channels ran 0.8x as fast, 64 -> 64 1.3x as fast).
    pub fn lanes_fit(&self) -> bool {
        let cl = self.cout_lanes();
        cl >= 48 && cl * 4 <= self.cout * 5 && self.cin * self.offs.len() >= 64
    }

    /// Output-channel blocks of [`OB`].
    pub fn blocks(&self) -> usize {
        self.cout.div_ceil(OB)
    }

    /// The weights laid out for [`forward`]: `[block][cin][tap][OB]`, from
    /// `w(oc, ic, tap)`, zero past `cout`. Read in `w`'s own order (an
    /// output channel's row at a time) and written at stride `OB`.
    pub fn pack(&self, w: impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
        let k = self.offs.len();
        let mut out = vec![0.0; self.blocks() * self.cin * k * OB];
        for oc in 0..self.cout {
            let (blk, o) = (oc / OB, oc % OB);
            for ic in 0..self.cin {
                let row = &mut out[(blk * self.cin + ic) * k * OB..][..k * OB];
                for (tap, v) in row.chunks_exact_mut(OB).enumerate() {
                    v[o] = w(oc, ic, tap);
                }
            }
        }
        out
    }
}

/// `0..total` as `total.div_ceil(max)` consecutive pieces of near-equal
/// length (16 as 5, 5, 6 rather than 6, 6, 4): a short last tile runs at a
/// fraction of a full one's speed.
fn even_pieces(total: usize, max: usize) -> impl Iterator<Item = (usize, usize)> {
    let pieces = total.div_ceil(max.max(1));
    (0..pieces).map(move |q| (q * total / pieces, (q + 1) * total / pieces))
}

/// Whether the kernels run on this CPU.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Output-channel blocks `blocks` of `nb` padded images `x` (each
/// `plan.img()` apart) into `out` (image `b` at `b * cout * l`, channels
/// `l` apart), from weights packed by [`Plan::pack`] and `bias` (one value
/// per channel, `blocks() * OB` of them).
///
/// # Safety
/// [`available`] must be true; `x` must hold `nb` padded images, `out`
/// `nb` output images, and no other thread may write the channels of
/// `blocks` there; `w` and `bias` must have the lengths above.
pub unsafe fn forward(
    plan: &Plan,
    nb: usize,
    x: *const f32,
    w: &[f32],
    bias: &[f32],
    out: *mut f32,
    blocks: std::ops::Range<usize>,
) {
    #[cfg(target_arch = "x86_64")]
    avx512::forward(plan, nb, x, w, bias, out, blocks);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (plan, nb, x, w, bias, out, blocks);
}

/// Adds the weight gradient of output-channel blocks `blocks` over `nb`
/// images to `dw [cout, cin, K]`: padded inputs `x` as in [`forward`],
/// output gradients `g` (image `b` at `b * cout * l`).
///
/// # Safety
/// As [`forward`], `dw` holding `cout * cin * K` values whose rows of
/// `blocks` no other thread touches.
pub unsafe fn weight_grad(
    plan: &Plan,
    nb: usize,
    x: *const f32,
    g: *const f32,
    dw: *mut f32,
    blocks: std::ops::Range<usize>,
) {
    #[cfg(target_arch = "x86_64")]
    avx512::weight_grad(plan, nb, x, g, dw, blocks);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (plan, nb, x, g, dw, blocks);
}

/// Adds the weight gradient of one image to `dwt [cin * K][cout_lanes]`
/// (transposed: output channels along a row), for the (input channel,
/// tap) pairs `pairs`: padded input `x` (one image, as in [`forward`]) and
/// its output gradient transposed by [`transpose_lanes`]. Output channels
/// go in the vector lanes, so no horizontal sums; each output position
/// multiplies one gradient row into broadcast inputs.
///
/// # Safety
/// [`available`] must be true; `x` must hold one padded image, `gt`
/// `l * cout_lanes` values, `dwt` `cin * K * cout_lanes`, whose rows of
/// `pairs` no other thread touches.
pub unsafe fn weight_grad_lanes(
    plan: &Plan,
    x: *const f32,
    gt: *const f32,
    dwt: *mut f32,
    pairs: std::ops::Range<usize>,
) {
    #[cfg(target_arch = "x86_64")]
    avx512::weight_grad_lanes(plan, x, gt, dwt, pairs);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (plan, x, gt, dwt, pairs);
}

/// `gt [l][cout_lanes]` from one image's output gradient `g [cout][l]`,
/// zero past `cout`.
///
/// # Safety
/// [`available`] must be true; `g` must hold `cout * l` values, `gt`
/// `l * cout_lanes`.
pub unsafe fn transpose_lanes(plan: &Plan, g: *const f32, gt: *mut f32) {
    let (cl, l) = (plan.cout_lanes(), plan.l);
    transpose(g, plan.cout, l, gt, cl);
    for p in 0..l {
        std::slice::from_raw_parts_mut(gt.add(p * cl + plan.cout), cl - plan.cout).fill(0.0);
    }
}

/// Where an image's lines go in its padded channel: `h` lines of `w`
/// values, the first at `at`, lines `wp` apart.
pub struct Lines {
    pub h: usize,
    pub w: usize,
    pub at: usize,
    pub wp: usize,
}

/// One padded image (`plan.img()` values, zero but for the image) from
/// `src [cin, h, w]`.
///
/// # Safety
/// [`available`] must be true; `src` must hold `cin * h * w` values, and
/// `lines` fit in a channel of `plan.pimg`.
pub unsafe fn pad(plan: &Plan, lines: &Lines, src: *const f32, dst: &mut [f32]) {
    assert!(
        dst.len() >= plan.img()
            && lines.at + (lines.h.max(1) - 1) * lines.wp + lines.w <= plan.pimg
    );
    #[cfg(target_arch = "x86_64")]
    avx512::pad(plan, lines, src, dst.as_mut_ptr());
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (plan, lines, src, dst);
}

/// `dst [cols][ld]` (its first `rows` columns) from `src [rows][cols]`.
///
/// # Safety
/// [`available`] must be true; `src` must hold `rows * cols` values, `dst`
/// `cols * ld` with `ld >= rows`.
pub unsafe fn transpose(src: *const f32, rows: usize, cols: usize, dst: *mut f32, ld: usize) {
    #[cfg(target_arch = "x86_64")]
    avx512::transpose(src, rows, cols, dst, ld);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (src, rows, cols, dst, ld);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{even_pieces, Lines, Plan, OB, RB, SLACK, TB};
    use std::arch::x86_64::*;

    /// The first `n` lanes (at most 16).
    #[inline]
    fn lanes(n: usize) -> u16 {
        (((1u32 << n.min(16)) - 1) & 0xffff) as u16
    }

    /// `n` zeros at `d`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn zeros(d: *mut f32, n: usize) {
        for i in (0..n).step_by(16) {
            _mm512_mask_storeu_ps(d.add(i), lanes(n - i), _mm512_setzero_ps());
        }
    }

    /// See [`super::pad`]: each channel zeroed whole, then its lines
    /// copied in (all in L1; a `memcpy` per short line cost more).
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn pad(plan: &Plan, g: &Lines, src: *const f32, dst: *mut f32) {
        let hw = g.h * g.w;
        for c in 0..plan.cin {
            let d = dst.add(c * plan.pimg);
            zeros(d, plan.pimg);
            let s = src.add(c * hw);
            for y in 0..g.h {
                for x0 in (0..g.w).step_by(16) {
                    let m = lanes(g.w - x0);
                    let v = _mm512_maskz_loadu_ps(m, s.add(y * g.w + x0));
                    _mm512_mask_storeu_ps(d.add(g.at + y * g.wp + x0), m, v);
                }
            }
        }
        zeros(dst.add(plan.cin * plan.pimg), SLACK);
    }

    /// Where a tile's vectors read and write.
    struct Tile {
        src: [usize; RB],
        dst: [usize; RB],
        mask: [u16; RB],
    }

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn forward(
        plan: &Plan,
        nb: usize,
        x: *const f32,
        w: &[f32],
        bias: &[f32],
        out: *mut f32,
        blocks: std::ops::Range<usize>,
    ) {
        let (cpi, img, osz) = (plan.chunks.len(), plan.img(), plan.cout * plan.l);
        let wblock = plan.cin * plan.offs.len() * OB;
        for (j, j1) in even_pieces(nb * cpi, RB) {
            let r = j1 - j;
            let mut t = Tile {
                src: [0; RB],
                dst: [0; RB],
                mask: [0; RB],
            };
            for q in 0..r {
                let (b, c) = ((j + q) / cpi, plan.chunks[(j + q) % cpi]);
                t.src[q] = b * img + c.src;
                t.dst[q] = b * osz + c.dst;
                t.mask[q] = c.mask;
            }
            for blk in blocks.clone() {
                let oc0 = blk * OB;
                let o = (plan.cout - oc0).min(OB);
                let wb = w.as_ptr().add(blk * wblock);
                let bb = bias.as_ptr().add(oc0);
                let ob = out.add(oc0 * plan.l);
                match r {
                    1 => fwd_o::<1>(o, plan, x, &t, wb, bb, ob),
                    2 => fwd_o::<2>(o, plan, x, &t, wb, bb, ob),
                    3 => fwd_o::<3>(o, plan, x, &t, wb, bb, ob),
                    4 => fwd_o::<4>(o, plan, x, &t, wb, bb, ob),
                    5 => fwd_o::<5>(o, plan, x, &t, wb, bb, ob),
                    _ => fwd_o::<6>(o, plan, x, &t, wb, bb, ob),
                }
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn fwd_o<const R: usize>(
        o: usize,
        plan: &Plan,
        x: *const f32,
        t: &Tile,
        w: *const f32,
        bias: *const f32,
        out: *mut f32,
    ) {
        match o {
            1 => fwd_tile::<1, R>(plan, x, t, w, bias, out),
            2 => fwd_tile::<2, R>(plan, x, t, w, bias, out),
            3 => fwd_tile::<3, R>(plan, x, t, w, bias, out),
            _ => fwd_tile::<4, R>(plan, x, t, w, bias, out),
        }
    }

    /// `O` output channels (from `out`, `l` apart) times the tile's first
    /// `R` vectors.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn fwd_tile<const O: usize, const R: usize>(
        plan: &Plan,
        x: *const f32,
        t: &Tile,
        w: *const f32,
        bias: *const f32,
        out: *mut f32,
    ) {
        let mut acc = [[_mm512_setzero_ps(); R]; O];
        for (o, row) in acc.iter_mut().enumerate() {
            *row = [_mm512_set1_ps(*bias.add(o)); R];
        }
        let mut src = [0usize; R];
        src.copy_from_slice(&t.src[..R]);
        let mut wp = w;
        for ic in 0..plan.cin {
            let xc = x.add(ic * plan.pimg);
            for &off in &plan.offs {
                let xo = xc.add(off);
                let mut xv = [_mm512_setzero_ps(); R];
                for (v, &s) in xv.iter_mut().zip(&src) {
                    *v = _mm512_loadu_ps(xo.add(s));
                }
                for (o, row) in acc.iter_mut().enumerate() {
                    let wv = _mm512_set1_ps(*wp.add(o));
                    for (a, &v) in row.iter_mut().zip(&xv) {
                        *a = _mm512_fmadd_ps(wv, v, *a);
                    }
                }
                wp = wp.add(OB);
            }
        }
        for (o, row) in acc.iter().enumerate() {
            let oc = out.add(o * plan.l);
            for (r, &v) in row.iter().enumerate() {
                _mm512_mask_storeu_ps(oc.add(t.dst[r]), t.mask[r], v);
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn weight_grad(
        plan: &Plan,
        nb: usize,
        x: *const f32,
        g: *const f32,
        dw: *mut f32,
        blocks: std::ops::Range<usize>,
    ) {
        let k = plan.offs.len();
        let ckk = plan.cin * k;
        let (img, osz) = (plan.img(), plan.cout * plan.l);
        // Every vector of the batch: its input and gradient offsets.
        let mut vecs = Vec::with_capacity(nb * plan.chunks.len());
        for b in 0..nb {
            for c in &plan.chunks {
                vecs.push((b * img + c.src, b * osz + c.dst, c.mask));
            }
        }
        for blk in blocks {
            let oc0 = blk * OB;
            let o = (plan.cout - oc0).min(OB);
            let gb = g.add(oc0 * plan.l);
            for (j0, j1) in even_pieces(ckk, TB) {
                let t = j1 - j0;
                let mut ins = [0usize; TB];
                for (q, v) in ins.iter_mut().enumerate().take(t) {
                    let j = j0 + q;
                    *v = (j / k) * plan.pimg + plan.offs[j % k];
                }
                let out = dw.add(oc0 * ckk + j0);
                let a = WgArgs {
                    vecs: &vecs,
                    x,
                    g: gb,
                    l: plan.l,
                    ins,
                    out,
                    ckk,
                };
                match t {
                    1 => wg_o::<1>(o, &a),
                    2 => wg_o::<2>(o, &a),
                    3 => wg_o::<3>(o, &a),
                    4 => wg_o::<4>(o, &a),
                    5 => wg_o::<5>(o, &a),
                    _ => wg_o::<6>(o, &a),
                }
            }
        }
    }

    /// One weight-gradient tile: the batch's vectors `(input offset,
    /// gradient offset, lanes)`, the inputs, the gradients of the tile's
    /// first output channel (channels `l` apart), the input offsets of its
    /// (input channel, tap) pairs and where its sums go (rows `ckk` apart).
    struct WgArgs<'a> {
        vecs: &'a [(usize, usize, u16)],
        x: *const f32,
        g: *const f32,
        l: usize,
        ins: [usize; TB],
        out: *mut f32,
        ckk: usize,
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn wg_o<const T: usize>(o: usize, a: &WgArgs) {
        match o {
            1 => wg_tile::<1, T>(a),
            2 => wg_tile::<2, T>(a),
            3 => wg_tile::<3, T>(a),
            _ => wg_tile::<4, T>(a),
        }
    }

    /// `O` output channels times `T` (input channel, tap) pairs over every
    /// vector of the batch, added to the sums.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn wg_tile<const O: usize, const T: usize>(a: &WgArgs) {
        let mut acc = [[_mm512_setzero_ps(); O]; T];
        let mut ins = [0usize; T];
        ins.copy_from_slice(&a.ins[..T]);
        for &(xs, gs, m) in a.vecs {
            let gc = a.g.add(gs);
            let xc = a.x.add(xs);
            let mut gv = [_mm512_setzero_ps(); O];
            // Whole vectors load unmasked (masked loads throughout ran
            // ~10% slower).
            if m == u16::MAX {
                for (o, v) in gv.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(gc.add(o * a.l));
                }
                for (row, &i) in acc.iter_mut().zip(&ins) {
                    let xv = _mm512_loadu_ps(xc.add(i));
                    for (s, &gvo) in row.iter_mut().zip(&gv) {
                        *s = _mm512_fmadd_ps(gvo, xv, *s);
                    }
                }
            } else {
                for (o, v) in gv.iter_mut().enumerate() {
                    *v = _mm512_maskz_loadu_ps(m, gc.add(o * a.l));
                }
                for (row, &i) in acc.iter_mut().zip(&ins) {
                    let xv = _mm512_maskz_loadu_ps(m, xc.add(i));
                    for (s, &gvo) in row.iter_mut().zip(&gv) {
                        *s = _mm512_fmadd_ps(gvo, xv, *s);
                    }
                }
            }
        }
        for (t, row) in acc.iter().enumerate() {
            for (o, v) in row.iter().enumerate() {
                *a.out.add(o * a.ckk + t) += _mm512_reduce_add_ps(*v);
            }
        }
    }

    /// Output positions per pass of [`weight_grad_lanes`]: their gradient
    /// rows (`cout_lanes` values each) and input lines stay in L1 while
    /// every tile runs over them.
    const PIX: usize = 128;

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn weight_grad_lanes(
        plan: &Plan,
        x: *const f32,
        gt: *const f32,
        dwt: *mut f32,
        pairs: std::ops::Range<usize>,
    ) {
        let k = plan.offs.len();
        let cl = plan.cout_lanes();
        let vecs = cl / 16;
        for px in plan.pix.chunks(PIX) {
            for v0 in (0..vecs).step_by(4) {
                let v = (vecs - v0).min(4);
                // 24 accumulators: `v` vectors times `tb` pairs.
                let tb = 24 / v;
                let mut j0 = pairs.start;
                while j0 < pairs.end {
                    let t = (pairs.end - j0).min(tb);
                    // A short last tile repeats its last pair; those sums
                    // are dropped.
                    let mut ins = [0usize; 24];
                    for (q, i) in ins.iter_mut().enumerate().take(tb) {
                        let j = j0 + q.min(t - 1);
                        *i = (j / k) * plan.pimg + plan.offs[j % k];
                    }
                    let a = LanesTile {
                        px,
                        x,
                        gt: gt.add(v0 * 16),
                        ins: &ins,
                        out: dwt.add(j0 * cl + v0 * 16),
                        ld: cl,
                        t,
                    };
                    match v {
                        1 => lanes_tile::<1, 24>(&a),
                        2 => lanes_tile::<2, 12>(&a),
                        3 => lanes_tile::<3, 8>(&a),
                        _ => lanes_tile::<4, 6>(&a),
                    }
                    j0 += t;
                }
            }
        }
    }

    /// One tile of [`weight_grad_lanes`]: output positions `px`, the padded
    /// input, the gradient rows from the tile's first output channel (rows
    /// `ld` apart, as the sums), the input offsets of its pairs and where
    /// the sums of its first `t` pairs go.
    struct LanesTile<'a> {
        px: &'a [(usize, usize)],
        x: *const f32,
        gt: *const f32,
        ins: &'a [usize; 24],
        out: *mut f32,
        ld: usize,
        t: usize,
    }

    /// `V` vectors of output channels times `T` pairs, added to the sums.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn lanes_tile<const V: usize, const T: usize>(a: &LanesTile) {
        let mut acc = [[_mm512_setzero_ps(); V]; T];
        for (q, row) in acc.iter_mut().enumerate().take(a.t) {
            for (v, s) in row.iter_mut().enumerate() {
                *s = _mm512_loadu_ps(a.out.add(q * a.ld + v * 16));
            }
        }
        let mut ins = [0usize; T];
        ins.copy_from_slice(&a.ins[..T]);
        for &(po, ps) in a.px {
            let gp = a.gt.add(po * a.ld);
            let mut gv = [_mm512_setzero_ps(); V];
            for (v, g) in gv.iter_mut().enumerate() {
                *g = _mm512_loadu_ps(gp.add(v * 16));
            }
            let xp = a.x.add(ps);
            for (row, &i) in acc.iter_mut().zip(&ins) {
                let xb = _mm512_set1_ps(*xp.add(i));
                for (s, &g) in row.iter_mut().zip(&gv) {
                    *s = _mm512_fmadd_ps(g, xb, *s);
                }
            }
        }
        for (q, row) in acc.iter().enumerate().take(a.t) {
            for (v, s) in row.iter().enumerate() {
                _mm512_storeu_ps(a.out.add(q * a.ld + v * 16), *s);
            }
        }
    }

    /// `dst [cols][ld]` (its first `rows` columns) from `src [rows][cols]`:
    /// 16x16 blocks transposed in registers, the edges one value at a time.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transpose(
        src: *const f32,
        rows: usize,
        cols: usize,
        dst: *mut f32,
        ld: usize,
    ) {
        let (r16, c16) = (rows / 16 * 16, cols / 16 * 16);
        for r0 in (0..r16).step_by(16) {
            for c0 in (0..c16).step_by(16) {
                let mut r = [_mm512_setzero_ps(); 16];
                for (i, v) in r.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(src.add((r0 + i) * cols + c0));
                }
                // Pairs of rows interleaved by 32, then by 64 bits: lane k
                // of b[4j + m] holds column 4k + m of rows 4j..4j + 4.
                let mut a = [_mm512_setzero_ps(); 16];
                for i in 0..8 {
                    a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                    a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
                }
                let mut b = [_mm512_setzero_ps(); 16];
                for j in 0..4 {
                    let p = |i: usize| _mm512_castps_pd(a[4 * j + i]);
                    b[4 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(p(0), p(2)));
                    b[4 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(p(0), p(2)));
                    b[4 * j + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(p(1), p(3)));
                    b[4 * j + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(p(1), p(3)));
                }
                // Then 128-bit lanes gathered in two rounds.
                let mut c = [_mm512_setzero_ps(); 16];
                for m in 0..4 {
                    for h in 0..2 {
                        let (x, y) = (b[8 * h + m], b[8 * h + 4 + m]);
                        c[8 * h + m] = _mm512_shuffle_f32x4::<0x88>(x, y);
                        c[8 * h + 4 + m] = _mm512_shuffle_f32x4::<0xdd>(x, y);
                    }
                }
                for m in 0..4 {
                    for q in 0..2 {
                        let (x, y) = (c[q * 4 + m], c[8 + q * 4 + m]);
                        let lo = _mm512_shuffle_f32x4::<0x88>(x, y);
                        let hi = _mm512_shuffle_f32x4::<0xdd>(x, y);
                        _mm512_storeu_ps(dst.add((c0 + 4 * q + m) * ld + r0), lo);
                        _mm512_storeu_ps(dst.add((c0 + 8 + 4 * q + m) * ld + r0), hi);
                    }
                }
            }
        }
        for r in 0..rows {
            for c in c16..cols {
                *dst.add(c * ld + r) = *src.add(r * cols + c);
            }
        }
        for r in r16..rows {
            for c in 0..c16 {
                *dst.add(c * ld + r) = *src.add(r * cols + c);
            }
        }
    }
}
