"""TransformerEncoderLayer: rtorch against PyTorch (when installed) in one run.

d_model 256, nhead 8, dim_feedforward 1024, batch 32, seq 64, batch_first,
the same weights in both libraries. Workloads (best of several repeats):

- eval forward (dropout off, no grad);
- train forward + backward with dropout 0 (deterministic);
- train forward + backward with dropout 0.1.

PyTorch's eval forward may take its fused "fast path" kernel; rtorch composes
MultiheadAttention, Linear and LayerNorm. Ratios are rtorch's time over
PyTorch's: below 1.0 means rtorch is faster.

Usage::

    .venv/bin/python bench/transformer.py
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/transformer.py   # with PyTorch
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

import rtorch

try:
    import torch
except ImportError:
    torch = None

D_MODEL, NHEAD, DIM_FF, BATCH, SEQ = 256, 8, 1024, 32, 64


def best(fn: Callable[[], Any], repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def make_layer(lib: Any, dropout: float, state: dict[str, np.ndarray] | None) -> Any:
    layer = lib.nn.TransformerEncoderLayer(
        D_MODEL, NHEAD, DIM_FF, dropout=dropout, batch_first=True
    )
    if state is not None:
        layer.load_state_dict({k: lib.tensor(v) for k, v in state.items()})
    return layer


def workloads(lib: Any, state: dict[str, np.ndarray] | None, x_np: np.ndarray) -> list:
    x = lib.tensor(x_np)

    def eval_fwd() -> Callable[[], Any]:
        layer = make_layer(lib, 0.0, state).eval()

        def run() -> None:
            with lib.no_grad():
                layer(x)

        return run

    def train(dropout: float) -> Callable[[], Any]:
        layer = make_layer(lib, dropout, state).train()
        xg = x.clone().requires_grad_()

        def run() -> None:
            layer(xg).sum().backward()

        return run

    return [
        ("eval forward (no grad)", eval_fwd()),
        ("train fwd+bwd, dropout 0", train(0.0)),
        ("train fwd+bwd, dropout 0.1", train(0.1)),
    ]


def main() -> None:
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((BATCH, SEQ, D_MODEL), dtype=np.float32)
    ref = make_layer(rtorch, 0.0, None)
    state = {k: v.detach().numpy().copy() for k, v in ref.state_dict().items()}
    print(
        f"TransformerEncoderLayer d_model={D_MODEL} nhead={NHEAD} ff={DIM_FF} "
        f"batch={BATCH} seq={SEQ} batch_first; threads: rtorch {rtorch.get_num_threads()}"
        + (f", PyTorch {torch.get_num_threads()}" if torch is not None else "")
    )
    print(f"{'workload':32} {'rtorch':>10} {'PyTorch':>10} {'ratio':>7}")
    r_rows = workloads(rtorch, state, x_np)
    t_rows = workloads(torch, state, x_np) if torch is not None else [None] * len(r_rows)
    for (name, r_fn), t_row in zip(r_rows, t_rows, strict=True):
        if t_row is None:
            print(f"{name:32} {best(r_fn) * 1e3:8.2f}ms")
            continue
        # Alternate the two libraries so background load hits both alike.
        r, t = min(best(r_fn, 1) for _ in range(2)), min(best(t_row[1], 1) for _ in range(2))
        for _ in range(5):
            r, t = min(r, best(r_fn, 1)), min(t, best(t_row[1], 1))
        print(f"{name:32} {r * 1e3:8.2f}ms {t * 1e3:8.2f}ms {r / t:7.2f}")


if __name__ == "__main__":
    main()
