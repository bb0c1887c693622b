"""The recurrence behind ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``.

One layer and direction runs as two ops:

- the input projection ``x W_ih^T`` of every timestep at once (one ``mm``
  giving ``(N, G*H)``, recorded by autograd as usual);
- the recurrence over time, ``_C._rnn_layer`` (``rust/src/ops/rnn.rs``):
  per step one GEMM with ``W_hh`` and the fused cell (which adds the
  biases), split over threads by hidden units; its backward walks the steps back with fused kernels and
  gets the weight gradients from one GEMM over all steps.

Layer inputs and outputs use the packed layout: ``(N, features)`` with
timestep ``t``'s ``batch_sizes[t]`` rows contiguous (sequences sorted by
decreasing length). A padded ``(T, B, I)`` input is the case
``batch_sizes = [B] * T`` (a reshape, no copy). Step ``t`` updates only the
first ``batch_sizes[t]`` state rows; the others keep theirs, so the final
state of each sequence is the one at its last valid step.

The recurrence's backward is not differentiable: differentiating its
gradients again (``create_graph=True`` then a second backward) raises.
The cells (``nn.LSTMCell`` etc.) support double backward.
"""

from __future__ import annotations

import rtorch
from rtorch import _C
from rtorch._C import Tensor

__all__: list[str] = []


def _layer(
    mode: str,
    x: Tensor,
    batch_sizes: list,
    h0: Tensor,
    c0: Tensor | None,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    w_hr: Tensor | None,
    reverse: bool,
) -> tuple:
    """One layer and direction.

    ``x`` is ``(N, I)``; ``h0``/``c0`` are ``(B, P)``/``(B, H)``. Returns the
    output ``(N, P)`` and the final states ``(B, P)``, ``(B, H)`` (or ``None``).
    The biases are added inside the recurrence's cell.
    """
    xp = x.mm(w_ih.t())
    return _C._rnn_layer(mode, xp, batch_sizes, h0, c0, w_hh, b_ih, b_hh, w_hr, reverse)


def rnn_forward(
    mode: str,
    input: Tensor,
    batch_sizes: tuple | None,
    hx: Tensor,
    cx: Tensor | None,
    weights: list[list[Tensor | None]],
    num_layers: int,
    bidirectional: bool,
    dropout: float,
    training: bool,
) -> tuple:
    """The whole stack.

    Args:
        input: ``(T, B, I)`` or packed ``(N, I)`` data.
        hx, cx: ``(L*D, B, P)`` and ``(L*D, B, H)`` initial states.
        weights: per layer and direction ``[w_ih, w_hh, b_ih, b_hh, w_hr]``
            (absent ones ``None``).

    Returns ``(output, h_n)`` or ``(output, h_n, c_n)`` in the input's layout.
    """
    from rtorch.nn import functional as F

    packed = batch_sizes is not None
    D = 2 if bidirectional else 1
    if packed:
        x = input
    else:
        T, B = input.shape[0], input.shape[1]
        x = input.reshape(T * B, input.shape[2])
        batch_sizes = (B,) * T
    batch_sizes = list(batch_sizes)
    hs, cs = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            w_ih, w_hh, b_ih, b_hh, w_hr = weights[k]
            c0 = cx[k] if cx is not None else None
            res = _layer(mode, x, batch_sizes, hx[k], c0, w_ih, w_hh, b_ih, b_hh, w_hr, d == 1)
            outs.append(res[0])
            hs.append(res[1])
            if mode == "LSTM":
                cs.append(res[2])
        x = outs[0] if D == 1 else rtorch.cat(outs, 1)
        if dropout > 0 and training and layer < num_layers - 1:
            x = F.dropout(x, dropout, True)
    out = x if packed else x.view(T, B, x.size(1))
    h_n = rtorch.stack(hs, 0)
    if mode == "LSTM":
        return out, h_n, rtorch.stack(cs, 0)
    return out, h_n
