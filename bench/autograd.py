"""Autograd overhead: rtorch against PyTorch (when installed) in one run.

Workloads (forward + backward, best of several repeats):

- a chain of 1,000 small-tensor ops (8 elements): time per op is almost all
  graph bookkeeping (recording nodes, running the engine);
- a 3-layer MLP (784-256-128-10, batch 64, ReLU, log_softmax + NLL by hand):
  kernels and bookkeeping together.

Ratios are rtorch's time over PyTorch's: below 1.0 means rtorch is faster.

Usage::

    .venv/bin/python bench/autograd.py
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/autograd.py   # with PyTorch
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import rtorch

try:
    import torch
except ImportError:
    torch = None


def best(fn: Callable[[], Any], repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def chain(lib: Any, n: int = 1000) -> Callable[[], Any]:
    x = lib.ones(8, requires_grad=True)

    def run() -> None:
        y = x
        for _ in range(n // 4):
            y = y * 1.0001
            y = y + 0.5
            y = y.tanh()
            y = y - 0.25
        y.sum().backward()

    return run


def chain_no_grad(lib: Any, n: int = 1000) -> Callable[[], Any]:
    x = lib.ones(8)

    def run() -> None:
        y = x
        for _ in range(n // 4):
            y = y * 1.0001
            y = y + 0.5
            y = y.tanh()
            y = y - 0.25

    return run


def mlp(lib: Any) -> Callable[[], Any]:
    g = lib.Generator().manual_seed(0)
    w1 = (lib.randn(784, 256, generator=g) * 0.05).requires_grad_()
    w2 = (lib.randn(256, 128, generator=g) * 0.05).requires_grad_()
    w3 = (lib.randn(128, 10, generator=g) * 0.05).requires_grad_()
    b1 = lib.zeros(256, requires_grad=True)
    b2 = lib.zeros(128, requires_grad=True)
    b3 = lib.zeros(10, requires_grad=True)
    x = lib.randn(64, 784, generator=g)
    target = lib.randint(0, 10, (64,), generator=g)

    def run() -> None:
        h = (x @ w1 + b1).relu()
        h = (h @ w2 + b2).relu()
        logits = h @ w3 + b3
        logp = logits.log_softmax(-1)
        loss = -logp[lib.arange(64), target].mean()
        loss.backward()

    return run


def main() -> None:
    if torch is not None:
        # The same number of threads for both: PyTorch's OpenMP pool otherwise
        # spins against the other process on a small shared machine.
        torch.set_num_threads(rtorch.get_num_threads())
    rows = [
        ("1000-op chain, fwd+bwd (per op)", chain, 1000),
        ("1000-op chain, no grad (per op)", chain_no_grad, 1000),
        ("MLP 784-256-128-10 b64, fwd+bwd", mlp, 1),
    ]
    print(f"{'workload':40} {'rtorch':>12} {'PyTorch':>12} {'ratio':>7}")
    for name, make, per in rows:
        r = best(make(rtorch)) / per
        line = f"{name:40} {r * 1e6:10.2f}us"
        if torch is not None:
            t = best(make(torch)) / per
            line += f" {t * 1e6:10.2f}us {r / t:7.2f}"
        print(line)
    if torch is not None:
        # Bookkeeping per op: fwd+bwd time minus the no-grad time.
        r_overhead = (best(chain(rtorch)) - best(chain_no_grad(rtorch))) / 1000
        t_overhead = (best(chain(torch)) - best(chain_no_grad(torch))) / 1000
        print(
            f"{'autograd bookkeeping per op':40} {r_overhead * 1e6:10.2f}us "
            f"{t_overhead * 1e6:10.2f}us {r_overhead / t_overhead:7.2f}"
        )


if __name__ == "__main__":
    main()
