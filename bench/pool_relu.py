"""ReLU and max pooling as a CNN uses them: rtorch against PyTorch (when
installed) in one run.

Workloads (float32, random normal data, so max pooling's comparisons are
unpredictable; best of many repeats, the two libraries alternating so that
both see the same machine load):

- ``max_pool2d(relu(a), 2).sum().backward()`` for the activations of a
  small CNN (64x16x28x28 and 64x32x14x14);
- max_pool2d kernel 2 forward, and forward + backward, alone;
- relu forward + backward alone (the threshold backward kernel);
- max_pool2d kernel 3, stride 2, padding 1 (a ResNet stem) forward, and
  forward + backward (32x64x32x32).

Ratios are rtorch's time over PyTorch's: below 1.0 means rtorch is faster.

Usage::

    .venv/bin/python bench/pool_relu.py
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/pool_relu.py   # with PyTorch
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/pool_relu.py --threads 1 --repeats 100

``--threads N`` sets both libraries' intra-op threads (default: each one's own).
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


def data(lib: Any, *shape: int, grad: bool = False) -> Any:
    arr = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return lib.tensor(arr).requires_grad_(grad)


def workloads(lib: Any) -> dict[str, Callable[[], Any]]:
    F = lib.nn.functional
    out: dict[str, Callable[[], Any]] = {}
    for shape in [(64, 16, 28, 28), (64, 32, 14, 14)]:
        a = data(lib, *shape, grad=True)
        g = data(lib, *shape)
        tag = "x".join(map(str, shape))
        out[f"relu+max_pool2d k2 {tag}, fwd+bwd"] = lambda a=a: (
            F.max_pool2d(F.relu(a), 2).sum().backward()
        )
        out[f"max_pool2d k2 {tag}, fwd"] = lambda a=a: F.max_pool2d(a.detach(), 2)
        out[f"max_pool2d k2 {tag}, fwd+bwd"] = lambda a=a: F.max_pool2d(a, 2).sum().backward()
        out[f"relu {tag}, fwd+bwd"] = lambda a=a, g=g: F.relu(a).backward(g)
    a = data(lib, 32, 64, 32, 32, grad=True)
    out["max_pool2d k3s2p1 32x64x32x32, fwd"] = lambda: F.max_pool2d(a.detach(), 3, 2, 1)
    out["max_pool2d k3s2p1 32x64x32x32, fwd+bwd"] = lambda: (
        F.max_pool2d(a, 3, 2, 1).sum().backward()
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="threads for both libraries")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per workload")
    args = parser.parse_args()
    if args.threads is not None:
        rtorch.set_num_threads(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)
    repeats = args.repeats
    mine = workloads(rtorch)
    theirs = workloads(torch) if torch is not None else {}
    print(f"threads: rtorch {rtorch.get_num_threads()}", end="")
    print(f", PyTorch {torch.get_num_threads()}" if torch is not None else "")
    print(f"{'workload':42} {'rtorch':>10} {'PyTorch':>10} {'ratio':>7}")
    for name, fn in mine.items():
        runs = [(fn, [])] + ([(theirs[name], [])] if theirs else [])
        for f, _ in runs:
            f()
        for _ in range(repeats):
            for f, times in runs:
                t0 = time.perf_counter()
                f()
                times.append(time.perf_counter() - t0)
        r = min(runs[0][1])
        line = f"{name:42} {r * 1e3:8.3f}ms"
        if theirs:
            t = min(runs[1][1])
            line += f" {t * 1e3:8.3f}ms {r / t:7.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
