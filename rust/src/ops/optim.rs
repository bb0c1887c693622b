//! Fused multi-tensor optimizer updates (the kernels behind `rtorch.optim`).
//!
//! One call updates every parameter of a param group: each element's
//! gradient is read once and its parameter and state are written once, in a
//! single pass. Work is cut into chunks of at most `CHUNK` elements across all
//! tensors, and the chunks are spread over threads, so one large tensor and
//! many small ones both use every core. Arithmetic is done in the
//! parameter's dtype (float32 or float64) in the same operation order as
//! PyTorch's per-tensor path, so float64 results agree with
//! `rtorch.optim`'s reference path to rounding.
//!
//! Per-parameter step counters (`state["step"]`, PyTorch's 0-d float
//! tensors) and NAdam's `mu_product` are updated here too, so the Python
//! side makes one call per group and no per-parameter op calls. Every
//! written tensor has its version counter bumped like any in-place op.

// Kernels index several slices by one element index.
#![allow(clippy::needless_range_loop)]
// Updates are written `x = x + a * b`, in the order PyTorch evaluates them.
#![allow(clippy::assign_op_pattern)]

use std::collections::HashSet;

use crate::cpu::parallel;
use crate::error::{Error, Result};
use crate::tensor::layout::fmt_shape;
use crate::tensor::{DType, Device, Element, Tensor};

/// Elements per work item: small enough to balance threads, large enough
/// that per-chunk overhead is noise.
const CHUNK: usize = 1 << 15;

/// The float arithmetic the kernels need, for f32 and f64.
trait Real:
    Element
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
{
    fn c(v: f64) -> Self;
    fn sqrt(self) -> Self;
    /// `torch.maximum`: NaN propagates.
    fn nan_max(self, o: Self) -> Self;
}

impl Real for f32 {
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn c(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn nan_max(self, o: Self) -> Self {
        if self.is_nan() || o.is_nan() {
            f32::NAN
        } else if self > o {
            self
        } else {
            o
        }
    }
}

impl Real for f64 {
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn c(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn nan_max(self, o: Self) -> Self {
        if self.is_nan() || o.is_nan() {
            f64::NAN
        } else if self > o {
            self
        } else {
            o
        }
    }
}

/// `torch.lerp(s, e, w)` with PyTorch's two-sided formula.
#[inline(always)]
fn lerp<T: Real>(s: T, e: T, w: T, w_small: bool) -> T {
    if w_small {
        s + w * (e - s)
    } else {
        e - (e - s) * (T::c(1.0) - w)
    }
}

/// The Adam-family prelude NAdam and RAdam share: the (maximize-signed)
/// gradient with L2 or decoupled weight decay applied, then both moments
/// updated in place. Returns `(d, p, m, v)`: the gradient used, the
/// (possibly shrunk) parameter and the new moments.
#[derive(Clone, Copy)]
struct Moments<T> {
    sign: T,
    wd: T,
    shrink: T,
    decay: bool,
    decoupled: bool,
    w1: T,
    w1_small: bool,
    b2: T,
    nb2: T,
}

impl<T: Real> Moments<T> {
    fn new(
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        decoupled: bool,
        maximize: bool,
    ) -> Self {
        Moments {
            sign: T::c(sign(maximize)),
            wd: T::c(weight_decay),
            shrink: T::c(1.0 - lr * weight_decay),
            decay: weight_decay != 0.0,
            decoupled,
            w1: T::c(1.0 - beta1),
            w1_small: 1.0 - beta1 < 0.5,
            b2: T::c(beta2),
            nb2: T::c(1.0 - beta2),
        }
    }

    #[inline(always)]
    fn step(self, g: T, p: T, m: &mut T, v: &mut T) -> (T, T, T, T) {
        let mut d = g * self.sign;
        let mut pj = p;
        if self.decay {
            if self.decoupled {
                pj = pj * self.shrink;
            } else {
                d = d + self.wd * pj;
            }
        }
        *m = lerp(*m, d, self.w1, self.w1_small);
        *v = *v * self.b2 + d * d * self.nb2;
        (d, pj, *m, *v)
    }
}

/// A group's tensors after validation: parameters, (possibly snapshotted)
/// gradients and the state lists, all of one length.
struct Group<'a> {
    params: &'a [Tensor],
    grads: Vec<Tensor>,
    states: Vec<&'a [Tensor]>,
}

/// Checks the lists of one fused call and returns gradients safe to read
/// while the parameters and states are written.
fn prepare<'a>(
    name: &str,
    params: &'a [Tensor],
    grads: &[Tensor],
    states: &[(&str, &'a [Tensor])],
) -> Result<Group<'a>> {
    let n = params.len();
    if grads.len() != n {
        return Err(Error::Value(format!(
            "{name}: expected {n} gradients (one per parameter), got {}",
            grads.len()
        )));
    }
    for (sname, list) in states {
        if list.len() != n {
            return Err(Error::Value(format!(
                "{name}: expected {n} {sname} tensors (one per parameter), got {}",
                list.len()
            )));
        }
    }
    if crate::autograd::is_grad_enabled() && params.iter().any(|p| p.requires_grad()) {
        return Err(Error::Runtime(format!(
            "{name}: a leaf Variable that requires grad is being used in an in-place operation; run the optimizer step under torch.no_grad()"
        )));
    }
    // Writable element ranges, to refuse aliasing between written tensors.
    let mut writable: Vec<(usize, usize, usize)> = Vec::with_capacity(n * (1 + states.len()));
    for (i, p) in params.iter().enumerate() {
        let dt = p.dtype();
        if !matches!(dt, DType::F32 | DType::F64) {
            return Err(Error::Type(format!(
                "{name}: parameters must be float32 or float64 tensors, but parameter {i} is {dt}"
            )));
        }
        if p.device() != Device::Cpu {
            return Err(Error::Runtime(format!(
                "{name}: parameter {i} is on {}, the fused kernel runs on cpu",
                p.device()
            )));
        }
        if !p.is_contiguous() {
            return Err(Error::Runtime(format!(
                "{name}: parameter {i} is not contiguous; use foreach=False for strided parameters"
            )));
        }
        let g = &grads[i];
        if g.shape() != p.shape() || g.dtype() != dt {
            return Err(Error::Runtime(format!(
                "{name}: gradient {i} has shape {} and dtype {} but its parameter has shape {} and dtype {dt}",
                fmt_shape(g.shape()),
                g.dtype(),
                fmt_shape(p.shape())
            )));
        }
        writable.push(span(p));
        for (sname, list) in states {
            let s = &list[i];
            if s.shape() != p.shape() || s.dtype() != dt || !s.is_contiguous() {
                return Err(Error::Runtime(format!(
                    "{name}: {sname} {i} must be a contiguous tensor of shape {} and dtype {dt}, got shape {} and dtype {}{}",
                    fmt_shape(p.shape()),
                    fmt_shape(s.shape()),
                    s.dtype(),
                    if s.is_contiguous() { "" } else { " (not contiguous)" }
                )));
            }
            writable.push(span(s));
        }
    }
    writable.sort_unstable();
    for w in writable.windows(2) {
        let ((sa, oa, ea), (sb, ob, _)) = (w[0], w[1]);
        if sa == sb && ob < ea && oa < ea {
            return Err(Error::Runtime(format!(
                "{name}: parameters and optimizer state must not share memory"
            )));
        }
    }
    let written: HashSet<usize> = writable.iter().map(|w| w.0).collect();
    let grads = grads
        .iter()
        .map(|g| {
            if g.is_contiguous() && !written.contains(&storage_key(g)) {
                Ok(g.clone())
            } else {
                crate::ops::copy::contiguous_copy(g)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Group {
        params,
        grads,
        states: states.iter().map(|s| s.1).collect(),
    })
}

fn storage_key(t: &Tensor) -> usize {
    std::sync::Arc::as_ptr(t.storage()) as *const u8 as usize
}

/// (storage, first byte, end byte) of a contiguous tensor.
fn span(t: &Tensor) -> (usize, usize, usize) {
    let start = t.offset() * t.dtype().size();
    (
        storage_key(t),
        start,
        start + t.numel().max(1) * t.dtype().size(),
    )
}

/// Adds one to a 0-d float step counter (PyTorch's `state["step"]`) and
/// returns the new value.
fn bump_step(name: &str, t: &Tensor) -> Result<f64> {
    scalar_update(name, "step", t, |v| v + 1.0)
}

/// Applies `f` to a one-element float state tensor in its own dtype and
/// returns the stored value.
fn scalar_update(name: &str, what: &str, t: &Tensor, f: impl Fn(f64) -> f64) -> Result<f64> {
    if t.numel() != 1 || t.device() != Device::Cpu {
        return Err(Error::Runtime(format!(
            "{name}: {what} must be a one-element cpu tensor, got shape {}",
            fmt_shape(t.shape())
        )));
    }
    let v = match t.dtype() {
        // SAFETY: one element of the tensor's own dtype, inside its storage.
        DType::F32 => unsafe {
            let p = t.data_ptr::<f32>();
            *p = f(*p as f64) as f32;
            *p as f64
        },
        // SAFETY: as above.
        DType::F64 => unsafe {
            let p = t.data_ptr::<f64>();
            *p = f(*p);
            *p
        },
        dt => {
            return Err(Error::Type(format!(
                "{name}: {what} must be a float32 or float64 tensor, got {dt}"
            )))
        }
    };
    t.bump_version();
    Ok(v)
}

/// Runs `f(tensor, start, end)` over chunks of all tensors, in parallel.
fn for_chunks(params: &[Tensor], cost_ns: usize, f: impl Fn(usize, usize, usize) + Sync) {
    let mut jobs: Vec<(usize, usize, usize)> = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let n = p.numel();
        let mut s = 0;
        while s < n {
            let e = (s + CHUNK).min(n);
            jobs.push((i, s, e));
            s = e;
        }
    }
    // Cost of an average job, so many tiny tensors stay on one thread.
    let total: usize = params.iter().map(|p| p.numel()).sum();
    let per_job = (total / jobs.len().max(1)).max(1) * cost_ns;
    parallel::for_ranges(jobs.len(), per_job, 1, |a, b| {
        for &(i, s, e) in &jobs[a..b] {
            f(i, s, e);
        }
    });
}

/// A mutable slice of elements `s..e` of a contiguous tensor.
///
/// # Safety
/// `T` is the tensor's dtype, the tensor is contiguous with at least `e`
/// elements, and no other live slice covers the same elements.
#[allow(clippy::mut_from_ref)]
unsafe fn slice_mut<T: Element>(t: &Tensor, s: usize, e: usize) -> &mut [T] {
    std::slice::from_raw_parts_mut(t.data_ptr::<T>().add(s), e - s)
}

/// A shared slice of elements `s..e` of a contiguous tensor.
///
/// # Safety
/// `T` is the tensor's dtype and the tensor is contiguous with at least `e`
/// elements that nothing writes meanwhile.
unsafe fn slice_ref<T: Element>(t: &Tensor, s: usize, e: usize) -> &[T] {
    std::slice::from_raw_parts(t.data_ptr::<T>().add(s), e - s)
}

/// Runs the kernel `k` for the dtype of parameter `i`.
macro_rules! by_dtype {
    ($g:expr, $i:expr, $T:ident => $body:expr) => {
        match $g.params[$i].dtype() {
            DType::F32 => {
                type $T = f32;
                $body
            }
            _ => {
                type $T = f64;
                $body
            }
        }
    };
}

/// Slices of parameter `i`, its gradient and its states for elements `s..e`.
macro_rules! slices {
    ($g:expr, $T:ty, $i:expr, $s:expr, $e:expr) => {{
        // SAFETY: `prepare` checked dtypes, shapes and contiguity, and that
        // no written tensors overlap; each chunk (i, s, e) is visited once.
        let p = unsafe { slice_mut::<$T>(&$g.params[$i], $s, $e) };
        // SAFETY: as above; gradients never alias written tensors.
        let g = unsafe { slice_ref::<$T>(&$g.grads[$i], $s, $e) };
        let st: Vec<&mut [$T]> = $g
            .states
            .iter()
            // SAFETY: as above.
            .map(|l| unsafe { slice_mut::<$T>(&l[$i], $s, $e) })
            .collect();
        (p, g, st)
    }};
}

fn bump_all(g: &Group<'_>) {
    for p in g.params {
        p.bump_version();
    }
    for l in &g.states {
        for t in l.iter() {
            t.bump_version();
        }
    }
}

fn sign(maximize: bool) -> f64 {
    if maximize {
        -1.0
    } else {
        1.0
    }
}

/// Hyper-parameters of `sgd`.
#[derive(Clone, Copy, Debug)]
pub struct SgdOptions {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub maximize: bool,
}

/// SGD over one group. With momentum, `bufs` holds one buffer per
/// parameter and `fresh[i]` says buffer `i` is new (it becomes the
/// gradient, as PyTorch's first step clones it).
pub fn sgd(
    params: &[Tensor],
    grads: &[Tensor],
    bufs: &[Tensor],
    fresh: &[bool],
    o: SgdOptions,
) -> Result<()> {
    let name = "_fused_sgd";
    let with_momentum = o.momentum != 0.0;
    let states: Vec<(&str, &[Tensor])> = if with_momentum {
        if fresh.len() != params.len() {
            return Err(Error::Value(format!(
                "{name}: expected {} first-step flags, got {}",
                params.len(),
                fresh.len()
            )));
        }
        vec![("momentum_buffer", bufs)]
    } else {
        vec![]
    };
    let gr = prepare(name, params, grads, &states)?;
    for_chunks(params, 1, |i, s, e| {
        by_dtype!(gr, i, T => {
            let (p, g, mut st) = slices!(gr, T, i, s, e);
            let (lr, wd, sg) = (T::c(o.lr), T::c(o.weight_decay), T::c(sign(o.maximize)));
            let (mom, damp) = (T::c(o.momentum), T::c(1.0 - o.dampening));
            let decay = o.weight_decay != 0.0;
            let k = SgdK { lr, wd, sg, mom, damp, decay };
            match (st.first_mut(), fresh.get(i).copied().unwrap_or(false), o.nesterov) {
                (Some(b), true, true) => sgd_loop::<T, true, true, true>(p, g, b, k),
                (Some(b), true, false) => sgd_loop::<T, true, true, false>(p, g, b, k),
                (Some(b), false, true) => sgd_loop::<T, true, false, true>(p, g, b, k),
                (Some(b), false, false) => sgd_loop::<T, true, false, false>(p, g, b, k),
                (None, _, _) => sgd_loop::<T, false, false, false>(p, g, &mut [], k),
            }
        })
    });
    bump_all(&gr);
    Ok(())
}

/// SGD's constants for one chunk, in the parameter's dtype.
#[derive(Clone, Copy)]
struct SgdK<T> {
    lr: T,
    wd: T,
    sg: T,
    mom: T,
    damp: T,
    decay: bool,
}

/// One SGD chunk; the flags are compile-time so the loop has no branches.
#[inline(always)]
fn sgd_loop<T: Real, const MOMENTUM: bool, const FIRST: bool, const NESTEROV: bool>(
    p: &mut [T],
    g: &[T],
    b: &mut [T],
    k: SgdK<T>,
) {
    let n = p.len();
    let g = &g[..n];
    if MOMENTUM {
        let b = &mut b[..n];
        for j in 0..n {
            let mut d = g[j] * k.sg;
            if k.decay {
                d = d + k.wd * p[j];
            }
            let bj = if FIRST { d } else { b[j] * k.mom + d * k.damp };
            b[j] = bj;
            let upd = if NESTEROV { d + k.mom * bj } else { bj };
            p[j] = p[j] + (-k.lr) * upd;
        }
    } else {
        for j in 0..n {
            let mut d = g[j] * k.sg;
            if k.decay {
                d = d + k.wd * p[j];
            }
            p[j] = p[j] + (-k.lr) * d;
        }
    }
}

/// Adam's constants for one chunk, in the parameter's dtype.
#[derive(Clone, Copy)]
struct AdamK<T> {
    step_size: T,
    bc2s: T,
    b2: T,
    nb2: T,
    w1: T,
    w1_small: bool,
    eps: T,
    wd: T,
    shrink: T,
    sg: T,
    decay: bool,
    decoupled: bool,
}

/// One Adam chunk; `AMSGRAD` is compile-time so the loop has no branches.
#[inline(always)]
fn adam_loop<T: Real, const AMSGRAD: bool>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    vmax: &mut [T],
    k: AdamK<T>,
) {
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    let vmax = if AMSGRAD { &mut vmax[..n] } else { vmax };
    for j in 0..n {
        let mut d = g[j] * k.sg;
        let mut pj = p[j];
        if k.decay {
            if k.decoupled {
                pj = pj * k.shrink;
            } else {
                d = d + k.wd * pj;
            }
        }
        let mj = lerp(m[j], d, k.w1, k.w1_small);
        m[j] = mj;
        let vj = v[j] * k.b2 + d * d * k.nb2;
        v[j] = vj;
        let vv = if AMSGRAD {
            let x = vmax[j].nan_max(vj);
            vmax[j] = x;
            x
        } else {
            vj
        };
        let denom = vv.sqrt() / k.bc2s + k.eps;
        p[j] = pj + (-k.step_size) * (mj / denom);
    }
}

/// Hyper-parameters of `adam`.
#[derive(Clone, Copy, Debug)]
pub struct AdamOptions {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
    pub maximize: bool,
    pub decoupled_weight_decay: bool,
}

/// Adam / AdamW over one group; `steps` are the 0-d step counters, bumped
/// here. `max_exp_avg_sqs` is empty unless `amsgrad`.
pub fn adam(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    max_exp_avg_sqs: &[Tensor],
    steps: &[Tensor],
    o: AdamOptions,
) -> Result<()> {
    let name = "_fused_adam";
    let mut states: Vec<(&str, &[Tensor])> =
        vec![("exp_avg", exp_avgs), ("exp_avg_sq", exp_avg_sqs)];
    if o.amsgrad {
        states.push(("max_exp_avg_sq", max_exp_avg_sqs));
    }
    let gr = prepare(name, params, grads, &states)?;
    let ts = step_values(name, steps, params.len())?;
    for_chunks(params, 2, |i, s, e| {
        by_dtype!(gr, i, T => {
            let (p, g, mut st) = slices!(gr, T, i, s, e);
            let t = ts[i];
            let bc1 = 1.0 - o.beta1.powf(t);
            let bc2 = 1.0 - o.beta2.powf(t);
            let k = AdamK {
                step_size: T::c(o.lr / bc1),
                bc2s: T::c(bc2.sqrt()),
                b2: T::c(o.beta2),
                nb2: T::c(1.0 - o.beta2),
                w1: T::c(1.0 - o.beta1),
                w1_small: 1.0 - o.beta1 < 0.5,
                eps: T::c(o.eps),
                wd: T::c(o.weight_decay),
                shrink: T::c(1.0 - o.lr * o.weight_decay),
                sg: T::c(sign(o.maximize)),
                decay: o.weight_decay != 0.0,
                decoupled: o.decoupled_weight_decay,
            };
            let (m, rest) = st.split_at_mut(1);
            let (v, vmax) = rest.split_at_mut(1);
            match vmax.first_mut() {
                Some(mx) => adam_loop::<T, true>(p, g, m[0], v[0], mx, k),
                None => adam_loop::<T, false>(p, g, m[0], v[0], &mut [], k),
            }
        })
    });
    bump_all(&gr);
    Ok(())
}

fn step_values(name: &str, steps: &[Tensor], n: usize) -> Result<Vec<f64>> {
    if steps.len() != n {
        return Err(Error::Value(format!(
            "{name}: expected {n} step tensors (one per parameter), got {}",
            steps.len()
        )));
    }
    steps.iter().map(|t| bump_step(name, t)).collect()
}

/// Hyper-parameters of `adagrad`.
#[derive(Clone, Copy, Debug)]
pub struct AdagradOptions {
    pub lr: f64,
    pub lr_decay: f64,
    pub weight_decay: f64,
    pub eps: f64,
    pub maximize: bool,
}

/// Adagrad over one group.
pub fn adagrad(
    params: &[Tensor],
    grads: &[Tensor],
    sums: &[Tensor],
    steps: &[Tensor],
    o: AdagradOptions,
) -> Result<()> {
    let name = "_fused_adagrad";
    let gr = prepare(name, params, grads, &[("sum", sums)])?;
    let ts = step_values(name, steps, params.len())?;
    for_chunks(params, 2, |i, s, e| {
        by_dtype!(gr, i, T => {
            let (p, g, mut st) = slices!(gr, T, i, s, e);
            let clr = T::c(o.lr / (1.0 + (ts[i] - 1.0) * o.lr_decay));
            let (wd, eps, sg) = (T::c(o.weight_decay), T::c(o.eps), T::c(sign(o.maximize)));
            let decay = o.weight_decay != 0.0;
            let n = p.len();
            let (g, sum) = (&g[..n], &mut st[0][..n]);
            for j in 0..n {
                let mut d = g[j] * sg;
                if decay {
                    d = d + wd * p[j];
                }
                let sj = sum[j] + d * d;
                sum[j] = sj;
                p[j] = p[j] + (-clr) * (d / (sj.sqrt() + eps));
            }
        })
    });
    bump_all(&gr);
    Ok(())
}

/// Hyper-parameters of `rmsprop`.
#[derive(Clone, Copy, Debug)]
pub struct RmspropOptions {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub centered: bool,
    pub maximize: bool,
}

/// RMSprop over one group; `grad_avgs` is empty unless `centered`,
/// `momentum_buffers` empty unless `momentum > 0`.
pub fn rmsprop(
    params: &[Tensor],
    grads: &[Tensor],
    square_avgs: &[Tensor],
    grad_avgs: &[Tensor],
    momentum_buffers: &[Tensor],
    steps: &[Tensor],
    o: RmspropOptions,
) -> Result<()> {
    let name = "_fused_rmsprop";
    let mut states: Vec<(&str, &[Tensor])> = vec![("square_avg", square_avgs)];
    if o.centered {
        states.push(("grad_avg", grad_avgs));
    }
    let with_momentum = o.momentum > 0.0;
    if with_momentum {
        states.push(("momentum_buffer", momentum_buffers));
    }
    let gr = prepare(name, params, grads, &states)?;
    step_values(name, steps, params.len())?;
    for_chunks(params, 2, |i, s, e| {
        by_dtype!(gr, i, T => {
            let (p, g, mut st) = slices!(gr, T, i, s, e);
            let (lr, alpha, eps) = (T::c(o.lr), T::c(o.alpha), T::c(o.eps));
            let (wd, mom, sg) = (T::c(o.weight_decay), T::c(o.momentum), T::c(sign(o.maximize)));
            let na = T::c(1.0 - o.alpha);
            let na_small = 1.0 - o.alpha < 0.5;
            let decay = o.weight_decay != 0.0;
            let n = p.len();
            let g = &g[..n];
            let mut it = st.iter_mut();
            let sq = it.next().map(|x| &mut x[..n]);
            let ga = if o.centered { it.next().map(|x| &mut x[..n]) } else { None };
            let buf = if with_momentum { it.next().map(|x| &mut x[..n]) } else { None };
            let (Some(sq), mut ga, mut buf) = (sq, ga, buf) else { return };
            for j in 0..n {
                let mut d = g[j] * sg;
                if decay {
                    d = d + wd * p[j];
                }
                let sqj = sq[j] * alpha + d * d * na;
                sq[j] = sqj;
                let avg = match ga.as_deref_mut() {
                    Some(ga) => {
                        let gj = lerp(ga[j], d, na, na_small);
                        ga[j] = gj;
                        (sqj + gj * gj * T::c(-1.0)).sqrt() + eps
                    }
                    None => sqj.sqrt() + eps,
                };
                match buf.as_deref_mut() {
                    Some(b) => {
                        let bj = b[j] * mom + d / avg;
                        b[j] = bj;
                        p[j] = p[j] + (-lr) * bj;
                    }
                    None => p[j] = p[j] + (-lr) * (d / avg),
                }
            }
        })
    });
    bump_all(&gr);
    Ok(())
}

/// Hyper-parameters of `adamax`.
#[derive(Clone, Copy, Debug)]
pub struct AdamaxOptions {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

/// Adamax over one group.
pub fn adamax(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_infs: &[Tensor],
    steps: &[Tensor],
    o: AdamaxOptions,
) -> Result<()> {
    let name = "_fused_adamax";
    let gr = prepare(
        name,
        params,
        grads,
        &[("exp_avg", exp_avgs), ("exp_inf", exp_infs)],
    )?;
    let ts = step_values(name, steps, params.len())?;
    for_chunks(params, 2, |i, s, e| {
        by_dtype!(gr, i, T => {
            let (p, g, mut st) = slices!(gr, T, i, s, e);
            let clr = T::c(o.lr / (1.0 - o.beta1.powf(ts[i])));
            let (b2, eps, wd, sg) = (
                T::c(o.beta2),
                T::c(o.eps),
                T::c(o.weight_decay),
                T::c(sign(o.maximize)),
            );
            let w1 = T::c(1.0 - o.beta1);
            let w1_small = 1.0 - o.beta1 < 0.5;
            let decay = o.weight_decay != 0.0;
            let (m, u) = st.split_at_mut(1);
            let n = p.len();
            let (g, m, u) = (&g[..n], &mut m[0][..n], &mut u[0][..n]);
            for j in 0..n {
                let mut d = g[j] * sg;
                if decay {
                    d = d + wd * p[j];
                }
                let mj = lerp(m[j], d, w1, w1_small);
                m[j] = mj;
                let uj = (u[j] * b2).nan_max(d.abs() + eps);
                u[j] = uj;
                p[j] = p[j] + (-clr) * (mj / uj);
            }
        })
    });
    bump_all(&gr);
    Ok(())
}

/// Hyper-parameters of `nadam`.
#[derive(Clone, Copy, Debug)]
pub struct NadamOptions {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum_decay: f64,
    pub decoupled_weight_decay: bool,
    pub maximize: bool,
}

/// NAdam over one group; `mu_products` (0-d, like `steps`) are updated here.
#[allow(clippy::too_many_arguments)]
pub fn nadam(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    mu_products: &[Tensor],
    steps: &[Tensor],
    o: NadamOptions,
) -> Result<()> {
    let name = "_fused_nadam";
    let gr = prepare(
        name,
        params,
        grads,
        &[("exp_avg", exp_avgs), ("exp_avg_sq", exp_avg_sqs)],
    )?;
    if mu_products.len() != params.len() {
        return Err(Error::Value(format!(
            "{name}: expected {} mu_product tensors (one per parameter), got {}",
            params.len(),
            mu_products.len()
        )));
    }
    let ts = step_values(name, steps, params.len())?;
    // Per parameter: (grad coefficient, exp_avg coefficient, bias_correction2).
    let mut coefs = Vec::with_capacity(params.len());
    for (i, mp) in mu_products.iter().enumerate() {
        let t = ts[i];
        let mu = o.beta1 * (1.0 - 0.5 * 0.96f64.powf(t * o.momentum_decay));
        let mu_next = o.beta1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * o.momentum_decay));
        // `mu_product *= mu` in the tensor's own dtype, as PyTorch does.
        let prod = match mp.dtype() {
            DType::F32 => scalar_update(name, "mu_product", mp, |v| (v as f32 * mu as f32) as f64)?,
            _ => scalar_update(name, "mu_product", mp, |v| v * mu)?,
        };
        let prod_next = prod * mu_next;
        coefs.push((
            -o.lr * (1.0 - mu) / (1.0 - prod),
            (-o.lr * mu_next) / (1.0 - prod_next),
            1.0 - o.beta2.powf(t),
        ));
    }
    for_chunks(params, 2, |i, s, e| {
        by_dtype!(gr, i, T => {
            let (p, g, mut st) = slices!(gr, T, i, s, e);
            let (cg, cm, bc2) = (T::c(coefs[i].0), T::c(coefs[i].1), T::c(coefs[i].2));
            let eps = T::c(o.eps);
            let mo = Moments::<T>::new(o.lr, o.beta1, o.beta2, o.weight_decay, o.decoupled_weight_decay, o.maximize);
            let (m, v) = st.split_at_mut(1);
            let n = p.len();
            let (g, m, v) = (&g[..n], &mut m[0][..n], &mut v[0][..n]);
            for j in 0..n {
                let (d, mut pj, mj, vj) = mo.step(g[j], p[j], &mut m[j], &mut v[j]);
                let denom = (vj / bc2).sqrt() + eps;
                pj = pj + cg * (d / denom);
                p[j] = pj + cm * (mj / denom);
            }
        })
    });
    bump_all(&gr);
    Ok(())
}

/// Hyper-parameters of `radam`.
#[derive(Clone, Copy, Debug)]
pub struct RadamOptions {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled_weight_decay: bool,
    pub maximize: bool,
}

/// RAdam over one group.
pub fn radam(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    steps: &[Tensor],
    o: RadamOptions,
) -> Result<()> {
    let name = "_fused_radam";
    let gr = prepare(
        name,
        params,
        grads,
        &[("exp_avg", exp_avgs), ("exp_avg_sq", exp_avg_sqs)],
    )?;
    let ts = step_values(name, steps, params.len())?;
    let rho_inf = 2.0 / (1.0 - o.beta2) - 1.0;
    for_chunks(params, 2, |i, s, e| {
        by_dtype!(gr, i, T => {
            let (p, g, mut st) = slices!(gr, T, i, s, e);
            let t = ts[i];
            let bc1 = 1.0 - o.beta1.powf(t);
            let bc2 = 1.0 - o.beta2.powf(t);
            let rho_t = rho_inf - 2.0 * t * o.beta2.powf(t) / bc2;
            let rect = if rho_t > 5.0 {
                Some(
                    ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                        / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                        .sqrt(),
                )
            } else {
                None
            };
            let (eps, lr) = (T::c(o.eps), T::c(o.lr));
            let (tbc1, bc2s) = (T::c(bc1), T::c(bc2.sqrt()));
            let mo = Moments::<T>::new(o.lr, o.beta1, o.beta2, o.weight_decay, o.decoupled_weight_decay, o.maximize);
            let (m, v) = st.split_at_mut(1);
            let n = p.len();
            let (g, m, v) = (&g[..n], &mut m[0][..n], &mut v[0][..n]);
            for j in 0..n {
                let (_, pj, mj, vj) = mo.step(g[j], p[j], &mut m[j], &mut v[j]);
                let corrected = mj / tbc1 * lr;
                p[j] = match rect {
                    Some(r) => pj + (-(corrected * (bc2s / (vj.sqrt() + eps)) * T::c(r))),
                    None => pj + (-corrected),
                };
            }
        })
    });
    bump_all(&gr);
    Ok(())
}

/// Hyper-parameters of `adadelta`.
#[derive(Clone, Copy, Debug)]
pub struct AdadeltaOptions {
    pub lr: f64,
    pub rho: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

/// Adadelta over one group.
pub fn adadelta(
    params: &[Tensor],
    grads: &[Tensor],
    square_avgs: &[Tensor],
    acc_deltas: &[Tensor],
    steps: &[Tensor],
    o: AdadeltaOptions,
) -> Result<()> {
    let name = "_fused_adadelta";
    let gr = prepare(
        name,
        params,
        grads,
        &[("square_avg", square_avgs), ("acc_delta", acc_deltas)],
    )?;
    step_values(name, steps, params.len())?;
    for_chunks(params, 3, |i, s, e| {
        by_dtype!(gr, i, T => {
            let (p, g, mut st) = slices!(gr, T, i, s, e);
            let (lr, rho, eps, wd, sg) = (
                T::c(o.lr),
                T::c(o.rho),
                T::c(o.eps),
                T::c(o.weight_decay),
                T::c(sign(o.maximize)),
            );
            let nr = T::c(1.0 - o.rho);
            let decay = o.weight_decay != 0.0;
            let (sq, acc) = st.split_at_mut(1);
            let n = p.len();
            let (g, sq, acc) = (&g[..n], &mut sq[0][..n], &mut acc[0][..n]);
            for j in 0..n {
                let mut d = g[j] * sg;
                if decay {
                    d = d + wd * p[j];
                }
                let sqj = sq[j] * rho + d * d * nr;
                sq[j] = sqj;
                let std = (sqj + eps).sqrt();
                let delta = (acc[j] + eps).sqrt() / std * d;
                acc[j] = acc[j] * rho + delta * delta * nr;
                p[j] = p[j] + (-lr) * delta;
            }
        })
    });
    bump_all(&gr);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64]) -> Tensor {
        Tensor::from_slice(v, &[v.len()]).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn sgd_plain_step() {
        let p = t(&[1.0, 2.0]);
        let g = t(&[0.5, -1.0]);
        let o = SgdOptions {
            lr: 0.1,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        };
        let v0 = p.version();
        sgd(
            std::slice::from_ref(&p),
            std::slice::from_ref(&g),
            &[],
            &[],
            o,
        )
        .unwrap_or_else(|_| unreachable!());
        let got = crate::ops::copy::to_vec::<f64>(&p).unwrap_or_else(|_| unreachable!());
        assert_eq!(got, vec![0.95, 2.1]);
        assert!(p.version() > v0);
    }

    #[test]
    fn mismatched_lengths_are_errors() {
        let p = t(&[1.0]);
        let o = SgdOptions {
            lr: 0.1,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        };
        assert!(sgd(std::slice::from_ref(&p), &[], &[], &[], o).is_err());
    }
}
