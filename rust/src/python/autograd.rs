//! Bindings of the autograd engine: grad modes, `run_backward`, graph
//! nodes (`grad_fn`), tensor hooks and custom `autograd.Function` nodes.

use std::borrow::Cow;
use std::sync::Arc;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use smallvec::SmallVec;

use super::tensor::PyTensor;
use crate::autograd::{self, engine, Ctx, Edge, Meta, Node};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

std::thread_local! {
    /// A Python exception raised inside a hook or custom backward, kept
    /// whole while it travels through the engine as an `Error`.
    static PENDING: std::cell::RefCell<Option<PyErr>> = const { std::cell::RefCell::new(None) };
}

/// Parks a Python exception for `take_pending`; the engine sees an `Error`.
pub(crate) fn park(e: PyErr) -> Error {
    let msg = e.to_string();
    PENDING.with(|p| *p.borrow_mut() = Some(e));
    Error::Callback(msg)
}

/// The Python exception behind an `Error::Callback`, if one is parked.
pub(crate) fn take_pending() -> Option<PyErr> {
    PENDING.with(|p| p.borrow_mut().take())
}

fn tensors(seq: &Bound<'_, PyAny>) -> PyResult<Vec<Tensor>> {
    let mut out = Vec::new();
    for item in seq.try_iter()? {
        out.push(item?.cast::<PyTensor>()?.borrow().t.clone());
    }
    Ok(out)
}

/// The engine entry behind `autograd.backward` and `autograd.grad`.
#[pyfunction]
#[pyo3(signature = (tensors_, grad_tensors, keep_graph, create_graph, inputs, allow_unused, accumulate_grad))]
#[allow(clippy::too_many_arguments)]
fn _run_backward(
    py: Python<'_>,
    tensors_: &Bound<'_, PyAny>,
    grad_tensors: &Bound<'_, PyAny>,
    keep_graph: bool,
    create_graph: bool,
    inputs: &Bound<'_, PyAny>,
    allow_unused: bool,
    accumulate_grad: bool,
) -> PyResult<Py<PyTuple>> {
    let roots = tensors(tensors_)?;
    let grads = tensors(grad_tensors)?;
    let inputs = tensors(inputs)?;
    let opts = engine::Options {
        keep_graph,
        create_graph,
        accumulate_grad,
        allow_unused,
    };
    let res = py.detach(|| engine::run_backward(&roots, grads, &inputs, &opts))?;
    let items: Vec<Option<PyTensor>> = res.into_iter().map(|g| g.map(PyTensor::from)).collect();
    Ok(PyTuple::new(py, items)?.unbind())
}

#[pyfunction]
fn is_grad_enabled() -> bool {
    autograd::is_grad_enabled()
}

/// Sets grad mode; returns the previous mode.
#[pyfunction]
fn _set_grad_enabled(mode: bool) -> bool {
    autograd::set_grad_enabled(mode)
}

#[pyfunction]
fn is_inference_mode_enabled() -> bool {
    autograd::is_inference_mode()
}

/// Enters or leaves inference mode; returns the previous (inference, grad) modes.
#[pyfunction]
fn _set_inference_mode(mode: bool) -> (bool, bool) {
    autograd::set_inference_mode(mode)
}

/// Restores modes saved by `_set_inference_mode`.
#[pyfunction]
fn _restore_inference_mode(inference: bool, grad: bool) {
    autograd::set_inference_mode(inference);
    autograd::set_grad_enabled(grad);
}

#[pyfunction]
fn is_anomaly_enabled() -> bool {
    autograd::is_anomaly_enabled()
}

/// Sets anomaly detection; returns the previous setting.
#[pyfunction]
fn _set_anomaly_enabled(mode: bool) -> bool {
    autograd::set_anomaly_enabled(mode)
}

/// A graph node as Python sees it (`tensor.grad_fn`); Python wraps it in a
/// class named after the node (`AddBackward0`).
#[pyclass(name = "_Node", module = "rtorch._C", frozen)]
pub struct PyNode {
    pub node: Arc<Node>,
}

fn node_obj(py: Python<'_>, node: &Arc<Node>) -> PyResult<Py<PyAny>> {
    let raw = Py::new(py, PyNode { node: node.clone() })?;
    let graph = py.import("rtorch.autograd.graph")?;
    Ok(graph.getattr("_wrap")?.call1((raw,))?.unbind())
}

fn hook_result(r: &Bound<'_, PyAny>) -> PyResult<Option<Tensor>> {
    if r.is_none() {
        return Ok(None);
    }
    Ok(Some(r.cast::<PyTensor>()?.borrow().t.clone()))
}

fn opt_tuple<'py>(py: Python<'py>, gs: &[Option<Tensor>]) -> PyResult<Bound<'py, PyTuple>> {
    let items: Vec<Option<PyTensor>> = gs.iter().map(|g| g.clone().map(PyTensor::from)).collect();
    PyTuple::new(py, items)
}

fn opt_tensors(r: &Bound<'_, PyAny>) -> PyResult<Vec<Option<Tensor>>> {
    let mut out = Vec::new();
    for item in r.try_iter()? {
        out.push(hook_result(&item?)?);
    }
    Ok(out)
}

#[pymethods]
impl PyNode {
    fn name(&self) -> String {
        self.node.name.to_string()
    }

    #[getter]
    fn next_functions(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        let mut items = Vec::new();
        for e in &self.node.next {
            let pair = match e {
                Some(e) => (node_obj(py, &e.node)?, e.input_nr),
                None => (py.None(), 0),
            };
            items.push(pair);
        }
        Ok(PyTuple::new(py, items)?.unbind())
    }

    /// The leaf an `AccumulateGrad` node feeds.
    #[getter]
    fn variable(&self) -> PyResult<PyTensor> {
        self.node
            .variable()
            .map(PyTensor::from)
            .ok_or_else(|| PyRuntimeError::new_err("only AccumulateGrad nodes have a variable"))
    }

    fn _key(&self) -> usize {
        Arc::as_ptr(&self.node) as usize
    }

    fn _seq(&self) -> u64 {
        self.node.seq
    }

    /// `fn(grad_inputs, grad_outputs)`, run after the node; may return new grad_inputs.
    fn _register_hook(&self, hook: Py<PyAny>) -> u64 {
        self.node.add_post_hook(Arc::new(move |ins, outs| {
            Python::attach(|py| {
                let r = hook
                    .bind(py)
                    .call1((
                        opt_tuple(py, ins).map_err(park)?,
                        opt_tuple(py, outs).map_err(park)?,
                    ))
                    .map_err(park)?;
                if r.is_none() {
                    Ok(None)
                } else {
                    Ok(Some(opt_tensors(&r).map_err(park)?))
                }
            })
        }))
    }

    /// `fn(grad_outputs)`, run before the node; may return new grad_outputs.
    fn _register_prehook(&self, hook: Py<PyAny>) -> u64 {
        self.node.add_pre_hook(Arc::new(move |outs| {
            Python::attach(|py| {
                let r = hook
                    .bind(py)
                    .call1((opt_tuple(py, outs).map_err(park)?,))
                    .map_err(park)?;
                if r.is_none() {
                    Ok(None)
                } else {
                    Ok(Some(opt_tensors(&r).map_err(park)?))
                }
            })
        }))
    }

    fn _remove_hook(&self, id: u64) -> bool {
        self.node.remove_hook(id)
    }
}

/// Wraps a Python callable as a tensor hook.
fn tensor_hook(hook: Py<PyAny>) -> autograd::Hook {
    Arc::new(move |g: &Tensor| {
        Python::attach(|py| {
            let r = hook
                .bind(py)
                .call1((PyTensor::from(g.clone()),))
                .map_err(park)?;
            hook_result(&r).map_err(park)
        })
    })
}

#[pymethods]
impl PyTensor {
    #[getter]
    fn is_leaf(&self) -> bool {
        self.t.is_leaf()
    }

    #[getter]
    fn grad_fn(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.t.grad_fn().map(|n| node_obj(py, &n)).transpose()
    }

    #[getter]
    fn output_nr(&self) -> usize {
        self.t.output_nr()
    }

    #[getter]
    fn retains_grad(&self) -> bool {
        self.t.meta().retains_grad
    }

    fn is_inference(&self) -> bool {
        self.t.is_inference()
    }

    /// `retain_grad()`: keep `.grad` on a non-leaf.
    fn retain_grad(&self) -> PyResult<()> {
        if !self.t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "can't retain_grad on Tensor that has requires_grad=False",
            ));
        }
        let Some(f) = self.t.grad_fn() else {
            return Ok(());
        };
        let mut m = self.t.meta();
        if m.retains_grad {
            return Ok(());
        }
        m.retains_grad = true;
        drop(m);
        f.add_retain_grad(self.t.output_nr(), self.t.downgrade());
        Ok(())
    }

    /// Registers a gradient hook; returns its id for `_remove_hook`.
    fn _register_hook(&self, hook: Py<PyAny>) -> PyResult<u64> {
        if !self.t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "cannot register a hook on a tensor that doesn't require gradient",
            ));
        }
        let h = tensor_hook(hook);
        Ok(match self.t.grad_fn() {
            Some(f) => f.add_tensor_hook(self.t.output_nr(), h),
            None => {
                let id = autograd::next_hook_id();
                self.t.meta().hooks.push((id, h));
                id
            }
        })
    }

    fn _remove_hook(&self, id: u64) {
        if let Some(f) = self.t.grad_fn() {
            f.remove_hook(id);
        }
        self.t.meta().hooks.retain(|h| h.0 != id);
    }
}

/// Records a custom `autograd.Function` call: `backward(saved, grads)` is
/// the Python side of the node. Returns the node.
#[pyfunction]
#[pyo3(signature = (name, backward, inputs, outputs, saved, materialize_grads))]
fn _record_function(
    py: Python<'_>,
    name: String,
    backward: Py<PyAny>,
    inputs: &Bound<'_, PyList>,
    outputs: &Bound<'_, PyList>,
    saved: &Bound<'_, PyList>,
    materialize_grads: bool,
) -> PyResult<Py<PyAny>> {
    let mut next: SmallVec<[Option<Edge>; 2]> = SmallVec::new();
    let mut input_meta: SmallVec<[Meta; 2]> = SmallVec::new();
    for item in inputs.iter() {
        match item.cast::<PyTensor>() {
            Ok(t) => {
                let t = t.borrow().t.clone();
                next.push(autograd::gradient_edge(&t));
                input_meta.push(Meta::of(&t));
            }
            Err(_) => {
                next.push(None);
                input_meta.push(Meta {
                    shape: SmallVec::new(),
                    dtype: crate::tensor::DType::F32,
                });
            }
        }
    }
    // Outputs: None for non-differentiable ones.
    let outs: Vec<Option<Tensor>> = outputs
        .iter()
        .map(|o| o.cast::<PyTensor>().ok().map(|t| t.borrow().t.clone()))
        .collect();
    let output_meta = outs
        .iter()
        .map(|o| match o {
            Some(t) => Meta::of(t),
            None => Meta {
                shape: SmallVec::new(),
                dtype: crate::tensor::DType::F32,
            },
        })
        .collect();
    let mut saved_list = Vec::new();
    for item in saved.iter() {
        if item.is_none() {
            saved_list.push(None);
            continue;
        }
        let t = item.cast::<PyTensor>()?.borrow().t.clone();
        let out_nr = outs
            .iter()
            .position(|o| o.as_ref().is_some_and(|o| o.same_tensor(&t)));
        saved_list.push(Some(match out_nr {
            Some(nr) => autograd::SavedTensor::output(&t, nr)?,
            None => autograd::SavedTensor::input(&t)?,
        }));
    }
    let slots: Vec<Option<usize>> = {
        let mut k = 0;
        saved_list
            .iter()
            .map(|s| {
                s.as_ref().map(|_| {
                    k += 1;
                    k - 1
                })
            })
            .collect()
    };
    let saved_tensors: Vec<_> = saved_list.into_iter().flatten().collect();
    let n_inputs = next.len();
    let bw: autograd::BackwardFn = Box::new(move |ctx: &Ctx<'_>, grads| {
        let saved: Vec<Option<Tensor>> = slots
            .iter()
            .map(|s| s.map(|i| ctx.saved(i)).transpose())
            .collect::<Result<_>>()?;
        let needs: Vec<bool> = (0..n_inputs).map(|i| ctx.needs(i)).collect();
        Python::attach(|py| {
            let saved = opt_tuple(py, &saved).map_err(park)?;
            let grads = opt_tuple(py, &grads).map_err(park)?;
            let r = backward
                .bind(py)
                .call1((saved, grads, needs))
                .map_err(park)?;
            opt_tensors(&r).map_err(park)
        })
    });
    let mut node = Node::new(
        Cow::Owned(name),
        next,
        input_meta,
        output_meta,
        autograd::node::Kind::Function(bw),
        saved_tensors,
    );
    node.materialize = materialize_grads;
    let node = Arc::new(node);
    for (i, o) in outs.iter().enumerate() {
        if let Some(t) = o {
            let mut m = t.meta();
            m.grad_fn = Some(node.clone());
            m.output_nr = i;
        }
    }
    node_obj(py, &node)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyNode>()?;
    m.add_function(wrap_pyfunction!(_run_backward, m)?)?;
    m.add_function(wrap_pyfunction!(is_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(_set_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(is_inference_mode_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(_set_inference_mode, m)?)?;
    m.add_function(wrap_pyfunction!(_restore_inference_mode, m)?)?;
    m.add_function(wrap_pyfunction!(_record_function, m)?)?;
    m.add_function(wrap_pyfunction!(is_anomaly_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(_set_anomaly_enabled, m)?)?;
    Ok(())
}
