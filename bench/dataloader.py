"""DataLoader throughput of rtorch against PyTorch: batches per second.

Workloads (one epoch each, best of ``--repeat``, worker start-up included):

* ``tensor``: a 60,000 x 784 float32 ``TensorDataset`` with int64 labels,
  batch 256, shuffled; PyTorch fetches sample by sample and re-stacks,
  rtorch gathers each batch at once (``__getitems__``).
* ``python``: 6,000 samples whose ``__getitem__`` does Python work
  (a 400-term list comprehension), batch 64: the case workers exist for.

Each runs with ``num_workers=0`` and ``2`` (fork). PyTorch's column comes
from ``import torch`` when it is importable here, else from running this
script under ``--torch-python`` (an interpreter that has torch)::

    .venv/bin/python bench/dataloader.py --torch-python /tmp/torchvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from typing import Any

CASES = [("tensor", 0), ("tensor", 2), ("python", 0), ("python", 2)]


def _make(lib: Any, kind: str) -> tuple[Any, int]:
    data = lib.utils.data
    if kind == "tensor":
        g = lib.Generator().manual_seed(0)
        x = lib.rand(60_000, 784, generator=g)
        y = lib.randint(0, 10, (60_000,), generator=g)
        return data.TensorDataset(x, y), 256

    class PythonWork(data.Dataset):
        def __len__(self) -> int:
            return 6_000

        def __getitem__(self, i: int) -> Any:
            row = [math.sin(i * 0.001 * k) for k in range(400)]
            return lib.tensor(row), i

    return PythonWork(), 64


def measure(lib: Any, repeat: int) -> dict[str, float]:
    out = {}
    for kind, workers in CASES:
        ds, bs = _make(lib, kind)
        best = math.inf
        n = 0
        for _ in range(repeat):
            loader = lib.utils.data.DataLoader(
                ds,
                batch_size=bs,
                shuffle=True,
                num_workers=workers,
                multiprocessing_context="fork" if workers else None,
            )
            start = time.perf_counter()
            n = sum(1 for _ in loader)
            best = min(best, time.perf_counter() - start)
        out[f"{kind} workers={workers}"] = n / best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--torch-python", help="interpreter with torch, for PyTorch's column")
    parser.add_argument("--only", choices=["rtorch", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.only == "torch":
        import torch
        import torch.utils.data  # noqa: F401

        print(json.dumps(measure(torch, args.repeat)))
        return

    import rtorch
    import rtorch.utils.data  # noqa: F401

    rt = measure(rtorch, args.repeat)
    pt: dict[str, float] | None = None
    try:
        import torch  # noqa: F401

        cmd = [sys.executable]
    except ImportError:
        cmd = [args.torch_python] if args.torch_python else []
    if cmd:
        proc = subprocess.run(
            [*cmd, __file__, "--only", "torch", "--repeat", str(args.repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
        pt = json.loads(proc.stdout.strip().splitlines()[-1])

    header = f"{'workload':<22}{'rtorch b/s':>12}"
    if pt:
        header += f"{'torch b/s':>12}{'ratio':>9}"
    print(header)
    for name, rate in rt.items():
        line = f"{name:<22}{rate:>12.0f}"
        if pt:
            line += f"{pt[name]:>12.0f}{rate / pt[name]:>8.2f}x"
        print(line)
    if pt is None:
        print("(PyTorch not importable: pass --torch-python for its column)")


if __name__ == "__main__":
    main()
