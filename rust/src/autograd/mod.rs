//! Reverse-mode automatic differentiation.
//!
//! Ops record a [`Node`] when grad mode is on and an input requires grad:
//! the node holds edges to the nodes that made its inputs (or to a leaf's
//! `AccumulateGrad`), the tensors its derivative needs, and the derivative,
//! written with the same public ops so that `create_graph=True` records the
//! backward pass too. [`engine::run_backward`] walks the graph.
//!
//! Each op records itself where it is defined: `Recorder::new` at the top
//! of the op (it also turns grad mode off while the forward runs, so inner
//! ops record nothing), `save`/`save_output` for what the derivative needs,
//! then `finish` with the derivative.

pub mod engine;
pub mod node;

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::ops::{copy, reduce, shape};
use crate::tensor::Tensor;

pub use node::{
    next_hook_id, unpack, BackwardFn, Ctx, Edge, Hook, Meta, Node, PostHook, PreHook, SavedTensor,
};

/// Remakes a view from its base (for in-place ops on views, and for the
/// generic view derivative).
pub type ViewFn = Arc<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

static ANOMALY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Anomaly detection (process-wide, as in PyTorch): backward checks every
/// node's gradients for NaN.
pub fn is_anomaly_enabled() -> bool {
    ANOMALY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets anomaly detection; returns the previous setting.
pub fn set_anomaly_enabled(on: bool) -> bool {
    ANOMALY.swap(on, std::sync::atomic::Ordering::Relaxed)
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static INFERENCE: Cell<bool> = const { Cell::new(false) };
}

pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Sets this thread's grad mode; returns the previous one.
pub fn set_grad_enabled(on: bool) -> bool {
    GRAD_ENABLED.with(|g| g.replace(on))
}

pub fn is_inference_mode() -> bool {
    INFERENCE.with(|g| g.get())
}

/// Sets this thread's inference mode (which also disables grad); returns
/// the previous (inference, grad) modes.
pub fn set_inference_mode(on: bool) -> (bool, bool) {
    let prev = INFERENCE.with(|g| g.replace(on));
    let grad = if on {
        set_grad_enabled(false)
    } else {
        is_grad_enabled()
    };
    (prev, grad)
}

/// Restores the grad mode it found when dropped.
pub struct GradMode(bool);

impl GradMode {
    pub fn set(on: bool) -> GradMode {
        GradMode(set_grad_enabled(on))
    }
}

impl Drop for GradMode {
    fn drop(&mut self) {
        set_grad_enabled(self.0);
    }
}

/// Where the gradient of `t` goes: its `grad_fn`, or for a leaf that
/// requires grad its accumulator (made once and shared).
pub fn gradient_edge(t: &Tensor) -> Option<Edge> {
    let mut m = t.meta();
    if let Some(f) = &m.grad_fn {
        return Some(Edge {
            node: f.clone(),
            input_nr: m.output_nr,
        });
    }
    if !m.requires_grad {
        return None;
    }
    if let Some(acc) = m.grad_accumulator.upgrade() {
        return Some(Edge {
            node: acc,
            input_nr: 0,
        });
    }
    drop(m);
    let acc = Arc::new(Node::accumulate_grad(t));
    m = t.meta();
    // Another thread may have made one meanwhile: use the first.
    if let Some(existing) = m.grad_accumulator.upgrade() {
        return Some(Edge {
            node: existing,
            input_nr: 0,
        });
    }
    m.grad_accumulator = Arc::downgrade(&acc);
    Some(Edge {
        node: acc,
        input_nr: 0,
    })
}

/// Whether an op on these inputs must record a node.
pub fn needs_grad(inputs: &[&Tensor]) -> bool {
    is_grad_enabled() && inputs.iter().any(|t| t.requires_grad())
}

/// Records one op. Made at the top of the op; while it lives, grad mode is
/// off so the forward's inner ops record nothing.
pub struct Recorder {
    name: Cow<'static, str>,
    next: SmallVec<[Option<Edge>; 2]>,
    input_meta: SmallVec<[Meta; 2]>,
    saved: Vec<SavedTensor>,
    _mode: GradMode,
}

impl Recorder {
    /// `Some` when grad mode is on and any input requires grad.
    pub fn new(name: impl Into<Cow<'static, str>>, inputs: &[&Tensor]) -> Option<Recorder> {
        if !needs_grad(inputs) {
            return None;
        }
        Some(Recorder::build(
            name.into(),
            inputs.iter().copied().map(Some),
        ))
    }

    /// As `new`, where some inputs are numbers (no gradient).
    pub fn new_opt(
        name: impl Into<Cow<'static, str>>,
        inputs: &[Option<&Tensor>],
    ) -> Option<Recorder> {
        if !is_grad_enabled() || !inputs.iter().flatten().any(|t| t.requires_grad()) {
            return None;
        }
        Some(Recorder::build(name.into(), inputs.iter().copied()))
    }

    /// For `target.op_(...)`: checks that `target` may be modified in place
    /// (before anything is written), then records like `new` with `target`
    /// as input 0. `Ok(None)` when nothing needs recording.
    pub fn new_inplace(
        name: impl Into<Cow<'static, str>>,
        target: &Tensor,
        others: &[Option<&Tensor>],
    ) -> Result<Option<Recorder>> {
        if !is_grad_enabled() {
            return Ok(None);
        }
        check_inplace(target)?;
        let view_base_grad = target
            .meta()
            .view
            .as_ref()
            .is_some_and(|(b, _)| b.requires_grad());
        if !view_base_grad
            && !target.requires_grad()
            && !others.iter().flatten().any(|t| t.requires_grad())
        {
            return Ok(None);
        }
        let inputs = std::iter::once(Some(target)).chain(others.iter().copied());
        Ok(Some(Recorder::build(name.into(), inputs)))
    }

    fn build<'a>(
        name: Cow<'static, str>,
        inputs: impl Iterator<Item = Option<&'a Tensor>>,
    ) -> Recorder {
        let mut next = SmallVec::new();
        let mut input_meta = SmallVec::new();
        for t in inputs {
            match t {
                Some(t) => {
                    next.push(gradient_edge(t));
                    input_meta.push(Meta::of(t));
                }
                None => {
                    next.push(None);
                    input_meta.push(Meta {
                        shape: SmallVec::new(),
                        dtype: crate::tensor::DType::F32,
                    });
                }
            }
        }
        Recorder {
            name,
            next,
            input_meta,
            saved: Vec::new(),
            _mode: GradMode::set(false),
        }
    }

    /// Whether forward input `i` needs a gradient.
    pub fn needs(&self, i: usize) -> bool {
        self.next.get(i).is_some_and(|e| e.is_some())
    }

    /// Keeps an input (or any tensor other than an output) for backward;
    /// returns its index for `Ctx::saved`.
    pub fn save(&mut self, t: &Tensor) -> Result<usize> {
        self.saved.push(SavedTensor::input(t)?);
        Ok(self.saved.len() - 1)
    }

    /// Keeps output `nr` for backward.
    pub fn save_output(&mut self, t: &Tensor, nr: usize) -> Result<usize> {
        self.saved.push(SavedTensor::output(t, nr)?);
        Ok(self.saved.len() - 1)
    }

    fn into_node(self, outputs: &[&Tensor], backward: BackwardFn) -> Arc<Node> {
        let output_meta = outputs.iter().map(|t| Meta::of(t)).collect();
        Arc::new(Node::new(
            self.name,
            self.next,
            self.input_meta,
            output_meta,
            node::Kind::Function(backward),
            self.saved,
        ))
    }

    /// Attaches the node to fresh `outputs` (differentiable float outputs;
    /// leave integer outputs such as indices out).
    pub fn finish<F>(self, outputs: &[&Tensor], backward: F) -> Arc<Node>
    where
        F: FnMut(&Ctx<'_>, Vec<Option<Tensor>>) -> Result<Vec<Option<Tensor>>> + Send + 'static,
    {
        let node = self.into_node(outputs, Box::new(backward));
        for (i, t) in outputs.iter().enumerate() {
            set_history(t, &node, i);
        }
        node
    }

    /// As `finish` for an op whose output is a view of input 0: `view_fn`
    /// remakes the view from a tensor shaped like the input.
    pub fn finish_view<F>(self, input: &Tensor, out: &Tensor, view_fn: ViewFn, backward: F)
    where
        F: FnMut(&Ctx<'_>, Vec<Option<Tensor>>) -> Result<Vec<Option<Tensor>>> + Send + 'static,
    {
        self.finish(&[out], backward);
        track_view(input, out, view_fn);
    }

    /// Rebases `target`'s history onto this in-place op. When `target` is a
    /// view, its base's history is rebased too (PyTorch's `CopySlices`).
    pub fn finish_inplace<F>(self, target: &Tensor, backward: F) -> Result<()>
    where
        F: FnMut(&Ctx<'_>, Vec<Option<Tensor>>) -> Result<Vec<Option<Tensor>>> + Send + 'static,
    {
        let view = target.meta().view.clone();
        let node = self.into_node(&[target], Box::new(backward));
        match view {
            None => {
                set_history(target, &node, 0);
                Ok(())
            }
            Some((base, view_fn)) => copy_slices(&base, target, view_fn, node),
        }
    }
}

fn set_history(t: &Tensor, node: &Arc<Node>, nr: usize) {
    let mut m = t.meta();
    m.grad_fn = Some(node.clone());
    m.output_nr = nr;
}

/// Marks `out` as a view of `input`'s base (views of views compose).
pub fn track_view(input: &Tensor, out: &Tensor, view_fn: ViewFn) {
    if !is_grad_enabled() && !input.requires_grad() {
        return;
    }
    let parent = input.meta().view.clone();
    let entry = match parent {
        Some((base, f)) => {
            let composed: ViewFn = Arc::new(move |t: &Tensor| view_fn(&f(t)?));
            (base, composed)
        }
        None => (input.clone(), view_fn),
    };
    out.meta().view = Some(entry);
}

/// PyTorch's errors for in-place writes autograd cannot follow.
pub fn check_inplace(t: &Tensor) -> Result<()> {
    if !is_grad_enabled() {
        return Ok(());
    }
    let m = t.meta();
    if m.grad_fn.is_none() && m.requires_grad {
        return Err(Error::Runtime(
            "a leaf Variable that requires grad is being used in an in-place operation.".into(),
        ));
    }
    if let Some((base, _)) = &m.view {
        if base.is_leaf() && base.requires_grad() {
            return Err(Error::Runtime(
                "a view of a leaf Variable that requires grad is being used in an in-place operation.".into(),
            ));
        }
    }
    Ok(())
}

/// An in-place op `node` ran on `view` of `base`: the base's new history
/// runs `node`'s derivative on the slice of the base's gradient that the
/// view covers and passes the rest through; the view becomes a view of the
/// new base.
fn copy_slices(base: &Tensor, view: &Tensor, view_fn: ViewFn, node: Arc<Node>) -> Result<()> {
    let mut next: SmallVec<[Option<Edge>; 2]> = SmallVec::new();
    next.push(gradient_edge(base));
    next.extend(node.next.iter().skip(1).cloned());
    let mut input_meta: SmallVec<[Meta; 2]> = SmallVec::new();
    input_meta.push(Meta::of(base));
    input_meta.extend(node.input_meta.iter().skip(1).cloned());
    let mut output_meta = SmallVec::new();
    output_meta.push(Meta::of(base));
    let inner = node.clone();
    let vf = view_fn.clone();
    let backward: BackwardFn = Box::new(move |ctx, grads| {
        let g = grads.into_iter().next().flatten();
        let Some(g) = g else {
            return Ok(vec![None; inner.num_inputs()]);
        };
        let result = copy::clone(&g)?;
        let slice = vf(&result)?;
        let mut res =
            engine::call_node(&inner, vec![Some(copy::clone(&slice)?)], ctx.needs.clone())?;
        let first = res.first_mut().and_then(|r| r.take());
        match first {
            Some(gs) => copy::copy_(&slice, &gs)?,
            None => copy::fill_(&slice, crate::tensor::Scalar::Int(0))?,
        }
        let mut out = vec![Some(result)];
        out.extend(res.into_iter().skip(1));
        Ok(out)
    });
    let cs = Arc::new(Node::new(
        Cow::Borrowed("CopySlices"),
        next,
        input_meta,
        output_meta,
        node::Kind::Function(backward),
        Vec::new(),
    ));
    set_history(base, &cs, 0);
    // The view's history: the generic view derivative from the new base.
    let rec = Recorder::build(
        Cow::Borrowed("AsStridedBackward0"),
        std::iter::once(Some(base)),
    );
    let base_meta = Meta::of(base);
    let vf = view_fn.clone();
    let vnode = rec.into_node(
        &[view],
        Box::new(move |_ctx, grads| {
            let g = grads.into_iter().next().flatten();
            Ok(vec![match g {
                Some(g) => Some(view_scatter(&base_meta, &vf, &g)?),
                None => None,
            }])
        }),
    );
    set_history(view, &vnode, 0);
    Ok(())
}

/// The gradient of a view with respect to its input: zeros shaped like the
/// input with `g` written through the same view. Differentiable: its own
/// derivative takes the view of the incoming gradient.
pub fn view_scatter(input: &Meta, view_fn: &ViewFn, g: &Tensor) -> Result<Tensor> {
    let rec = Recorder::new("ViewScatterBackward0", &[g]);
    let z = crate::ops::creation::full(&input.shape, crate::tensor::Scalar::Int(0), g.dtype())?;
    let v = view_fn(&z)?;
    if v.layout().is_non_overlapping() {
        copy::copy_(&v, g)?;
    } else {
        // Views that may overlap (unfold, as_strided) sum their elements'
        // gradients: scatter-add by storage position.
        let n = z.numel() as i64;
        let pos = crate::ops::creation::arange(
            crate::tensor::Scalar::Int(0),
            crate::tensor::Scalar::Int(n),
            crate::tensor::Scalar::Int(1),
            crate::tensor::DType::I64,
        )?;
        let sizes: Vec<i64> = input.shape.iter().map(|&s| s as i64).collect();
        let idx = copy::contiguous(&view_fn(&shape::reshape(&pos, &sizes)?)?)?;
        let flat_z = shape::reshape(&z, &[-1])?;
        crate::ops::gather::index_add_(
            &flat_z,
            0,
            &shape::reshape(&idx, &[-1])?,
            &shape::reshape(&copy::contiguous(g)?, &[-1])?,
            crate::tensor::Scalar::Int(1),
        )?;
    }
    if let Some(rec) = rec {
        let vf = view_fn.clone();
        rec.finish(&[&z], move |_ctx, grads| {
            let gg = grads.into_iter().next().flatten();
            Ok(vec![match gg {
                Some(gg) => Some(vf(&gg)?),
                None => None,
            }])
        });
    }
    Ok(z)
}

/// Sums `g` down to `shape` (the inverse of broadcasting).
pub fn sum_to(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let lead = g.ndim().saturating_sub(shape.len());
    let mut dims: Vec<i64> = (0..lead as i64).collect();
    for (i, &s) in shape.iter().enumerate() {
        if s == 1 && g.shape()[lead + i] != 1 {
            dims.push((lead + i) as i64);
        }
    }
    let r = if dims.is_empty() {
        g.clone()
    } else {
        reduce::sum(g, Some(&dims), true, None)?
    };
    let sizes: Vec<i64> = shape.iter().map(|&s| s as i64).collect();
    shape::reshape(&r, &sizes)
}

/// Whether a tensor of `from` shape broadcasts to `to`.
pub fn is_expandable_to(from: &[usize], to: &[usize]) -> bool {
    if from.len() > to.len() {
        return false;
    }
    let lead = to.len() - from.len();
    from.iter()
        .zip(&to[lead..])
        .all(|(&f, &t)| f == t || f == 1)
}

/// PyTorch's node name for an op: `leaky_relu`, 0 -> `LeakyReluBackward0`.
/// Interned, so recording an op allocates no string.
pub fn backward_name(op: &'static str, version: u8) -> &'static str {
    use parking_lot::Mutex;
    use std::collections::HashMap;
    static NAMES: Mutex<Option<HashMap<(&'static str, u8), &'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock();
    let map = names.get_or_insert_with(HashMap::new);
    if let Some(n) = map.get(&(op, version)) {
        return n;
    }
    let mut s = String::new();
    for part in op.split('_').filter(|p| !p.is_empty()) {
        let mut c = part.chars();
        if let Some(f) = c.next() {
            s.extend(f.to_uppercase());
            s.push_str(c.as_str());
        }
    }
    s.push_str("Backward");
    s.push_str(&version.to_string());
    let leaked: &'static str = Box::leak(s.into_boxed_str());
    map.insert((op, version), leaked);
    leaked
}

/// The gradient of a view given the gradient of its output.
pub type ViewInverse = Box<dyn Fn(&Tensor) -> Result<Tensor> + Send>;

/// Records a view op: `view_fn` remakes the view from any tensor shaped
/// like `input` (kept so in-place writes through the view reach the base);
/// `inverse` maps the view's gradient back to the input (`None`: the
/// generic zeros-and-scatter of `view_scatter`).
pub fn record_view<F>(
    name: &'static str,
    input: &Tensor,
    out: &Tensor,
    view_fn: F,
    inverse: Option<ViewInverse>,
) where
    F: Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
{
    if !is_grad_enabled() {
        return;
    }
    let view_fn: ViewFn = Arc::new(view_fn);
    if input.requires_grad() {
        let rec = Recorder::build(Cow::Borrowed(name), std::iter::once(Some(input)));
        let meta = Meta::of(input);
        let vf = view_fn.clone();
        rec.finish(&[out], move |_ctx, grads| {
            let Some(g) = grads.into_iter().next().flatten() else {
                return Ok(vec![None]);
            };
            Ok(vec![Some(match &inverse {
                Some(inv) => inv(&g)?,
                None => view_scatter(&meta, &vf, &g)?,
            })])
        });
    }
    track_view(input, out, view_fn);
}

/// `reshape(g, shape)`, for the derivatives of shape-only views.
pub fn reshape_to(shape: &[usize]) -> ViewInverse {
    let sizes: Vec<i64> = shape.iter().map(|&s| s as i64).collect();
    Box::new(move |g| shape::reshape(g, &sizes))
}
