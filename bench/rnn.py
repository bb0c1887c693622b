"""Recurrent layers: rtorch against PyTorch (when installed) in one run.

Workload: ``nn.LSTM(256, 256)`` on a ``(50, 32, 256)`` input (seq, batch,
features), forward + backward of ``output.sum()``, best of several repeats (the two
libraries alternate);
also forward only, and a GRU of the same size. ``--repeats N`` takes the best
of more runs (the machine may be shared).

Ratios are rtorch's time over PyTorch's: below 1.0 means rtorch is faster.

Usage::

    PYTHONPATH=python .venv/bin/python bench/rnn.py
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/rnn.py   # with PyTorch
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/rnn.py --repeats 25
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import rtorch

try:
    import torch
except ImportError:
    torch = None

SEQ, BATCH, INPUT, HIDDEN = 50, 32, 256, 256


def best_pair(
    mine: Callable[[], Any], theirs: Callable[[], Any] | None, repeats: int = 9
) -> tuple[float, float | None]:
    """Best times of the two workloads, run alternately so load changes on
    the machine hit both alike."""
    mine()
    if theirs is not None:
        theirs()
    t_mine: list[float] = []
    t_theirs: list[float] = []
    for _ in range(repeats):
        for fn, times in ((mine, t_mine), (theirs, t_theirs)):
            if fn is None:
                continue
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return min(t_mine), (min(t_theirs) if t_theirs else None)


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="runs per case (best is kept)")
    args = parser.parse_args()
    cases = [
        ("LSTM fwd+bwd", "LSTM", True),
        ("LSTM fwd (no_grad)", "LSTM", False),
        ("GRU fwd+bwd", "GRU", True),
        ("GRU fwd (no_grad)", "GRU", False),
    ]
    print(f"seq {SEQ}, batch {BATCH}, input {INPUT}, hidden {HIDDEN}")
    for name, cls, backward in cases:
        other = workload(torch, cls, backward) if torch is not None else None
        mine, theirs = best_pair(workload(rtorch, cls, backward), other, args.repeats)
        line = f"{name:20s} rtorch {mine * 1e3:8.2f} ms"
        if theirs is not None:
            line += f"   torch {theirs * 1e3:8.2f} ms   ratio {mine / theirs:5.2f}"
        print(line)


if __name__ == "__main__":
    main()
