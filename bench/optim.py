"""Optimizer speed: rtorch against PyTorch (when installed) in one run.

Workloads (best of several repeats):

- one optimizer step over 100 parameters of mixed sizes (4.6M float32
  elements in all), for Adam and for SGD with momentum: rtorch's default is
  one fused multi-tensor Rust kernel per param group; PyTorch's default on
  CPU is its per-tensor loop, and its ``foreach=True`` path is timed too;
- a full training step (zero_grad, forward, cross-entropy loss, backward,
  Adam step) of an MLP 784-512-512-10 at batch 256;
- a small CNN at batch 64 on 28x28 input (conv-relu-pool x2, linear), the
  same full step; skipped while ``rtorch.nn.functional.conv2d`` is missing.

``speedup`` is PyTorch's time over rtorch's (steps per second of rtorch over
PyTorch's): 1.0 or more means rtorch is at least as fast.

Usage::

    .venv/bin/python bench/optim.py
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/optim.py   # with PyTorch
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/optim.py --threads 1

``--threads N`` sets both libraries' intra-op threads (default: each one's own).
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

SHAPES = [(1024, 256), (256,), (64, 64), (16, 3, 3, 16), (1000,), (16,)]


def best(fn: Callable[[], Any], repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def mixed_params(lib: Any) -> list[Any]:
    g = lib.Generator().manual_seed(0)
    params = []
    for i in range(100):
        p = lib.nn.Parameter(lib.randn(*SHAPES[i % len(SHAPES)], generator=g))
        p.grad = lib.randn(*p.shape, generator=g)
        params.append(p)
    return params


def optimizer_step(name: str, **kw: Any) -> Callable[[Any], Callable[[], Any]]:
    def make(lib: Any) -> Callable[[], Any]:
        params = mixed_params(lib)
        opt = getattr(lib.optim, name)(params, **kw)
        opt.step()  # creates the state
        return opt.step

    return make


def mlp_step(lib: Any) -> Callable[[], Any]:
    lib.manual_seed(0)
    nn = lib.nn
    model = nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
    )
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    x = lib.randn(256, 784)
    y = lib.randint(0, 10, (256,))
    loss_fn = nn.CrossEntropyLoss()

    def run() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    return run


# --- CNN case: needs conv2d / max_pool2d (being built in another branch) ---
def has_conv(lib: Any) -> bool:
    f = lib.nn.functional
    return all(hasattr(f, n) for n in ("conv2d", "max_pool2d")) and hasattr(lib.nn, "Conv2d")


def cnn_step(lib: Any) -> Callable[[], Any]:
    lib.manual_seed(0)
    nn = lib.nn
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    x = lib.randn(64, 1, 28, 28)
    y = lib.randint(0, 10, (64,))
    loss_fn = nn.CrossEntropyLoss()

    def run() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="threads for both libraries")
    args = parser.parse_args()
    if args.threads is not None:
        rtorch.set_num_threads(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)
    rows: list[
        tuple[str, Callable[[Any], Callable[[], Any]], Callable[[Any], Callable[[], Any]] | None]
    ] = [
        ("Adam step, 100 mixed params", optimizer_step("Adam", lr=1e-3), None),
        (
            "Adam step (torch foreach=True)",
            optimizer_step("Adam", lr=1e-3),
            optimizer_step("Adam", lr=1e-3, foreach=True),
        ),
        ("SGD momentum step, 100 params", optimizer_step("SGD", lr=1e-2, momentum=0.9), None),
        (
            "SGD momentum (torch foreach=True)",
            optimizer_step("SGD", lr=1e-2, momentum=0.9),
            optimizer_step("SGD", lr=1e-2, momentum=0.9, foreach=True),
        ),
        ("MLP 784-512-512-10 b256 train step", mlp_step, None),
    ]
    threads = f"rtorch threads {rtorch.get_num_threads()}"
    if torch is not None:
        threads += f", torch threads {torch.get_num_threads()}"
    print(threads)
    print(f"{'workload':38} {'rtorch':>11} {'PyTorch':>11} {'speedup':>8}")
    for name, make, make_torch in rows:
        r = best(make(rtorch))
        line = f"{name:38} {r * 1e3:9.3f}ms"
        if torch is not None:
            t = best((make_torch or make)(torch))
            line += f" {t * 1e3:9.3f}ms {t / r:8.2f}"
        print(line)
    name = "CNN b64 28x28 train step"
    if has_conv(rtorch):
        r = best(cnn_step(rtorch))
        line = f"{name:38} {r * 1e3:9.3f}ms"
        if torch is not None:
            t = best(cnn_step(torch))
            line += f" {t * 1e3:9.3f}ms {t / r:8.2f}"
        print(line)
    else:
        print(f"{name:38} skipped: rtorch.nn.functional.conv2d is not built yet")


if __name__ == "__main__":
    main()
