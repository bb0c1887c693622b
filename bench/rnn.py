"""Recurrent layers: rtorch against PyTorch (when installed) in one run.

Workload: ``nn.LSTM(256, 256)`` on a ``(50, 32, 256)`` input (seq, batch,
features), forward + backward of ``output.sum()``, best of several repeats;
also forward only, and a GRU of the same size.

Ratios are rtorch's time over PyTorch's: below 1.0 means rtorch is faster.

Usage::

    PYTHONPATH=python .venv/bin/python bench/rnn.py
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/rnn.py   # with PyTorch
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

SEQ, BATCH, INPUT, HIDDEN = 50, 32, 256, 256


def best(fn: Callable[[], Any], repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def workload(lib: Any, cls: str, backward: bool) -> Callable[[], Any]:
    lib.manual_seed(0)
    model = getattr(lib.nn, cls)(INPUT, HIDDEN)
    x = lib.randn(SEQ, BATCH, INPUT)

    def run() -> None:
        out, _ = model(x)
        if backward:
            model.zero_grad()
            out.sum().backward()

    def run_no_grad() -> None:
        with lib.no_grad():
            model(x)

    return run if backward else run_no_grad


def main() -> None:
    cases = [
        ("LSTM fwd+bwd", "LSTM", True),
        ("LSTM fwd (no_grad)", "LSTM", False),
        ("GRU fwd+bwd", "GRU", True),
    ]
    print(f"seq {SEQ}, batch {BATCH}, input {INPUT}, hidden {HIDDEN}")
    for name, cls, backward in cases:
        mine = best(workload(rtorch, cls, backward))
        line = f"{name:20s} rtorch {mine * 1e3:8.2f} ms"
        if torch is not None:
            theirs = best(workload(torch, cls, backward))
            line += f"   torch {theirs * 1e3:8.2f} ms   ratio {mine / theirs:5.2f}"
        print(line)


if __name__ == "__main__":
    main()
