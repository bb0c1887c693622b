"""rtorch.save / rtorch.load: round trips of every dtype and container, the
zip layout PyTorch writes, storage sharing, mmap, map_location, and the
checkpoints written by real PyTorch (``shared/fixtures``)."""

import io
import os
import pathlib
import pickle
import pickletools
import struct
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from ckpt_util import checkpoint, make_zip, tensor_pickle

import rtorch
from rtorch import _zip
from rtorch.serialization import CheckpointError

ALL_DTYPES = [
    rtorch.float32,
    rtorch.float64,
    rtorch.float16,
    rtorch.bfloat16,
    rtorch.int64,
    rtorch.int32,
    rtorch.int16,
    rtorch.int8,
    rtorch.uint8,
    rtorch.bool,
]


def roundtrip(obj, **load_kwargs):
    buf = io.BytesIO()
    rtorch.save(obj, buf)
    buf.seek(0)
    return rtorch.load(buf, **load_kwargs)


def as_numpy(t):
    """Values of ``t`` as NumPy (bfloat16 through float32, exactly)."""
    return (t.float() if t.dtype == rtorch.bfloat16 else t).numpy()


def assert_same_tensor(a, b):
    assert type(a) is type(b)
    assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
    np.testing.assert_array_equal(as_numpy(a), as_numpy(b))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_roundtrips_exactly(dtype):
    rtorch.manual_seed(0)
    t = (rtorch.randn(3, 5) * 100).to(dtype)
    back = roundtrip({"t": t})["t"]
    assert_same_tensor(back, t)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_zero_dim_and_empty_tensors_roundtrip(dtype):
    scalar = rtorch.tensor(1, dtype=dtype)
    empty = rtorch.zeros(0, 3, dtype=dtype)
    s, e = roundtrip([scalar, empty])
    assert_same_tensor(s, scalar)
    assert_same_tensor(e, empty)
    assert s.shape == () and e.shape == (0, 3)


def test_views_share_their_storage_after_loading():
    base = rtorch.arange(12.0).view(3, 4)
    col = base[:, 1]
    tail = base.view(-1)[5:]
    b, c, t = roundtrip((base, col, tail))
    assert c.stride() == (4,) and c.storage_offset() == 1
    assert t.storage_offset() == 5
    np.testing.assert_array_equal(c.numpy(), [1.0, 5.0, 9.0])
    b[1, 1] = -1.0
    assert c[1].item() == -1.0 and t[0].item() == -1.0


def test_a_view_saves_its_whole_storage():
    base = rtorch.arange(1000.0)
    buf = io.BytesIO()
    rtorch.save(base[10:12], buf)
    z = zipfile.ZipFile(buf)
    assert z.getinfo("archive/data/0").file_size == 4000
    buf.seek(0)
    v = rtorch.load(buf)
    assert v.storage_offset() == 10
    np.testing.assert_array_equal(v.numpy(), [10.0, 11.0])


def test_non_contiguous_tensor_keeps_its_strides():
    t = rtorch.arange(24).view(2, 3, 4).permute(2, 0, 1)
    back = roundtrip(t)
    assert back.stride() == t.stride()
    np.testing.assert_array_equal(back.numpy(), t.numpy())


def test_containers_scalars_sizes_dtypes_devices_roundtrip():
    obj = {
        "od": OrderedDict([("b", 1), ("a", 2)]),
        "nested": {"list": [1, 2.5, "x", None, True], "tuple": (1, (2, 3)), "bytes": b"\x00\xff"},
        "size": rtorch.Size([2, 3]),
        "dtype": rtorch.bfloat16,
        "device": rtorch.device("cpu"),
        "cuda": rtorch.device("cuda", 1),
        "set": {1, 2},
        "big": 2**70,
        "neg": -(2**40),
        "float": -1.5e300,
        "unicode": "naïve ☃",
    }
    back = roundtrip(obj)
    assert back == obj
    assert type(back["od"]) is OrderedDict and list(back["od"]) == ["b", "a"]
    assert type(back["size"]) is rtorch.Size
    assert back["dtype"] is rtorch.bfloat16
    assert back["cuda"] == rtorch.device("cuda:1")


def test_parameter_roundtrips_as_parameter():
    p = rtorch.nn.Parameter(rtorch.tensor([1.0, 2.0]))
    frozen = rtorch.nn.Parameter(rtorch.tensor([3.0]), requires_grad=False)
    a, b = roundtrip([p, frozen])
    assert type(a) is rtorch.nn.Parameter and a.requires_grad
    assert type(b) is rtorch.nn.Parameter and not b.requires_grad
    np.testing.assert_array_equal(a.detach().numpy(), [1.0, 2.0])


def test_parameter_attributes_roundtrip():
    p = rtorch.nn.Parameter(rtorch.ones(1))
    p.tag = "weight"
    back = roundtrip(p)
    assert type(back) is rtorch.nn.Parameter and back.tag == "weight"


def test_requires_grad_is_kept_and_grad_is_not_saved():
    t = rtorch.ones(2, requires_grad=True)
    assert roundtrip(t).requires_grad


def test_state_dict_metadata_attribute_survives():
    sd = OrderedDict(w=rtorch.ones(1))
    sd._metadata = {"": {"version": 1}}
    back = roundtrip(sd)
    assert back._metadata == {"": {"version": 1}}


@pytest.mark.parametrize("kind", ["str", "pathlib", "file"])
def test_paths_pathlib_and_file_objects(tmp_path, kind):
    path = tmp_path / "model.pt"
    t = rtorch.arange(5)
    if kind == "file":
        with open(path, "wb") as f:
            rtorch.save(t, f)
        with open(path, "rb") as f:
            back = rtorch.load(f)
    else:
        target = str(path) if kind == "str" else pathlib.Path(path)
        rtorch.save(t, target)
        back = rtorch.load(target)
    np.testing.assert_array_equal(back.numpy(), np.arange(5))


def test_layout_matches_pytorch_writer(tmp_path):
    path = tmp_path / "my_model.pt"
    rtorch.save({"a": rtorch.arange(3.0), "b": rtorch.arange(2)}, path)
    z = zipfile.ZipFile(path)
    names = z.namelist()
    assert names == [
        "my_model/data.pkl",
        "my_model/.format_version",
        "my_model/.storage_alignment",
        "my_model/byteorder",
        "my_model/data/0",
        "my_model/data/1",
        "my_model/version",
        "my_model/.data/serialization_id",
    ]
    assert z.read("my_model/byteorder") == b"little"
    assert z.read("my_model/version") == b"3\n"
    assert z.read("my_model/.format_version") == b"1"
    assert z.read("my_model/.storage_alignment") == b"64"
    assert z.read("my_model/data/0") == np.arange(3, dtype="<f4").tobytes()
    assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    assert z.testzip() is None  # every CRC is right
    blob = path.read_bytes()
    for info in z.infolist():
        nlen, elen = struct.unpack_from("<HH", blob, info.header_offset + 26)
        assert (info.header_offset + 30 + nlen + elen) % 64 == 0, info.filename


def test_pickle_is_protocol_2_and_names_only_pytorch_globals():
    buf = io.BytesIO()
    p = rtorch.nn.Parameter(rtorch.ones(1))
    rtorch.save({"t": rtorch.ones(2, dtype=rtorch.float16), "p": p, "s": rtorch.Size([1]),
                 "d": rtorch.int8, "dev": rtorch.device("cpu")}, buf)  # fmt: skip
    data = zipfile.ZipFile(buf).read("archive/data.pkl")
    ops = list(pickletools.genops(data))
    assert ops[0][0].name == "PROTO" and ops[0][1] == 2
    globals_ = {arg for op, arg, _ in ops if op.name == "GLOBAL"}
    assert globals_ == {
        "torch._utils _rebuild_tensor_v2",
        "torch._utils _rebuild_parameter",
        "torch HalfStorage",
        "torch FloatStorage",
        "collections OrderedDict",
        "torch Size",
        "torch int8",
        "torch device",
    }
    assert b"rtorch" not in data


def test_pickle_protocol_4_loads_too():
    buf = io.BytesIO()
    rtorch.save({"t": rtorch.arange(4)}, buf, pickle_protocol=4)
    data = zipfile.ZipFile(buf).read("archive/data.pkl")
    assert data[1] == 4
    buf.seek(0)
    np.testing.assert_array_equal(rtorch.load(buf)["t"].numpy(), np.arange(4))


def test_saving_one_storage_as_two_dtypes_is_refused():
    b = rtorch.zeros(8, dtype=rtorch.uint8)
    with pytest.raises(RuntimeError, match="view the same data as different types"):
        rtorch.save([b, b.view(rtorch.float32)], io.BytesIO())


def test_archive_at_nonzero_file_position():
    buf = io.BytesIO()
    buf.write(b"header bytes")
    rtorch.save(rtorch.arange(3), buf)
    buf.seek(len(b"header bytes"))
    np.testing.assert_array_equal(rtorch.load(buf).numpy(), [0, 1, 2])


def test_mmap_load_maps_without_reading_and_is_copy_on_write(tmp_path):
    path = tmp_path / "m.pt"
    big = rtorch.arange(1 << 20, dtype=rtorch.float32)
    rtorch.save({"big": big, "view": big[5:9]}, path)
    d = rtorch.load(path, mmap=True)
    np.testing.assert_array_equal(d["big"].numpy(), np.arange(1 << 20, dtype=np.float32))
    blob = path.read_bytes()
    offset = blob.find(np.arange(16, dtype=np.float32).tobytes())
    # The tensor's memory is the file's bytes mapped, not a copy elsewhere.
    assert offset % 64 == 0
    assert d["view"]._storage_key() == d["big"]._storage_key()
    d["big"][5] = -1.0
    assert d["view"][0].item() == -1.0
    assert path.read_bytes() == blob  # private mapping: the file is unchanged


def test_mmap_requires_a_path():
    with pytest.raises(ValueError, match="f must be a file path"):
        rtorch.load(io.BytesIO(), mmap=True)


def test_map_location_forms():
    t = rtorch.arange(3)
    for loc in ["cpu", rtorch.device("cpu"), {"cpu": "cpu"}, b"cpu", lambda s, loc: s,
                lambda s, loc: None]:  # fmt: skip
        np.testing.assert_array_equal(roundtrip(t, map_location=loc).numpy(), [0, 1, 2])
    seen = []
    roundtrip([t, t[1:]], map_location=lambda s, loc: seen.append((s.nbytes(), loc)))
    assert seen == [(24, "cpu")]  # once per storage
    with pytest.raises(RuntimeError, match="CUDA device but torch.cuda.is_available"):
        roundtrip(t, map_location="cuda:0")
    with pytest.raises(TypeError, match="map_location"):
        roundtrip(t, map_location=3)


def test_cuda_tagged_storage_needs_map_location():
    # A checkpoint whose storage was saved from cuda:0 (as PyTorch writes it).
    pkl = tensor_pickle(location="cuda:0")
    blob = io.BytesIO(checkpoint(pkl, {"0": np.array([1.5, 2.5], "<f4").tobytes()}))
    with pytest.raises(RuntimeError, match="map_location=torch.device\\('cpu'\\)"):
        rtorch.load(blob)
    for loc in ["cpu", {"cuda:0": "cpu"}, rtorch.device("cpu")]:
        blob.seek(0)
        np.testing.assert_array_equal(rtorch.load(blob, map_location=loc).numpy(), [1.5, 2.5])


def test_big_endian_checkpoint_is_byteswapped():
    pkl = tensor_pickle(storage_type=b"torch\nIntStorage")
    blob = make_zip({"data.pkl": pkl, "byteorder": b"big",
                     "data/0": np.array([1, -2], ">i4").tobytes()})  # fmt: skip
    np.testing.assert_array_equal(rtorch.load(io.BytesIO(blob)).numpy(), [1, -2])


def test_weights_only_false_loads_other_objects():
    class_obj = {"fn": os.path.join, "t": rtorch.ones(1)}
    back = roundtrip(class_obj, weights_only=False)
    assert back["fn"] is os.path.join
    with pytest.raises(pickle.UnpicklingError, match="GLOBAL posixpath.join was not an allowed"):
        roundtrip(class_obj)


def test_safe_globals_allow_a_named_class():
    obj = {"cfg": pathlib.PurePosixPath("a/b")}
    buf = io.BytesIO()
    rtorch.save(obj, buf)
    assert rtorch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(buf.getvalue())) == [
        "pathlib.PurePosixPath"
    ]
    with rtorch.serialization.safe_globals([pathlib.PurePosixPath]):
        buf.seek(0)
        assert rtorch.load(buf) == obj
        assert pathlib.PurePosixPath in rtorch.serialization.get_safe_globals()
    assert pathlib.PurePosixPath not in rtorch.serialization.get_safe_globals()
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="PurePosixPath"):
        rtorch.load(buf)


def test_zip64_records_are_written_and_read(monkeypatch):
    monkeypatch.setattr(_zip, "ZIP64_LIMIT", 100)
    monkeypatch.setattr(_zip, "ZIP64_COUNT_LIMIT", 3)
    t = rtorch.arange(100, dtype=rtorch.float64)
    buf = io.BytesIO()
    rtorch.save({"t": t, "u": rtorch.ones(3)}, buf)
    blob = buf.getvalue()
    assert b"PK\x06\x06" in blob and b"PK\x06\x07" in blob
    assert zipfile.ZipFile(io.BytesIO(blob)).testzip() is None
    back = rtorch.load(io.BytesIO(blob))
    np.testing.assert_array_equal(back["t"].numpy(), np.arange(100.0))


def test_reader_rejects_non_zip_with_typed_error(tmp_path):
    path = tmp_path / "old.pt"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="old.pt.*not a zip checkpoint"):
        rtorch.load(path)


# ---------------------------------------------------------------- PyTorch fixtures


def test_pytorch_state_dict_fixture_matches_npz(fixtures):
    sd = rtorch.load(fixtures / "torch_state_dict.pt")
    ref = np.load(fixtures / "torch_state_dict.npz")
    assert type(sd) is OrderedDict
    assert sorted(sd) == sorted(ref.files)
    for k, v in sd.items():
        assert v.numpy().dtype == ref[k].dtype, k
        np.testing.assert_array_equal(v.numpy(), ref[k])
    assert sd["bn.num_batches_tracked"].item() == 17
    assert sd["bn.num_batches_tracked"].shape == ()
    assert sd._metadata["bn"]["version"] == 2


def test_pytorch_state_dict_fixture_mmap_and_resave(fixtures, tmp_path):
    sd = rtorch.load(fixtures / "torch_state_dict.pt", mmap=True)
    ref = np.load(fixtures / "torch_state_dict.npz")
    for k in ref.files:
        np.testing.assert_array_equal(sd[k].numpy(), ref[k])
    rtorch.save(sd, tmp_path / "again.pt")
    again = rtorch.load(tmp_path / "again.pt")
    for k in ref.files:
        np.testing.assert_array_equal(again[k].numpy(), ref[k])


def test_pytorch_mixed_fixture(fixtures):
    m = rtorch.load(fixtures / "torch_mixed.pt")
    expected = {
        "f64": (rtorch.float64, [1.5, -2.25]),
        "i64": (rtorch.int64, [1, 2, 3]),
        "i32": (rtorch.int32, [[4, 5]]),
        "u8": (rtorch.uint8, [0, 255]),
        "b": (rtorch.bool, [True, False]),
        "f16": (rtorch.float16, [0.5, 2.0]),
        "bf16": (rtorch.bfloat16, [1.0, -3.0]),
        "scalar": (rtorch.float32, 3.0),
    }
    for k, (dtype, values) in expected.items():
        assert m[k].dtype == dtype, k
        np.testing.assert_array_equal(as_numpy(m[k]), np.array(values))
    assert m["scalar"].shape == ()
    assert m["list"] == [1, 2.5, "x"]
    assert m["nested"] == {"a": (1, 2), "b": None}


# ---------------------------------------------------------------- real PyTorch, when installed


def test_pytorch_loads_what_rtorch_saves_with_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "rt.pt"
    base = rtorch.arange(12.0).view(3, 4)
    obj = {"dtypes": [rtorch.ones(2, dtype=dt) for dt in ALL_DTYPES], "view": base[:, 2],
           "base": base, "p": rtorch.nn.Parameter(rtorch.ones(1)), "size": rtorch.Size([1, 2]),
           "od": OrderedDict(a=1), "dt": rtorch.float16, "dev": rtorch.device("cpu")}  # fmt: skip
    rtorch.save(obj, path)
    back = torch.load(path, weights_only=True)
    for t, dt in zip(back["dtypes"], ALL_DTYPES, strict=True):
        assert str(t.dtype) == str(dt) and t.tolist() == [1, 1]
    assert back["view"].tolist() == [2.0, 6.0, 10.0]
    back["base"][0, 2] = 99.0
    assert back["view"][0].item() == 99.0
    assert isinstance(back["p"], torch.nn.Parameter)
    assert back["size"] == torch.Size([1, 2]) and back["dt"] is torch.float16
    assert back["dev"] == torch.device("cpu") and back["od"] == OrderedDict(a=1)
    torch.save(back, tmp_path / "pt.pt")
    again = rtorch.load(tmp_path / "pt.pt")
    assert again["view"].tolist() == [99.0, 6.0, 10.0]


def test_load_is_bounded_by_the_file(tmp_path, monkeypatch):
    sizes = []
    real_empty = rtorch.empty

    def recording_empty(*args, **kwargs):
        sizes.append(args)
        return real_empty(*args, **kwargs)

    monkeypatch.setattr(rtorch, "empty", recording_empty)
    rtorch.save({"a": rtorch.ones(1000)}, tmp_path / "x.pt")
    rtorch.load(tmp_path / "x.pt")
    assert sizes == [(4000,)]


def test_zip_reader_handles_checkpoint_written_by_zipfile():
    pkl = pickle.dumps({"n": 1}, protocol=2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("top/data.pkl", pkl)
    assert rtorch.load(io.BytesIO(buf.getvalue())) == {"n": 1}


def test_untyped_storage_is_the_whole_shared_storage():
    base = rtorch.arange(6, dtype=rtorch.int32)
    s = base[2:4].untyped_storage()
    assert isinstance(s, rtorch.UntypedStorage)
    assert s.nbytes() == len(s) == 24 and s.device == rtorch.device("cpu")
    assert s.data_ptr() == base.data_ptr()
    assert s.tolist()[8:12] == [2, 0, 0, 0]
    typed = rtorch.TypedStorage(wrap_storage=s, dtype=rtorch.int16)
    assert typed.size() == 12
    np.testing.assert_array_equal(typed._flat().numpy(), base.numpy().view(np.int16))
    with pytest.raises(RuntimeError, match="not compiled with CUDA"):
        s.cuda()


def test_import_rtorch_does_not_load_serialization():
    import subprocess
    import sys

    code = (
        "import sys, rtorch; print('rtorch.serialization' in sys.modules, 'pickle' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
