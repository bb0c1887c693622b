//! Recurrent layers and cells as fused kernels.
//!
//! [`rnn_layer`] runs one layer and direction of an Elman RNN, LSTM or GRU
//! over every timestep as a single op. Its input is the projected input
//! `xp = x W_ih^T` of all timesteps at once (one GEMM, made by the caller
//! and recorded by autograd as usual), in the packed layout: `(N, G*H)`
//! rows with timestep `t`'s `batch_sizes[t]` rows contiguous (sequences
//! sorted by decreasing length; a padded `(T, B)` input is `batch_sizes =
//! [B] * T`). States are `(batch, features)` rows, so step `t` reads and
//! writes a prefix of the state rows and its output is one contiguous row
//! block of `out`.
//!
//! Batch rows are independent, so with a batch of at least 8 rows per
//! thread each thread runs the whole recurrence on its share of the rows,
//! with no synchronisation per step ([`Team::Rows`]). Otherwise the hidden
//! units are split into chunks. Per step each chunk computes
//! its gate columns of `h W_hh^T` with one GEMM (against `W_hh^T`,
//! transposed once per call with each chunk's gate blocks side by side, so
//! the GEMM packs nothing), then runs the fused pointwise cell (biases, gate
//! nonlinearities, `c'`, `h'`) on its units. The next step needs every
//! unit's `h`, so steps are phases: threads claim chunks in order and a
//! chunk starts once the previous phase is done (see [`Sched`]). With
//! `proj_size`, `h = r W_hr^T` is a second phase per step, on chunks of its
//! columns.
//!
//! The backward walks the steps back the same way (phases: the cell's
//! gradient on units, then `dh = dgates W_hh` on columns) and gets the
//! weight and bias gradients from one GEMM or sum over all steps at the
//! end. It is not itself differentiable: run under `create_graph=True`, its
//! results carry a node that raises if differentiated again.
//!
//! [`lstm_cell`] and [`gru_cell`] are the pointwise part of one step
//! (`nn.LSTMCell`/`nn.GRUCell`, which do their two GEMMs with `mm`), with a
//! fused backward kernel; under `create_graph=True` that backward is
//! written with differentiable tensor ops instead, so the cells support
//! double backward.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex};

use crate::autograd::{self, GradMode, Recorder};
use crate::cpu::parallel::{for_ranges, num_threads};
use crate::error::{Error, Result};
use crate::ops::arith::{add, mul, rsub_s, un};
use crate::ops::pool::{compute_dtype, fdispatch, prep, Fl};
use crate::ops::unary::Unary;
use crate::ops::{copy, join, linalg, reduce, shape};
use crate::tensor::{DType, Tensor};

// ---------------------------------------------------------------- modes

/// Which recurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Lstm,
    Gru,
    RnnTanh,
    RnnRelu,
}

impl Mode {
    /// PyTorch's mode names (`RNNBase.mode`).
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "LSTM" => Ok(Mode::Lstm),
            "GRU" => Ok(Mode::Gru),
            "RNN_TANH" => Ok(Mode::RnnTanh),
            "RNN_RELU" => Ok(Mode::RnnRelu),
            _ => Err(Error::Value(format!("Unrecognized RNN mode: {s}"))),
        }
    }

    /// Gate blocks in `W_ih`/`W_hh`.
    fn gates(self) -> usize {
        match self {
            Mode::Lstm => 4,
            Mode::Gru => 3,
            Mode::RnnTanh | Mode::RnnRelu => 1,
        }
    }

    /// Columns of one step's saved gate row: LSTM `[i|f|g|o]` activated, GRU
    /// `[r|z|W_hn h + b_hn|n]`, RNN the pre-activation (scratch only).
    fn gate_stride(self, h: usize) -> usize {
        match self {
            Mode::Lstm | Mode::Gru => 4 * h,
            Mode::RnnTanh | Mode::RnnRelu => h,
        }
    }

    fn node_name(self) -> &'static str {
        match self {
            Mode::Lstm => "LstmLayerBackward0",
            Mode::Gru => "GruLayerBackward0",
            Mode::RnnTanh => "RnnTanhLayerBackward0",
            Mode::RnnRelu => "RnnReluLayerBackward0",
        }
    }
}

// ---------------------------------------------------------------- scalar kernels

/// One batch row of the LSTM cell over a range of units.
pub(crate) struct LstmFwd<'a, T> {
    /// The hidden projections `W_h{i,f,g,o} h` on entry, the activated gates on exit.
    gates: [&'a mut [T]; 4],
    /// The input projections.
    x: [&'a [T]; 4],
    /// The biases (`b_ih + b_hh`).
    b: [&'a [T]; 4],
    /// The cell state: `c` on entry, `c'` on exit.
    c: &'a mut [T],
    /// Where to keep `c` for the backward, if anywhere.
    c_save: Option<&'a mut [T]>,
    /// `o * tanh(c')`.
    r: &'a mut [T],
}

/// One batch row of the LSTM cell's gradient.
pub(crate) struct LstmBwd<'a, T> {
    /// Activated gates `i, f, g, o`.
    gates: [&'a [T]; 4],
    /// The cell state before the step.
    cp: &'a [T],
    /// The gradient at `r = o * tanh(c')` (without `dout`).
    dr: &'a [T],
    /// Added to `dr` when present (the step's output gradient).
    dout: Option<&'a [T]>,
    /// The gradient at `c'` on entry, at `c` on exit.
    dc: &'a mut [T],
    /// The gradients at the four gate pre-activations.
    dg: [&'a mut [T]; 4],
}

/// One batch row of the GRU cell.
pub(crate) struct GruFwd<'a, T> {
    /// `W_hr h`, `W_hz h`, `W_hn h` on entry; `r`, `z`, `W_hn h + b_hn` on exit.
    gates: [&'a mut [T]; 3],
    /// The input projections and their bias `b_ih`.
    x: [&'a [T]; 3],
    xb: [&'a [T]; 3],
    /// `b_hh`.
    bias: [&'a [T]; 3],
    hp: &'a [T],
    n: &'a mut [T],
    h: &'a mut [T],
}

/// One batch row of the GRU cell's gradient.
pub(crate) struct GruBwd<'a, T> {
    /// `r, z, W_hn h + b_hn, n`.
    gates: [&'a [T]; 4],
    hp: &'a [T],
    /// The gradient at `h'` on entry (without `dout`), its direct part
    /// `dh' * z` at `h` on exit.
    dh: &'a mut [T],
    dout: Option<&'a [T]>,
    /// Gradients at the hidden-side pre-activations `[r|z|W_hn h + b_hn]`.
    dpre: [&'a mut [T]; 3],
    /// Gradients at the input-side pre-activations `[r|z|n]`.
    dx: [&'a mut [T]; 3],
}

/// One batch row of the Elman cell (`pre` holds `W_hh h`).
pub(crate) struct RnnFwd<'a, T> {
    pre: &'a [T],
    x: &'a [T],
    /// `b_ih + b_hh`.
    b: &'a [T],
    h: &'a mut [T],
    relu: bool,
}

pub(crate) struct RnnBwd<'a, T> {
    h: &'a [T],
    dh: &'a [T],
    dout: Option<&'a [T]>,
    dp: &'a mut [T],
    relu: bool,
}

/// `dh + dout` (or `dh`).
#[inline(always)]
fn grad_in<T: Fl>(dh: &[T], dout: Option<&[T]>, j: usize) -> T {
    match dout {
        Some(d) => dh[j] + d[j],
        None => dh[j],
    }
}

#[inline(always)]
fn lstm_fwd<T: Real, M: MulAdd>(k: LstmFwd<'_, T>) {
    let n = k.c.len();
    if let Some(s) = k.c_save {
        s[..n].copy_from_slice(k.c);
    }
    let [gi, gf, gg, go] = k.gates;
    let (gi, gf, gg, go) = (&mut gi[..n], &mut gf[..n], &mut gg[..n], &mut go[..n]);
    let [xi, xf, xg, xo] = k.x;
    let (xi, xf, xg, xo) = (&xi[..n], &xf[..n], &xg[..n], &xo[..n]);
    let [bi, bf, bg, bo] = k.b;
    let (bi, bf, bg, bo) = (&bi[..n], &bf[..n], &bg[..n], &bo[..n]);
    let (c, r) = (&mut k.c[..n], &mut k.r[..n]);
    for j in 0..n {
        let i = (gi[j] + xi[j] + bi[j]).sigmoid::<M>();
        let f = (gf[j] + xf[j] + bf[j]).sigmoid::<M>();
        let g = (gg[j] + xg[j] + bg[j]).tanh::<M>();
        let o = (go[j] + xo[j] + bo[j]).sigmoid::<M>();
        let cn = f * c[j] + i * g;
        gi[j] = i;
        gf[j] = f;
        gg[j] = g;
        go[j] = o;
        c[j] = cn;
        r[j] = o * cn.tanh::<M>();
    }
}

#[inline(always)]
fn lstm_bwd<T: Real, M: MulAdd>(k: LstmBwd<'_, T>) {
    let n = k.dc.len();
    let one = T::from_f64(1.0);
    let [i, f, g, o] = k.gates;
    let (i, f, g, o) = (&i[..n], &f[..n], &g[..n], &o[..n]);
    let (cp, dr) = (&k.cp[..n], &k.dr[..n]);
    let dout = k.dout.map(|d| &d[..n]);
    let dc = &mut k.dc[..n];
    let [di, df, dg, dob] = k.dg;
    let (di, df, dg, dob) = (&mut di[..n], &mut df[..n], &mut dg[..n], &mut dob[..n]);
    for j in 0..n {
        let dh = grad_in(dr, dout, j);
        let c = f[j] * cp[j] + i[j] * g[j];
        let tc = c.tanh::<M>();
        let dct = dc[j] + dh * o[j] * (one - tc * tc);
        di[j] = dct * g[j] * i[j] * (one - i[j]);
        df[j] = dct * cp[j] * f[j] * (one - f[j]);
        dg[j] = dct * i[j] * (one - g[j] * g[j]);
        dob[j] = dh * tc * o[j] * (one - o[j]);
        dc[j] = dct * f[j];
    }
}

#[inline(always)]
fn gru_fwd<T: Real, M: MulAdd>(k: GruFwd<'_, T>) {
    let n = k.h.len();
    let [gr, gz, gn] = k.gates;
    let (gr, gz, gn) = (&mut gr[..n], &mut gz[..n], &mut gn[..n]);
    let [xr, xz, xn] = k.x;
    let (xr, xz, xn) = (&xr[..n], &xz[..n], &xn[..n]);
    let [cr, cz, cn] = k.xb;
    let (cr, cz, cn) = (&cr[..n], &cz[..n], &cn[..n]);
    let [br, bz, bn] = k.bias;
    let (br, bz, bn) = (&br[..n], &bz[..n], &bn[..n]);
    let (hp, nn, h) = (&k.hp[..n], &mut k.n[..n], &mut k.h[..n]);
    for j in 0..n {
        let r = (xr[j] + cr[j] + gr[j] + br[j]).sigmoid::<M>();
        let z = (xz[j] + cz[j] + gz[j] + bz[j]).sigmoid::<M>();
        let hn = gn[j] + bn[j];
        let nv = (xn[j] + cn[j] + r * hn).tanh::<M>();
        gr[j] = r;
        gz[j] = z;
        gn[j] = hn;
        nn[j] = nv;
        h[j] = nv + z * (hp[j] - nv);
    }
}

#[inline(always)]
fn gru_bwd<T: Real, M: MulAdd>(k: GruBwd<'_, T>) {
    let n = k.dh.len();
    let one = T::from_f64(1.0);
    let [r, z, hn, nv] = k.gates;
    let (r, z, hn, nv) = (&r[..n], &z[..n], &hn[..n], &nv[..n]);
    let hp = &k.hp[..n];
    let dout = k.dout.map(|d| &d[..n]);
    let dh = &mut k.dh[..n];
    let [pr, pz, pn] = k.dpre;
    let (pr, pz, pn) = (&mut pr[..n], &mut pz[..n], &mut pn[..n]);
    let [xr, xz, xn] = k.dx;
    let (xr, xz, xn) = (&mut xr[..n], &mut xz[..n], &mut xn[..n]);
    for j in 0..n {
        let d = grad_in(dh, dout, j);
        let dnp = d * (one - z[j]) * (one - nv[j] * nv[j]);
        let drp = dnp * hn[j] * r[j] * (one - r[j]);
        let dzp = d * (hp[j] - nv[j]) * z[j] * (one - z[j]);
        pr[j] = drp;
        pz[j] = dzp;
        pn[j] = dnp * r[j];
        xr[j] = drp;
        xz[j] = dzp;
        xn[j] = dnp;
        dh[j] = d * z[j];
    }
}

#[inline(always)]
fn rnn_fwd<T: Real, M: MulAdd>(k: RnnFwd<'_, T>) {
    let n = k.h.len();
    let (pre, x, b, h) = (&k.pre[..n], &k.x[..n], &k.b[..n], &mut k.h[..n]);
    if k.relu {
        let zero = T::ZERO;
        for j in 0..n {
            let v = pre[j] + x[j] + b[j];
            h[j] = T::pick(v > zero, v, zero);
        }
    } else {
        for j in 0..n {
            h[j] = (pre[j] + x[j] + b[j]).tanh::<M>();
        }
    }
}

#[inline(always)]
fn rnn_bwd<T: Real, M: MulAdd>(k: RnnBwd<'_, T>) {
    let n = k.dp.len();
    let one = T::from_f64(1.0);
    let (h, dh) = (&k.h[..n], &k.dh[..n]);
    let dout = k.dout.map(|d| &d[..n]);
    let dp = &mut k.dp[..n];
    if k.relu {
        for j in 0..n {
            dp[j] = T::pick(h[j] > T::ZERO, grad_in(dh, dout, j), T::ZERO);
        }
    } else {
        for j in 0..n {
            dp[j] = grad_in(dh, dout, j) * (one - h[j] * h[j]);
        }
    }
}

/// How the f32 kernels multiply-add: fused in the builds for CPUs with FMA
/// (AVX-512, AVX2), a multiply and an add in the baseline one (where
/// `mul_add` would be a libm call). The f64 kernels ignore it.
pub(crate) trait MulAdd {
    fn fma(a: f32, b: f32, c: f32) -> f32;
}

pub(crate) struct Fused;
pub(crate) struct Unfused;

impl MulAdd for Fused {
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Unfused {
    #[inline(always)]
    fn fma(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// The gate nonlinearities of the f32 cells: forms of `simd::exp_f32`,
/// `tanh_f32` and `sigmoid_f32` with fused multiply-adds and one exponent
/// scaling (the argument of `exp` is clamped to the range where a single
/// power of two represents the result).
///
/// Accuracy (tested against f64 in `tests`): `sigmoid` within 2.5e-7
/// relative for `x >= -87`; below, where sigmoid is under 1.7e-38, it
/// saturates at about 4.6e-39 (an absolute error below 5e-39). `tanh`
/// within 2.5e-7 relative everywhere, exactly +-1 for `|x| >= 9.1`. NaN
/// propagates.
mod cell_math {
    #![allow(clippy::excessive_precision)]
    use super::MulAdd;

    /// 2^n for integer-valued `n` in [-126, 127] (as `simd::pow2i`).
    #[inline(always)]
    fn pow2i(n: f32) -> f32 {
        f32::from_bits((n + 12_582_912.0).to_bits().wrapping_add(127) << 23)
    }

    /// e^x for `x` clamped to [-87.3, 88.3]: Cephes' range reduction and
    /// polynomial, scaled once.
    #[inline(always)]
    pub fn exp<M: MulAdd>(x: f32) -> f32 {
        let xc = x.clamp(-87.3, 88.3);
        let n = M::fma(xc, std::f32::consts::LOG2_E, 12_582_912.0) - 12_582_912.0;
        let r = M::fma(n, 2.121_944_4e-4, M::fma(n, -0.693_359_4, xc));
        let mut p = 1.987_569_1e-4f32;
        p = M::fma(p, r, 1.398_199_9e-3);
        p = M::fma(p, r, 8.333_452e-3);
        p = M::fma(p, r, 4.166_579_6e-2);
        p = M::fma(p, r, 1.666_666_5e-1);
        p = M::fma(p, r, 5.000_000_1e-1);
        M::fma(p * r, r, r + 1.0) * pow2i(n)
    }

    /// 1 / (1 + e^-x).
    #[inline(always)]
    pub fn sigmoid<M: MulAdd>(x: f32) -> f32 {
        1.0 / (1.0 + exp::<M>(-x))
    }

    /// An odd polynomial for |x| < 0.625 (and NaN), 1 - 2 / (e^2|x| + 1)
    /// beyond.
    #[inline(always)]
    pub fn tanh<M: MulAdd>(x: f32) -> f32 {
        let a = x.abs();
        let z = x * x;
        let mut p = -5.704_988_7e-3f32;
        p = M::fma(p, z, 2.063_908_9e-2);
        p = M::fma(p, z, -5.373_971_6e-2);
        p = M::fma(p, z, 1.333_144_2e-1);
        p = M::fma(p, z, -3.333_328_2e-1);
        let small = M::fma(p * z, x, x);
        let e = exp::<M>(2.0 * a.min(9.1));
        let big = (1.0 - 2.0 / (e + 1.0)).copysign(x);
        if a >= 0.625 {
            big
        } else {
            small
        }
    }
}

/// Expands `$m!` with the row kernels (`name: argument struct`), after the
/// tokens given.
macro_rules! row_kernels {
    ($m:ident!($($pre:tt)*)) => {
        $m!($($pre)* lstm_fwd: LstmFwd, lstm_bwd: LstmBwd, gru_fwd: GruFwd,
            gru_bwd: GruBwd, rnn_fwd: RnnFwd, rnn_bwd: RnnBwd);
    };
}

/// The row kernels as methods of [`Real`]: the generic ones (`generic`,
/// the trait's defaults) or the f32 builds of [`simd_rows`] (`f32`).
macro_rules! kernel_methods {
    (generic; $($name:ident: $k:ident),*) => {$(
        fn $name(k: $k<'_, Self>) {
            $name::<Self, Unfused>(k)
        }
    )*};
    (f32; $($name:ident: $k:ident),*) => {$(
        fn $name(k: $k<'_, f32>) {
            simd_rows::$name(k)
        }
    )*};
}

/// The f32 row kernels, compiled for AVX-512 and AVX2 with fused
/// multiply-adds and for baseline without (`multiversion!` with the
/// multiply-add chosen per build).
mod simd_rows {
    use super::*;

    macro_rules! fma_versions {
        ($($name:ident: $k:ident),*) => {$(
            pub fn $name(k: $k<'_, f32>) {
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                    unsafe fn avx512(k: $k<'_, f32>) {
                        super::$name::<f32, Fused>(k)
                    }
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn avx2(k: $k<'_, f32>) {
                        super::$name::<f32, Fused>(k)
                    }
                    if std::arch::is_x86_feature_detected!("avx512f")
                        && std::arch::is_x86_feature_detected!("avx512vl")
                    {
                        // SAFETY: the CPU has the features `avx512` is compiled for.
                        return unsafe { avx512(k) };
                    }
                    if std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                    {
                        // SAFETY: the CPU has the features `avx2` is compiled for.
                        return unsafe { avx2(k) };
                    }
                }
                super::$name::<f32, Unfused>(k)
            }
        )*};
    }

    row_kernels!(fma_versions!());
}

/// The float types the kernels compute in, with their row kernels and GEMM.
pub(crate) trait Real: Fl {
    fn sigmoid<M: MulAdd>(self) -> Self;
    fn tanh<M: MulAdd>(self) -> Self;

    /// `dst (m x n) = [dst +] a (m x k) @ b (k x n)`, all row-major with unit
    /// column stride and the given row strides.
    ///
    /// # Safety
    /// The three matrices must be valid for their shapes and strides, and
    /// `dst` must overlap neither input.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        n: usize,
        k: usize,
        dst: *mut Self,
        dst_rs: usize,
        accumulate: bool,
        a: *const Self,
        a_rs: usize,
        b: *const Self,
        b_rs: usize,
    );

    /// The GEMM on weights packed in panels ([`StepW`]), where it serves.
    fn panel_gemm() -> Option<PanelGemm<Self>> {
        None
    }

    row_kernels!(kernel_methods!(generic;));
}

macro_rules! real_gemm {
    ($F:ty) => {
        unsafe fn gemm(
            m: usize,
            n: usize,
            k: usize,
            dst: *mut $F,
            dst_rs: usize,
            accumulate: bool,
            a: *const $F,
            a_rs: usize,
            b: *const $F,
            b_rs: usize,
        ) {
            if m == 0 || n == 0 {
                return;
            }
            if k == 0 {
                if !accumulate {
                    for i in 0..m {
                        std::slice::from_raw_parts_mut(dst.add(i * dst_rs), n).fill(0.0);
                    }
                }
                return;
            }
            gemm::gemm::<$F>(
                m,
                n,
                k,
                dst,
                1,
                dst_rs as isize,
                accumulate,
                a,
                1,
                a_rs as isize,
                b,
                1,
                b_rs as isize,
                if accumulate { 1.0 } else { 0.0 },
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    };
}

impl Real for f32 {
    #[inline(always)]
    fn sigmoid<M: MulAdd>(self) -> f32 {
        cell_math::sigmoid::<M>(self)
    }
    #[inline(always)]
    fn tanh<M: MulAdd>(self) -> f32 {
        cell_math::tanh::<M>(self)
    }
    real_gemm!(f32);
    fn panel_gemm() -> Option<PanelGemm<f32>> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Some(panels::gemm_avx512);
        }
        None
    }
    row_kernels!(kernel_methods!(f32;));
}

impl Real for f64 {
    #[inline(always)]
    fn sigmoid<M: MulAdd>(self) -> f64 {
        1.0 / (1.0 + (-self).exp())
    }
    #[inline(always)]
    fn tanh<M: MulAdd>(self) -> f64 {
        f64::tanh(self)
    }
    real_gemm!(f64);
}

// ---------------------------------------------------------------- step GEMMs

/// Columns per panel of a packed weight (the AVX-512 f32 microkernel's 64
/// rows: it computes the transposed product, `dst^T = B^T a^T`).
const PANEL: usize = 64;

/// `dst (m x n) = [dst +] a (m x k) @ B`, `B` packed as `ceil(n / PANEL)`
/// panels of `k` rows of `PANEL` values; the signature of [`Real::gemm`]
/// (`B`'s row stride, `PANEL` within a panel, is implied).
type PanelGemm<T> =
    unsafe fn(usize, usize, usize, *mut T, usize, bool, *const T, usize, *const T, usize);

#[cfg(target_arch = "x86_64")]
mod panels {
    use super::PANEL;

    /// [`super::PanelGemm`] by the `gemm` crate's AVX-512 microkernels: per
    /// panel, tiles of up to 6 rows of `a` (the microkernel's broadcast
    /// side) against the panel's 64 columns.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; the operands must be valid for their
    /// shapes and strides, the panels zero padded to `PANEL` columns, and
    /// `dst` must overlap neither input.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm_avx512(
        m: usize,
        n: usize,
        k: usize,
        dst: *mut f32,
        dst_rs: usize,
        accumulate: bool,
        a: *const f32,
        a_rs: usize,
        panels: *const f32,
        _panel_rs: usize,
    ) {
        use gemm_f32::microkernel::avx512f::f32 as uk;
        for q in 0..n.div_ceil(PANEL) {
            let lhs = panels.add(q * k * PANEL);
            let cols = (n - q * PANEL).min(PANEL);
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(6);
                let f = match rows {
                    1 => uk::x4x1,
                    2 => uk::x4x2,
                    3 => uk::x4x3,
                    4 => uk::x4x4,
                    5 => uk::x4x5,
                    _ => uk::x4x6,
                };
                // dst^T's (cols x rows) tile: the panel is B^T's column-major
                // pack (PANEL apart per k), a^T's columns are rows of a;
                // dst^T's columns are dst's rows (dst_rs apart). With
                // `accumulate` the tile is added (alpha 1), else written.
                f(
                    cols,
                    rows,
                    k,
                    dst.add(r * dst_rs + q * PANEL),
                    lhs,
                    a.add(r * a_rs),
                    dst_rs as isize,
                    1,
                    PANEL as isize,
                    1,
                    a_rs as isize,
                    if accumulate { 1.0 } else { 0.0 },
                    1.0,
                    accumulate as u8,
                    false,
                    false,
                    false,
                    lhs,
                );
                r += rows;
            }
        }
    }
}

/// The weight operand `B` (`k x n`, row-major, row stride `ld`) of the
/// GEMMs a recurrence runs every step on fixed column ranges. Where the
/// panel kernel serves, each range is packed once per call (the per-step
/// GEMMs then read it as is; a general GEMM would repack `B` every step).
#[derive(Clone, Copy)]
struct StepW<T> {
    b: Ptr<T>,
    ld: usize,
    k: usize,
    /// The packed ranges (`stride` elements apart) and the kernel.
    packed: Option<(Ptr<T>, usize, PanelGemm<T>)>,
}

impl<T: Real> StepW<T> {
    /// `b` (contiguous `(k, ld)`) for GEMMs on the column `ranges`, and the
    /// packed copy it reads (keep it alive while the `StepW` is used).
    fn new(b: &Tensor, ranges: &[(usize, usize)]) -> Result<(StepW<T>, Option<Tensor>)> {
        let (k, ld) = (b.shape()[0], b.shape()[1]);
        let mut w = StepW {
            b: Ptr::of(b),
            ld,
            k,
            packed: None,
        };
        let Some(f) = T::panel_gemm() else {
            return Ok((w, None));
        };
        let width = ranges
            .iter()
            .map(|&(c0, c1)| (c1 - c0).div_ceil(PANEL))
            .max()
            .unwrap_or(0)
            * PANEL;
        let stride = width * k;
        let buf = Tensor::zeros(&[ranges.len() * stride], b.dtype())?;
        let dst = Ptr::<T>::of(&buf);
        for (i, &(c0, c1)) in ranges.iter().enumerate() {
            for q in 0..(c1 - c0).div_ceil(PANEL) {
                let (q0, wq) = (c0 + q * PANEL, (c1 - c0 - q * PANEL).min(PANEL));
                for kk in 0..k {
                    // SAFETY: row kk < k of `b`, columns q0..q0 + wq <= c1 <= ld;
                    // the panel row lies inside range i's `stride` elements.
                    unsafe {
                        dst.row_mut(i * stride + (q * k + kk) * PANEL, wq)
                            .copy_from_slice(w.b.row(kk * ld + q0, wq));
                    }
                }
            }
        }
        w.packed = Some((dst, stride, f));
        Ok((w, Some(buf)))
    }

    /// `dst (m x (c1 - c0)) = [dst +] a (m x k) @ B[:, c0..c1]`, the
    /// `range`-th of the ranges `new` was given.
    ///
    /// # Safety
    /// As [`Real::gemm`]; the packed copy must be alive.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        self,
        range: usize,
        (c0, c1): (usize, usize),
        m: usize,
        dst: *mut T,
        dst_rs: usize,
        accumulate: bool,
        a: *const T,
        a_rs: usize,
    ) {
        let (f, b, b_rs) = match self.packed {
            Some((p, stride, f)) if self.k > 0 && m > 0 => (f, p.at(range * stride), PANEL),
            _ => (T::gemm as PanelGemm<T>, self.b.at(c0), self.ld),
        };
        f(
            m,
            c1 - c0,
            self.k,
            dst,
            dst_rs,
            accumulate,
            a,
            a_rs,
            b,
            b_rs,
        )
    }
}

// ---------------------------------------------------------------- threads

/// A pointer that crosses into the worker threads. Every use below states
/// which rows and columns a chunk touches; chunks of one phase write
/// disjoint parts.
#[derive(Clone, Copy)]
struct Ptr<T>(*mut T);

// SAFETY: the pointers address tensors that outlive the (scoped) worker
// threads; which chunk reads and writes what is ordered by `Sched`'s
// phases, as documented at each use.
unsafe impl<T> Send for Ptr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Ptr<T> {}

impl<T> Ptr<T> {
    fn of(t: &Tensor) -> Ptr<T> {
        Ptr(t.raw_ptr() as *mut T)
    }
    fn at(self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
    }
    /// # Safety
    /// `[i, i + n)` must be inside the buffer and not written by another
    /// thread while the slice lives.
    unsafe fn row<'a>(self, i: usize, n: usize) -> &'a [T] {
        std::slice::from_raw_parts(self.0.add(i), n)
    }
    /// # Safety
    /// `[i, i + n)` must be inside the buffer and touched by no other
    /// thread while the slice lives.
    unsafe fn row_mut<'a>(self, i: usize, n: usize) -> &'a mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(i), n)
    }
    /// `N` rows of `n` elements, the first at `i`, `step` apart (a row's
    /// gate blocks).
    ///
    /// # Safety
    /// As [`Ptr::row`], for each.
    unsafe fn blocks<'a, const N: usize>(self, i: usize, step: usize, n: usize) -> [&'a [T]; N] {
        let p = self.0;
        std::array::from_fn(|k| std::slice::from_raw_parts(p.add(i + k * step), n))
    }
    /// # Safety
    /// As [`Ptr::row_mut`], for each; the rows must not overlap.
    unsafe fn blocks_mut<'a, const N: usize>(
        self,
        i: usize,
        step: usize,
        n: usize,
    ) -> [&'a mut [T]; N] {
        let p = self.0;
        std::array::from_fn(|k| std::slice::from_raw_parts_mut(p.add(i + k * step), n))
    }
}

/// Work of a recurrence as a sequence of phases (per step: the cell on
/// ranges of units, the projection or `dh` GEMM on ranges of columns),
/// each split into the same number of chunks. Threads claim chunks in
/// order; a chunk starts once every chunk of the earlier phases is done.
/// So a thread that the OS deschedules delays only the chunk it holds, not
/// every step (as a barrier between fixed shares would on a busy machine),
/// and the other threads take over its share.
struct Sched {
    chunks: usize,
    total: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Sched {
    fn new(phases: usize, chunks: usize) -> Sched {
        Sched {
            chunks,
            total: phases * chunks,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// Waits until `target` chunks are done: spins briefly (chunks take
    /// tens of microseconds), then sleeps.
    fn wait_for(&self, target: usize) {
        if self.done.load(Ordering::Acquire) >= target {
            return;
        }
        for _ in 0..2048 {
            std::hint::spin_loop();
            if self.done.load(Ordering::Acquire) >= target {
                return;
            }
        }
        // SeqCst pairs with `complete`: either it sees this sleeper, or
        // this thread sees its count.
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.lock.lock();
        while self.done.load(Ordering::SeqCst) < target {
            self.cv
                .wait_for(&mut guard, std::time::Duration::from_millis(1));
        }
        drop(guard);
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    fn complete(&self) {
        self.done.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock();
            self.cv.notify_all();
        }
    }

    /// Claims and runs chunks `f(phase, chunk)` until none is left.
    fn run(&self, f: &(impl Fn(usize, usize) + Sync)) {
        loop {
            let k = self.next.fetch_add(1, Ordering::Relaxed);
            if k >= self.total {
                return;
            }
            let phase = k / self.chunks;
            self.wait_for(phase * self.chunks);
            f(phase, k % self.chunks);
            self.complete();
        }
    }
}

/// Runs all phases of `f(phase, chunk)` on `threads` threads (the caller
/// is one of them).
fn run_phases(threads: usize, phases: usize, chunks: usize, f: impl Fn(usize, usize) + Sync) {
    if threads <= 1 || chunks <= 1 {
        for ph in 0..phases {
            for c in 0..chunks {
                f(ph, c);
            }
        }
        return;
    }
    let sched = Sched::new(phases, chunks);
    std::thread::scope(|s| {
        let (sched, f) = (&sched, &f);
        for _ in 1..threads {
            s.spawn(move || sched.run(f));
        }
        sched.run(f);
    });
}

/// `0..n` in `parts` contiguous ranges whose starts are multiples of
/// `align` (trailing ones may be empty).
fn split(n: usize, parts: usize, align: usize) -> Vec<(usize, usize)> {
    let chunk = n.div_ceil(parts.max(1)).div_ceil(align) * align;
    (0..parts.max(1))
        .map(|i| ((i * chunk).min(n), ((i + 1) * chunk).min(n)))
        .collect()
}

/// How a layer's steps go over threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Team {
    /// Each of `n` threads runs every step on its own share of the batch
    /// rows (rows are independent: no synchronisation per step).
    Rows(usize),
    /// `(threads, chunks)`: each step's phases split into chunks of units
    /// (or columns), see [`Sched`].
    Units(usize, usize),
}

/// The split for a recurrence whose step costs `macs` multiply-adds over
/// `h` units and a batch of `b`: a piece must be worth a thread (about
/// 2^16 multiply-adds a step); by batch rows when every share keeps at
/// least 8 rows (GEMMs of a useful height), else by chunks of units at
/// least 32 wide.
fn team_size(macs: usize, h: usize, b: usize) -> Team {
    const MIN_CHUNK_MACS: usize = 1 << 16;
    let pieces = (macs / MIN_CHUNK_MACS).max(1);
    let shares = num_threads().min(pieces).min(b / 8);
    if shares >= 2 {
        return Team::Rows(shares);
    }
    let chunks = pieces.min(h / 32).max(1);
    let threads = num_threads().min(chunks);
    if threads <= 1 {
        return Team::Units(1, 1);
    }
    Team::Units(threads, chunks.min(2 * threads))
}

impl Team {
    /// Chunks per phase.
    fn chunks(self) -> usize {
        match self {
            Team::Rows(_) => 1,
            Team::Units(_, c) => c,
        }
    }

    /// Runs `f(step, phase, chunk)` for the steps `order(0), order(1), ..`
    /// of `steps`, each step's `per_step` phases in order.
    fn run(
        self,
        steps: &[Step],
        order: impl Fn(usize) -> usize + Sync,
        per_step: usize,
        b: usize,
        f: impl Fn(&Step, usize, usize) + Sync,
    ) {
        let ns = steps.len();
        match self {
            Team::Rows(n) => {
                let share = |(r0, r1): (usize, usize)| {
                    for i in 0..ns {
                        let st = steps[order(i)].rows(r0, r1);
                        for sub in 0..per_step {
                            f(&st, sub, 0);
                        }
                    }
                };
                let shares = split(b, n, 1);
                std::thread::scope(|s| {
                    let share = &share;
                    for &rows in &shares[1..] {
                        s.spawn(move || share(rows));
                    }
                    share(shares[0]);
                });
            }
            Team::Units(nt, chunks) => run_phases(nt, ns * per_step, chunks, |ph, c| {
                f(&steps[order(ph / per_step)], ph % per_step, c)
            }),
        }
    }
}

/// One timestep in processing order: its first row, its batch, and the
/// next processed step's first row and batch (0 for the last); `sb` is
/// the state row of its first row (0 but for a share of the rows).
#[derive(Clone, Copy, Debug)]
struct Step {
    off: usize,
    bs: usize,
    next_off: usize,
    next_bs: usize,
    sb: usize,
}

impl Step {
    /// This step on the state rows `[r0, r1)` only (none may be left).
    fn rows(&self, r0: usize, r1: usize) -> Step {
        let clip = |bs: usize| bs.min(r1).saturating_sub(r0);
        Step {
            off: self.off + r0,
            bs: clip(self.bs),
            next_off: self.next_off + r0,
            next_bs: clip(self.next_bs),
            sb: self.sb + r0,
        }
    }
}

/// `(first row, batch)` of each timestep of a packed layer, in processing
/// order (last step first when `reverse`).
pub(crate) fn step_order(batch_sizes: &[usize], reverse: bool) -> Vec<(usize, usize)> {
    let mut offs = Vec::with_capacity(batch_sizes.len());
    let mut off = 0;
    for &bs in batch_sizes {
        offs.push((off, bs));
        off += bs;
    }
    if reverse {
        offs.reverse();
    }
    offs
}

fn steps(batch_sizes: &[usize], reverse: bool) -> Vec<Step> {
    let offs = step_order(batch_sizes, reverse);
    (0..offs.len())
        .map(|i| {
            let (next_off, next_bs) = offs.get(i + 1).copied().unwrap_or((0, 0));
            Step {
                off: offs[i].0,
                bs: offs[i].1,
                next_off,
                next_bs,
                sb: 0,
            }
        })
        .collect()
}

/// Sizes of one layer: `h` units, `p` state features (`proj_size` or `h`),
/// `gh = G * h` gate rows, `gs` the saved gate row stride, `b` the batch.
#[derive(Clone, Copy)]
struct Geo {
    mode: Mode,
    h: usize,
    p: usize,
    gh: usize,
    gs: usize,
    b: usize,
    proj: bool,
}

/// Which piece of a step a chunk call runs: the step's phase, the chunk's
/// index and its range of units or columns.
#[derive(Clone, Copy)]
struct Piece {
    phase: usize,
    chunk: usize,
    range: (usize, usize),
}

/// The forward's buffers (element pointers) and what each holds.
#[derive(Clone, Copy)]
struct Fwd<T> {
    /// `(N, gh)` input projections.
    xp: Ptr<T>,
    /// `(p, gh)`: `W_hh^T`, its columns grouped by chunk (each chunk's
    /// gate blocks side by side; the standard order with one chunk), for
    /// GEMMs on each chunk's columns.
    wt: StepW<T>,
    /// `(gh)`: the bias added to the input projections (`b_ih + b_hh`;
    /// GRU `b_ih`), and GRU's `b_hh` (zeros when absent).
    xb: Ptr<T>,
    bhh: Ptr<T>,
    /// `(h, p)`: `W_hr^T`.
    wrt: Ptr<T>,
    /// `(N, p)` outputs.
    out: Ptr<T>,
    /// `(b, p)` and `(b, h)` states: the initial ones on entry, final on exit.
    hn: Ptr<T>,
    cn: Ptr<T>,
    /// `(N, p)`: every step's previous state.
    hprev: Ptr<T>,
    /// `(N, gs)`: the activated gates, kept when training.
    gates: Ptr<T>,
    /// `(b, gs)`: the step's gates, each chunk's in its block (unused when
    /// training with one chunk).
    scratch: Ptr<T>,
    /// `(N, h)`: every step's previous cell state (LSTM, training).
    cprev: Option<Ptr<T>>,
    /// `(N, h)` when training, else `(b, h)`: `o * tanh(c')` (projection).
    r: Ptr<T>,
    train: bool,
}

/// One chunk of the forward at step `st`: phase 0 runs the cell on units
/// `range` (the gate columns of those units, then the pointwise cell);
/// phase 1 (with a projection) columns `range` of `h = r W_hr^T`.
///
/// # Safety
/// The buffers must be as `Fwd` describes, `hprev` filled with the initial
/// state rows no earlier step writes (see `rnn_layer`); the phases of all
/// steps must run in order, with the chunks of one phase on disjoint ranges.
unsafe fn forward_chunk<T: Real>(g: Geo, st: &Step, f: Fwd<T>, at: Piece) {
    let Piece {
        phase,
        chunk,
        range,
    } = at;
    let Geo { h, p, gh, gs, .. } = g;
    let relu = g.mode == Mode::RnnRelu;
    let grow = if f.train { st.off } else { st.sb };
    if phase == 0 {
        let (j0, u) = (range.0, range.1 - range.0);
        if u == 0 {
            return;
        }
        let (ng, ns) = (g.mode.gates(), gs / h);
        // This chunk's gate block: gate k of unit j0 + i of batch row b at
        // column c0 + k * u + i of row r0 + b of `buf` (row stride gs).
        // With one chunk that is the standard layout, written straight
        // into the saved gates when they are kept.
        let direct = f.train && u == h;
        let (buf, r0, c0) = if direct {
            (f.gates, st.off, 0)
        } else {
            (f.scratch, st.sb, ns * j0)
        };
        // The cell reads this step's input projections of these units after
        // the GEMM: ask for them now (they were written long before, by the
        // projection of all steps, and are no longer cached).
        #[cfg(target_arch = "x86_64")]
        for b in 0..st.bs {
            for k in 0..ng {
                let row = f.xp.at((st.off + b) * gh + k * h + j0) as *const i8;
                for line in (0..u * std::mem::size_of::<T>()).step_by(64) {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        row.wrapping_add(line),
                    );
                }
            }
        }
        // One GEMM for all gate blocks of these units (`wt`'s columns are
        // grouped the same way): reads all of hprev (written by an earlier
        // phase), writes this chunk's block.
        f.wt.gemm(
            chunk,
            (ng * j0, ng * (j0 + u)),
            st.bs,
            buf.at(r0 * gs + c0),
            gs,
            false,
            f.hprev.at(st.off * p),
            p,
        );
        for b in 0..st.bs {
            let row = st.off + b;
            let gr = (r0 + b) * gs + c0;
            let xr = row * gh;
            // The step's new h for these units (or r, with a projection).
            let hdst: *mut T = match g.mode {
                Mode::Lstm => {
                    let rrow = if f.train { row } else { st.sb + b };
                    let dst = if g.proj {
                        f.r.at(rrow * h + j0)
                    } else {
                        f.out.at(row * p + j0)
                    };
                    T::lstm_fwd(LstmFwd {
                        gates: buf.blocks_mut(gr, u, u),
                        x: f.xp.blocks(xr + j0, h, u),
                        b: f.xb.blocks(j0, h, u),
                        c: f.cn.row_mut((st.sb + b) * h + j0, u),
                        c_save: f.cprev.map(|c| c.row_mut(row * h + j0, u)),
                        r: std::slice::from_raw_parts_mut(dst, u),
                    });
                    dst
                }
                Mode::Gru => {
                    let dst = f.out.at(row * p + j0);
                    T::gru_fwd(GruFwd {
                        gates: buf.blocks_mut(gr, u, u),
                        x: f.xp.blocks(xr + j0, h, u),
                        xb: f.xb.blocks(j0, h, u),
                        bias: f.bhh.blocks(j0, h, u),
                        hp: f.hprev.row(row * p + j0, u),
                        n: buf.row_mut(gr + 3 * u, u),
                        h: std::slice::from_raw_parts_mut(dst, u),
                    });
                    dst
                }
                Mode::RnnTanh | Mode::RnnRelu => {
                    let dst = f.out.at(row * p + j0);
                    T::rnn_fwd(RnnFwd {
                        pre: buf.row(gr, u),
                        x: f.xp.row(xr + j0, u),
                        b: f.xb.row(j0, u),
                        h: std::slice::from_raw_parts_mut(dst, u),
                        relu,
                    });
                    dst
                }
            };
            if f.train && !direct {
                // Keep the activated gates in the standard layout.
                for k in 0..ns {
                    f.gates
                        .row_mut(row * gs + k * h + j0, u)
                        .copy_from_slice(buf.row(gr + k * u, u));
                }
            }
            if !g.proj {
                let hv = std::slice::from_raw_parts(hdst, u);
                f.hn.row_mut((st.sb + b) * p + j0, u).copy_from_slice(hv);
                if b < st.next_bs {
                    f.hprev
                        .row_mut((st.next_off + b) * p + j0, u)
                        .copy_from_slice(hv);
                }
            }
        }
    } else {
        // h = r W_hr^T (every unit's r is done: an earlier phase).
        let (k0, w) = (range.0, range.1 - range.0);
        if w == 0 {
            return;
        }
        T::gemm(
            st.bs,
            w,
            h,
            f.out.at(st.off * p + k0),
            p,
            false,
            f.r.at(grow * h),
            h,
            f.wrt.at(k0),
            p,
        );
        for b in 0..st.bs {
            let hv = f.out.row((st.off + b) * p + k0, w);
            f.hn.row_mut((st.sb + b) * p + k0, w).copy_from_slice(hv);
            if b < st.next_bs {
                f.hprev
                    .row_mut((st.next_off + b) * p + k0, w)
                    .copy_from_slice(hv);
            }
        }
    }
}

/// The backward's buffers.
#[derive(Clone, Copy)]
struct Bwd<T> {
    /// Saved by the forward (training layout).
    gates: Ptr<T>,
    cprev: Ptr<T>,
    hprev: Ptr<T>,
    /// `(N, p)` outputs (the Elman cell's derivative reads them).
    out: Ptr<T>,
    /// `(gh, p)` `W_hh` (for GEMMs on each chunk's columns); `(p, h)` `W_hr`.
    w: StepW<T>,
    wr: Ptr<T>,
    /// `(N, p)` output gradient.
    dout: Option<Ptr<T>>,
    /// `(b, p)`, `(b, h)`: the final states' gradients on entry, the
    /// initial states' on exit.
    dh: Ptr<T>,
    dc: Ptr<T>,
    /// `(N, gh)` gradients at the hidden-side pre-activations.
    dpre: Ptr<T>,
    /// `(N, gh)` gradients at the input projections (GRU; else `dpre`).
    dx: Ptr<T>,
    /// `(N, p)` gradient at every step's h (projection).
    dhall: Ptr<T>,
    /// `(b, h)` scratch: the gradient at r (projection).
    dr: Ptr<T>,
}

/// One chunk of the backward at step `st`. With a projection, phase 0
/// sums the gradient at h on columns `range` (kept for `W_hr`'s), phase 1
/// gets the gradient at r for units `range` and runs the cell's gradient
/// on them, phase 2 `dh = dpre W_hh` on columns `range`; without, phases
/// 1 and 2 only (numbered 0 and 1).
///
/// # Safety
/// As `forward_chunk`, for the buffers of `Bwd` (the forward's saved ones).
unsafe fn backward_chunk<T: Real>(g: Geo, st: &Step, d: Bwd<T>, at: Piece) {
    let Geo { h, p, gh, gs, .. } = g;
    let relu = g.mode == Mode::RnnRelu;
    let (phase, chunk, range) = (at.phase + usize::from(!g.proj), at.chunk, at.range);
    let (r0, len) = (range.0, range.1 - range.0);
    if len == 0 {
        return;
    }
    match phase {
        0 => {
            for b in 0..st.bs {
                let row = st.off + b;
                let dst = d.dhall.row_mut(row * p + r0, len);
                let dh = d.dh.row((st.sb + b) * p + r0, len);
                match d.dout {
                    Some(o) => {
                        let o = o.row(row * p + r0, len);
                        for ((x, &a), &c) in dst.iter_mut().zip(dh).zip(o) {
                            *x = a + c;
                        }
                    }
                    None => dst.copy_from_slice(dh),
                }
            }
        }
        1 => {
            let (j0, u) = (r0, len);
            let (dout, dr_src, dr_rs) = if g.proj {
                T::gemm(
                    st.bs,
                    u,
                    p,
                    d.dr.at(st.sb * h + j0),
                    h,
                    false,
                    d.dhall.at(st.off * p),
                    p,
                    d.wr.at(j0),
                    h,
                );
                (None, d.dr, h)
            } else {
                (d.dout, d.dh, p)
            };
            for b in 0..st.bs {
                let row = st.off + b;
                let gr = row * gs;
                let pr = row * gh;
                let dout_row = dout.map(|o| o.row(row * p + j0, u));
                match g.mode {
                    Mode::Lstm => T::lstm_bwd(LstmBwd {
                        gates: d.gates.blocks(gr + j0, h, u),
                        cp: d.cprev.row(row * h + j0, u),
                        dr: dr_src.row((st.sb + b) * dr_rs + j0, u),
                        dout: dout_row,
                        dc: d.dc.row_mut((st.sb + b) * h + j0, u),
                        dg: d.dpre.blocks_mut(pr + j0, h, u),
                    }),
                    Mode::Gru => T::gru_bwd(GruBwd {
                        gates: d.gates.blocks(gr + j0, h, u),
                        hp: d.hprev.row(row * p + j0, u),
                        dh: d.dh.row_mut((st.sb + b) * p + j0, u),
                        dout: dout_row,
                        dpre: d.dpre.blocks_mut(pr + j0, h, u),
                        dx: d.dx.blocks_mut(pr + j0, h, u),
                    }),
                    Mode::RnnTanh | Mode::RnnRelu => T::rnn_bwd(RnnBwd {
                        h: d.out.row(row * p + j0, u),
                        dh: d.dh.row((st.sb + b) * p + j0, u),
                        dout: dout_row,
                        dp: d.dpre.row_mut(pr + j0, u),
                        relu,
                    }),
                }
            }
        }
        _ => {
            // Every unit's dpre is done (an earlier phase). GRU adds to the
            // direct part dh' * z its cell gradient left in dh.
            d.w.gemm(
                chunk,
                (r0, r0 + len),
                st.bs,
                d.dh.at(st.sb * p + r0),
                p,
                g.mode == Mode::Gru,
                d.dpre.at(st.off * gh),
                gh,
            );
        }
    }
}

/// `batch_sizes` as checked sizes for `n` rows and a state batch of `b`.
fn check_batch_sizes(batch_sizes: &[i64], n: usize, b: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(batch_sizes.len());
    let mut prev = usize::MAX;
    for &bs in batch_sizes {
        if bs <= 0 || bs as usize > b || bs as usize > prev {
            return Err(Error::Runtime(format!(
                "rnn: batch_sizes must be positive, non-increasing and at most the state's batch {b}, got {batch_sizes:?}"
            )));
        }
        prev = bs as usize;
        out.push(prev);
    }
    let total: usize = out.iter().sum();
    if total != n {
        return Err(Error::Runtime(format!(
            "rnn: batch_sizes sum to {total} but the input has {n} rows"
        )));
    }
    Ok(out)
}

fn check_shape(what: &str, t: &Tensor, want: &[usize]) -> Result<()> {
    if t.shape() != want {
        return Err(Error::Runtime(format!(
            "rnn: expected {what} of shape {want:?}, got {:?}",
            t.shape()
        )));
    }
    Ok(())
}

/// One layer and direction of an RNN/LSTM/GRU over all timesteps.
///
/// `xp` is `(N, G*H)`, the input projection `x W_ih^T` of every row; `h0`
/// `(B, P)`, `c0` `(B, H)` (LSTM only); `w_hh` `(G*H, P)`; `b_ih`, `b_hh`
/// `(G*H)` (added in the cell: GRU scales its `W_hn h + b_hn` by `r`);
/// `w_hr` `(P, H)` (LSTM with `proj_size`). Returns the outputs `(N, P)`
/// and the final states.
#[allow(clippy::too_many_arguments)]
pub fn rnn_layer(
    mode: &str,
    xp: &Tensor,
    batch_sizes: &[i64],
    h0: &Tensor,
    c0: Option<&Tensor>,
    w_hh: &Tensor,
    b_ih: Option<&Tensor>,
    b_hh: Option<&Tensor>,
    w_hr: Option<&Tensor>,
    reverse: bool,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let mode = Mode::parse(mode)?;
    let dtype = xp.dtype();
    let dt = compute_dtype("rnn_layer", xp)?;
    for t in [Some(h0), c0, Some(w_hh), b_ih, b_hh, w_hr]
        .into_iter()
        .flatten()
    {
        if t.dtype() != dtype {
            return Err(Error::Runtime(format!(
                "rnn: expected all tensors to have dtype {}, got {}",
                dtype.scalar_name(),
                t.dtype().scalar_name()
            )));
        }
    }
    if w_hh.ndim() != 2 || xp.ndim() != 2 || h0.ndim() != 2 {
        return Err(Error::Runtime(
            "rnn: expected 2-D input projections, weight and state".into(),
        ));
    }
    let gh = w_hh.shape()[0];
    if !gh.is_multiple_of(mode.gates()) || gh == 0 {
        return Err(Error::Runtime(format!(
            "rnn: weight_hh has {gh} rows, not a positive multiple of {}",
            mode.gates()
        )));
    }
    let h = gh / mode.gates();
    let p = match w_hr {
        Some(wr) if mode == Mode::Lstm => {
            if wr.ndim() != 2 || wr.shape()[1] != h {
                return Err(Error::Runtime(format!(
                    "rnn: expected weight_hr of shape (P, {h}), got {:?}",
                    wr.shape()
                )));
            }
            wr.shape()[0]
        }
        Some(_) => {
            return Err(Error::Runtime(
                "rnn: proj_size is only supported for LSTM".into(),
            ))
        }
        None => h,
    };
    let n = xp.shape()[0];
    let b = h0.shape()[0];
    check_shape("weight_hh", w_hh, &[gh, p])?;
    check_shape("input projections", xp, &[n, gh])?;
    check_shape("h0", h0, &[b, p])?;
    match (mode, c0) {
        (Mode::Lstm, Some(c)) => check_shape("c0", c, &[b, h])?,
        (Mode::Lstm, None) => return Err(Error::Runtime("rnn: LSTM needs c0".into())),
        (_, Some(_)) => return Err(Error::Runtime("rnn: only LSTM takes c0".into())),
        _ => {}
    }
    for (what, t) in [("bias_ih", b_ih), ("bias_hh", b_hh)] {
        if let Some(t) = t {
            check_shape(what, t, &[gh])?;
        }
    }
    let sizes = check_batch_sizes(batch_sizes, n, b)?;
    let steps = steps(&sizes, reverse);
    let geo = Geo {
        mode,
        h,
        p,
        gh,
        gs: mode.gate_stride(h),
        b,
        proj: w_hr.is_some(),
    };

    let rec = Recorder::new_opt(
        mode.node_name(),
        &[Some(xp), Some(h0), c0, Some(w_hh), b_ih, b_hh, w_hr],
    );
    let train = rec.is_some();
    let cast = |t: &Tensor| copy::to_dtype(t, dtype, false);

    // Inputs in the compute dtype, contiguous; W_hh^T and W_hr^T laid out
    // so the per-step GEMMs read them without packing.
    let macs = b * (gh * p + if geo.proj { h * p } else { 0 });
    let team = team_size(macs, h, b);
    let chunks = team.chunks();
    let units = split(h, chunks, 16);
    let xs = prep(xp, dt)?;
    let wt = {
        let wt = shape::t(w_hh)?;
        if chunks > 1 {
            // Each chunk's gate blocks side by side: one GEMM per chunk.
            let mut parts = Vec::new();
            for &(j0, j1) in units.iter().filter(|(j0, j1)| j1 > j0) {
                for k in 0..mode.gates() {
                    parts.push(shape::narrow(
                        &wt,
                        1,
                        (k * h + j0) as i64,
                        (j1 - j0) as i64,
                    )?);
                }
            }
            prep(&join::cat(&parts, 1)?, dt)?
        } else {
            prep(&wt, dt)?
        }
    };
    let bias = |t: Option<&Tensor>| match t {
        Some(t) => prep(t, dt),
        None => Tensor::zeros(&[gh], dt),
    };
    // GRU adds b_hh to W_hn h before scaling it by r; the others add both
    // biases to the pre-activations.
    let (xb, bhh) = match (mode, b_ih, b_hh) {
        (Mode::Gru, _, _) => (bias(b_ih)?, bias(b_hh)?),
        (_, Some(bi), Some(bh)) => (prep(&add(bi, bh)?, dt)?, bias(None)?),
        (_, bi, bh) => (bias(bi.or(bh))?, bias(None)?),
    };
    let wrt = match w_hr {
        Some(wr) => prep(&shape::t(wr)?, dt)?,
        None => Tensor::zeros(&[0], dt)?,
    };
    let out = Tensor::empty(&[n, p], dt)?;
    let hn = copy::to_dtype(h0, dt, true)?;
    let hn = copy::contiguous(&hn)?;
    let cn = match c0 {
        Some(c) => copy::contiguous(&copy::to_dtype(c, dt, true)?)?,
        None => Tensor::zeros(&[0], dt)?,
    };
    let hprev = Tensor::empty(&[n, p], dt)?;
    let gates = Tensor::empty(&[if train { n } else { 0 }, geo.gs], dt)?;
    let direct = train && chunks == 1;
    let scratch = Tensor::empty(&[if direct { 0 } else { b }, geo.gs], dt)?;
    let gate_rows = if train { n } else { b };
    let cprev = if train && mode == Mode::Lstm {
        Some(Tensor::empty(&[n, h], dt)?)
    } else {
        None
    };
    let r = if geo.proj {
        Tensor::empty(&[gate_rows, h], dt)?
    } else {
        Tensor::zeros(&[0], dt)?
    };

    fdispatch!(dt, T => {
        let (hs, hp) = (Ptr::<T>::of(&hn), Ptr::<T>::of(&hprev));
        // Rows of each step's previous state that no earlier step wrote
        // (the first step, and growing batches in reverse) start at h0.
        let mut done = 0;
        for st in &steps {
            for row in done..st.bs {
                // SAFETY: row < b rows of the (b, p) h0 copy and row
                // st.off + row < n of the (n, p) hprev; no thread runs yet.
                unsafe {
                    hp.row_mut((st.off + row) * p, p).copy_from_slice(hs.row(row * p, p));
                }
            }
            done = done.max(st.bs);
        }
        let col_ranges: Vec<_> = units
            .iter()
            .map(|&(j0, j1)| (mode.gates() * j0, mode.gates() * j1))
            .collect();
        let (wstep, _packed) = StepW::<T>::new(&wt, &col_ranges)?;
        let f = Fwd::<T> {
            xp: Ptr::of(&xs),
            wt: wstep,
            xb: Ptr::of(&xb),
            bhh: Ptr::of(&bhh),
            wrt: Ptr::of(&wrt),
            out: Ptr::of(&out),
            hn: hs,
            cn: Ptr::of(&cn),
            hprev: hp,
            gates: Ptr::of(&gates),
            scratch: Ptr::of(&scratch),
            cprev: cprev.as_ref().map(Ptr::of),
            r: Ptr::of(&r),
            train,
        };
        let cols = split(p, chunks, 16);
        let per_step = if geo.proj { 2 } else { 1 };
        team.run(&steps, |i| i, per_step, b, |st, sub, c| {
            let range = if sub == 0 { units[c] } else { cols[c] };
            // SAFETY: the buffers were made above with the shapes `Fwd`
            // documents; phases run in order, chunks (and shares of the
            // rows) on disjoint ranges.
            unsafe { forward_chunk::<T>(geo, st, f, Piece { phase: sub, chunk: c, range }) }
        });
    });

    let out_t = cast(&out)?;
    let hn_t = cast(&hn)?;
    let cn_t = if mode == Mode::Lstm {
        Some(cast(&cn)?)
    } else {
        None
    };

    if let Some(mut rec) = rec {
        let i_w = rec.save(w_hh)?;
        let i_wr = match w_hr {
            Some(wr) => Some(rec.save(wr)?),
            None => None,
        };
        let i_gates = rec.save(&gates)?;
        let i_hprev = rec.save(&hprev)?;
        let i_cprev = match &cprev {
            Some(c) => Some(rec.save(c)?),
            None => None,
        };
        let i_r = if geo.proj { Some(rec.save(&r)?) } else { None };
        // The Elman cell's derivative reads its outputs.
        let i_out = match mode {
            Mode::RnnTanh | Mode::RnnRelu if dt == dtype => Some(rec.save_output(&out_t, 0)?),
            Mode::RnnTanh | Mode::RnnRelu => Some(rec.save(&out)?),
            _ => None,
        };
        let biases = (b_ih.is_some(), b_hh.is_some());
        // The inputs as given, for the differentiable rebuild that double
        // backward runs (`rnn_graph`); w_hh and w_hr are saved above.
        let originals =
            [Some(xp), Some(h0), c0, b_ih, b_hh].map(|t| t.map(|t| rec.save(t)).transpose());
        let [i_xp, i_h0, i_c0, i_bih, i_bhh] = originals;
        let originals = [i_xp?, i_h0?, i_c0?, i_bih?, i_bhh?];
        let sizes_f = sizes.clone();
        let mut outputs: Vec<&Tensor> = vec![&out_t, &hn_t];
        if let Some(c) = &cn_t {
            outputs.push(c);
        }
        rec.finish(&outputs, move |ctx, grads| {
            let create_graph = autograd::is_grad_enabled();
            if create_graph {
                let get = |i: Option<usize>| i.map(|i| ctx.saved(i)).transpose();
                let [xp, h0, c0, bih, bhh] = originals;
                let inputs = [
                    get(xp)?,
                    get(h0)?,
                    get(c0)?,
                    get(Some(i_w))?,
                    get(bih)?,
                    get(bhh)?,
                    get(i_wr)?,
                ];
                return crate::ops::rnn_graph::layer_grads_with_graph(
                    mode, &inputs, &sizes_f, reverse, &grads,
                );
            }
            let res = {
                let _mode = GradMode::set(false);
                let saved = |i: Option<usize>| -> Result<Tensor> {
                    match i {
                        Some(i) => prep(&ctx.saved(i)?, dt),
                        None => Tensor::zeros(&[0], dt),
                    }
                };
                let sv = Saved {
                    w: prep(&ctx.saved(i_w)?, dt)?,
                    wr: saved(i_wr)?,
                    gates: ctx.saved(i_gates)?,
                    hprev: ctx.saved(i_hprev)?,
                    cprev: saved(i_cprev)?,
                    r: saved(i_r)?,
                    out: saved(i_out)?,
                };
                layer_backward(geo, &steps, dt, &sv, &grads, ctx, biases)?
            };
            let res: Vec<Option<Tensor>> = res
                .into_iter()
                .map(|g| g.map(|g| copy::to_dtype(&g, dtype, false)).transpose())
                .collect::<Result<_>>()?;
            Ok(res)
        });
    }
    Ok((out_t, hn_t, cn_t))
}

/// What the layer's backward reads (compute dtype, contiguous).
struct Saved {
    w: Tensor,
    wr: Tensor,
    gates: Tensor,
    hprev: Tensor,
    cprev: Tensor,
    r: Tensor,
    out: Tensor,
}

/// Gradients of `rnn_layer`'s inputs `[xp, h0, c0, w_hh, b_ih, b_hh, w_hr]`
/// from those of its outputs `[out, h_n, c_n]`; `biases` tells which
/// biases were given.
fn layer_backward(
    geo: Geo,
    steps: &[Step],
    dt: DType,
    sv: &Saved,
    grads: &[Option<Tensor>],
    ctx: &autograd::Ctx<'_>,
    biases: (bool, bool),
) -> Result<Vec<Option<Tensor>>> {
    let Geo {
        mode, h, p, gh, b, ..
    } = geo;
    let n: usize = steps.iter().map(|s| s.bs).sum();
    let grad = |i: usize| grads.get(i).cloned().flatten();
    let dout = grad(0).map(|g| prep(&g, dt)).transpose()?;
    let state = |i: usize, shape: &[usize]| -> Result<Tensor> {
        match grad(i) {
            Some(g) => copy::contiguous(&copy::to_dtype(&g, dt, true)?),
            None => Tensor::zeros(shape, dt),
        }
    };
    let dh = state(1, &[b, p])?;
    let dc = if mode == Mode::Lstm {
        state(2, &[b, h])?
    } else {
        Tensor::zeros(&[0], dt)?
    };
    let dpre = Tensor::empty(&[n, gh], dt)?;
    let dx = if mode == Mode::Gru {
        Tensor::empty(&[n, gh], dt)?
    } else {
        dpre.clone()
    };
    let dhall = if geo.proj {
        Tensor::empty(&[n, p], dt)?
    } else {
        Tensor::zeros(&[0], dt)?
    };
    let dr = if geo.proj {
        Tensor::empty(&[b, h], dt)?
    } else {
        Tensor::zeros(&[0], dt)?
    };
    let macs = b * (gh * p + if geo.proj { h * p } else { 0 });
    let team = team_size(macs, h, b);
    let chunks = team.chunks();
    let units = split(h, chunks, 16);
    let cols = split(p, chunks, 16);
    fdispatch!(dt, T => {
        let (wstep, _packed) = StepW::<T>::new(&sv.w, &cols)?;
        let d = Bwd::<T> {
            gates: Ptr::of(&sv.gates),
            cprev: Ptr::of(&sv.cprev),
            hprev: Ptr::of(&sv.hprev),
            out: Ptr::of(&sv.out),
            w: wstep,
            wr: Ptr::of(&sv.wr),
            dout: dout.as_ref().map(Ptr::of),
            dh: Ptr::of(&dh),
            dc: Ptr::of(&dc),
            dpre: Ptr::of(&dpre),
            dx: Ptr::of(&dx),
            dhall: Ptr::of(&dhall),
            dr: Ptr::of(&dr),
        };
        // Per step: [dh at h (projection),] the cell's gradient, dh = dpre W_hh.
        let per_step = if geo.proj { 3 } else { 2 };
        let ns = steps.len();
        team.run(steps, |i| ns - 1 - i, per_step, b, |st, sub, c| {
            let is_units = sub + 3 - per_step == 1;
            let range = if is_units { units[c] } else { cols[c] };
            // SAFETY: the buffers have the shapes `Bwd` documents (saved by
            // the forward or made above); phases run in order, chunks (and
            // shares of the rows) on disjoint ranges.
            unsafe { backward_chunk::<T>(geo, st, d, Piece { phase: sub, chunk: c, range }) }
        });
    });
    // Weight gradients: one GEMM over all steps each.
    let dw = if ctx.needs(3) {
        Some(linalg::mm(&shape::t(&dpre)?, &sv.hprev)?)
    } else {
        None
    };
    // b_ih's gradient is the input projections' (dx), b_hh's the hidden
    // side's (dpre; the same tensor but for GRU).
    let colsum = |t: &Tensor| reduce::sum(t, Some(&[0]), false, None);
    let dbi = if ctx.needs(4) && biases.0 {
        Some(colsum(&dx)?)
    } else {
        None
    };
    let dbh = match (ctx.needs(5) && biases.1, &dbi) {
        (false, _) => None,
        (true, Some(d)) if mode != Mode::Gru => Some(d.clone()),
        (true, _) => Some(colsum(&dpre)?),
    };
    let dwr = if ctx.needs(6) && geo.proj {
        Some(linalg::mm(&shape::t(&dhall)?, &sv.r)?)
    } else {
        None
    };
    Ok(vec![
        ctx.needs(0).then_some(dx),
        ctx.needs(1).then_some(dh),
        (ctx.needs(2) && mode == Mode::Lstm).then_some(dc),
        dw,
        dbi,
        dbh,
        dwr,
    ])
}

// ---------------------------------------------------------------- cells

/// The sum of the given biases (zeros when none), `(n)` in the compute
/// dtype and contiguous.
fn cell_bias(a: Option<&Tensor>, b: Option<&Tensor>, n: usize, dt: DType) -> Result<Tensor> {
    match (a, b) {
        (Some(a), Some(b)) => prep(&add(a, b)?, dt),
        (Some(t), None) | (None, Some(t)) => prep(t, dt),
        (None, None) => Tensor::zeros(&[n], dt),
    }
}

fn check_cell(
    name: &str,
    gi: &Tensor,
    gh: &Tensor,
    state: &Tensor,
    bi: Option<&Tensor>,
    bh: Option<&Tensor>,
    gates: usize,
) -> Result<(usize, usize)> {
    if gi.ndim() != 2 || state.ndim() != 2 {
        return Err(Error::Runtime(format!(
            "{name}: expected 2-D gates and state"
        )));
    }
    let (b, h) = (state.shape()[0], state.shape()[1]);
    for (what, t) in [("input_gates", gi), ("hidden_gates", gh)] {
        if t.shape() != [b, gates * h] {
            return Err(Error::Runtime(format!(
                "{name}: expected {what} of shape [{b}, {}], got {:?}",
                gates * h,
                t.shape()
            )));
        }
    }
    for t in [bi, bh].into_iter().flatten() {
        if t.shape() != [gates * h] {
            return Err(Error::Runtime(format!(
                "{name}: expected a bias of shape [{}], got {:?}",
                gates * h,
                t.shape()
            )));
        }
    }
    for t in [Some(gh), Some(state), bi, bh].into_iter().flatten() {
        if t.dtype() != gi.dtype() {
            return Err(Error::Runtime(format!(
                "{name}: expected all tensors to have dtype {}, got {}",
                gi.dtype().scalar_name(),
                t.dtype().scalar_name()
            )));
        }
    }
    Ok((b, h))
}

/// Runs `f(row, ptrs)` for the `rows` batch rows of a cell, over threads
/// when large; `ptrs` are the element pointers of `bufs` (contiguous, of
/// the compute dtype `T`).
fn cell_rows<T: Real, const N: usize>(
    rows: usize,
    h: usize,
    bufs: [&Tensor; N],
    f: impl Fn(usize, [Ptr<T>; N]) + Sync,
) {
    let ptrs = bufs.map(Ptr::of);
    for_ranges(rows, h * 40, 1, |a, e| {
        for row in a..e {
            f(row, ptrs);
        }
    });
}

/// Columns `[k*h, (k+1)*h)` of `t` (a 2-D view).
fn block(t: &Tensor, k: usize, h: usize) -> Result<Tensor> {
    shape::narrow(t, 1, (k * h) as i64, h as i64)
}

fn sig(t: &Tensor) -> Result<Tensor> {
    un(Unary::Sigmoid, t)
}

fn tanh(t: &Tensor) -> Result<Tensor> {
    un(Unary::Tanh, t)
}

/// `1 - t`.
fn one_minus(t: &Tensor) -> Result<Tensor> {
    rsub_s(1.0, t)
}

/// Sums a gate gradient over the batch for a bias.
fn bias_grad(dg: &Tensor) -> Result<Tensor> {
    reduce::sum(dg, Some(&[0]), false, None)
}

/// `a + b` where `b` may be absent.
fn add_opt(a: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    match b {
        Some(b) => add(a, b),
        None => Ok(a.clone()),
    }
}

/// A missing gradient as zeros shaped like `like`.
fn grad_or_zeros(g: Option<&Tensor>, like: &Tensor) -> Result<Tensor> {
    match g {
        Some(g) => Ok(g.clone()),
        None => {
            crate::ops::creation::full(like.shape(), crate::tensor::Scalar::Int(0), like.dtype())
        }
    }
}

/// An output gradient of a cell as a fresh contiguous `(b, h)` buffer of
/// the compute dtype (the kernels update it in place), zeros when absent.
fn grad_rows(g: Option<&Tensor>, b: usize, h: usize, dt: DType) -> Result<Tensor> {
    match g {
        Some(g) => copy::contiguous(&copy::to_dtype(g, dt, true)?),
        None => Tensor::zeros(&[b, h], dt),
    }
}

/// A cell's gradients: at its input-side gates, at its hidden-side gates
/// (`None`: the same tensor, as for LSTM) and at its state.
type CellGrads = (Tensor, Option<Tensor>, Tensor);

/// A cell's backward by its fused kernel (see [`CellKind::kernel`]).
type CellKernel = fn(&Tensor, &Tensor, &[Option<Tensor>], usize, usize, DType) -> Result<CellGrads>;

/// A cell's backward by differentiable ops (see [`CellKind::ops`]).
type CellOps = fn(&Tensor, &Tensor, &Tensor, &[Option<Tensor>], usize) -> Result<CellGrads>;

/// What tells the fused cells (`nn.LSTMCell`, `nn.GRUCell`) apart; the
/// rest (checks, recording, the backward's two ways and the bias
/// gradients) is shared.
struct CellKind {
    /// The op's name in messages and its node's.
    name: &'static str,
    node: &'static str,
    gates: usize,
    /// The gradients by the fused kernel from the saved workspace, the
    /// state before the step (compute dtype), the output gradients, `b`,
    /// `h` and the compute dtype.
    kernel: CellKernel,
    /// The gradients with differentiable ops (for double backward) from the
    /// input-side and hidden-side pre-activations (biases included), the
    /// state and the output gradients, `h`.
    ops: CellOps,
}

static LSTM_CELL: CellKind = CellKind {
    name: "lstm_cell",
    node: "ThnnFusedLstmCellBackward0",
    gates: 4,
    kernel: lstm_cell_backward_kernel,
    ops: lstm_cell_backward_ops,
};

static GRU_CELL: CellKind = CellKind {
    name: "gru_cell",
    node: "ThnnFusedGruCellBackward0",
    gates: 3,
    kernel: gru_cell_backward_kernel,
    ops: gru_cell_backward_ops,
};

/// The inputs of a cell op: `input_gates`, `hidden_gates`, the state and
/// the biases.
type CellInputs<'a> = (
    &'a Tensor,
    &'a Tensor,
    &'a Tensor,
    Option<&'a Tensor>,
    Option<&'a Tensor>,
);

/// A cell op's checks: `(b, h, dtype, compute dtype)` and its recorder.
fn cell_begin(
    kind: &CellKind,
    (gi, gh, state, bi, bh): CellInputs<'_>,
) -> Result<(usize, usize, DType, DType, Option<Recorder>)> {
    let (b, h) = check_cell(kind.name, gi, gh, state, bi, bh, kind.gates)?;
    let dt = compute_dtype(kind.name, state)?;
    let rec = Recorder::new_opt(kind.node, &[Some(gi), Some(gh), Some(state), bi, bh]);
    Ok((b, h, state.dtype(), dt, rec))
}

/// Records a cell op's backward: the fused kernel on the saved workspace
/// `ws` (the activated gates), or under create_graph the differentiable
/// ops on the saved inputs; the biases' gradients are the gate gradients'
/// batch sums.
fn cell_record(
    kind: &'static CellKind,
    mut rec: Recorder,
    outputs: &[&Tensor],
    ws: &Tensor,
    (gi, gh, state, bi, bh): CellInputs<'_>,
    (b, h, dtype, dt): (usize, usize, DType, DType),
) -> Result<()> {
    let i_ws = rec.save(ws)?;
    let mut idx = [None; 5];
    for (slot, t) in idx
        .iter_mut()
        .zip([Some(gi), Some(gh), Some(state), bi, bh])
    {
        if let Some(t) = t {
            *slot = Some(rec.save(t)?);
        }
    }
    rec.finish(outputs, move |ctx, grads| {
        if grads.iter().all(Option::is_none) {
            return Ok(vec![None; 5]);
        }
        let saved = |i: usize| idx[i].map(|i| ctx.saved(i)).transpose();
        let (Some(gi), Some(gh), Some(state)) = (saved(0)?, saved(1)?, saved(2)?) else {
            return Err(Error::Runtime(format!(
                "{}: missing saved inputs",
                kind.name
            )));
        };
        let (dgi, dgh, dstate) = if autograd::is_grad_enabled() {
            let xs = add_opt(&gi, saved(3)?.as_ref())?;
            let hs = add_opt(&gh, saved(4)?.as_ref())?;
            (kind.ops)(&xs, &hs, &state, &grads, h)?
        } else {
            let (dgi, dgh, dstate) =
                (kind.kernel)(&ctx.saved(i_ws)?, &prep(&state, dt)?, &grads, b, h, dt)?;
            let cast = |t: &Tensor| copy::to_dtype(t, dtype, false);
            (
                cast(&dgi)?,
                dgh.map(|t| cast(&t)).transpose()?,
                cast(&dstate)?,
            )
        };
        let dbi = if ctx.needs(3) {
            Some(bias_grad(&dgi)?)
        } else {
            None
        };
        let dbh = match (&dgh, &dbi) {
            _ if !ctx.needs(4) => None,
            (None, Some(d)) => Some(d.clone()),
            (None, None) => Some(bias_grad(&dgi)?),
            (Some(g), _) => Some(bias_grad(g)?),
        };
        let dgh = dgh.unwrap_or_else(|| dgi.clone());
        Ok(vec![
            ctx.needs(0).then_some(dgi),
            ctx.needs(1).then_some(dgh),
            ctx.needs(2).then_some(dstate),
            dbi,
            dbh,
        ])
    });
    Ok(())
}

/// `nn.LSTMCell`'s pointwise step (PyTorch's `_thnn_fused_lstm_cell`):
/// gates `input_gates + hidden_gates (+ biases)`, `(B, 4H)` in `i, f, g, o`
/// order; returns `(h', c')`.
pub fn lstm_cell(
    input_gates: &Tensor,
    hidden_gates: &Tensor,
    cx: &Tensor,
    input_bias: Option<&Tensor>,
    hidden_bias: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let inputs = (input_gates, hidden_gates, cx, input_bias, hidden_bias);
    let (b, h, dtype, dt, rec) = cell_begin(&LSTM_CELL, inputs)?;
    // The activated gates (kept for the backward) start as a copy of the
    // hidden projections.
    let gates = copy::contiguous(&copy::to_dtype(hidden_gates, dt, true)?)?;
    let xs = prep(input_gates, dt)?;
    let bias = cell_bias(input_bias, hidden_bias, 4 * h, dt)?;
    let c = copy::contiguous(&copy::to_dtype(cx, dt, true)?)?;
    let hy = Tensor::empty(&[b, h], dt)?;
    fdispatch!(dt, T => {
        let bufs = [&gates, &xs, &bias, &c, &hy];
        cell_rows::<T, 5>(b, h, bufs, |row, [g, x, bp, cy, hh]| {
            let gr = row * 4 * h;
            // SAFETY: row < b of the contiguous (b, 4h) gates and inputs
            // and (b, h) states; each row is visited by one thread.
            unsafe {
                T::lstm_fwd(LstmFwd {
                    gates: g.blocks_mut(gr, h, h),
                    x: x.blocks(gr, h, h),
                    b: bp.blocks(0, h, h),
                    c: cy.row_mut(row * h, h),
                    c_save: None,
                    r: hh.row_mut(row * h, h),
                });
            }
        });
    });
    let hy_t = copy::to_dtype(&hy, dtype, false)?;
    let cy_t = copy::to_dtype(&c, dtype, false)?;
    if let Some(rec) = rec {
        cell_record(
            &LSTM_CELL,
            rec,
            &[&hy_t, &cy_t],
            &gates,
            inputs,
            (b, h, dtype, dt),
        )?;
    }
    Ok((hy_t, cy_t))
}

/// The LSTM cell's gradient by the fused row kernel from the activated
/// gates and `cx`: `(dgates, -, dcx)`.
fn lstm_cell_backward_kernel(
    gates: &Tensor,
    cp: &Tensor,
    grads: &[Option<Tensor>],
    b: usize,
    h: usize,
    dt: DType,
) -> Result<CellGrads> {
    let dh = grad_rows(grads.first().and_then(Option::as_ref), b, h, dt)?;
    let dc = grad_rows(grads.get(1).and_then(Option::as_ref), b, h, dt)?;
    let dg = Tensor::empty(&[b, 4 * h], dt)?;
    fdispatch!(dt, T => {
        let bufs = [gates, cp, &dh, &dc, &dg];
        cell_rows::<T, 5>(b, h, bufs, |row, [g, c, dhp, dcp, dgp]| {
            let gr = row * 4 * h;
            // SAFETY: row < b of the contiguous (b, 4h) and (b, h) buffers;
            // each row is visited by one thread.
            unsafe {
                T::lstm_bwd(LstmBwd {
                    gates: g.blocks(gr, h, h),
                    cp: c.row(row * h, h),
                    dr: dhp.row(row * h, h),
                    dout: None,
                    dc: dcp.row_mut(row * h, h),
                    dg: dgp.blocks_mut(gr, h, h),
                });
            }
        });
    });
    Ok((dg, None, dc))
}

/// The LSTM cell's gradient with differentiable ops from the input-side
/// and hidden-side pre-activations (for double backward).
fn lstm_cell_backward_ops(
    xs: &Tensor,
    hs: &Tensor,
    cx: &Tensor,
    grads: &[Option<Tensor>],
    h: usize,
) -> Result<CellGrads> {
    let pre = add(xs, hs)?;
    let i = sig(&block(&pre, 0, h)?)?;
    let f = sig(&block(&pre, 1, h)?)?;
    let g = tanh(&block(&pre, 2, h)?)?;
    let o = sig(&block(&pre, 3, h)?)?;
    let c = add(&mul(&f, cx)?, &mul(&i, &g)?)?;
    let tc = tanh(&c)?;
    let dh = grad_or_zeros(grads.first().and_then(Option::as_ref), &c)?;
    let dc = grad_or_zeros(grads.get(1).and_then(Option::as_ref), &c)?;
    let dct = add(&dc, &mul(&mul(&dh, &o)?, &one_minus(&mul(&tc, &tc)?)?)?)?;
    let di = mul(&mul(&dct, &g)?, &mul(&i, &one_minus(&i)?)?)?;
    let df = mul(&mul(&dct, cx)?, &mul(&f, &one_minus(&f)?)?)?;
    let dg = mul(&mul(&dct, &i)?, &one_minus(&mul(&g, &g)?)?)?;
    let do_ = mul(&mul(&dh, &tc)?, &mul(&o, &one_minus(&o)?)?)?;
    let dgates = join::cat(&[di, df, dg, do_], 1)?;
    Ok((dgates, None, mul(&dct, &f)?))
}

/// `nn.GRUCell`'s pointwise step (PyTorch's `_thnn_fused_gru_cell`):
/// `input_gates = x W_ih^T`, `hidden_gates = h W_hh^T`, `(B, 3H)` in `r, z,
/// n` order; returns `h'`.
pub fn gru_cell(
    input_gates: &Tensor,
    hidden_gates: &Tensor,
    hx: &Tensor,
    input_bias: Option<&Tensor>,
    hidden_bias: Option<&Tensor>,
) -> Result<Tensor> {
    let inputs = (input_gates, hidden_gates, hx, input_bias, hidden_bias);
    let (b, h, dtype, dt, rec) = cell_begin(&GRU_CELL, inputs)?;
    let xs = prep(input_gates, dt)?;
    let xb = cell_bias(input_bias, None, 3 * h, dt)?;
    // Workspace `[r|z|W_hn h + b_hn|n]`, starting as the hidden projections.
    let ws = Tensor::empty(&[b, 4 * h], dt)?;
    copy::copy_(
        &shape::narrow(&ws, 1, 0, (3 * h) as i64)?,
        &copy::to_dtype(hidden_gates, dt, false)?,
    )?;
    let bias = cell_bias(hidden_bias, None, 3 * h, dt)?;
    let hp = prep(hx, dt)?;
    let hy = Tensor::empty(&[b, h], dt)?;
    fdispatch!(dt, T => {
        let bufs = [&ws, &xs, &xb, &bias, &hp, &hy];
        cell_rows::<T, 6>(b, h, bufs, |row, [w, x, xbp, bp, hpp, hh]| {
            let (wr, xr) = (row * 4 * h, row * 3 * h);
            // SAFETY: row < b of the contiguous (b, 4h), (b, 3h) and (b, h)
            // buffers; each row is visited by one thread.
            unsafe {
                T::gru_fwd(GruFwd {
                    gates: w.blocks_mut(wr, h, h),
                    x: x.blocks(xr, h, h),
                    xb: xbp.blocks(0, h, h),
                    bias: bp.blocks(0, h, h),
                    hp: hpp.row(row * h, h),
                    n: w.row_mut(wr + 3 * h, h),
                    h: hh.row_mut(row * h, h),
                });
            }
        });
    });
    let hy_t = copy::to_dtype(&hy, dtype, false)?;
    if let Some(rec) = rec {
        cell_record(&GRU_CELL, rec, &[&hy_t], &ws, inputs, (b, h, dtype, dt))?;
    }
    Ok(hy_t)
}

/// The GRU cell's gradient by the fused row kernel from the workspace
/// `[r|z|W_hn h + b_hn|n]` and `hx`.
fn gru_cell_backward_kernel(
    ws: &Tensor,
    hp: &Tensor,
    grads: &[Option<Tensor>],
    b: usize,
    h: usize,
    dt: DType,
) -> Result<CellGrads> {
    let dh = grad_rows(grads.first().and_then(Option::as_ref), b, h, dt)?;
    let dgi = Tensor::empty(&[b, 3 * h], dt)?;
    let dgh = Tensor::empty(&[b, 3 * h], dt)?;
    fdispatch!(dt, T => {
        let bufs = [ws, hp, &dh, &dgi, &dgh];
        cell_rows::<T, 5>(b, h, bufs, |row, [w, hpp, dhp, di, dhh]| {
            let (wr, gr) = (row * 4 * h, row * 3 * h);
            // SAFETY: row < b of the contiguous (b, 4h), (b, 3h) and (b, h)
            // buffers; each row is visited by one thread.
            unsafe {
                T::gru_bwd(GruBwd {
                    gates: w.blocks(wr, h, h),
                    hp: hpp.row(row * h, h),
                    dh: dhp.row_mut(row * h, h),
                    dout: None,
                    dpre: dhh.blocks_mut(gr, h, h),
                    dx: di.blocks_mut(gr, h, h),
                });
            }
        });
    });
    Ok((dgi, Some(dgh), dh))
}

/// The GRU cell's gradient with differentiable ops from the input-side
/// and hidden-side pre-activations (biases included), for double backward.
fn gru_cell_backward_ops(
    xs: &Tensor,
    hs: &Tensor,
    hx: &Tensor,
    grads: &[Option<Tensor>],
    h: usize,
) -> Result<CellGrads> {
    let dhy = grad_or_zeros(grads.first().and_then(Option::as_ref), hx)?;
    let r = sig(&add(&block(xs, 0, h)?, &block(hs, 0, h)?)?)?;
    let z = sig(&add(&block(xs, 1, h)?, &block(hs, 1, h)?)?)?;
    let hn = block(hs, 2, h)?;
    let n = tanh(&add(&block(xs, 2, h)?, &mul(&r, &hn)?)?)?;
    let dnp = mul(&mul(&dhy, &one_minus(&z)?)?, &one_minus(&mul(&n, &n)?)?)?;
    let drp = mul(&mul(&dnp, &hn)?, &mul(&r, &one_minus(&r)?)?)?;
    let dzp = mul(
        &mul(&dhy, &crate::ops::arith::sub(hx, &n)?)?,
        &mul(&z, &one_minus(&z)?)?,
    )?;
    let dgi = join::cat(&[drp.clone(), dzp.clone(), dnp.clone()], 1)?;
    let dgh = join::cat(&[drp, dzp, mul(&dnp, &r)?], 1)?;
    Ok((dgi, Some(dgh), mul(&dhy, &z)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// The cell nonlinearities against f64, with and without fused
    /// multiply-adds (the accuracy `cell_math` documents).
    #[test]
    fn cell_math_matches_f64() {
        fn check<M: MulAdd>() {
            let sweeps = [(-100.0f32, 100.0f32, 400_001), (-1.0, 1.0, 200_001)];
            for (lo, hi, n) in sweeps {
                for i in 0..n {
                    let x = lo + (hi - lo) * i as f32 / (n - 1) as f32;
                    let xd = x as f64;
                    let want = 1.0 / (1.0 + (-xd).exp());
                    let got = cell_math::sigmoid::<M>(x) as f64;
                    let tol = if x >= -87.0 { 2.5e-7 * want } else { 5e-39 };
                    assert!(
                        (got - want).abs() <= tol,
                        "sigmoid({x}) = {got}, want {want}"
                    );
                    let want = xd.tanh();
                    let got = cell_math::tanh::<M>(x) as f64;
                    assert!(
                        (got - want).abs() <= 2.5e-7 * want.abs(),
                        "tanh({x}) = {got}, want {want}"
                    );
                }
            }
            assert!(cell_math::sigmoid::<M>(f32::NAN).is_nan());
            assert!(cell_math::tanh::<M>(f32::NAN).is_nan());
            assert_eq!(cell_math::tanh::<M>(f32::INFINITY), 1.0);
            assert_eq!(cell_math::tanh::<M>(f32::NEG_INFINITY), -1.0);
            assert_eq!(cell_math::sigmoid::<M>(f32::INFINITY), 1.0);
            assert_eq!(cell_math::tanh::<M>(1e-30), 1e-30);
        }
        check::<Fused>();
        check::<Unfused>();
    }

    #[test]
    fn split_covers_the_range_in_aligned_parts() {
        for (n, parts) in [(256, 4), (40, 2), (7, 3), (0, 2), (64, 1)] {
            let r = split(n, parts, 16);
            assert_eq!(r.len(), parts.max(1));
            let mut next = 0;
            for &(a, b) in &r {
                assert_eq!(a, next.min(n));
                assert!(a % 16 == 0 || a == n);
                next = b;
            }
            assert_eq!(next, n);
        }
    }

    #[test]
    fn phases_run_every_chunk_once_in_order() {
        let (phases, chunks) = (50, 4);
        let done: Vec<AtomicUsize> = (0..phases).map(|_| AtomicUsize::new(0)).collect();
        run_phases(3, phases, chunks, |ph, _c| {
            // Every chunk of the previous phase has finished.
            if ph > 0 {
                assert_eq!(done[ph - 1].load(Ordering::SeqCst), chunks);
            }
            done[ph].fetch_add(1, Ordering::SeqCst);
        });
        assert!(done.iter().all(|d| d.load(Ordering::SeqCst) == chunks));
    }

    #[test]
    fn a_step_on_a_share_of_the_rows() {
        let s = steps(&[5, 3, 1], false);
        let r = s[0].rows(2, 4);
        assert_eq!((r.off, r.bs, r.next_off, r.next_bs, r.sb), (2, 2, 7, 1, 2));
        let r = s[1].rows(2, 4);
        assert_eq!((r.off, r.bs, r.next_bs, r.sb), (7, 1, 0, 2));
        assert_eq!(s[2].rows(2, 4).bs, 0);
    }

    #[test]
    fn steps_chain_in_processing_order() {
        let s = steps(&[3, 2, 1], false);
        assert_eq!(
            (s[0].off, s[0].bs, s[0].next_off, s[0].next_bs),
            (0, 3, 3, 2)
        );
        assert_eq!((s[2].off, s[2].bs, s[2].next_bs), (5, 1, 0));
        let r = steps(&[3, 2, 1], true);
        assert_eq!(
            (r[0].off, r[0].bs, r[0].next_off, r[0].next_bs),
            (5, 1, 3, 2)
        );
        assert_eq!((r[2].off, r[2].bs, r[2].next_bs), (0, 3, 0));
    }
}
