//! Bindings of the recurrent kernels (`rtorch/nn/_rnn.py` and the cells in
//! `rtorch/nn/modules/rnn.py` call these).

use pyo3::prelude::*;

use super::maybe_detach;
use super::tensor::PyTensor;
use crate::error::Result;
use crate::ops::rnn;
use crate::tensor::Tensor;

fn opt(t: &Option<PyRef<'_, PyTensor>>) -> Option<Tensor> {
    t.as_ref().map(|t| t.t.clone())
}

/// One layer and direction over all timesteps: `(output, h_n, c_n)`.
#[pyfunction]
#[pyo3(signature = (mode, xp, batch_sizes, h0, c0, w_hh, b_ih, b_hh, w_hr, reverse))]
#[allow(clippy::too_many_arguments)]
fn _rnn_layer(
    py: Python<'_>,
    mode: &str,
    xp: PyRef<'_, PyTensor>,
    batch_sizes: Vec<i64>,
    h0: PyRef<'_, PyTensor>,
    c0: Option<PyRef<'_, PyTensor>>,
    w_hh: PyRef<'_, PyTensor>,
    b_ih: Option<PyRef<'_, PyTensor>>,
    b_hh: Option<PyRef<'_, PyTensor>>,
    w_hr: Option<PyRef<'_, PyTensor>>,
    reverse: bool,
) -> PyResult<(PyTensor, PyTensor, Option<PyTensor>)> {
    let (x, h, w) = (xp.t.clone(), h0.t.clone(), w_hh.t.clone());
    let (c, bi, bh, wr) = (opt(&c0), opt(&b_ih), opt(&b_hh), opt(&w_hr));
    let (out, hn, cn) = maybe_detach(py, x.numel(), || {
        rnn::rnn_layer(
            mode,
            &x,
            &batch_sizes,
            &h,
            c.as_ref(),
            &w,
            bi.as_ref(),
            bh.as_ref(),
            wr.as_ref(),
            reverse,
        )
    })?;
    Ok((out.into(), hn.into(), cn.map(Into::into)))
}

/// A cell op: `(input_gates, hidden_gates, state, input_bias, hidden_bias)`.
type CellOp<R> = fn(&Tensor, &Tensor, &Tensor, Option<&Tensor>, Option<&Tensor>) -> Result<R>;

/// Runs a cell op on its bound arguments (without the GIL when large).
fn run_cell<R: Send>(
    py: Python<'_>,
    op: CellOp<R>,
    gates: [PyRef<'_, PyTensor>; 3],
    biases: [Option<PyRef<'_, PyTensor>>; 2],
) -> PyResult<R> {
    let [gi, gh, state] = gates.map(|t| t.t.clone());
    let [bi, bh] = biases.map(|t| opt(&t));
    Ok(maybe_detach(py, gi.numel(), || {
        op(&gi, &gh, &state, bi.as_ref(), bh.as_ref())
    })?)
}

/// `nn.LSTMCell`'s pointwise step: `(h', c')`.
#[pyfunction]
#[pyo3(signature = (input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None))]
fn _lstm_cell(
    py: Python<'_>,
    input_gates: PyRef<'_, PyTensor>,
    hidden_gates: PyRef<'_, PyTensor>,
    cx: PyRef<'_, PyTensor>,
    input_bias: Option<PyRef<'_, PyTensor>>,
    hidden_bias: Option<PyRef<'_, PyTensor>>,
) -> PyResult<(PyTensor, PyTensor)> {
    let (hy, cy) = run_cell(
        py,
        rnn::lstm_cell,
        [input_gates, hidden_gates, cx],
        [input_bias, hidden_bias],
    )?;
    Ok((hy.into(), cy.into()))
}

/// `nn.GRUCell`'s pointwise step: `h'`.
#[pyfunction]
#[pyo3(signature = (input_gates, hidden_gates, hx, input_bias=None, hidden_bias=None))]
fn _gru_cell(
    py: Python<'_>,
    input_gates: PyRef<'_, PyTensor>,
    hidden_gates: PyRef<'_, PyTensor>,
    hx: PyRef<'_, PyTensor>,
    input_bias: Option<PyRef<'_, PyTensor>>,
    hidden_bias: Option<PyRef<'_, PyTensor>>,
) -> PyResult<PyTensor> {
    let hy = run_cell(
        py,
        rnn::gru_cell,
        [input_gates, hidden_gates, hx],
        [input_bias, hidden_bias],
    )?;
    Ok(hy.into())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_rnn_layer, m)?)?;
    m.add_function(wrap_pyfunction!(_lstm_cell, m)?)?;
    m.add_function(wrap_pyfunction!(_gru_cell, m)?)?;
    Ok(())
}
