"""Helpers shared by the serialization tests: where PyTorch's fixtures are,
and how to build a checkpoint from raw parts (for hostile and corrupt files)."""

import io
import pickle
import struct
from pathlib import Path

from rtorch import _zip

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"


def make_zip(entries, top="archive"):
    """An uncompressed zip of ``entries`` (name -> bytes), names under ``top/``
    unless they already contain a slash-led path given with ``top=None``."""
    buf = io.BytesIO()
    z = _zip.ZipWriter(buf)
    for name, data in entries.items():
        z.write(name if top is None else f"{top}/{name}", data)
    z.close()
    return buf.getvalue()


def checkpoint(pkl, storages=None, **extra):
    """A checkpoint holding ``data.pkl`` = ``pkl`` and ``data/<key>`` entries."""
    entries = {"data.pkl": pkl, "byteorder": b"little"}
    for key, data in (storages or {}).items():
        entries[f"data/{key}"] = data
    entries.update(extra)
    return make_zip(entries)


def central_entries(blob):
    """Offsets of the central directory records of a zip (for patching)."""
    eocd = blob.rfind(b"PK\x05\x06")
    _, _, _, _, n, _, cd_offset, _ = struct.unpack_from("<IHHHHIIH", blob, eocd)
    out, p = [], cd_offset
    for _ in range(n):
        nlen, elen, clen = struct.unpack_from("<HHH", blob, p + 28)
        out.append(p)
        p += 46 + nlen + elen + clen
    return out


def op(value):
    """The pickle opcodes pushing ``value`` (a primitive), protocol 2."""
    return pickle.dumps(value, protocol=2)[2:-1]


def tensor_pickle(storage_type=b"torch\nFloatStorage", key="0", location="cpu", numel=2,
                  offset=0, size=(2,), stride=(1,), pid_tag="storage"):  # fmt: skip
    """``data.pkl`` of one tensor, as PyTorch writes it, with every field settable."""
    pid = b"(" + op(pid_tag) + b"c" + storage_type + b"\n" + op(key) + op(location) + op(numel)
    return (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(" + pid + b"tQ"
        + op(offset) + op(size) + op(stride)
        + b"\x89ccollections\nOrderedDict\n)RtR."
    )  # fmt: skip
