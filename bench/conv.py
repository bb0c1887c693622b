"""2-d convolution: rtorch against PyTorch (when installed) in one run.

Workloads (float32, batch 32, 3x3 kernels, padding 1, best of several
repeats):

- ``3->64 @ 32x32``: a first layer (the input needs no gradient);
- ``64->64 @ 16x16``: an inner layer (the input needs a gradient too).

Each is timed forward only (no grad) and forward + backward. Ratios are
rtorch's time over PyTorch's: below 1.0 means rtorch is faster.

Usage::

    .venv/bin/python bench/conv.py
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/conv.py   # with PyTorch
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/conv.py --threads 1

``--threads N`` sets both libraries' thread counts (on a loaded machine one
thread each compares the kernels more steadily than their thread pools).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import rtorch

try:
    import torch
except ImportError:
    torch = None


def best(fn: Callable[[], Any], repeats: int = 10) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def layer(lib: Any, cin: int, cout: int, size: int, backward: bool) -> Callable[[], Any]:
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((32, cin, size, size), dtype=np.float32))
    w = lib.tensor(rng.standard_normal((cout, cin, 3, 3), dtype=np.float32) * 0.1)
    b = lib.tensor(rng.standard_normal(cout, dtype=np.float32))
    conv2d = lib.nn.functional.conv2d
    if not backward:

        def fwd() -> None:
            with lib.no_grad():
                conv2d(x, w, b, padding=1)

        return fwd
    w.requires_grad_()
    b.requires_grad_()
    if cin > 3:
        x.requires_grad_()

    def fwd_bwd() -> None:
        conv2d(x, w, b, padding=1).sum().backward()

    return fwd_bwd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="threads for both libraries")
    args = parser.parse_args()
    if args.threads is not None:
        rtorch.set_num_threads(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)
    rows = [
        ("conv2d 3->64 @ 32x32, forward", (3, 64, 32, False)),
        ("conv2d 3->64 @ 32x32, fwd+bwd", (3, 64, 32, True)),
        ("conv2d 64->64 @ 16x16, forward", (64, 64, 16, False)),
        ("conv2d 64->64 @ 16x16, fwd+bwd", (64, 64, 16, True)),
    ]
    print(f"threads: rtorch {rtorch.get_num_threads()}", end="")
    if torch is not None:
        print(f", PyTorch {torch.get_num_threads()}", end="")
    print()
    print(f"{'workload':36} {'rtorch':>10} {'PyTorch':>10} {'ratio':>7}")
    for name, args in rows:
        r = best(layer(rtorch, *args))
        line = f"{name:36} {r * 1e3:8.2f}ms"
        if torch is not None:
            t = best(layer(torch, *args))
            line += f" {t * 1e3:8.2f}ms {r / t:7.2f}"
        print(line)


if __name__ == "__main__":
    main()
