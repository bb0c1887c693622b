"""``rtorch.save`` and ``rtorch.load``: PyTorch's checkpoint format, both ways.

A checkpoint is an uncompressed zip whose top folder is the file's stem:
``data.pkl`` (the object, pickled with every tensor replaced by a
``torch._utils._rebuild_tensor_v2`` call over a persistent-id storage
record), ``data/<key>`` (each storage's raw little-endian bytes, aligned to
64 bytes so they can be memory-mapped), and the small records ``byteorder``,
``version``, ``.format_version``, ``.storage_alignment`` and
``.data/serialization_id``. Files name PyTorch's globals (``torch.Size``,
``torch.FloatStorage``...), so PyTorch loads what rtorch writes and rtorch
loads what PyTorch writes.

Loading is safe by default: ``weights_only=True`` reads ``data.pkl`` with a
restricted unpickler (:mod:`rtorch._weights_only_unpickler`) that imports
and runs nothing outside an allowlist.
"""

from __future__ import annotations

import contextlib
import mmap as _mmap
import os
import pickle
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator
from types import FunctionType
from typing import IO, Any, BinaryIO

import rtorch
from rtorch import _utils
from rtorch import _weights_only_unpickler as _wo
from rtorch._C import Tensor
from rtorch._zip import CheckpointError, ZipReader, ZipWriter
from rtorch.storage import STORAGE_NAME_OF_DTYPE, TypedStorage, UntypedStorage

__all__ = [
    "CheckpointError",
    "add_safe_globals",
    "clear_safe_globals",
    "get_safe_globals",
    "get_unsafe_globals_in_checkpoint",
    "load",
    "safe_globals",
    "save",
]

DEFAULT_PROTOCOL = 2
FileLike = str | os.PathLike | IO[bytes]
MapLocation = str | bytes | rtorch.device | dict | Callable[..., Any] | None

UNSAFE_MESSAGE = (
    "In PyTorch 2.6, we changed the default value of the `weights_only` argument in `torch.load` "
    "from `False` to `True`. Re-running `torch.load` with `weights_only` set to `False` will "
    "likely succeed, but it can result in arbitrary code execution. Do it only if you got the "
    "file from a trusted source."
)


# ---------------------------------------------------------------- allowlist


def add_safe_globals(safe_globals: list[Any]) -> None:
    """Marks globals as safe for ``weights_only=True`` loading.

    Each item is the object itself, named in the checkpoint by its
    ``__module__`` and ``__qualname__``, or a pair ``(object, "module.name")``
    when the checkpoint names it differently (for example a class saved by
    PyTorch under ``torch....``).

    Args:
        safe_globals: the objects to allow.

    Example::

        >>> import rtorch
        >>> class Config:
        ...     pass
        >>> rtorch.serialization.add_safe_globals([Config])
    """
    _wo.add_user_globals(list(safe_globals))


def get_safe_globals() -> list[Any]:
    """The globals the user has marked safe with :func:`add_safe_globals`."""
    return _wo.user_globals()


def clear_safe_globals() -> None:
    """Forgets every global marked safe with :func:`add_safe_globals`."""
    _wo.clear_user_globals()


@contextlib.contextmanager
def safe_globals(safe_globals: list[Any]) -> Iterator[None]:
    """Context manager: :func:`add_safe_globals` for the duration of the block.

    Example::

        >>> import rtorch
        >>> with rtorch.serialization.safe_globals([complex]):
        ...     pass
    """
    _wo.add_user_globals(list(safe_globals))
    try:
        yield
    finally:
        _wo.remove_user_globals(list(safe_globals))


def get_unsafe_globals_in_checkpoint(f: FileLike) -> list[str]:
    """The globals ``data.pkl`` of checkpoint ``f`` names that ``weights_only``
    loading would refuse, without running anything.

    Args:
        f: a path or a binary file object.

    Example::

        >>> import io, rtorch
        >>> buf = io.BytesIO()
        >>> rtorch.save({"w": rtorch.ones(2)}, buf)
        >>> _ = buf.seek(0)
        >>> rtorch.serialization.get_unsafe_globals_in_checkpoint(buf)
        []
    """
    import pickletools

    with _open(f, "rb") as (opened, name):
        reader = ZipReader(opened, name)
        data = reader.read(_pickle_entry(reader))
    found: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL":
                module, _, attr = arg.partition(" ")
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                module, attr = strings[-2], strings[-1]
            else:
                if isinstance(arg, str):
                    strings.append(arg)
                continue
            module, attr = _wo.python3_name(module, attr)
            try:
                _wo.resolve(module, attr)
            except pickle.UnpicklingError:
                if f"{module}.{attr}" not in found:
                    found.append(f"{module}.{attr}")
    except ValueError as e:
        raise CheckpointError(f"cannot read checkpoint {name!r}: malformed data.pkl: {e}") from e
    return found


# ---------------------------------------------------------------- files


def _is_path(f: Any) -> bool:
    return isinstance(f, (str, os.PathLike))


@contextlib.contextmanager
def _open(f: FileLike, mode: str) -> Iterator[tuple[BinaryIO, str]]:
    if _is_path(f):
        with open(f, mode) as opened:
            yield opened, os.fspath(f)
        return
    needed = ("write",) if "w" in mode else ("read", "seek", "tell")
    missing = [m for m in needed if not hasattr(f, m)]
    if missing:
        raise AttributeError(
            f"expected 'f' to be string, path, or a file-like object with attribute "
            f"{missing[0]!r}, got {type(f).__name__}"
        )
    yield f, str(getattr(f, "name", f"<{type(f).__name__}>"))


# ---------------------------------------------------------------- save


class _TorchName:
    """A global PyTorch has and rtorch writes by PyTorch's name (storage classes)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_STORAGE_CLASS = {dt: _TorchName(name) for dt, name in STORAGE_NAME_OF_DTYPE.items()}


def _torch_names() -> dict[Any, tuple[str, str]]:
    names: dict[Any, tuple[str, str]] = {
        _utils._rebuild_tensor_v2: ("torch._utils", "_rebuild_tensor_v2"),
        _utils._rebuild_parameter: ("torch._utils", "_rebuild_parameter"),
        _utils._rebuild_parameter_with_state: ("torch._utils", "_rebuild_parameter_with_state"),
        rtorch.Size: ("torch", "Size"),
        rtorch.device: ("torch", "device"),
        rtorch.nn.Parameter: ("torch.nn.parameter", "Parameter"),
    }
    for dt in STORAGE_NAME_OF_DTYPE:
        names[dt] = ("torch", str(dt).split(".")[1])
        names[_STORAGE_CLASS[dt]] = ("torch", _STORAGE_CLASS[dt].name)
    return names


class _StorageRef:
    """Stands for a tensor's storage in the pickle; becomes a persistent id."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor


class _Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pickles like PyTorch's ``torch.save``: tensors as ``_rebuild_tensor_v2``
    calls over storages kept out of band, and rtorch's classes, functions and
    dtypes under their ``torch`` names.

    The pure-Python pickler is used because the C one insists on importing a
    global's module to check it, and ``torch`` is not (and need not be) there.
    Only the small ``data.pkl`` goes through it; storage bytes never do.
    """

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def __init__(self, file: IO[bytes], protocol: int) -> None:
        super().__init__(file, protocol)
        self.names = _torch_names()
        self.storage_keys: dict[int, str] = {}
        self.storage_bytes: dict[str, Tensor] = {}
        self.storage_dtypes: dict[str, Any] = {}

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Tensor):
            if isinstance(obj, rtorch.nn.Parameter):
                state = dict(obj.__dict__)
                data = obj.detach()
                if state:
                    return (
                        _utils._rebuild_parameter_with_state,
                        (data, obj.requires_grad, OrderedDict(), state),
                    )
                return (_utils._rebuild_parameter, (data, obj.requires_grad, OrderedDict()))
            args = (_StorageRef(obj), obj.storage_offset(), tuple(obj.shape), obj.stride())
            return (_utils._rebuild_tensor_v2, (*args, obj.requires_grad, OrderedDict()))
        if type(obj) is rtorch.Size:
            return (rtorch.Size, (tuple(obj),))
        if type(obj) is rtorch.device:
            args = (obj.type,) if obj.index is None else (obj.type, obj.index)
            return (rtorch.device, args)
        return NotImplemented

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is not _StorageRef:
            return None
        t = obj.tensor
        raw = t._storage_bytes()
        key = self.storage_keys.setdefault(t._storage_key(), str(len(self.storage_keys)))
        if self.storage_dtypes.setdefault(key, t.dtype) != t.dtype:
            raise RuntimeError(
                "Cannot save multiple tensors or storages that view the same data as different types"
            )
        self.storage_bytes[key] = raw
        numel = raw.numel() // t.element_size()
        return ("storage", _STORAGE_CLASS[t.dtype], key, str(t.device), numel)

    def save_global(self, obj: Any, name: str | None = None) -> None:
        try:
            torch_name = self.names.get(obj)
        except TypeError:  # unhashable
            torch_name = None
        if torch_name is None:
            super().save_global(obj, name)
            return
        module, attr = torch_name
        if self.proto >= 4:
            self.save(module)
            self.save(attr)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{attr}\n".encode())
        self.memoize(obj)

    dispatch[FunctionType] = save_global
    dispatch[_TorchName] = save_global
    dispatch[rtorch.dtype] = save_global


def _archive_name(f: Any) -> str:
    if _is_path(f):
        stem = os.path.splitext(os.path.basename(os.fspath(f)))[0]
        if stem:
            return stem
    return "archive"


def save(
    obj: object,
    f: FileLike,
    pickle_module: Any = pickle,
    pickle_protocol: int = DEFAULT_PROTOCOL,
    _use_new_zipfile_serialization: bool = True,
    _disable_byteorder_record: bool = False,
) -> None:
    """Saves an object to a file in PyTorch's checkpoint format.

    Tensors are stored as their whole storage plus offset, sizes and strides,
    so a view saves its base's storage and tensors sharing a storage share it
    again after :func:`load`. PyTorch's ``torch.load`` reads the result,
    also with ``weights_only=True``.

    Args:
        obj: the object to save: tensors, ``Parameter``\\ s, containers,
            numbers, strings, ``Size``, dtypes, devices, and (for loading with
            ``weights_only=False``) any picklable object.
        f: a path (``str`` or ``os.PathLike``) or a binary file object.
        pickle_module: must be :mod:`pickle` (kept for PyTorch's signature).
        pickle_protocol: the pickle protocol of ``data.pkl``. Default: 2.

    Example::

        >>> import io, rtorch
        >>> buf = io.BytesIO()
        >>> rtorch.save({"w": rtorch.arange(3.0)}, buf)
        >>> _ = buf.seek(0)
        >>> rtorch.load(buf)
        {'w': tensor([0., 1., 2.])}
    """
    if pickle_module is not pickle:
        raise NotImplementedError("rtorch.save supports only pickle_module=pickle")
    if not _use_new_zipfile_serialization:
        raise NotImplementedError(
            "rtorch.save writes only the zip format (_use_new_zipfile_serialization=True)"
        )
    import io

    buf = io.BytesIO()
    pickler = _Pickler(buf, pickle_protocol)
    pickler.dump(obj)
    prefix = _archive_name(f) + "/"
    with _open(f, "wb") as (opened, _):
        z = ZipWriter(opened)
        z.write(prefix + "data.pkl", buf.getbuffer())
        z.write(prefix + ".format_version", b"1")
        z.write(prefix + ".storage_alignment", b"64")
        if not _disable_byteorder_record:
            z.write(prefix + "byteorder", sys.byteorder.encode())
        for key in sorted(pickler.storage_bytes, key=int):
            raw = pickler.storage_bytes[key]
            if raw.numel():
                z.write(f"{prefix}data/{key}", raw.numpy(), crc=raw._crc32())
            else:
                z.write(f"{prefix}data/{key}", b"")
        z.write(prefix + "version", b"3\n")
        z.write(prefix + ".data/serialization_id", _serialization_id())
        z.close()


def _serialization_id() -> bytes:
    return str(int.from_bytes(os.urandom(16), "little")).zfill(40).encode()


# ---------------------------------------------------------------- load


def _pickle_entry(reader: ZipReader) -> Any:
    names = list(reader.entries)
    if not names:
        raise reader.error("the archive is empty")
    top = names[0].split("/", 1)[0]
    for n in names:
        if not n.startswith(top + "/"):
            raise reader.error(f"entry {n!r} is outside the archive's folder {top!r}")
    entry = reader.entries.get(top + "/data.pkl")
    if entry is None:
        raise reader.error(f"it has no {top}/data.pkl")
    return entry


def _cuda_error() -> RuntimeError:
    return RuntimeError(
        "Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is "
        "False. If you are running on a CPU-only machine, please use torch.load with "
        "map_location=torch.device('cpu') to map your storages to the CPU."
    )


def _default_restore(storage: UntypedStorage, location: Any) -> UntypedStorage:
    if isinstance(location, bytes):
        location = location.decode()
    location = str(location)
    if location == "cpu":
        return storage
    if location == "cuda" or location.startswith("cuda:"):
        raise _cuda_error()
    raise RuntimeError(
        f"don't know how to restore data location of torch.storage.UntypedStorage "
        f"(tagged with {location})"
    )


def _restore(storage: UntypedStorage, location: str, map_location: MapLocation) -> Any:
    if map_location is None:
        return _default_restore(storage, location)
    if isinstance(map_location, dict):
        return _default_restore(storage, map_location.get(location, location))
    if isinstance(map_location, (str, bytes, rtorch.device)):
        return _default_restore(storage, map_location)
    if callable(map_location):
        result = map_location(storage, location)
        if result is None:
            return _default_restore(storage, location)
        if isinstance(result, TypedStorage):
            result = result.untyped()
        if not isinstance(result, UntypedStorage):
            raise TypeError(
                f"map_location must return a storage or None, got {type(result).__name__}"
            )
        return result
    raise TypeError(
        "map_location must be None, a string, a torch.device, a dict or a callable, "
        f"got {type(map_location).__name__}"
    )


class _Loader:
    """Reads storages out of an open archive as ``data.pkl`` asks for them."""

    def __init__(
        self, reader: ZipReader, prefix: str, map_location: MapLocation, mapped: Any
    ) -> None:
        self.reader = reader
        self.prefix = prefix
        self.map_location = map_location
        self.mapped = mapped
        self.storages: dict[str, UntypedStorage] = {}
        order = reader.entries.get(prefix + "byteorder")
        byteorder = reader.read(order) if order is not None else b"little"
        if byteorder not in (b"little", b"big"):
            raise reader.error(f"unknown byteorder record {byteorder[:16]!r}")
        self.swap = byteorder.decode() != sys.byteorder
        if self.swap and mapped is not None:
            raise reader.error("mmap=True cannot load a checkpoint of the other byte order")

    def persistent_load(self, pid: Any) -> TypedStorage:
        err = self.reader.error
        if type(pid) is not tuple or len(pid) != 5:
            raise err(f"malformed storage record {pid!r}")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _wo.StorageType):
            raise err(f"storage record names {storage_type!r}, not a storage type")
        if type(key) is not str or type(location) is not str:
            raise err(f"malformed storage record {pid!r}")
        if type(numel) is not int or numel < 0:
            raise err(f"storage {key!r} has an invalid size {numel!r}")
        dtype = storage_type.dtype
        nbytes = numel * dtype.itemsize
        storage = self.storages.get(key)
        if storage is None:
            entry = self.reader.entries.get(f"{self.prefix}data/{key}")
            if entry is None:
                raise err(f"storage {key!r} has no entry data/{key}")
            # The entry must hold exactly the declared elements: nothing is
            # allocated beyond what the record declares.
            if entry.size // dtype.itemsize != numel:
                raise err(
                    f"storage {key!r} declares {numel} elements of {dtype} ({nbytes} bytes) "
                    f"but data/{key} holds {entry.size} bytes"
                )
            raw = self._read(entry, dtype)
            storage = _restore(UntypedStorage._wrap(raw), location, self.map_location)
            self.storages[key] = storage
        elif storage.nbytes() < nbytes:
            raise err(f"storage {key!r} is used with {nbytes} bytes but holds {storage.nbytes()}")
        return TypedStorage(wrap_storage=storage, dtype=dtype)

    def _read(self, entry: Any, dtype: Any) -> Tensor:
        if self.mapped is not None:
            import numpy as np

            start = self.reader.start + entry.data_offset
            view = np.frombuffer(self.mapped, dtype=np.uint8, count=entry.size, offset=start)
            return rtorch.from_numpy(view)
        raw = rtorch.empty(entry.size, dtype=rtorch.uint8)
        if entry.size:
            self.reader.readinto(entry, raw.numpy(), crc=raw._crc32)
        elif entry.crc != 0:
            self.reader.check_crc(entry, b"")
        if self.swap and dtype.itemsize > 1 and entry.size:
            raw.numpy().view(f"u{dtype.itemsize}").byteswap(inplace=True)
        return raw


class _RemapMixin:
    """``weights_only=False``: ordinary unpickling (it can run any code the
    file names), with PyTorch's names mapped to rtorch's."""

    loader: _Loader

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _wo.resolve(module, name)
        except pickle.UnpicklingError:
            pass
        if module == "torch" or module.startswith("torch."):
            module = "r" + module
        return super().find_class(module, name)  # type: ignore[misc]

    def persistent_load(self, pid: Any) -> Any:
        return self.loader.persistent_load(pid)


def _full_unpickle(data: bytes, loader: _Loader, module: Any, **kwargs: Any) -> Any:
    import io

    cls = type("Unpickler", (_RemapMixin, module.Unpickler), {})
    up = cls(io.BytesIO(data), **kwargs)
    up.loader = loader
    return up.load()


def load(
    f: FileLike,
    map_location: MapLocation = None,
    pickle_module: Any = None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
    **pickle_load_args: Any,
) -> Any:
    """Loads an object saved with :func:`save` or with PyTorch's ``torch.save``.

    .. warning::
        :func:`torch.load()` uses an unpickler under the hood. **Never load
        data from an untrusted source.** With ``weights_only=False`` that is
        Python's own unpickler, which can run arbitrary code hidden in the
        file; use it only for files you trust. The default, ``weights_only=True``,
        only rebuilds tensors, ``Parameter``\\ s, containers, numbers,
        strings, ``Size``, dtypes, devices and globals allowed with
        :func:`rtorch.serialization.add_safe_globals`; anything else raises
        ``pickle.UnpicklingError`` naming what was refused.

    Every entry is checked against its CRC-32 and every size against the
    archive, so a truncated or corrupted file raises
    :class:`~rtorch.serialization.CheckpointError` (a ``RuntimeError``)
    naming the file and the fault.

    Args:
        f: a path (``str`` or ``os.PathLike``) or a seekable binary file object.
        map_location: where to put storages: ``None`` (where they were
            saved), a device or device string, a dict from saved location to
            new location (``{'cuda:0': 'cpu'}``), or a callable
            ``(storage, location) -> storage or None``.
        pickle_module: a pickle module for ``weights_only=False``.
        weights_only: restrict unpickling to the allowlist. Default: ``True``
            (``False`` when ``pickle_module`` is given).
        mmap: map the file's storages into memory instead of reading them
            (``f`` must be a path); tensors are copy-on-write views of the
            file, read lazily. Storage CRCs are not checked in this mode.

    Example::

        >>> import io, rtorch
        >>> buf = io.BytesIO()
        >>> rtorch.save([rtorch.tensor([1, 2]), "label"], buf)
        >>> _ = buf.seek(0)
        >>> rtorch.load(buf, map_location="cpu")
        [tensor([1, 2]), 'label']
    """
    if weights_only is None:
        weights_only = pickle_module is None
    if weights_only and pickle_module is not None:
        raise RuntimeError("Can not safely load weights when explicit pickle_module is specified")
    if mmap and not _is_path(f):
        raise ValueError("f must be a file path in order to use the mmap argument")
    with _open(f, "rb") as (opened, name):
        head = opened.read(4)
        opened.seek(-len(head), 1)
        if head != b"PK\x03\x04":
            raise CheckpointError(
                f"cannot load checkpoint {name!r}: it is not a zip checkpoint (PyTorch's "
                "format since 1.6); the legacy format and TorchScript are not supported"
            )
        reader = ZipReader(opened, name)
        entry = _pickle_entry(reader)
        prefix = entry.name[: -len("data.pkl")]
        data = reader.read(entry)
        mapped = None
        if mmap:
            mapped = _mmap.mmap(opened.fileno(), 0, access=_mmap.ACCESS_COPY)
        loader = _Loader(reader, prefix, map_location, mapped)
        if not weights_only:
            pickle_load_args.setdefault("encoding", "utf-8")
            return _full_unpickle(data, loader, pickle_module or pickle, **pickle_load_args)
        try:
            return _wo.Unpickler(data, loader.persistent_load).load()
        except pickle.UnpicklingError as e:
            raise pickle.UnpicklingError(_weights_only_message(str(e), name)) from None


def _weights_only_message(message: str, name: str) -> str:
    if "was not an allowed global by default" in message:
        return (
            f"Weights only load failed for {name!r}. This file can still be loaded, to do so "
            "you have two options, do those steps only if you trust the source of the "
            f"checkpoint.\n\t(1) {UNSAFE_MESSAGE}\n\t(2) Alternatively, to load with "
            "`weights_only=True` please check the recommended steps in the following error "
            "message.\n\tWeightsUnpickler error: " + message
        )
    return f"Weights only load failed for {name!r}. {UNSAFE_MESSAGE}\n\n{message}"
