"""Hostile checkpoints: code-execution payloads, malformed pickles, lying
storage records and malicious zips. Each must raise a clear error (of a
named class) while creating no file, starting no process, importing
nothing and allocating no more than the file's valid entries declare.

An audit hook records every sensitive event during each load, so a payload
that ran would be seen even if it then failed."""

import io
import os
import pickle
import struct
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest
from ckpt_util import central_entries, checkpoint, make_zip, tensor_pickle

import rtorch
from rtorch.serialization import CheckpointError

_FORBIDDEN = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.remove",
              "subprocess.Popen", "exec", "compile", "import", "ctypes", "shutil",
              "webbrowser", "os.startfile", "os.kill", "os.mkdir", "os.rename")  # fmt: skip
_recording = []
_events = []


def _audit(event, args):
    if not _recording:
        return
    if event.startswith(_FORBIDDEN) or (event == "open" and args[1] not in (None, "r", "rb")):
        _events.append((event, args))


sys.addaudithook(_audit)

MARKER = "rtorch_hostile_marker"


class Payload:
    """Pickles as a call of ``fn(*args)`` (what a malicious checkpoint holds)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def pickled(obj, protocol=2):
    return pickle.dumps(obj, protocol=protocol)


def hostile_cases(tmp):
    marker = os.path.join(tmp, MARKER)
    touch = f"open({marker!r}, 'w').close()"
    good = np.array([1.0, 2.0], "<f4").tobytes()
    big_pid = tensor_pickle(numel=2**61)
    cases = {
        # ---- globals that run code
        "os.system": pickled(Payload(os.system, f"touch {marker}")),
        "os.popen": pickled(Payload(os.popen, f"touch {marker}")),
        "os.execv": pickled(Payload(os.execv, "/bin/touch", ["touch", marker])),
        "os.remove": pickled(Payload(os.remove, marker)),
        "subprocess.Popen": pickled(Payload(subprocess.Popen, ["touch", marker])),
        "subprocess.run": pickled(Payload(subprocess.run, ["touch", marker])),
        "subprocess.check_output": pickled(Payload(subprocess.check_output, ["touch", marker])),
        "builtins.eval": pickled(Payload(eval, touch)),
        "builtins.exec": pickled(Payload(exec, touch)),
        "builtins.compile": pickled(Payload(compile, touch, "x", "exec")),
        "builtins.open": pickled(Payload(open, marker, "w")),
        "builtins.__import__": pickled(Payload(__import__, "antigravity")),
        "builtins.getattr (indirect)": pickled(
            Payload(getattr, Payload(__import__, "os"), "system")
        ),
        "importlib.import_module": b"\x80\x02cimportlib\nimport_module\nX\x02\x00\x00\x00osR.",
        "sys.modules": b"\x80\x02csys\nmodules\n.",
        "nt.system": b"\x80\x02cnt\nsystem\nX\x01\x00\x00\x00xR.",
        "pickle.loads nested": pickled(Payload(pickle.loads, pickled(Payload(eval, touch)))),
        "shutil.rmtree": b"\x80\x02cshutil\nrmtree\nX\x04\x00\x00\x00/tmpR.",
        "ctypes.CDLL": b"\x80\x02cctypes\nCDLL\nX\x04\x00\x00\x00libcR.",
        "runpy.run_path": b"\x80\x02crunpy\nrun_path\nX\x04\x00\x00\x00x.pyR.",
        "torch.load": b"\x80\x02ctorch.serialization\nload\nX\x04\x00\x00\x00x.ptR.",
        "torch module class": b"\x80\x02ctorch.nn.modules.linear\nLinear\n)R.",
        "python2 __builtin__.eval": b"\x80\x02c__builtin__\neval\nX\x01\x00\x00\x001\x85R.",
        "stack global os.system (protocol 4)": pickled(Payload(os.system, "true"), protocol=4),
        "os.system inside a list": pickled([1, {"k": Payload(os.system, "true")}]),
        "os.system as dict key": b"\x80\x02}(cos\nsystem\nK\x01u.",
        # ---- allowed globals misused
        "REDUCE on a dtype": b"\x80\x02ctorch\nfloat32\n)R.",
        "REDUCE on a storage type": b"\x80\x02ctorch\nFloatStorage\n)R.",
        "REDUCE on a memo'd list": b"\x80\x02]q\x00h\x00)R.",
        "REDUCE with non-tuple args": b"\x80\x02ccollections\nOrderedDict\n]R.",
        "bytearray(huge)": b"\x80\x02cbuiltins\nbytearray\nJ\xff\xff\xff\x7f\x85R.",
        "_codecs.encode other codec": b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x03\x00\x00"
        b"\x00rot\x86R.",
        "NEWOBJ of a non-class": b"\x80\x02})\x81.",
        "NEWOBJ of a refused class": b"\x80\x02cbuiltins\nobject\n)\x81.",
        "INST opcode": b"\x80\x02(ios\nsystem\nX\x04\x00\x00\x00true.",
        "OBJ opcode": b"\x80\x02(cos\nsystem\nX\x04\x00\x00\x00trueo.",
        "EXT1 opcode": b"\x80\x02\x82\x01.",
        "text PERSID": b"\x80\x02Pstorage\n.",
        # ---- container opcodes on the wrong types
        "SETITEM on a list": b"\x80\x02]K\x00K\x01s.",
        "SETITEMS on a tuple": b"\x80\x02)(K\x00K\x01u.",
        "SETITEMS on a Size": b"\x80\x02ctorch\nSize\n)R(K\x00K\x01u.",
        "SETITEMS odd count": b"\x80\x02}(K\x00u.",
        "APPEND on a dict": b"\x80\x02}K\x01a.",
        "APPENDS on a tuple": b"\x80\x02)(K\x01e.",
        "ADDITEMS on a list": b"\x80\x02](K\x01\x90.",
        "BUILD on a list": b"\x80\x02]}b.",
        "BUILD on a dict": b"\x80\x02}}b.",
        "BUILD on a tensor": tensor_pickle()[:-1] + b"}b.",
        "BUILD on OrderedDict with a list": b"\x80\x02ccollections\nOrderedDict\n)R]b.",
        # ---- malformed pickle streams
        "stack underflow": b"\x80\x02R.",
        "missing memo": b"\x80\x02h\x05.",
        "no MARK": b"\x80\x02t.",
        "unclosed MARK": b"\x80\x02(K\x01.",
        "empty pickle": b"",
        "BINUNICODE longer than data": b"\x80\x02X\xff\xff\xff\xff" + b"a" * 10,
        "BINBYTES8 huge": b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"x.",
        "LONG4 huge": b"\x80\x02\x8b\xff\xff\xff\x7fx.",
        "pickle protocol 6": b"\x80\x06N.",
        "GLOBAL without newline": b"\x80\x02cos",
        "invalid UTF-8 string": b"\x80\x02X\x02\x00\x00\x00\xff\xfe.",
        # ---- persistent ids and storage records
        "persistent id not a storage": b"\x80\x02(X\x06\x00\x00\x00moduleK\x00tQ.",
        "persistent id an int": b"\x80\x02K\x00Q.",
        "storage record wrong length": b"\x80\x02(X\x07\x00\x00\x00storageK\x01tQ.",
        "storage record with a dtype as type": tensor_pickle(storage_type=b"torch\nfloat32"),
        "storage record key not a str": tensor_pickle(key=0),
        "storage key path traversal": tensor_pickle(key="../../../../etc/passwd"),
        "storage numel negative": tensor_pickle(numel=-1),
        "storage numel huge": big_pid,
        "storage numel beyond data": tensor_pickle(numel=3),
        "tensor offset beyond storage": tensor_pickle(offset=5),
        "tensor size beyond storage": tensor_pickle(size=(3,)),
        "tensor negative stride": tensor_pickle(stride=(-1,)),
        "tensor negative offset": tensor_pickle(offset=-1),
        "tensor negative size": tensor_pickle(size=(-2,)),
        "tensor size overflow": tensor_pickle(size=(2**40, 2**40), stride=(2**40, 1)),
        "tensor offset overflow": tensor_pickle(offset=2**70),
        "tensor size/stride rank mismatch": tensor_pickle(size=(2,), stride=(1, 1)),
        "tensor size not ints": tensor_pickle(size=("a",)),
        "rebuild with a list for storage": b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(]K\x00)"
        b")\x89ccollections\nOrderedDict\n)RtR.",
    }
    storages = {name: {"0": good} for name in cases}
    entries = {name: checkpoint(pkl, storages[name]) for name, pkl in cases.items()}
    # ---- the zip container
    pkl = tensor_pickle()
    entries["data entry far larger than declared"] = checkpoint(pkl, {"0": good * 100_000})
    entries["data entry smaller than declared"] = checkpoint(pkl, {"0": good[:5]})
    entries["data entry missing"] = checkpoint(pkl, {})
    entries["data.pkl missing"] = make_zip({"byteorder": b"little", "data/0": good})
    entries["entry outside the folder"] = make_zip(
        {"a/data.pkl": pickled(1), "b/data/0": good}, top=None
    )
    entries["bad byteorder"] = checkpoint(pkl, {"0": good}, byteorder=b"middle")
    entries["storage reused with larger size"] = checkpoint(
        b"\x80\x02(" + tensor_pickle()[2:-1] + tensor_pickle(numel=8)[2:-1] + b"t.", {"0": good}
    )
    entries["duplicate data.pkl"] = _duplicate(pkl, good)
    entries["zip bomb: deflated entry"] = _deflated(pkl)
    entries["zip bomb: overlapping entries"] = _overlapping(pkl, good)
    entries["encrypted entry"] = _patch_central(checkpoint(pkl, {"0": good}), 8, "<H", 0x809)
    beyond = _patch_central(checkpoint(pkl, {"0": good}), 20, "<I", 10**9)
    entries["central size beyond the file"] = _patch_central(beyond, 24, "<I", 10**9)
    # data.pkl claims 60 more bytes: it would swallow the next entry's header.
    overlap = _patch_central(checkpoint(pkl, {"0": good}), 20, "<I", len(pkl) + 60)
    entries["entry extends over the next one"] = _patch_central(overlap, 24, "<I", len(pkl) + 60)
    entries["sizes disagree"] = _patch_central(checkpoint(pkl, {"0": good}), 20, "<I", 3)
    entries["local header names another file"] = checkpoint(pkl, {"0": good}).replace(
        b"archive/byteorder", b"archive/byteordeR", 1
    )
    entries["not a zip"] = b"\x80\x02}."
    entries["empty file"] = b""
    entries["only an end record"] = b"PK\x05\x06" + b"\x00" * 18
    return entries


def _duplicate(pkl, good):
    buf = io.BytesIO()
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/data/0", good)
        z.writestr("archive/data.pkl", pickled({"other": 1}))
    return buf.getvalue()


def _deflated(pkl):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/data/0", b"\x00" * (50 << 20))  # 50 MB in ~50 KB
    return buf.getvalue()


def _overlapping(pkl, good):
    """Many central directory entries pointing at one local header."""
    blob = checkpoint(pkl, {"0": good})
    offsets = central_entries(blob)
    data_rec = next(o for o in offsets if blob[o + 46 : o + 46 + 14] == b"archive/data/0")
    target = struct.unpack_from("<I", blob, data_rec + 42)[0]
    first = offsets[0]
    return blob[:first] + struct.pack("<I", target).join(
        [blob[first : first + 42], blob[first + 46 :]]
    )


def _patch_central(blob, field_offset, fmt, value):
    """Sets a field of the first central directory record."""
    first = central_entries(blob)[0]
    out = bytearray(blob)
    struct.pack_into(fmt, out, first + field_offset, value)
    return bytes(out)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    return tmp, hostile_cases(str(tmp))


def test_there_are_at_least_fifty_hostile_checkpoints(cases):
    assert len(cases[1]) >= 50


@pytest.mark.parametrize("name", sorted(hostile_cases("/nonexistent")))
@pytest.mark.parametrize("source", ["path", "file"])
def test_hostile_checkpoint_raises_and_runs_nothing(cases, name, source, monkeypatch):
    tmp, blobs = cases
    blob = blobs[name]
    path = tmp / "hostile.pt"
    path.write_bytes(blob)
    before = set(os.listdir(tmp))
    sizes = []
    real_empty = rtorch.empty

    def recording_empty(*args, **kwargs):
        sizes.append(args[0])
        return real_empty(*args, **kwargs)

    monkeypatch.setattr(rtorch, "empty", recording_empty)
    tracemalloc.start()
    _events.clear()
    _recording.append(True)
    try:
        with pytest.raises((pickle.UnpicklingError, CheckpointError, RuntimeError)) as info:
            if source == "path":
                rtorch.load(path)
            else:
                with open(path, "rb") as f:
                    rtorch.load(io.BytesIO(f.read()))
    finally:
        _recording.clear()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert _events == [], f"{name}: sensitive events {_events}"
    assert set(os.listdir(tmp)) == before, f"{name}: files were created"
    # Python-side memory stays within a small multiple of the file.
    assert peak < 10 * len(blob) + (4 << 20), f"{name}: peak {peak} bytes"
    # Tensor memory never exceeds what a valid entry holds.
    assert all(s <= len(blob) for s in sizes), f"{name}: allocated {sizes}"
    message = str(info.value)
    assert message and ("hostile.pt" in message or source == "file"), message


def test_refused_global_is_named_in_the_error(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(checkpoint(pickled(Payload(subprocess.Popen, ["true"]))))
    with pytest.raises(pickle.UnpicklingError, match="GLOBAL subprocess.Popen was not an allowed"):
        rtorch.load(path)
    assert rtorch.serialization.get_unsafe_globals_in_checkpoint(path) == ["subprocess.Popen"]


def test_blocked_module_stays_blocked_when_allowlisted(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(checkpoint(pickled(Payload(os.getcwd))))
    with rtorch.serialization.safe_globals([os.getcwd]):
        with pytest.raises(pickle.UnpicklingError, match="whose module posix is blocked"):
            rtorch.load(path)


def test_weights_only_with_pickle_module_is_refused():
    with pytest.raises(RuntimeError, match="Can not safely load weights"):
        rtorch.load(io.BytesIO(b""), pickle_module=pickle, weights_only=True)
