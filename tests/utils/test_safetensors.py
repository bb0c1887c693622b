"""rtorch.utils.safetensors: round trips, the exact bytes the safetensors
package writes (its own test vectors, and the package itself when
installed), lazy access through safe_open, and refusal of malformed files."""

import json
import struct

import numpy as np
import pytest

import rtorch
from rtorch.utils.safetensors import (
    SafetensorError,
    load,
    load_file,
    safe_open,
    save,
    save_file,
)

DTYPES = [rtorch.float32, rtorch.float64, rtorch.float16, rtorch.bfloat16, rtorch.int64,
          rtorch.int32, rtorch.int16, rtorch.int8, rtorch.uint8, rtorch.bool]  # fmt: skip


def sample():
    rtorch.manual_seed(0)
    out = {f"t{i}": (rtorch.randn(2, 3) * 50).to(dt) for i, dt in enumerate(DTYPES)}
    out["scalar"] = rtorch.tensor(7)
    out["empty"] = rtorch.zeros(0, 4)
    return out


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(a[k].float().numpy(), b[k].float().numpy())


def test_bytes_roundtrip_every_dtype():
    d = sample()
    assert_same(load(save(d)), d)


def test_file_roundtrip_and_safe_open(tmp_path):
    d = sample()
    path = tmp_path / "m.safetensors"
    save_file(d, path, metadata={"format": "pt"})
    assert_same(load_file(path), d)
    with safe_open(path, framework="pt") as f:
        assert f.keys() == sorted(d)
        assert f.metadata() == {"format": "pt"}
        assert_same({k: f.get_tensor(k) for k in f.keys()}, d)
        s = f.get_slice("t0")
        assert s.get_shape() == [2, 3] and s.get_dtype() == "F32"
        np.testing.assert_array_equal(s[:, 1:].numpy(), d["t0"][:, 1:].numpy())


def test_safe_open_tensors_are_copy_on_write_views(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"w": rtorch.arange(4.0)}, path)
    before = path.read_bytes()
    with safe_open(path, framework="rt") as f:
        w = f.get_tensor("w")
    w[0] = 9.0
    assert w[0].item() == 9.0
    assert path.read_bytes() == before


def test_matches_the_packages_test_vectors():
    # safetensors' own serialization tests (safetensors/src/tensor.rs).
    attn = rtorch.arange(6, dtype=rtorch.float32).view(1, 2, 3)
    out = save({"attn.0": attn})
    header = b'{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}'
    assert out == struct.pack("<Q", 64) + header + np.arange(6, dtype="<f4").tobytes()
    out = save({"attn0": attn.view(1, 1, 2, 3)})
    header = b'{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}' + b" " * 7
    assert out == struct.pack("<Q", 72) + header + np.arange(6, dtype="<f4").tobytes()
    assert save({}) == b"\x08" + b"\x00" * 7 + b"{}" + b" " * 6
    assert save({}, metadata={"framework": "pt"}) == (
        b"(" + b"\x00" * 7 + b'{"__metadata__":{"framework":"pt"}}' + b" " * 5
    )


def test_order_is_descending_alignment_then_name():
    out = save({"b": rtorch.ones(1, dtype=rtorch.uint8), "a": rtorch.ones(1, dtype=rtorch.uint8),
                "c": rtorch.ones(1, dtype=rtorch.int64), "d": rtorch.ones(1)})  # fmt: skip
    (n,) = struct.unpack("<Q", out[:8])
    header = json.loads(out[8 : 8 + n])
    assert list(header) == ["c", "d", "a", "b"]
    assert header["c"]["data_offsets"] == [0, 8] and header["b"]["data_offsets"] == [13, 14]


def test_byte_identical_to_the_safetensors_package():
    st = pytest.importorskip("safetensors.numpy")
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([True, False]),
              "s": np.array(3, dtype=np.int64), "i8": np.array([1, -1], np.int8),
              "h": np.array([1.5], np.float16), "z": np.arange(3.0), "ü": np.ones(1, np.float32),
              "e": np.zeros((0, 2), np.float32)}  # fmt: skip
    ours = save({k: rtorch.from_numpy(v) for k, v in arrays.items()}, metadata={"m": "1"})
    assert ours == st.save(arrays, metadata={"m": "1"})
    back = st.load(ours)
    for k, v in arrays.items():
        np.testing.assert_array_equal(back[k], v)


def test_saving_refuses_views_shared_memory_and_non_tensors():
    base = rtorch.arange(6.0).view(2, 3)
    with pytest.raises(ValueError, match="non contiguous tensor: `t`"):
        save({"t": base.t()})
    with pytest.raises(RuntimeError, match="Some tensors share memory"):
        save({"a": base, "b": base[0]})
    with pytest.raises(ValueError, match="expected torch.Tensor"):
        save({"a": [1.0]})
    with pytest.raises(ValueError, match="Expected a dict"):
        save([base])


def build(header, data=b"", raw_header=None):
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
MALFORMED = {
    "too small": b"\x01\x00",
    "header too large": struct.pack("<Q", 100_000_001) + b"{}",
    "header length beyond file": struct.pack("<Q", 1000) + b"{}",
    "header length near 2**64": b"\xff" * 8 + b"{}",
    "not utf-8": build(None, raw_header=b"{\xff}"),
    "not an object": build(None, raw_header=b"[1, 2]  "),
    "not json": build(None, raw_header=b"{nope"),
    "deep nesting": build(None, raw_header=b"{" + b'"a":[' * 0 + b"[" * 100_000 + b"}"),
    "duplicate names": build(
        None,
        raw_header=b'{"a":'
        + json.dumps(F32_2).encode()
        + b',"a":'
        + json.dumps(F32_2).encode()
        + b"}",
        data=b"\x00" * 8,
    ),  # fmt: skip
    "overlapping offsets": build({"a": F32_2, "b": F32_2}, b"\x00" * 8),
    "gap between tensors": build(
        {"a": F32_2, "b": {**F32_2, "data_offsets": [12, 20]}}, b"\x00" * 20
    ),  # fmt: skip
    "offsets past the data": build({"a": {**F32_2, "data_offsets": [0, 800]}}, b"\x00" * 8),
    "size disagrees with shape": build({"a": {**F32_2, "shape": [3]}}, b"\x00" * 8),
    "shape overflow": build({"a": {**F32_2, "shape": [2**40, 2**40]}}, b"\x00" * 8),
    "trailing bytes": build({"a": F32_2}, b"\x00" * 16),
    "negative offset": build({"a": {**F32_2, "data_offsets": [-8, 0]}}, b"\x00" * 8),
    "end before begin": build({"a": {**F32_2, "data_offsets": [8, 0]}}, b"\x00" * 8),
    "unknown dtype": build({"a": {**F32_2, "dtype": "F128"}}, b"\x00" * 8),
    "missing field": build({"a": {"dtype": "F32", "shape": [2]}}, b"\x00" * 8),
    "bool in shape": build({"a": {**F32_2, "shape": [True, 2]}}, b"\x00" * 8),
    "metadata not strings": build({"__metadata__": {"a": 1}}),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_files_are_refused(name, tmp_path):
    blob = MALFORMED[name]
    with pytest.raises(SafetensorError):
        load(blob)
    path = tmp_path / "bad.safetensors"
    path.write_bytes(blob)
    with pytest.raises(SafetensorError, match="bad.safetensors"):
        load_file(path)
    with pytest.raises(SafetensorError, match="bad.safetensors"):
        safe_open(path, framework="pt")


def test_dtypes_rtorch_lacks_are_named():
    blob = build({"a": {"dtype": "U16", "shape": [1], "data_offsets": [0, 2]}}, b"\x00\x00")
    with pytest.raises(SafetensorError, match="U16"):
        load(blob)


def test_unknown_framework_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"a": rtorch.ones(1)}, path)
    with pytest.raises(ValueError, match="framework"):
        safe_open(path, framework="tf")
