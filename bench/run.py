"""Side-by-side timings of rtorch, NumPy and (when installed) PyTorch.

Every workload runs in the same process for each library, timed with
``timeit``: each repeat runs enough calls to take a few milliseconds and the
best repeat counts (the minimum is the least disturbed by other load).
Ratios are rtorch's time over the other library's: below 1.0 means rtorch is
faster. These numbers are a guide, not a pass/fail test.

Usage::

    .venv/bin/python bench/run.py            # full run (~20 s)
    .venv/bin/python bench/run.py --quick    # fewer, shorter repeats (~5 s)
    .venv/bin/python bench/run.py -k index   # only workloads whose name matches
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import rtorch

try:  # PyTorch is optional: its column appears only where it is installed.
    import torch
except ImportError:
    torch = None

Fn = Callable[[], Any]


@dataclass
class Workload:
    name: str
    numpy_note: str  # what the NumPy column runs, when it is not the obvious twin
    make: Callable[[Any], Fn]  # module (rtorch or torch) -> callable to time
    make_np: Callable[[], Fn] | None  # None where NumPy has no such function


def _workloads() -> list[Workload]:
    floats = [float(i) for i in range(1000)]
    rng = np.random.default_rng(0)
    idx_np = rng.integers(0, 1000, size=100)
    mask_np = rng.random(1000) < 0.5
    a100 = rng.random(100, dtype=np.float32)
    a1m = rng.random(1_000_000, dtype=np.float32)

    def view_chain(lib: Any) -> Fn:
        t = lib.zeros(24)
        return lambda: t.view(6, 4).transpose(0, 1).unsqueeze(0)

    def basic_index(lib: Any) -> Fn:
        t = lib.zeros(8, 8)
        return lambda: t[1, 2:5]

    def none_index(lib: Any) -> Fn:
        t = lib.zeros(8, 8)
        return lambda: t[..., None]

    def adv_index(lib: Any) -> Fn:
        t, idx = lib.zeros(1000), lib.from_numpy(idx_np)
        return lambda: t[idx]

    def mask_index(lib: Any) -> Fn:
        t, mask = lib.zeros(1000), lib.from_numpy(mask_np)
        return lambda: t[mask]

    def to_numpy(lib: Any) -> Fn:
        t = lib.zeros(1000)
        return lambda: t.numpy()

    def from_numpy(lib: Any) -> Fn:
        a = np.zeros(1000, dtype=np.float32)
        return lambda: lib.from_numpy(a)

    def numpy_round_trip(lib: Any) -> Fn:
        t = lib.zeros(1000)
        return lambda: lib.from_numpy(t.numpy())

    def add_small(lib: Any) -> Fn:
        x, y = lib.from_numpy(a100), lib.from_numpy(a100[::-1].copy())
        return lambda: x + y

    def add_large(lib: Any) -> Fn:
        x, y = lib.from_numpy(a1m), lib.from_numpy(a1m[::-1].copy())
        return lambda: x + y

    def np_pair(a: np.ndarray) -> Fn:
        x, y = a, a[::-1].copy()
        return lambda: x + y

    big = rng.random(1 << 24, dtype=np.float32)
    big2 = big[::-1].copy()
    big_out = np.empty_like(big)

    def elementwise(fn: Callable[[Any, Any, Any], Any]) -> Callable[[Any], Fn]:
        def make(lib: Any) -> Fn:
            x, y = lib.from_numpy(big), lib.from_numpy(big2)
            return lambda: fn(lib, x, y)

        return make

    big64 = big.astype(np.float64)

    def elementwise64(fn: Callable[[Any, Any], Any]) -> Callable[[Any], Fn]:
        def make(lib: Any) -> Fn:
            x = lib.from_numpy(big64)
            return lambda: fn(lib, x)

        return make

    def np_gelu_tanh(x: np.ndarray) -> np.ndarray:
        return 0.5 * x * (1 + np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x**3)))

    def add_out(lib: Any) -> Fn:
        x, y, out = lib.from_numpy(big), lib.from_numpy(big2), lib.from_numpy(big_out)
        return lambda: lib.add(x, y, out=out)

    sq = rng.standard_normal((4096, 4096), dtype=np.float32)
    m1k = [rng.standard_normal((1024, 1024), dtype=np.float32) for _ in range(2)]
    m2k = [rng.standard_normal((2048, 2048), dtype=np.float32) for _ in range(2)]

    def on_square(fn: Callable[[Any], Any]) -> Callable[[Any], Fn]:
        def make(lib: Any) -> Fn:
            x = lib.from_numpy(sq)
            return lambda: fn(x)

        return make

    def matmul(pair: list[np.ndarray], transposed: bool) -> Callable[[Any], Fn]:
        def make(lib: Any) -> Fn:
            a, b = (lib.from_numpy(m) for m in pair)
            if transposed:
                a = lib.from_numpy(np.ascontiguousarray(pair[0].T)).t()
            return lambda: a @ b

        return make

    def np_softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    z24, z88, z1000 = (np.zeros(s, np.float32) for s in (24, (8, 8), 1000))
    return [
        Workload(
            "zeros(1000)",
            "",
            lambda lib: lambda: lib.zeros(1000),
            lambda: lambda: np.zeros(1000, np.float32),
        ),
        Workload(
            "tensor(list of 1000 floats)",
            "np.array(list, float32)",
            lambda lib: lambda: lib.tensor(floats),
            lambda: lambda: np.array(floats, np.float32),
        ),
        Workload(
            "arange(1000)",
            "",
            lambda lib: lambda: lib.arange(1000),
            lambda: lambda: np.arange(1000),
        ),
        Workload(
            "view(6,4).transpose(0,1).unsqueeze(0)",
            "reshape.swapaxes[None]",
            view_chain,
            lambda: lambda: z24.reshape(6, 4).swapaxes(0, 1)[None],
        ),
        Workload("t[1, 2:5]", "", basic_index, lambda: lambda: z88[1, 2:5]),
        Workload("t[..., None]", "", none_index, lambda: lambda: z88[..., None]),
        Workload("t[idx] (100 of 1000)", "", adv_index, lambda: lambda: z1000[idx_np]),
        Workload("t[mask] (1000 bools)", "", mask_index, lambda: lambda: z1000[mask_np]),
        Workload(".numpy()", "a.view()", to_numpy, lambda: lambda: z1000.view()),
        Workload("from_numpy(a)", "a.view()", from_numpy, lambda: lambda: z1000.view()),
        Workload(
            "from_numpy(t.numpy())",
            "a.view().view()",
            numpy_round_trip,
            lambda: lambda: z1000.view().view(),
        ),
        Workload("a + b (100 float32)", "", add_small, lambda: np_pair(a100)),
        Workload("a + b (1M float32)", "", add_large, lambda: np_pair(a1m)),
        Workload(
            "a + b (16M float32)",
            "",
            elementwise(lambda lib, x, y: x + y),
            lambda: lambda: big + big2,
        ),
        Workload(
            "add(a, b, out=) (16M float32)",
            "np.add(out=)",
            add_out,
            lambda: lambda: np.add(big, big2, out=big_out),
        ),
        Workload(
            "a * b (16M float32)",
            "",
            elementwise(lambda lib, x, y: x * y),
            lambda: lambda: big * big2,
        ),
        Workload(
            "exp(a) (16M float32)",
            "np.exp",
            elementwise(lambda lib, x, y: x.exp()),
            lambda: lambda: np.exp(big),
        ),
        Workload(
            "tanh(a) (16M float32)",
            "np.tanh",
            elementwise(lambda lib, x, y: x.tanh()),
            lambda: lambda: np.tanh(big),
        ),
        Workload(
            "sin(a) (16M float32)",
            "np.sin",
            elementwise(lambda lib, x, y: x.sin()),
            lambda: lambda: np.sin(big),
        ),
        Workload(
            "log1p(a) (16M float32)",
            "np.log1p",
            elementwise(lambda lib, x, y: x.log1p()),
            lambda: lambda: np.log1p(big),
        ),
        Workload(
            "erf(a) (16M float32)",
            "-",
            elementwise(lambda lib, x, y: x.erf()),
            None,
        ),
        Workload(
            "gelu(a) (16M float32)",
            "-",
            elementwise(lambda lib, x, y: lib.nn.functional.gelu(x)),
            None,
        ),
        Workload(
            "gelu(a, 'tanh') (16M float32)",
            "0.5x(1+tanh(..))",
            elementwise(lambda lib, x, y: lib.nn.functional.gelu(x, approximate="tanh")),
            lambda: lambda: np_gelu_tanh(big),
        ),
        Workload(
            "exp(a) (16M float64)",
            "np.exp",
            elementwise64(lambda lib, x: x.exp()),
            lambda: lambda: np.exp(big64),
        ),
        Workload(
            "tanh(a) (16M float64)",
            "np.tanh",
            elementwise64(lambda lib, x: x.tanh()),
            lambda: lambda: np.tanh(big64),
        ),
        Workload("sum (4096x4096)", "", on_square(lambda x: x.sum()), lambda: lambda: sq.sum()),
        Workload(
            "sum(dim=-1) (4096x4096)",
            "",
            on_square(lambda x: x.sum(-1)),
            lambda: lambda: sq.sum(-1),
        ),
        Workload(
            "sum(dim=0) (4096x4096)",
            "",
            on_square(lambda x: x.sum(0)),
            lambda: lambda: sq.sum(0),
        ),
        Workload("mean (4096x4096)", "", on_square(lambda x: x.mean()), lambda: lambda: sq.mean()),
        Workload(
            "amax(dim=-1) (4096x4096)",
            "max(-1)",
            on_square(lambda x: x.amax(-1)),
            lambda: lambda: sq.max(-1),
        ),
        Workload(
            "softmax(dim=-1) (4096x4096)",
            "exp/max/sum",
            on_square(lambda x: x.softmax(-1)),
            lambda: lambda: np_softmax(sq),
        ),
        Workload(
            "matmul 1024 float32",
            "",
            matmul(m1k, False),
            lambda: lambda: m1k[0] @ m1k[1],
        ),
        Workload(
            "matmul 1024, a.t() @ b",
            "a.T @ b",
            matmul(m1k, True),
            lambda: lambda: m1k[0] @ m1k[1],
        ),
        Workload(
            "matmul 2048 float32",
            "",
            matmul(m2k, False),
            lambda: lambda: m2k[0] @ m2k[1],
        ),
    ]


# Bytes a 16M-element float32 a + b reads and writes.
_GB_ADD = 3 * 4 * (1 << 24) / 1e9


def _bandwidth() -> float:
    """The machine's memory bandwidth in GB/s: the best 64 MB copy into a
    buffer whose pages are already mapped (read + write bytes counted)."""
    src = np.ones(1 << 24, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    t = min(timeit.repeat(lambda: np.copyto(dst, src), number=5, repeat=5)) / 5
    return 2 * src.nbytes / 1e9 / t


def best_time(fn: Fn, repeat: int, target: float) -> float:
    """Seconds per call: the best of `repeat` runs of ~`target` seconds each."""
    timer = timeit.Timer(fn)
    number = 1
    while True:  # calibrate: grow the batch until it takes `target`
        if (t := timer.timeit(number)) >= target or number >= 1 << 20:
            break
        number *= 2 if t < target / 10 else max(2, int(target / max(t, 1e-9)))
    return min(timer.repeat(repeat=repeat, number=number)) / number


def fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def fmt_ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    p.add_argument("-k", metavar="TEXT", help="only workloads whose name contains TEXT")
    args = p.parse_args(argv)
    repeat, target = (3, 0.005) if args.quick else (7, 0.04)

    libs = [("rtorch", rtorch)] + ([("torch", torch)] if torch is not None else [])
    rows = []
    start = time.perf_counter()
    for w in _workloads():
        if args.k and args.k.lower() not in w.name.lower():
            continue
        times = {name: best_time(w.make(lib), repeat, target) for name, lib in libs}
        times["numpy"] = best_time(w.make_np(), repeat, target) if w.make_np else None
        if "matmul" in w.name:
            # NumPy's OpenBLAS threads spin ~0.1 s after a product, taking a
            # core from whichever library runs next: let them go to sleep.
            time.sleep(0.15)
        rows.append((w, times))

    print(
        f"rtorch {rtorch.__version__} | NumPy {np.__version__} | "
        + (f"PyTorch {torch.__version__}" if torch else "PyTorch not installed")
        + f" | Python {platform.python_version()} on {platform.machine()}"
    )
    print("time per call, best of repeats; ratio < 1.00x means rtorch is faster\n")
    header = ["workload", "rtorch", "NumPy"]
    if torch is not None:
        header.append("PyTorch")
    header.append("rtorch/NumPy")
    if torch is not None:
        header.append("rtorch/PyTorch")
    header.append("NumPy runs")
    table = [header]
    for w, t in rows:
        line = [w.name, fmt_time(t["rtorch"]), fmt_time(t["numpy"])]
        if torch is not None:
            line.append(fmt_time(t["torch"]))
        line.append(fmt_ratio(t["rtorch"], t["numpy"]))
        if torch is not None:
            line.append(fmt_ratio(t["rtorch"], t["torch"]))
        line.append(w.numpy_note or "same")
        table.append(line)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, r in enumerate(table):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(wd) for c, wd in zip(r[1:-1], widths[1:-1], strict=True)
        ]
        print("  ".join(cells + [r[-1]]))
        if i == 0:
            print("  ".join("-" * wd for wd in widths))
    for w, t in rows:
        if w.name.startswith("matmul") and "float32" in w.name:
            n = 1024 if "1024" in w.name else 2048
            flops = 2 * n**3 / 1e9
            line = ", ".join(f"{lib} {flops / v:.0f}" for lib, v in t.items())
            print(f"\n{w.name}: GFLOP/s {line}")
        if w.name == "a + b (16M float32)":
            print(
                f"\nmemory bandwidth: a + b (16M) moves {_GB_ADD:.2f} GB: rtorch "
                f"{_GB_ADD / t['rtorch']:.1f} GB/s = {100 * _GB_ADD / t['rtorch'] / _bandwidth():.0f}% "
                f"of this machine's measured copy bandwidth ({_bandwidth():.1f} GB/s)"
            )
    print(f"\n{len(rows)} workloads in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
