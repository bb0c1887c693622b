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
//! The weight gradient is the same loop turned around: a tile of `OB`
//! output channels times [`TB`] (input channel, tap) pairs, each
//! accumulator summing `grad_out * input` over every vector of the batch.
//!
//! Vectors of several images go into one tile (a 16x16 image is 16 vectors,
//! not a multiple of 6). Lanes past a line's end compute on whatever follows
//! in the padded image and are dropped by the masked store; in the weight
//! gradient both operands load those lanes as zeros.
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
        for y in 0..ho {
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
        }
    }

    /// Values one padded image takes.
    pub fn img(&self) -> usize {
        self.cin * self.pimg + SLACK
    }

    /// Output-channel blocks of [`OB`].
    pub fn blocks(&self) -> usize {
        self.cout.div_ceil(OB)
    }

    /// The weights laid out for [`forward`]: `[block][cin][tap][OB]`, from
    /// `w(oc, ic, tap)`, zero past `cout`.
    pub fn pack(&self, w: impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
        let k = self.offs.len();
        let mut out = Vec::with_capacity(self.blocks() * self.cin * k * OB);
        for blk in 0..self.blocks() {
            for ic in 0..self.cin {
                for tap in 0..k {
                    for oc in blk * OB..(blk + 1) * OB {
                        out.push(if oc < self.cout { w(oc, ic, tap) } else { 0.0 });
                    }
                }
            }
        }
        out
    }
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

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Plan, OB, RB, TB};
    use std::arch::x86_64::*;

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
        let total = nb * cpi;
        let mut j = 0;
        while j < total {
            let r = (total - j).min(RB);
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
            j += r;
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
            // Tiles of near-equal size (27 pairs: 5, 5, 6, 5, 6 rather
            // than four of 6 and one of 3).
            let tiles = ckk.div_ceil(TB);
            for q in 0..tiles {
                let (j0, j1) = (q * ckk / tiles, (q + 1) * ckk / tiles);
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
}
