"""Pooling and normalisation kernels: rtorch against PyTorch (when
installed) in one run.

Workloads (best of several repeats, float32):

- max_pool2d forward, and forward + backward (batch 32, 64 channels, 32x32,
  kernel 2, stride 2);
- avg_pool2d forward + backward, same shape;
- batch_norm (training, affine) forward, and forward + backward
  (32x64x32x32);
- layer_norm over the last dim, forward, and forward + backward
  (64x128x768, affine).

Ratios are rtorch's time over PyTorch's: below 1.0 means rtorch is faster.

Usage::

    .venv/bin/python bench/nn_kernels.py
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/nn_kernels.py   # with PyTorch
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


def best(fn: Callable[[], Any], repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def data(lib: Any, *shape: int, grad: bool = False) -> Any:
    arr = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return lib.tensor(arr).requires_grad_(grad)


def pool(lib: Any, kind: str, backward: bool) -> Callable[[], Any]:
    x = data(lib, 32, 64, 32, 32, grad=backward)
    f = getattr(lib.nn.functional, kind)
    g = data(lib, 32, 64, 16, 16)

    def run() -> None:
        y = f(x, 2, 2)
        if backward:
            y.backward(g)

    return run


def batch_norm(lib: Any, backward: bool) -> Callable[[], Any]:
    x = data(lib, 32, 64, 32, 32, grad=backward)
    w = lib.ones(64, requires_grad=backward)
    b = lib.zeros(64, requires_grad=backward)
    rm, rv = lib.zeros(64), lib.ones(64)
    g = data(lib, 32, 64, 32, 32)

    def run() -> None:
        y = lib.nn.functional.batch_norm(x, rm, rv, w, b, training=True)
        if backward:
            y.backward(g)

    return run


def layer_norm(lib: Any, backward: bool) -> Callable[[], Any]:
    x = data(lib, 64, 128, 768, grad=backward)
    w = lib.ones(768, requires_grad=backward)
    b = lib.zeros(768, requires_grad=backward)
    g = data(lib, 64, 128, 768)

    def run() -> None:
        y = lib.nn.functional.layer_norm(x, (768,), w, b)
        if backward:
            y.backward(g)

    return run


def main() -> None:
    rows = [
        ("max_pool2d 32x64x32x32 k2s2, fwd", lambda lib: pool(lib, "max_pool2d", False)),
        ("max_pool2d 32x64x32x32 k2s2, fwd+bwd", lambda lib: pool(lib, "max_pool2d", True)),
        ("avg_pool2d 32x64x32x32 k2s2, fwd+bwd", lambda lib: pool(lib, "avg_pool2d", True)),
        ("batch_norm 32x64x32x32 train, fwd", lambda lib: batch_norm(lib, False)),
        ("batch_norm 32x64x32x32 train, fwd+bwd", lambda lib: batch_norm(lib, True)),
        ("layer_norm 64x128x768, fwd", lambda lib: layer_norm(lib, False)),
        ("layer_norm 64x128x768, fwd+bwd", lambda lib: layer_norm(lib, True)),
    ]
    print(f"threads: rtorch {rtorch.get_num_threads()}", end="")
    print(f", PyTorch {torch.get_num_threads()}" if torch is not None else "")
    print(f"{'workload':40} {'rtorch':>10} {'PyTorch':>10} {'ratio':>7}")
    for name, make in rows:
        r = best(make(rtorch))
        line = f"{name:40} {r * 1e3:8.2f}ms"
        if torch is not None:
            t = best(make(torch))
            line += f" {t * 1e3:8.2f}ms {r / t:7.2f}"
        print(line)


if __name__ == "__main__":
    main()
