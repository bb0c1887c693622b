"""float32 matmul throughput of rtorch against NumPy (and PyTorch when
installed), measured side by side in one process: GFLOP/s, best of repeats.

On machines where OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set (see the env
notes), NumPy's OpenBLAS runs a slower kernel; for a fair comparison run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/matmul.py
"""

from __future__ import annotations

import time

import numpy as np

import rtorch

try:
    import torch
except ImportError:
    torch = None


def gflops(fn, flops: float, repeat: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return flops / best / 1e9


def product(x, y, transposed: bool):
    """`x @ y`, or `x.mT @ y`, as a zero-argument callable."""
    if transposed:
        xt = np.swapaxes(x, -1, -2) if isinstance(x, np.ndarray) else x.mT
        return lambda: xt @ y
    return lambda: x @ y


def main() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for n, batch in ((256, 1), (1024, 1), (2048, 1), (64, 64)):
        shape = (batch, n, n) if batch > 1 else (n, n)
        a = rng.standard_normal(shape, dtype=np.float32)
        b = rng.standard_normal(shape, dtype=np.float32)
        flops = 2.0 * batch * n**3
        name = f"{batch}x{n}^3" if batch > 1 else f"{n}^3"
        for transposed in (False, True):
            r = gflops(product(rtorch.from_numpy(a), rtorch.from_numpy(b), transposed), flops)
            q = gflops(product(a, b, transposed), flops)
            label = "a.mT @ b" if transposed else "a @ b"
            line = [f"{label} {name}", f"{r:.1f}", f"{q:.1f}"]
            if torch is not None:
                fn = product(torch.from_numpy(a), torch.from_numpy(b), transposed)
                line.append(f"{gflops(fn, flops):.1f}")
            line.append(f"{r / q:.2f}x")
            rows.append(line)
    header = ["workload (float32)", "rtorch GFLOP/s", "NumPy GFLOP/s"]
    if torch is not None:
        header.append("PyTorch GFLOP/s")
    header.append("rtorch/NumPy")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
