"""Damaged checkpoints: a small file cut at every offset, and 1,000 random
single-bit flips. Each load raises a typed error naming the file, or (when
the flip hit bytes nothing depends on, such as a timestamp or padding)
returns exactly the saved values; none crashes or loads wrong data."""

import pickle
import random

import numpy as np
import pytest

import rtorch
from rtorch.serialization import CheckpointError

ORIGINAL = {
    "w": rtorch.arange(6, dtype=rtorch.float32).view(2, 3),
    "b": rtorch.tensor([1, -2], dtype=rtorch.int64),
    "h": rtorch.tensor([0.5], dtype=rtorch.bfloat16),
    "meta": {"step": 3, "name": "net"},
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("corrupt") / "small.pt"
    rtorch.save(ORIGINAL, path)
    return path, path.read_bytes()


def assert_original(obj):
    assert set(obj) == set(ORIGINAL)
    assert obj["meta"] == ORIGINAL["meta"]
    for k in ("w", "b", "h"):
        assert obj[k].dtype == ORIGINAL[k].dtype and obj[k].shape == ORIGINAL[k].shape
        np.testing.assert_array_equal(obj[k].float().numpy(), ORIGINAL[k].float().numpy())


def load_damaged(path, blob):
    path.write_bytes(blob)
    try:
        return rtorch.load(path)
    except (CheckpointError, pickle.UnpicklingError) as e:
        assert str(path) in str(e), str(e)
        return e


def test_the_undamaged_file_loads(saved):
    assert_original(rtorch.load(saved[0]))


def test_cut_at_every_offset_raises_a_typed_error_naming_the_file(saved, tmp_path):
    _, blob = saved
    path = tmp_path / "cut.pt"
    kinds = set()
    for n in range(len(blob)):
        result = load_damaged(path, blob[:n])
        assert isinstance(result, CheckpointError), f"cut at {n}: {result!r}"
        kinds.add(str(result).split(": ", 1)[1][:30])
    assert len(kinds) >= 2  # both "not a zip" and "no end record" were met


def test_a_thousand_bit_flips_raise_or_load_the_exact_values(saved, tmp_path):
    _, blob = saved
    path = tmp_path / "flipped.pt"
    rng = random.Random(1234)
    errors = 0
    for _ in range(1000):
        damaged = bytearray(blob)
        bit = rng.randrange(len(blob) * 8)
        damaged[bit // 8] ^= 1 << (bit % 8)
        result = load_damaged(path, bytes(damaged))
        if isinstance(result, Exception):
            errors += 1
        else:
            assert_original(result)
    # Most bytes matter: headers, names, CRCs and data are all checked.
    assert errors > 500
