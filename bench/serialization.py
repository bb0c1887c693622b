"""Checkpoint speed: save, load and ``mmap=True`` load of a ~100 MB
state_dict with rtorch, and with PyTorch when installed, in one run (best of
repeats, files in the page cache). Also safetensors save/load of the same
tensors. Ratios are PyTorch time / rtorch time: above 1 means rtorch is faster.

    .venv/bin/python bench/serialization.py
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import OrderedDict

import numpy as np

import rtorch
from rtorch.utils import safetensors as rt_st

try:
    import torch
except ImportError:
    torch = None


def best(fn, repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def state_dict_arrays() -> OrderedDict:
    """A ResNet-ish mix: 21 blocks of conv weight, bias and norm statistics (~100 MB)."""
    rng = np.random.default_rng(0)
    out: OrderedDict = OrderedDict()
    for i in range(21):
        out[f"layer{i}.conv.weight"] = rng.standard_normal((512, 256, 3, 3), dtype=np.float32)
        out[f"layer{i}.conv.bias"] = rng.standard_normal(256, dtype=np.float32)
        out[f"layer{i}.bn.running_mean"] = rng.standard_normal(256, dtype=np.float32)
        out[f"layer{i}.bn.num_batches_tracked"] = np.array(17, dtype=np.int64)
    return out


def main() -> None:
    arrays = state_dict_arrays()
    mb = sum(a.nbytes for a in arrays.values()) / 1e6
    rt_sd = OrderedDict((k, rtorch.from_numpy(v.copy())) for k, v in arrays.items())
    tmp = tempfile.mkdtemp()
    rt_path, pt_path = os.path.join(tmp, "rt.pt"), os.path.join(tmp, "pt.pt")
    rt_st_path = os.path.join(tmp, "rt.safetensors")

    rows = [
        ("save", best(lambda: rtorch.save(rt_sd, rt_path))),
        ("load", best(lambda: rtorch.load(rt_path))),
        ("load mmap=True", best(lambda: rtorch.load(rt_path, mmap=True))),
        ("safetensors save_file", best(lambda: rt_st.save_file(rt_sd, rt_st_path))),
        ("safetensors load_file", best(lambda: rt_st.load_file(rt_st_path))),
    ]
    pt_times: dict[str, float] = {}
    if torch is not None:
        pt_sd = OrderedDict((k, torch.from_numpy(v.copy())) for k, v in arrays.items())
        pt_times["save"] = best(lambda: torch.save(pt_sd, pt_path))
        pt_times["load"] = best(lambda: torch.load(pt_path, weights_only=True))
        pt_times["load mmap=True"] = best(lambda: torch.load(pt_path, mmap=True, weights_only=True))
        try:
            import safetensors.torch as pt_st

            path = os.path.join(tmp, "pt.safetensors")
            pt_times["safetensors save_file"] = best(lambda: pt_st.save_file(pt_sd, path))
            pt_times["safetensors load_file"] = best(lambda: pt_st.load_file(path))
        except ImportError:
            pass

    print(f"state_dict: {len(arrays)} tensors, {mb:.1f} MB")
    print(f"{'':24s} {'rtorch ms':>10s} {'torch ms':>10s} {'torch/rtorch':>13s}")
    for name, t in rows:
        line = f"{name:24s} {t * 1e3:10.1f}"
        if name in pt_times:
            line += f" {pt_times[name] * 1e3:10.1f} {pt_times[name] / t:12.2f}x"
        print(line)
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
