//! Graph nodes: one per recorded op, holding its edges to the nodes of its
//! inputs, the tensors its derivative needs, and the derivative itself.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::tensor::{DType, Dims, Tensor, WeakTensor};

/// Where a gradient flows: input `input_nr` of `node` (PyTorch's `Edge`;
/// `input_nr` numbers the node's forward outputs).
#[derive(Clone)]
pub struct Edge {
    pub node: Arc<Node>,
    pub input_nr: usize,
}

/// A tensor hook: may replace the gradient flowing into a tensor.
pub type Hook = Arc<dyn Fn(&Tensor) -> Result<Option<Tensor>> + Send + Sync>;
/// A node post-hook: sees the gradients a node produced and received, and
/// may replace the ones it produced (`grad_fn.register_hook`).
pub type PostHook = Arc<
    dyn Fn(&[Option<Tensor>], &[Option<Tensor>]) -> Result<Option<Vec<Option<Tensor>>>>
        + Send
        + Sync,
>;
/// A node pre-hook: may replace the gradients a node receives.
pub type PreHook =
    Arc<dyn Fn(&[Option<Tensor>]) -> Result<Option<Vec<Option<Tensor>>>> + Send + Sync>;

/// The derivative of one op: maps the gradients of its outputs to the
/// gradients of its inputs (`None` where an input needs none).
pub type BackwardFn =
    Box<dyn FnMut(&Ctx<'_>, Vec<Option<Tensor>>) -> Result<Vec<Option<Tensor>>> + Send>;

pub(crate) enum Kind {
    /// A recorded op.
    Function(BackwardFn),
    /// Sums gradients into a leaf's `.grad`.
    AccumulateGrad(Tensor),
}

/// Shape and dtype of a tensor a gradient must match.
#[derive(Clone, Debug)]
pub struct Meta {
    pub shape: Dims,
    pub dtype: DType,
}

impl Meta {
    pub fn of(t: &Tensor) -> Meta {
        Meta {
            shape: t.shape().into(),
            dtype: t.dtype(),
        }
    }
}

/// A tensor kept for backward, with the version it had when saved.
pub struct SavedTensor {
    data: Tensor,
    version: u64,
    /// Saved outputs keep no strong link to their own node (that would be a
    /// cycle); unpacking reattaches it.
    output_nr: Option<usize>,
    was_leaf: bool,
    creator: Option<Cow<'static, str>>,
}

impl SavedTensor {
    pub fn input(t: &Tensor) -> Result<SavedTensor> {
        check_saveable(t)?;
        let creator = t.grad_fn().map(|n| n.name.clone());
        Ok(SavedTensor {
            data: t.clone(),
            version: t.version(),
            output_nr: None,
            was_leaf: creator.is_none(),
            creator,
        })
    }

    pub fn output(t: &Tensor, output_nr: usize) -> Result<SavedTensor> {
        check_saveable(t)?;
        Ok(SavedTensor {
            data: t.alias(),
            version: t.version(),
            output_nr: Some(output_nr),
            was_leaf: false,
            creator: None,
        })
    }
}

fn check_saveable(t: &Tensor) -> Result<()> {
    if t.is_inference() && !super::is_inference_mode() {
        return Err(Error::Runtime(
            "Inference tensors cannot be saved for backward. To work around you can make a clone to get a normal tensor and use it in autograd.".into(),
        ));
    }
    Ok(())
}

pub(crate) struct Saved {
    pub tensors: Vec<SavedTensor>,
    pub released: bool,
}

static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);
static NEXT_HOOK: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a hook, so its handle can remove it.
pub fn next_hook_id() -> u64 {
    NEXT_HOOK.fetch_add(1, Ordering::Relaxed)
}

pub struct Node {
    pub name: Cow<'static, str>,
    /// Creation order: the engine runs later nodes first, as PyTorch.
    pub seq: u64,
    /// One per forward input; `None` for inputs that need no gradient.
    pub next: SmallVec<[Option<Edge>; 2]>,
    /// Shape and dtype of each forward input, to validate gradients.
    pub input_meta: SmallVec<[Meta; 2]>,
    /// Shape and dtype of each forward output, to fill missing gradients.
    pub output_meta: SmallVec<[Meta; 1]>,
    /// Fill gradients of unused outputs with zeros before calling backward.
    pub materialize: bool,
    pub(crate) kind: Mutex<Kind>,
    pub(crate) saved: Mutex<Saved>,
    /// Tensor hooks keyed by id, on output `nr`, run before the node.
    pub(crate) tensor_hooks: Mutex<Vec<(u64, usize, Hook)>>,
    /// `retain_grad()` of non-leaf outputs: run after the other hooks.
    pub(crate) retain: Mutex<Vec<(usize, WeakTensor)>>,
    pub(crate) pre_hooks: Mutex<Vec<(u64, PreHook)>>,
    pub(crate) post_hooks: Mutex<Vec<(u64, PostHook)>>,
}

impl Node {
    pub(crate) fn new(
        name: Cow<'static, str>,
        next: SmallVec<[Option<Edge>; 2]>,
        input_meta: SmallVec<[Meta; 2]>,
        output_meta: SmallVec<[Meta; 1]>,
        kind: Kind,
        saved: Vec<SavedTensor>,
    ) -> Node {
        Node {
            name,
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
            next,
            input_meta,
            output_meta,
            materialize: true,
            kind: Mutex::new(kind),
            saved: Mutex::new(Saved {
                tensors: saved,
                released: false,
            }),
            tensor_hooks: Mutex::new(Vec::new()),
            retain: Mutex::new(Vec::new()),
            pre_hooks: Mutex::new(Vec::new()),
            post_hooks: Mutex::new(Vec::new()),
        }
    }

    /// The accumulator of a leaf.
    pub(crate) fn accumulate_grad(leaf: &Tensor) -> Node {
        let mut out = SmallVec::new();
        out.push(Meta::of(leaf));
        Node::new(
            Cow::Borrowed("AccumulateGrad"),
            SmallVec::new(),
            SmallVec::new(),
            out,
            Kind::AccumulateGrad(leaf.clone()),
            Vec::new(),
        )
    }

    pub fn num_inputs(&self) -> usize {
        self.next.len()
    }

    pub fn num_outputs(&self) -> usize {
        self.output_meta.len()
    }

    /// The leaf an `AccumulateGrad` node feeds.
    pub fn variable(&self) -> Option<Tensor> {
        match &*self.kind.lock() {
            Kind::AccumulateGrad(t) => Some(t.clone()),
            Kind::Function(_) => None,
        }
    }

    pub fn add_tensor_hook(&self, output_nr: usize, hook: Hook) -> u64 {
        let id = next_hook_id();
        self.tensor_hooks.lock().push((id, output_nr, hook));
        id
    }

    pub fn add_retain_grad(&self, output_nr: usize, t: WeakTensor) {
        self.retain.lock().push((output_nr, t));
    }

    pub fn add_pre_hook(&self, hook: PreHook) -> u64 {
        let id = next_hook_id();
        self.pre_hooks.lock().push((id, hook));
        id
    }

    pub fn add_post_hook(&self, hook: PostHook) -> u64 {
        let id = next_hook_id();
        self.post_hooks.lock().push((id, hook));
        id
    }

    /// Removes the hook with this id, of any kind; false when none had it.
    pub fn remove_hook(&self, id: u64) -> bool {
        let mut found = false;
        self.tensor_hooks.lock().retain(|h| {
            let keep = h.0 != id;
            found |= !keep;
            keep
        });
        self.pre_hooks.lock().retain(|h| {
            let keep = h.0 != id;
            found |= !keep;
            keep
        });
        self.post_hooks.lock().retain(|h| {
            let keep = h.0 != id;
            found |= !keep;
            keep
        });
        found
    }

    /// Frees the saved tensors (after a backward without `retain_graph`).
    pub(crate) fn release(&self) {
        let mut s = self.saved.lock();
        if !s.tensors.is_empty() {
            s.tensors.clear();
            s.released = true;
        }
    }
}

/// What a derivative sees while it runs: its node (for saved tensors) and
/// which inputs need a gradient.
pub struct Ctx<'a> {
    pub(crate) node: &'a Arc<Node>,
    pub(crate) needs: SmallVec<[bool; 4]>,
}

impl Ctx<'_> {
    /// Whether forward input `i` needs a gradient in this backward pass.
    pub fn needs(&self, i: usize) -> bool {
        self.needs.get(i).copied().unwrap_or(false)
    }

    pub fn node(&self) -> &Arc<Node> {
        self.node
    }

    /// Saved tensor `i`, checked against in-place modification.
    pub fn saved(&self, i: usize) -> Result<Tensor> {
        unpack(self.node, i)
    }
}

pub(crate) const FREED: &str = "Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed). Saved intermediate values of the graph are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or if you need to access saved tensors after calling backward.";

/// Saved tensor `i` of `node`; a saved output gets `node` back as its
/// `grad_fn` so that derivatives of derivatives flow through it.
pub fn unpack(node: &Arc<Node>, i: usize) -> Result<Tensor> {
    let saved = node.saved.lock();
    if saved.released {
        return Err(Error::Runtime(FREED.into()));
    }
    let s = saved
        .tensors
        .get(i)
        .ok_or_else(|| Error::Runtime(format!("{}: no saved tensor {i}", node.name)))?;
    let now = s.data.version();
    if now != s.version {
        let what = match (&s.output_nr, &s.creator) {
            (Some(nr), _) => format!(", which is output {nr} of {},", node.name),
            (None, Some(c)) if !s.was_leaf => format!(", which is output 0 of {c},"),
            _ => String::new(),
        };
        return Err(Error::Runtime(format!(
            "one of the variables needed for gradient computation has been modified by an inplace operation: [{} [{}]]{what} is at version {now}; expected version {} instead. Hint: enable anomaly detection to find the operation that failed to compute its gradient, with torch.autograd.set_detect_anomaly(True).",
            s.data.dtype().legacy_type_name(),
            s.data
                .shape()
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            s.version
        )));
    }
    match s.output_nr {
        Some(nr) if super::is_grad_enabled() => {
            let t = s.data.alias();
            {
                let mut m = t.meta();
                m.grad_fn = Some(node.clone());
                m.output_nr = nr;
            }
            Ok(t)
        }
        _ => Ok(s.data.clone()),
    }
}

/// Dropping a long graph must not recurse once per node (a chain of
/// 100,000 ops would overflow the stack): a node being dropped hands the
/// nodes only it keeps alive to a loop instead.
impl Drop for Node {
    fn drop(&mut self) {
        let mut stack: Vec<Arc<Node>> = Vec::new();
        detach_children(self, &mut stack);
        while let Some(n) = stack.pop() {
            if let Ok(mut inner) = Arc::try_unwrap(n) {
                detach_children(&mut inner, &mut stack);
            }
        }
    }
}

fn detach_children(n: &mut Node, stack: &mut Vec<Arc<Node>>) {
    stack.extend(n.next.drain(..).flatten().map(|e| e.node));
    for s in n.saved.get_mut().tensors.drain(..) {
        if s.data.is_unique_handle() {
            if let Some(f) = s.data.meta().grad_fn.take() {
                stack.push(f);
            }
        }
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.name)
    }
}
