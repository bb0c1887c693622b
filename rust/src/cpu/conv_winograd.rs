//! Winograd F(2x2, 3x3) for float32 3x3 convolutions with stride 1 (Lavin
//! & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).
//!
//! Each 2x2 output tile comes from a 4x4 input tile (tiles overlap by two
//! lines): with `d` the input tile and `g` a 3x3 filter,
//! `Y = A^T [(G g G^T) ⊙ (B^T d B)] A`, 16 multiplies where the direct
//! sum takes 36. Summed over input channels, the 16 elements of the
//! transformed domain are 16 independent products
//! `M_e [cout x tiles] = U_e [cout x cin] @ V_e [cin x tiles]`, each a GEMM.
//!
//! The tiles are processed in blocks ([`Plan::blocks`]): whole images, or
//! the tile rows of one large image, about [`TILES`] tiles each (fewer in
//! a small batch, for the threads), so that
//! the transformed inputs and products of a block (`16 * (cin + cout) *
//! tiles` floats) stay in L2. A block is transformed, multiplied and
//! transformed back by one thread; blocks do not depend on the thread
//! count, so neither do the results.
//!
//! The transforms run on 16 tiles of a tile row at a time: vectors of the
//! padded lines read from the tiles' first and third columns, split into
//! even and odd lanes by permutes, give the 4 columns of each tile, so
//! every step is one vector operation for 16 tiles.
//!
//! Rounding: `U` is computed in f64 and rounded once; `V` and the output
//! transform add up to 4 values of each other's size in f32, so the error
//! exceeds the direct sum's by a few ulps of those partial sums (measured
//! within `4e-7 * sum |w| |x|`). Non-finite inputs would spread further
//! than in a direct sum (an infinity makes NaN of the other outputs of its
//! tiles), so the caller sends those to the direct kernels.

/// Tiles per block (one 16x16 image has 64): the transformed block of a
/// 64 -> 64 convolution is 1 MiB (64 to 512 ran within 10% of each other
/// on 16x16 and 56x56 images, 128 the steadiest).
pub const TILES: usize = 128;

/// Blocks a batch splits into at least (for the threads), as long as they
/// keep [`MIN_TILES`] tiles: 2 images of 512 channels at 14x14 (98 tiles)
/// made one block, all on one thread.
const MIN_BLOCKS: usize = 8;
/// Fewest tiles a block is cut to for [`MIN_BLOCKS`] (narrower GEMMs run
/// short of columns).
const MIN_TILES: usize = 32;

/// Zeros after a block's padded lines: the input transform reads up to 34
/// values from a tile row's start (two vectors and two columns), past the
/// last line's end.
const SLACK: usize = 48;

/// Floats between the 16 matrices of a block's `V` (and of `M`) past their
/// own size: the transforms write (read) the 16 at once, and matrices a
/// multiple of 4 KiB apart would all fall in the same L1 sets (64 -> 64
/// channels ran the input transform 4x slower).
const GAP: usize = 16;

/// The geometry of one convolution: `cin` -> `cout` channels, images of
/// `h x w` padded by `ph, pw` zeros, `ho x wo` outputs in `th x tw` tiles.
#[derive(Clone, Debug)]
pub struct Plan {
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub ph: usize,
    pub pw: usize,
    pub ho: usize,
    pub wo: usize,
    pub th: usize,
    pub tw: usize,
    /// Images in the batch.
    pub n: usize,
    /// Most tiles per block: [`TILES`], less for small batches (see
    /// [`MIN_BLOCKS`]).
    cap: usize,
}

/// A block of tiles: images `b0..b0 + nb`, tile rows `ty0..ty1` of each.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub b0: usize,
    pub nb: usize,
    pub ty0: usize,
    pub ty1: usize,
}

impl Block {
    /// Tile rows of the block.
    fn rows(&self) -> usize {
        self.nb * (self.ty1 - self.ty0)
    }
}

impl Plan {
    /// The plan of a 3x3 convolution on a batch of `n` images of `h x w`
    /// padded by `ph, pw`, None when the output would be empty.
    pub fn new(
        n: usize,
        cin: usize,
        cout: usize,
        (h, w): (usize, usize),
        (ph, pw): (usize, usize),
    ) -> Option<Plan> {
        let ho = (h + 2 * ph).checked_sub(2).filter(|&v| v > 0)?;
        let wo = (w + 2 * pw).checked_sub(2).filter(|&v| v > 0)?;
        let (th, tw) = (ho.div_ceil(2), wo.div_ceil(2));
        let cap = TILES.min((n * th * tw / MIN_BLOCKS).max(MIN_TILES));
        Some(Plan {
            cin,
            cout,
            h,
            w,
            ph,
            pw,
            ho,
            wo,
            th,
            tw,
            n,
            cap,
        })
    }

    /// Padded line length: the columns of `tw` tiles.
    fn wpad(&self) -> usize {
        2 * self.tw + 2
    }

    /// Most tiles in one block.
    pub fn max_tiles(&self) -> usize {
        let per_image = self.th * self.tw;
        if per_image <= self.cap {
            (self.cap / per_image).max(1) * per_image
        } else {
            (self.cap / self.tw).clamp(1, self.th) * self.tw
        }
    }

    /// The blocks of the batch: whole images when one has at most `cap`
    /// tiles, else runs of tile rows of one image.
    pub fn blocks(&self) -> Vec<Block> {
        let (n, per_image) = (self.n, self.th * self.tw);
        let mut out = Vec::new();
        if per_image <= self.cap {
            let ipb = (self.cap / per_image).max(1);
            for b0 in (0..n).step_by(ipb) {
                out.push(Block {
                    b0,
                    nb: ipb.min(n - b0),
                    ty0: 0,
                    ty1: self.th,
                });
            }
        } else {
            let rpb = (self.cap / self.tw).max(1);
            for b0 in 0..n {
                for ty0 in (0..self.th).step_by(rpb) {
                    out.push(Block {
                        b0,
                        nb: 1,
                        ty0,
                        ty1: (ty0 + rpb).min(self.th),
                    });
                }
            }
        }
        out
    }

    /// Scratch floats one thread needs: the transformed inputs and products
    /// of a block, and the padded lines of one channel (plus [`SLACK`]).
    pub fn scratch(&self) -> usize {
        let t = self.max_tiles();
        16 * ((self.cin + self.cout) * t + 2 * GAP) + (2 * self.th + 2) * self.wpad() + SLACK
    }

    /// Floats from one of the 16 matrices of [`Plan::transform_filters`]
    /// to the next (see [`GAP`]).
    fn filters(&self) -> usize {
        self.cout * self.cin + GAP
    }

    /// `U [16][cout][cin] = G g G^T` (the 16 matrices [`Plan::filters`]
    /// apart) for every filter `g(oc, ic, tap)` (taps row-major), computed
    /// in f64.
    pub fn transform_filters(&self, g: impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
        const G: [[f64; 3]; 4] = [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5],
            [0.0, 0.0, 1.0],
        ];
        let (cin, cout) = (self.cin, self.cout);
        let us = self.filters();
        let mut u = vec![0.0f32; 16 * us];
        for oc in 0..cout {
            for ic in 0..cin {
                let f: [f64; 9] = std::array::from_fn(|t| g(oc, ic, t) as f64);
                // `G g` (4x3), then `(G g) G^T` (4x4).
                let mut gg = [[0.0f64; 3]; 4];
                for (i, row) in gg.iter_mut().enumerate() {
                    for (b, v) in row.iter_mut().enumerate() {
                        *v = (0..3).map(|a| G[i][a] * f[a * 3 + b]).sum();
                    }
                }
                for (i, row) in gg.iter().enumerate() {
                    for (j, gj) in G.iter().enumerate() {
                        let v: f64 = (0..3).map(|b| row[b] * gj[b]).sum();
                        u[(i * 4 + j) * us + oc * cin + ic] = v as f32;
                    }
                }
            }
        }
        u
    }

    /// One block: `x` holds images `blk.b0..` (`[nb, cin, h, w]`), `u`
    /// the transformed filters, `bias` `cout` values, `out` points at image
    /// `blk.b0` of the output (`[nb, cout, ho, wo]`), of which the block
    /// writes its tile rows.
    ///
    /// # Safety
    /// [`crate::cpu::conv_direct::available`] must be true; `out` must hold
    /// `nb` output images, and no other thread may touch the block's output
    /// lines while this runs.
    pub unsafe fn run_block(
        &self,
        blk: Block,
        x: &[f32],
        u: &[f32],
        bias: &[f32],
        out: *mut f32,
        scratch: &mut [f32],
    ) {
        let t = blk.rows() * self.tw;
        assert!(
            scratch.len() >= self.scratch()
                && x.len() >= blk.nb * self.cin * self.h * self.w
                && u.len() >= 16 * self.filters()
                && bias.len() >= self.cout
        );
        let (vs, ms) = (self.cin * t + GAP, self.cout * t + GAP);
        let (v, rest) = scratch.split_at_mut(16 * vs);
        let (m, plane) = rest.split_at_mut(16 * ms);
        #[cfg(target_arch = "x86_64")]
        avx512::input_block(
            self,
            blk,
            x.as_ptr(),
            v.as_mut_ptr(),
            vs,
            plane.as_mut_ptr(),
        );
        for e in 0..16 {
            // SAFETY: `u_e` is `cout x cin`, `v_e` `cin x t`, `m_e` `cout
            // x t`, all row-major in their own buffers.
            gemm::gemm::<f32>(
                self.cout,
                t,
                self.cin,
                m.as_mut_ptr().add(e * ms),
                1,
                t as isize,
                false,
                u.as_ptr().add(e * self.filters()),
                1,
                self.cin as isize,
                v.as_ptr().add(e * vs),
                1,
                t as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        #[cfg(target_arch = "x86_64")]
        avx512::output_block(self, blk, m.as_ptr(), ms, bias.as_ptr(), out);
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (plane, out);
    }
}

/// The block kernels, on AVX-512 (see [`crate::cpu::conv_direct::available`]).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Block, Plan, SLACK};
    use std::arch::x86_64::*;

    /// The first `n` lanes (at most 16).
    #[inline]
    fn lanes(n: usize) -> u16 {
        (((1u32 << n.min(16)) - 1) & 0xffff) as u16
    }

    /// `V [16][cin][t]` of a block (`v`), from images `x` (`[nb, cin, h,
    /// w]`): per image and channel, the padded lines the block reads go to
    /// `plane` (`wpad` apart, then [`SLACK`] zeros); per tile row and run
    /// of 16 tiles, `B^T d` down the 4 lines on vectors read at the tiles'
    /// first and third columns, whose even and odd lanes then give the 4
    /// columns of each tile for `(.) B` across.
    ///
    /// # Safety
    /// The CPU must have AVX-512 (F, VL); `x` must hold the block's images,
    /// `v` 16 matrices of `cin * t` values `vs` apart, `plane` `(2 * th + 2) * wpad + SLACK`.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn input_block(
        p: &Plan,
        blk: Block,
        x: *const f32,
        v: *mut f32,
        vs: usize,
        plane: *mut f32,
    ) {
        let (tw, cin, wpad) = (p.tw, p.cin, p.wpad());
        let t = blk.rows() * tw;
        let ty_n = blk.ty1 - blk.ty0;
        let nrows = 2 * ty_n + 2;
        let y0 = 2 * blk.ty0;
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let zero = _mm512_setzero_ps();
        // Zeros once: every channel then writes the same places.
        let len = nrows * wpad + SLACK;
        for i in (0..len).step_by(16) {
            _mm512_mask_storeu_ps(plane.add(i), lanes(len - i), zero);
        }
        for b in 0..blk.nb {
            for ic in 0..cin {
                let src = x.add((b * cin + ic) * p.h * p.w);
                for r in 0..nrows {
                    let Some(y) = (y0 + r).checked_sub(p.ph).filter(|&y| y < p.h) else {
                        continue;
                    };
                    let s = src.add(y * p.w);
                    let d = plane.add(r * wpad + p.pw);
                    for x0 in (0..p.w).step_by(16) {
                        let m = lanes(p.w - x0);
                        _mm512_mask_storeu_ps(d.add(x0), m, _mm512_maskz_loadu_ps(m, s.add(x0)));
                    }
                }
                for ty in 0..ty_n {
                    let t0 = (b * ty_n + ty) * tw;
                    let rows = plane.add(2 * ty * wpad);
                    for k0 in (0..tw).step_by(16) {
                        let m = lanes(tw - k0);
                        // Columns 2k0 + [0, 16, 2, 18] on: `B^T d` down.
                        let mut c = [[zero; 4]; 4];
                        for (g, &off) in [0usize, 16, 2, 18].iter().enumerate() {
                            let at = rows.add(2 * k0 + off);
                            let d0 = _mm512_loadu_ps(at);
                            let d1 = _mm512_loadu_ps(at.add(wpad));
                            let d2 = _mm512_loadu_ps(at.add(2 * wpad));
                            let d3 = _mm512_loadu_ps(at.add(3 * wpad));
                            c[0][g] = _mm512_sub_ps(d0, d2);
                            c[1][g] = _mm512_add_ps(d1, d2);
                            c[2][g] = _mm512_sub_ps(d2, d1);
                            c[3][g] = _mm512_sub_ps(d1, d3);
                        }
                        for (i, ci) in c.iter().enumerate() {
                            // Tile k's columns: e0 = 2k, o0 = 2k + 1,
                            // e1 = 2k + 2, o1 = 2k + 3.
                            let e0 = _mm512_permutex2var_ps(ci[0], even, ci[1]);
                            let o0 = _mm512_permutex2var_ps(ci[0], odd, ci[1]);
                            let e1 = _mm512_permutex2var_ps(ci[2], even, ci[3]);
                            let o1 = _mm512_permutex2var_ps(ci[2], odd, ci[3]);
                            let tile = [
                                _mm512_sub_ps(e0, e1),
                                _mm512_add_ps(o0, e1),
                                _mm512_sub_ps(e1, o0),
                                _mm512_sub_ps(o0, o1),
                            ];
                            for (j, &vj) in tile.iter().enumerate() {
                                let at = (i * 4 + j) * vs + ic * t + t0 + k0;
                                _mm512_mask_storeu_ps(v.add(at), m, vj);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The outputs of a block from `M [16][cout][t]`: per channel, tile
    /// row and run of 16 tiles, `A^T m` down (two lines of 4 columns per
    /// tile), then `(.) A` across plus the bias, the two columns of each
    /// tile interleaved into the output lines.
    ///
    /// # Safety
    /// The CPU must have AVX-512 (F, VL); `m` must hold 16 matrices of
    /// `cout * t` values `ms` apart, `bias` `cout`, `out` the block's output images, whose lines
    /// of the block no other thread touches.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn output_block(
        p: &Plan,
        blk: Block,
        m: *const f32,
        ms: usize,
        bias: *const f32,
        out: *mut f32,
    ) {
        let (tw, cout, ho, wo) = (p.tw, p.cout, p.ho, p.wo);
        let t = blk.rows() * tw;
        let ty_n = blk.ty1 - blk.ty0;
        let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        for b in 0..blk.nb {
            for oc in 0..cout {
                let bv = _mm512_set1_ps(*bias.add(oc));
                for ty in 0..ty_n {
                    let t0 = (b * ty_n + ty) * tw;
                    let oy = 2 * (blk.ty0 + ty);
                    for k0 in (0..tw).step_by(16) {
                        let mk = lanes(tw - k0);
                        let mut me = [_mm512_setzero_ps(); 16];
                        for (e, v) in me.iter_mut().enumerate() {
                            *v = _mm512_maskz_loadu_ps(mk, m.add(e * ms + oc * t + t0 + k0));
                        }
                        // s[a][j]: line a of `A^T m`, column j.
                        let mut s = [[_mm512_setzero_ps(); 4]; 2];
                        for j in 0..4 {
                            let (m0, m1, m2, m3) = (me[j], me[4 + j], me[8 + j], me[12 + j]);
                            s[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                            s[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
                        }
                        for (a, sa) in s.iter().enumerate() {
                            if oy + a >= ho {
                                break;
                            }
                            let y0 = _mm512_add_ps(
                                _mm512_add_ps(sa[0], sa[1]),
                                _mm512_add_ps(sa[2], bv),
                            );
                            let y1 = _mm512_sub_ps(
                                _mm512_sub_ps(sa[1], sa[2]),
                                _mm512_sub_ps(sa[3], bv),
                            );
                            let line = out.add(((b * cout + oc) * ho + oy + a) * wo + 2 * k0);
                            let n = wo - 2 * k0;
                            _mm512_mask_storeu_ps(
                                line,
                                lanes(n),
                                _mm512_permutex2var_ps(y0, lo, y1),
                            );
                            if n > 16 {
                                let h = _mm512_permutex2var_ps(y0, hi, y1);
                                _mm512_mask_storeu_ps(line.add(16), lanes(n - 16), h);
                            }
                        }
                    }
                }
            }
        }
    }
}
