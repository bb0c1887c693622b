"""float32 matmul throughput of rtorch against NumPy (and PyTorch when
installed), measured side by side in one process: GFLOP/s, best of repeats.

Workloads: square products (also with a transposed operand, which costs no
copy), the attention-score batch (32 x 128x64 @ 64x128) and the LSTM gate
products (32x256 @ 256x1024, one step; 1600x256 @ 256x1024, all steps of a
sequence at once). The libraries take turns over several rounds and each
keeps its best time, so a burst of other load on the machine is less likely
to land on one library only; NumPy goes last in a round, followed by a pause
(its BLAS threads spin for a while after each product and would steal a core
from whichever library ran next). Ratios are GFLOP/s over GFLOP/s: above 1.0
means rtorch is faster.

On machines where OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set (see the env
notes), NumPy's OpenBLAS runs a slower kernel; for a fair comparison run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/matmul.py
    PYTHONPATH=python /tmp/torchvenv/bin/python bench/matmul.py   # with PyTorch
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

Fn = Callable[[], Any]


def seconds(fn: Fn, repeat: int, number: int) -> float:
    """Best time per call over `repeat` runs of `number` calls."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t) / number)
    return best


def product(lib: Any, x: np.ndarray, y: np.ndarray, trans: str) -> Fn:
    """`x @ y` with `x` (trans "a") or `y` (trans "b") stored transposed,
    as a zero-argument callable of `lib` (None: NumPy)."""

    def wrap(a: np.ndarray, t: bool) -> Any:
        if lib is None:
            return np.swapaxes(np.ascontiguousarray(np.swapaxes(a, -1, -2)), -1, -2) if t else a
        if t:
            return lib.from_numpy(np.ascontiguousarray(np.swapaxes(a, -1, -2))).mT
        return lib.from_numpy(a)

    a, b = wrap(x, trans == "a"), wrap(y, trans == "b")
    return lambda: a @ b


def main() -> None:
    rng = np.random.default_rng(0)
    libs: list[tuple[str, Any]] = [("rtorch", rtorch)]
    if torch is not None:
        libs.append(("PyTorch", torch))
    libs.append(("NumPy", None))
    cases = [
        ("a @ b 256^3", (256, 256), (256, 256), ""),
        ("a @ b 1024^3", (1024, 1024), (1024, 1024), ""),
        ("a.mT @ b 1024^3", (1024, 1024), (1024, 1024), "a"),
        ("a @ b.mT 1024^3", (1024, 1024), (1024, 1024), "b"),
        ("a @ b 2048^3", (2048, 2048), (2048, 2048), ""),
        ("a.mT @ b 2048^3", (2048, 2048), (2048, 2048), "a"),
        ("a @ b.mT 2048^3", (2048, 2048), (2048, 2048), "b"),
        ("bmm 32x128x64 @ 64x128", (32, 128, 64), (32, 64, 128), ""),
        ("bmm 64x64^3", (64, 64, 64), (64, 64, 64), ""),
        ("mm 32x256 @ 256x1024", (32, 256), (256, 1024), ""),
        ("mm 1600x256 @ 256x1024", (1600, 256), (256, 1024), ""),
    ]
    rows = []
    for name, sa, sb, trans in cases:
        x = rng.standard_normal(sa, dtype=np.float32)
        y = rng.standard_normal(sb, dtype=np.float32)
        flops = 2.0 * np.prod(sa) * sb[-1]
        fns = {lib: product(mod, x, y, trans) for lib, mod in libs}
        for fn in fns.values():
            fn()
        number = max(1, int(2e8 / flops))  # ~1 ms of work per timing at least
        best = dict.fromkeys(fns, float("inf"))
        for _ in range(3):  # rounds: the libraries take turns
            for lib, fn in fns.items():
                best[lib] = min(best[lib], seconds(fn, 3, number))
            # OpenBLAS's threads spin ~0.1 s after each NumPy product (a
            # core's worth of CPU): let them sleep before the next round.
            time.sleep(0.15)
        gf = {lib: flops / s / 1e9 for lib, s in best.items()}
        line = [name] + [f"{gf[lib]:.1f}" for lib, _ in libs]
        line.append(f"{gf['rtorch'] / gf['NumPy']:.2f}x")
        if torch is not None:
            line.append(f"{gf['rtorch'] / gf['PyTorch']:.2f}x")
        rows.append(line)
    header = ["workload (float32)"] + [f"{lib} GFLOP/s" for lib, _ in libs] + ["rtorch/NumPy"]
    if torch is not None:
        header.append("rtorch/PyTorch")
    print(f"threads: rtorch {rtorch.get_num_threads()}", end="")
    print(f", PyTorch {torch.get_num_threads()}" if torch is not None else "")
    print("GFLOP/s, best of repeats; ratios above 1.00x mean rtorch is faster\n")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
