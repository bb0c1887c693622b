//! Double backward through a fused recurrent layer.
//!
//! `rnn::rnn_layer` runs a whole layer as one op whose fused backward is not
//! itself differentiable. Under `create_graph=True` its backward instead
//! rebuilds the layer from its saved inputs as a graph of differentiable
//! steps (a GEMM and a cell op per timestep, as PyTorch's CPU layers are
//! built) and differentiates that graph, so the gradients it returns carry
//! history back to the layer's inputs.

use crate::autograd::engine::{run_backward, Options};
use crate::autograd::GradMode;
use crate::error::Result;
use crate::ops::arith::{add, un};
use crate::ops::rnn::{gru_cell, lstm_cell, step_order, Mode};
use crate::ops::unary::Unary;
use crate::ops::{creation, join, linalg, shape};
use crate::tensor::{Scalar, Tensor};

/// The layer's inputs, in `rnn_layer`'s order
/// `[xp, h0, c0, w_hh, b_ih, b_hh, w_hr]`.
pub type LayerInputs = [Option<Tensor>; 7];

/// `rnn_layer`'s forward as differentiable steps: `(out, h_n, c_n)`.
/// `sizes` are the packed batch sizes (rows of `xp` per timestep).
fn layer_graph(
    mode: Mode,
    inputs: &LayerInputs,
    sizes: &[usize],
    reverse: bool,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let [Some(xp), Some(h0), c0, Some(w_hh), b_ih, b_hh, w_hr] = inputs else {
        return Err(crate::error::Error::Runtime(
            "rnn: double backward needs the layer's inputs".into(),
        ));
    };
    let w_t = shape::t(w_hh)?;
    let wr_t = w_hr.as_ref().map(shape::t).transpose()?;
    let offs = step_order(sizes, reverse);
    let (mut h, mut c) = (h0.clone(), c0.clone());
    // Rows past a step's batch keep their state: split, step, rejoin.
    let rejoin = |new: Tensor, old: &Tensor, bs: usize| -> Result<Tensor> {
        let rows = old.shape()[0];
        if bs == rows {
            return Ok(new);
        }
        let rest = shape::narrow(old, 0, bs as i64, (rows - bs) as i64)?;
        join::cat(&[new, rest], 0)
    };
    let mut outs: Vec<(usize, Tensor)> = Vec::with_capacity(offs.len());
    for &(off, bs) in &offs {
        let x = shape::narrow(xp, 0, off as i64, bs as i64)?;
        let h_in = shape::narrow(&h, 0, 0, bs as i64)?;
        let hg = linalg::mm(&h_in, &w_t)?;
        let h_new = match mode {
            Mode::Lstm => {
                let cur = c
                    .as_ref()
                    .ok_or_else(|| crate::error::Error::Runtime("rnn: LSTM needs c0".into()))?;
                let c_in = shape::narrow(cur, 0, 0, bs as i64)?;
                let (hy, cy) = lstm_cell(&x, &hg, &c_in, b_ih.as_ref(), b_hh.as_ref())?;
                c = Some(rejoin(cy, cur, bs)?);
                match &wr_t {
                    Some(wr) => linalg::mm(&hy, wr)?,
                    None => hy,
                }
            }
            Mode::Gru => gru_cell(&x, &hg, &h_in, b_ih.as_ref(), b_hh.as_ref())?,
            Mode::RnnTanh | Mode::RnnRelu => {
                let mut pre = add(&x, &hg)?;
                for b in [b_ih, b_hh].into_iter().flatten() {
                    pre = add(&pre, b)?;
                }
                let f = if mode == Mode::RnnTanh {
                    Unary::Tanh
                } else {
                    Unary::Relu
                };
                un(f, &pre)?
            }
        };
        outs.push((off, h_new.clone()));
        h = rejoin(h_new, &h, bs)?;
    }
    outs.sort_by_key(|(off, _)| *off);
    let out = if outs.is_empty() {
        creation::full(&[0, h0.shape()[1]], Scalar::Int(0), xp.dtype())?
    } else {
        join::cat(&outs.into_iter().map(|(_, t)| t).collect::<Vec<_>>(), 0)?
    };
    Ok((out, h, c))
}

/// Gradients of the layer's inputs from those of its outputs
/// `[out, h_n, c_n]`, as a differentiable graph (for `create_graph=True`).
/// Inputs that are absent or need no gradient get `None`.
pub fn layer_grads_with_graph(
    mode: Mode,
    inputs: &LayerInputs,
    sizes: &[usize],
    reverse: bool,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let _mode = GradMode::set(true);
    let (out, hn, cn) = layer_graph(mode, inputs, sizes, reverse)?;
    let mut roots = Vec::new();
    let mut seeds = Vec::new();
    for (t, g) in [Some(out), Some(hn), cn].into_iter().zip(grads) {
        if let (Some(t), Some(g)) = (t, g) {
            if crate::autograd::gradient_edge(&t).is_some() {
                roots.push(t);
                seeds.push(g.clone());
            }
        }
    }
    let wanted: Vec<usize> = (0..inputs.len())
        .filter(|&i| {
            inputs[i]
                .as_ref()
                .is_some_and(|t| crate::autograd::gradient_edge(t).is_some())
        })
        .collect();
    let mut res: Vec<Option<Tensor>> = vec![None; inputs.len()];
    if roots.is_empty() || wanted.is_empty() {
        return Ok(res);
    }
    let targets: Vec<Tensor> = wanted.iter().filter_map(|&i| inputs[i].clone()).collect();
    let opts = Options {
        keep_graph: true,
        create_graph: true,
        accumulate_grad: false,
        allow_unused: true,
    };
    let got = run_backward(&roots, seeds, &targets, &opts)?;
    for (&i, g) in wanted.iter().zip(got) {
        res[i] = g;
    }
    Ok(res)
}
