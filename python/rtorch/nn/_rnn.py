"""The recurrence behind ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``.

One layer and direction runs as two parts:

- the input projection ``W_ih x_t + b`` of every timestep at once (one
  ``addmm`` giving ``(G*H, N)``, recorded by autograd as usual);
- the recurrence over time, a single autograd node (:class:`_Recurrence`)
  whose forward loops over the timesteps without recording and whose
  backward walks them back, computing the weight gradients with one matmul
  over all timesteps instead of one per step.

States are kept transposed, ``(features, batch)``: the gate blocks of
``W_hh h`` (``i, f, g, o`` for LSTM, ``r, z, n`` for GRU) are then
contiguous row blocks, so the gate nonlinearities and the cell update run
on contiguous memory.

Layer inputs and outputs use the packed layout: ``(N, features)`` with
timestep ``t``'s ``batch_sizes[t]`` rows contiguous (sequences sorted by
decreasing length); the projected input is its transpose ``(G*H, N)``, so
step ``t`` reads a column block and the gradient is one concatenation. A padded ``(T, B, I)`` input is the case ``batch_sizes = [B] * T``
(a reshape, no copy). Step ``t`` updates only the first ``batch_sizes[t]``
columns of the state; the others keep theirs, so the final state of each
sequence is the one at its last valid step.

The backward is once differentiable: under ``create_graph=True`` the
gradients it returns carry no graph (double backward through an RNN layer is
not supported; the cells are plain compositions and support it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import rtorch
from rtorch._C import Tensor
from rtorch.autograd.function import Function, once_differentiable

__all__: list[str] = []


def _steps(batch_sizes: Sequence[int], reverse: bool) -> list:
    """``(t, offset, batch)`` for every timestep, in processing order."""
    steps, off = [], 0
    for t, bs in enumerate(batch_sizes):
        steps.append((t, off, bs))
        off += bs
    return steps[::-1] if reverse else steps


def _prefix_update(state: Tensor, new: Tensor, bs: int) -> Tensor:
    """``state`` with its first ``bs`` columns replaced by ``new``."""
    if bs == state.size(1):
        return new
    return rtorch.cat([new, state[:, bs:]], 1)


def _collect(parts: list, steps_order: list) -> Tensor:
    """Per-step ``(F, bs)`` tensors (in processing order) as one ``(N, F)``."""
    by_time: list = [None] * len(parts)
    for k, (t, _, _) in enumerate(steps_order):
        by_time[t] = parts[k].t()
    return rtorch.cat(by_time, 0)


class _Recurrence(Function):
    @staticmethod
    def forward(
        ctx: Any,
        mode: str,
        batch_sizes: tuple,
        reverse: bool,
        xp: Tensor,
        h0: Tensor,
        c0: Tensor | None,
        w_hh: Tensor,
        b_hh: Tensor | None,
        w_hr: Tensor | None,
    ) -> Any:
        B = h0.size(1)
        steps = _steps(batch_sizes, reverse)
        H = w_hh.size(0) // {"LSTM": 4, "GRU": 3}.get(mode, 1)
        h = h0.contiguous()
        c = c0.contiguous() if c0 is not None else None
        outs, hprevs, saved = [], [], []
        for _, off, bs in steps:
            x_t = xp.narrow(1, off, bs)
            hp = h if bs == B else h[:, :bs]
            hprevs.append(hp)
            if mode == "LSTM":
                g = rtorch.addmm(x_t, w_hh, hp)
                g[: 2 * H].sigmoid_()
                g[2 * H : 3 * H].tanh_()
                g[3 * H :].sigmoid_()
                cp = c if bs == B else c[:, :bs]
                c_new = g[H : 2 * H] * cp
                c_new.addcmul_(g[:H], g[2 * H : 3 * H])
                tc = c_new.tanh()
                r = g[3 * H :] * tc
                h_new = r if w_hr is None else w_hr.mm(r)
                saved.append((g, cp, tc, r))
                c = _prefix_update(c, c_new, bs)
            elif mode == "GRU":
                hh = w_hh.mm(hp) if b_hh is None else rtorch.addmm(b_hh.unsqueeze(1), w_hh, hp)
                rz = (x_t[: 2 * H] + hh[: 2 * H]).sigmoid_()
                hn = hh[2 * H :]
                n = (x_t[2 * H :] + rz[:H] * hn).tanh_()
                # h' = (1 - z) n + z h = n + z (h - n)
                h_new = (hp - n).mul_(rz[H:]).add_(n)
                saved.append((rz, n, hn))
            else:
                h_new = rtorch.addmm(x_t, w_hh, hp)
                h_new = h_new.tanh_() if mode == "RNN_TANH" else h_new.relu_()
                saved.append(h_new)
            outs.append(h_new)
            h = _prefix_update(h, h_new, bs)
        ctx.mode, ctx.batch_sizes, ctx.steps, ctx.H, ctx.B = mode, batch_sizes, steps, H, B
        ctx.hprevs, ctx.saved = hprevs, saved
        ctx.has_b_hh = b_hh is not None
        ctx.reverse = reverse
        ctx.save_for_backward(w_hh, w_hr)
        out = _collect(outs, steps)
        if mode == "LSTM":
            return out, h, c
        return out, h

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dout: Tensor | None, dh_n: Tensor | None, *rest: Any) -> Any:
        mode, steps, H, B = ctx.mode, ctx.steps, ctx.H, ctx.B
        w_hh, w_hr = ctx.saved_tensors
        w_hh_t = w_hh.t().contiguous()
        w_hr_t = w_hr.t().contiguous() if w_hr is not None else None
        P = w_hh.size(1)
        dtype = w_hh.dtype
        dh = dh_n.contiguous() if dh_n is not None else rtorch.zeros(P, B, dtype=dtype)
        dc = None
        if mode == "LSTM":
            dc_n = rest[0] if rest else None
            dc = dc_n.contiguous() if dc_n is not None else rtorch.zeros(H, B, dtype=dtype)
        d_pre: list = [None] * len(steps)  # gradient at W_hh h (+ x) per step
        d_x: list = [None] * len(steps)  # gradient at the input projection per step
        d_hs: list = [None] * len(steps)  # LSTM with projection: gradient at h per step
        for k in range(len(steps) - 1, -1, -1):
            _, off, bs = steps[k]
            dh_t = dh if bs == B else dh[:, :bs]
            if dout is not None:
                dh_t = dh_t + dout.narrow(0, off, bs).t()
            hp = ctx.hprevs[k]
            if mode == "LSTM":
                g, cp, tc, r = ctx.saved[k]
                i, f, gg, o = g[:H], g[H : 2 * H], g[2 * H : 3 * H], g[3 * H :]
                if w_hr_t is not None:
                    d_hs[k] = dh_t
                    dr = w_hr_t.mm(dh_t)
                else:
                    dr = dh_t
                dc_t = dc if bs == B else dc[:, :bs]
                # dc += dr * o * (1 - tc^2)
                dct = (1 - tc * tc).mul_(o).mul_(dr).add_(dc_t)
                da = rtorch.cat([dct * gg, dct * cp, dct * i, dr * tc], 0)
                deriv = g - g * g
                deriv[2 * H : 3 * H] = 1 - gg * gg
                dp = da.mul_(deriv)
                d_pre[k] = d_x[k] = dp
                dc = _prefix_update(dc, dct * f, bs)
                dhp = w_hh_t.mm(dp)
            elif mode == "GRU":
                rz, n, hn = ctx.saved[k]
                r, z = rz[:H], rz[H:]
                dn = dh_t * (1 - z)
                dz = dh_t * (hp - n)
                dnp = dn.mul_(1 - n * n)
                drp = (dnp * hn).mul_(r * (1 - r))
                dzp = dz.mul_(z * (1 - z))
                d_x[k] = rtorch.cat([drp, dzp, dnp], 0)
                d_pre[k] = rtorch.cat([drp, dzp, dnp * r], 0)
                dhp = w_hh_t.mm(d_pre[k]).addcmul_(dh_t, z)
            else:
                h_new = ctx.saved[k]
                if mode == "RNN_TANH":
                    dp = dh_t * (1 - h_new * h_new)
                else:
                    dp = dh_t * (h_new > 0).to(dtype)
                d_pre[k] = d_x[k] = dp
                dhp = w_hh_t.mm(dp)
            dh = _prefix_update(dh, dhp, bs)
        n_in = ctx.needs_input_grad
        # d_x is in processing order; the input's columns are in time order.
        dxp = rtorch.cat(d_x[::-1] if ctx.reverse else d_x, 1) if n_in[3] else None
        dw_hh = db_hh = dw_hr = None
        if n_in[6] or n_in[7]:
            dp_all = rtorch.cat(d_pre, 1)  # (G*H, N)
            if n_in[6]:
                hp_all = rtorch.cat(ctx.hprevs, 1)  # (P, N)
                dw_hh = dp_all.mm(hp_all.t())
            if n_in[7] and ctx.has_b_hh:
                db_hh = dp_all.sum(1)
        if w_hr is not None and n_in[8]:
            dh_all = rtorch.cat(d_hs, 1)  # (P, N)
            r_all = rtorch.cat([s[3] for s in ctx.saved], 1)  # (H, N)
            dw_hr = dh_all.mm(r_all.t())
        dh0 = dh if n_in[4] else None
        dc0 = dc if (mode == "LSTM" and n_in[5]) else None
        return None, None, None, dxp, dh0, dc0, dw_hh, db_hh, dw_hr


def _layer(
    mode: str,
    x: Tensor,
    batch_sizes: tuple,
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

    ``x`` is ``(N, I)``; ``h0``/``c0`` are ``(P, B)``/``(H, B)``. Returns the
    output ``(N, P)`` and the final states, transposed like ``h0``.
    """
    if mode == "GRU":
        bias, rec_bias = b_ih, b_hh
    else:
        bias = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih + b_hh)
        rec_bias = None
    # (G*H, N): step t's columns are a contiguous block of every row.
    xt = x.t()
    xp = w_ih.mm(xt) if bias is None else rtorch.addmm(bias.unsqueeze(1), w_ih, xt)
    return _Recurrence.apply(mode, batch_sizes, reverse, xp, h0, c0, w_hh, rec_bias, w_hr)


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
    hs, cs = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            w_ih, w_hh, b_ih, b_hh, w_hr = weights[k]
            c0 = cx[k].t() if cx is not None else None
            res = _layer(mode, x, batch_sizes, hx[k].t(), c0, w_ih, w_hh, b_ih, b_hh, w_hr, d == 1)
            outs.append(res[0])
            hs.append(res[1].t())
            if mode == "LSTM":
                cs.append(res[2].t())
        x = outs[0] if D == 1 else rtorch.cat(outs, 1)
        if dropout > 0 and training and layer < num_layers - 1:
            x = F.dropout(x, dropout, True)
    out = x if packed else x.view(T, B, x.size(1))
    h_n = rtorch.stack(hs, 0)
    if mode == "LSTM":
        return out, h_n, rtorch.stack(cs, 0)
    return out, h_n
