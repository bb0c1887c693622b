//! The backward pass: a dependency-counted walk from the roots, running
//! each node once every node that feeds it gradients has run.
//!
//! The walk is iterative (a chain of 100,000 ops needs no stack), runs on
//! the calling thread, and holds no global lock: several threads may run
//! backward at once. A node's derivative runs under that node's own mutex,
//! so two passes sharing a node take turns, and accumulation into a leaf is
//! serialised by its `AccumulateGrad` node.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use smallvec::SmallVec;

use super::node::{Kind, FREED};
use super::{is_expandable_to, sum_to, Ctx, Edge, GradMode, Node};
use crate::error::{Error, Result};
use crate::ops::binary::{self, BinaryOp};
use crate::ops::{copy, creation, Operand};
use crate::tensor::{Scalar, Tensor};

fn key(n: &Arc<Node>) -> usize {
    Arc::as_ptr(n) as usize
}

/// Options of one backward pass (`torch.autograd.backward` / `grad`).
pub struct Options {
    pub keep_graph: bool,
    pub create_graph: bool,
    /// Accumulate into `.grad` (backward) or return the gradients (grad).
    pub accumulate_grad: bool,
    pub allow_unused: bool,
}

/// Runs backward from `roots` seeded with `grads`. With `inputs`, only the
/// paths to them run: their gradients are returned (`grad`), or with
/// `accumulate_grad` added to their `.grad` (`backward(inputs=...)`).
pub fn run_backward(
    roots: &[Tensor],
    grads: Vec<Tensor>,
    inputs: &[Tensor],
    opts: &Options,
) -> Result<Vec<Option<Tensor>>> {
    let mut root_edges = Vec::with_capacity(roots.len());
    for (i, r) in roots.iter().enumerate() {
        match super::gradient_edge(r) {
            Some(e) => root_edges.push(e),
            None => {
                return Err(Error::Runtime(format!(
                    "element {i} of tensors does not require grad and does not have a grad_fn"
                )))
            }
        }
    }
    let mut targets = Vec::with_capacity(inputs.len());
    for t in inputs {
        match super::gradient_edge(t) {
            Some(e) => targets.push(e),
            None => {
                return Err(Error::Runtime(
                    "One of the differentiated Tensors does not require grad".into(),
                ))
            }
        }
    }

    // Discover the graph and count, for every node, the edges into it.
    let mut nodes: HashMap<usize, Arc<Node>> = HashMap::new();
    let mut deps: HashMap<usize, usize> = HashMap::new();
    let mut stack: Vec<Arc<Node>> = Vec::new();
    for e in &root_edges {
        if nodes.insert(key(&e.node), e.node.clone()).is_none() {
            stack.push(e.node.clone());
        }
    }
    while let Some(n) = stack.pop() {
        for e in n.next.iter().flatten() {
            *deps.entry(key(&e.node)).or_insert(0) += 1;
            if nodes.insert(key(&e.node), e.node.clone()).is_none() {
                stack.push(e.node.clone());
            }
        }
    }

    // With `inputs`, run only nodes on a path to one of them.
    let needed: Option<HashSet<usize>> = if targets.is_empty() {
        None
    } else {
        Some(nodes_leading_to(&nodes, &targets, opts.accumulate_grad))
    };
    // Gradients to capture: (node, input_nr) -> positions in the result.
    let mut captures: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    if !opts.accumulate_grad {
        for (i, e) in targets.iter().enumerate() {
            captures
                .entry((key(&e.node), e.input_nr))
                .or_default()
                .push(i);
        }
    }
    let mut captured: Vec<Option<Tensor>> = vec![None; targets.len()];
    // Nodes whose incoming gradient someone wants: those that run, and the
    // capture points.
    let wanted: Option<HashSet<usize>> = needed.as_ref().map(|set| {
        let mut w = set.clone();
        w.extend(targets.iter().map(|e| key(&e.node)));
        w
    });

    let mut buffers: HashMap<usize, Vec<Option<Tensor>>> = HashMap::new();
    for (e, g) in root_edges.iter().zip(grads) {
        add_to_buffer(&mut buffers, e, g)?;
    }
    let mut ready: BinaryHeap<(u64, usize)> = BinaryHeap::new();
    let mut queued: HashSet<usize> = HashSet::new();
    for e in &root_edges {
        let k = key(&e.node);
        if deps.get(&k).copied().unwrap_or(0) == 0 && queued.insert(k) {
            ready.push((e.node.seq, k));
        }
    }

    let _mode = GradMode::set(opts.create_graph);
    while let Some((_, k)) = ready.pop() {
        let Some(node) = nodes.get(&k).cloned() else {
            continue;
        };
        let mut grads = buffers
            .remove(&k)
            .unwrap_or_else(|| vec![None; node.num_outputs()]);
        grads.resize(node.num_outputs(), None);
        run_tensor_hooks(&node, &mut grads)?;
        for (nr, g) in grads.iter().enumerate() {
            if let Some(pos) = captures.get(&(k, nr)) {
                for &p in pos {
                    captured[p] = g.clone();
                }
            }
        }
        let run = match &needed {
            None => true,
            Some(set) => set.contains(&k),
        };
        let outputs = if run {
            let needs: SmallVec<[bool; 4]> = node
                .next
                .iter()
                .map(|e| match (e, &wanted) {
                    (None, _) => false,
                    (Some(e), Some(set)) => set.contains(&key(&e.node)),
                    (Some(_), None) => true,
                })
                .collect();
            let out = evaluate(&node, grads, needs, opts)?;
            if !opts.keep_graph {
                node.release();
            }
            out
        } else {
            Vec::new()
        };
        for (i, e) in node.next.iter().enumerate() {
            let Some(e) = e else { continue };
            if let Some(Some(g)) = outputs.get(i) {
                add_to_buffer(&mut buffers, e, g.clone())?;
            }
            let ck = key(&e.node);
            if let Some(d) = deps.get_mut(&ck) {
                *d -= 1;
                if *d == 0 && queued.insert(ck) {
                    ready.push((e.node.seq, ck));
                }
            }
        }
    }

    if !opts.accumulate_grad && !opts.allow_unused && captured.iter().any(|c| c.is_none()) {
        return Err(Error::Runtime(
            "One of the differentiated Tensors appears to not have been used in the graph. Set allow_unused=True if this is the desired behavior.".into(),
        ));
    }
    Ok(captured)
}

/// The nodes from which some target is reachable (targets included, except
/// for leaf accumulators when gradients are only captured).
fn nodes_leading_to(
    nodes: &HashMap<usize, Arc<Node>>,
    targets: &[Edge],
    accumulate: bool,
) -> HashSet<usize> {
    let target_keys: HashSet<usize> = targets.iter().map(|e| key(&e.node)).collect();
    let mut needed: HashSet<usize> = HashSet::new();
    // Reverse edges, then a walk back from the targets.
    let mut parents: HashMap<usize, Vec<usize>> = HashMap::new();
    for (&k, n) in nodes {
        for e in n.next.iter().flatten() {
            parents.entry(key(&e.node)).or_default().push(k);
        }
    }
    let mut stack: Vec<usize> = Vec::new();
    for &t in &target_keys {
        let is_acc = nodes
            .get(&t)
            .is_some_and(|n| matches!(&*n.kind.lock(), Kind::AccumulateGrad(_)));
        if accumulate || !is_acc {
            needed.insert(t);
        }
        stack.push(t);
    }
    let mut seen: HashSet<usize> = target_keys.clone();
    while let Some(k) = stack.pop() {
        for &p in parents.get(&k).map(|v| v.as_slice()).unwrap_or(&[]) {
            needed.insert(p);
            if seen.insert(p) {
                stack.push(p);
            }
        }
    }
    // A target that only feeds other targets still needs to run, but a
    // captured non-leaf need not: keep it only if it leads further.
    if !accumulate {
        for &t in &target_keys {
            let leads = nodes.get(&t).is_some_and(|n| {
                n.next
                    .iter()
                    .flatten()
                    .any(|e| needed.contains(&key(&e.node)) || target_keys.contains(&key(&e.node)))
            });
            if !leads {
                needed.remove(&t);
            }
        }
    }
    needed
}

fn add_to_buffer(
    buffers: &mut HashMap<usize, Vec<Option<Tensor>>>,
    e: &Edge,
    g: Tensor,
) -> Result<()> {
    let buf = buffers
        .entry(key(&e.node))
        .or_insert_with(|| vec![None; e.node.num_outputs().max(e.input_nr + 1)]);
    if buf.len() <= e.input_nr {
        buf.resize(e.input_nr + 1, None);
    }
    let slot = &mut buf[e.input_nr];
    *slot = Some(match slot.take() {
        None => g,
        Some(old) => binary::binary(
            BinaryOp::Add,
            &Operand::Tensor(old),
            &Operand::Tensor(g),
            None,
        )?,
    });
    Ok(())
}

/// Tensor hooks on the node's outputs (a leaf's hooks for an accumulator),
/// then `retain_grad`.
fn run_tensor_hooks(node: &Arc<Node>, grads: &mut [Option<Tensor>]) -> Result<()> {
    let leaf = node.variable();
    let hooks: Vec<(usize, super::Hook)> = match &leaf {
        Some(t) => t.meta().hooks.iter().map(|(_, h)| (0, h.clone())).collect(),
        None => node
            .tensor_hooks
            .lock()
            .iter()
            .map(|(_, nr, h)| (*nr, h.clone()))
            .collect(),
    };
    for (nr, h) in hooks {
        if let Some(Some(g)) = grads.get(nr) {
            if let Some(new) = h(g)? {
                grads[nr] = Some(new);
            }
        }
    }
    let retain: Vec<_> = node.retain.lock().clone();
    for (nr, wt) in retain {
        if let (Some(t), Some(Some(g))) = (wt.upgrade(), grads.get(nr)) {
            let _off = GradMode::set(false);
            let mut m = t.meta();
            let new = match m.grad.take() {
                None => copy::clone(g)?,
                Some(old) => binary::binary(
                    BinaryOp::Add,
                    &Operand::Tensor(old),
                    &Operand::Tensor(g.clone()),
                    None,
                )?,
            };
            m.grad = Some(new);
        }
    }
    Ok(())
}

/// Pre-hooks, the node itself, post-hooks; gradients checked against the
/// inputs' shapes and dtypes.
fn evaluate(
    node: &Arc<Node>,
    mut grads: Vec<Option<Tensor>>,
    needs: SmallVec<[bool; 4]>,
    opts: &Options,
) -> Result<Vec<Option<Tensor>>> {
    let pre: Vec<_> = node.pre_hooks.lock().iter().map(|h| h.1.clone()).collect();
    for h in pre {
        if let Some(new) = h(&grads)? {
            grads = new;
        }
    }
    if let Some(leaf) = node.variable() {
        if opts.accumulate_grad {
            if let Some(Some(g)) = grads.first() {
                // The accumulator's lock serialises concurrent passes.
                let _lock = node.kind.lock();
                accumulate(&leaf, g, opts.create_graph)?;
            }
        }
        return Ok(Vec::new());
    }
    let grads_in = grads.clone();
    let mut out = call_node(node, grads, needs)?;
    let post: Vec<_> = node.post_hooks.lock().iter().map(|h| h.1.clone()).collect();
    for h in post {
        if let Some(new) = h(&out, &grads_in)? {
            out = new;
        }
    }
    validate(node, &mut out)?;
    if super::is_anomaly_enabled() {
        for (i, g) in out.iter().enumerate() {
            if let Some(g) = g {
                if has_nan(g)? {
                    return Err(Error::Runtime(format!(
                        "Function '{}' returned nan values in its {i}th output.",
                        node.name
                    )));
                }
            }
        }
    }
    Ok(out)
}

fn has_nan(g: &Tensor) -> Result<bool> {
    if !g.dtype().is_floating_point() {
        return Ok(false);
    }
    let _off = GradMode::set(false);
    let nan = crate::ops::unary::unary(crate::ops::unary::Unary::IsNan, g)?;
    let any = crate::ops::reduce::all_any(&nan, None, false, false)?;
    Ok(any.get_scalar(0).to_f64() != 0.0)
}

/// Runs a node's derivative (zero-filling missing gradients when the node
/// asks for it).
pub fn call_node(
    node: &Arc<Node>,
    mut grads: Vec<Option<Tensor>>,
    needs: SmallVec<[bool; 4]>,
) -> Result<Vec<Option<Tensor>>> {
    if node.materialize {
        for (g, m) in grads.iter_mut().zip(&node.output_meta) {
            if g.is_none() {
                *g = Some(creation::full(&m.shape, Scalar::Int(0), m.dtype)?);
            }
        }
    }
    let ctx = Ctx { node, needs };
    let mut kind = node.kind.lock();
    match &mut *kind {
        Kind::Function(f) => f(&ctx, grads),
        Kind::AccumulateGrad(_) => Err(Error::Runtime(FREED.into())),
    }
}

fn validate(node: &Node, out: &mut [Option<Tensor>]) -> Result<()> {
    if out.len() != node.num_inputs() {
        return Err(Error::Runtime(format!(
            "function {} returned an incorrect number of gradients (expected {}, got {})",
            node.name,
            node.num_inputs(),
            out.len()
        )));
    }
    for (i, slot) in out.iter_mut().enumerate() {
        if node.next[i].is_none() {
            *slot = None;
            continue;
        }
        let Some(g) = slot.take() else { continue };
        let meta = &node.input_meta[i];
        let mut g = g;
        if g.shape() != meta.shape.as_slice() {
            if !is_expandable_to(&meta.shape, g.shape()) {
                return Err(Error::Runtime(format!(
                    "Function {} returned an invalid gradient at index {i} - got {} but expected shape compatible with {}",
                    node.name,
                    crate::tensor::layout::fmt_shape(g.shape()),
                    crate::tensor::layout::fmt_shape(&meta.shape)
                )));
            }
            g = sum_to(&g, &meta.shape)?;
        }
        if g.dtype() != meta.dtype {
            g = copy::to_dtype(&g, meta.dtype, false)?;
        }
        *slot = Some(g);
    }
    Ok(())
}

/// Adds `g` into `leaf.grad`: in place when no graph is being built, out
/// of place (differentiably) under `create_graph`.
fn accumulate(leaf: &Tensor, g: &Tensor, create_graph: bool) -> Result<()> {
    let old = leaf.meta().grad.take();
    let new = match old {
        None => {
            if create_graph {
                g.clone()
            } else if g.is_unique() && g.is_contiguous() {
                g.alias()
            } else {
                let _off = GradMode::set(false);
                copy::clone(g)?
            }
        }
        Some(old) if !create_graph => {
            let _off = GradMode::set(false);
            let res = binary::binary_(BinaryOp::Add, &old, &Operand::Tensor(g.clone()), None);
            if let Err(e) = res {
                leaf.meta().grad = Some(old);
                return Err(e);
            }
            old
        }
        Some(old) => binary::binary(
            BinaryOp::Add,
            &Operand::Tensor(old),
            &Operand::Tensor(g.clone()),
            None,
        )?,
    };
    leaf.meta().grad = Some(new);
    Ok(())
}
