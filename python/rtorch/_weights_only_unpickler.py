"""The restricted unpickler behind ``rtorch.load(..., weights_only=True)``.

It interprets pickle opcodes itself instead of handing the data to
``pickle``: only the opcodes a checkpoint needs exist, a global resolves
only through an explicit allowlist (nothing is ever imported), and only
allowlisted callables are ever called. Every read is bounded by the data
actually present, so a hostile length field cannot make it allocate. Any
violation raises ``pickle.UnpicklingError`` saying what was refused.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import struct
from collections import Counter, OrderedDict
from collections.abc import Callable
from pickle import UnpicklingError
from typing import Any

import rtorch
from rtorch import _utils
from rtorch._zip import CheckpointError
from rtorch.storage import DTYPE_OF_STORAGE_NAME

# Modules refused even when a user allowlists something in them (PyTorch's list).
BLOCKED_MODULES = ("sys", "os", "posix", "nt")


class StorageType:
    """What a storage class global (``torch.FloatStorage``) resolves to: its dtype."""

    def __init__(self, dtype: rtorch.dtype) -> None:
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"StorageType(dtype={self.dtype})"


def _encode(text: Any, encoding: Any = "latin1") -> bytes:
    # Protocol 2 pickles bytes as _codecs.encode(str, 'latin1').
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise UnpicklingError("_codecs.encode is allowed only as encode(str, 'latin1')")
    return codecs.encode(text, "latin1")


def _bytearray(data: Any = b"") -> bytearray:
    # bytearray(n) would allocate n bytes: only copies of pickled data.
    if type(data) not in (bytes, list):
        raise UnpicklingError("bytearray is allowed only from bytes or a list")
    return bytearray(data)


def _set(items: Any = ()) -> set:
    if type(items) not in (list, tuple, set, frozenset):
        raise UnpicklingError("set is allowed only from a list or tuple")
    return set(items)


def _complex(real: Any = 0, imag: Any = 0) -> complex:
    if type(real) not in (int, float) or type(imag) not in (int, float):
        raise UnpicklingError("complex is allowed only from two numbers")
    return complex(real, imag)


def _allowed_globals() -> dict[str, Any]:
    """Names a PyTorch or rtorch checkpoint may refer to, and what they mean here."""
    rc: dict[str, Any] = {
        "collections.OrderedDict": OrderedDict,
        "collections.Counter": Counter,
        "torch.nn.parameter.Parameter": rtorch.nn.Parameter,
        "torch.Size": rtorch.Size,
        "torch.device": rtorch.device,
        "_codecs.encode": _encode,
        "builtins.bytearray": _bytearray,
        "builtins.set": _set,
        "builtins.complex": _complex,
    }
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter",
                 "_rebuild_parameter_with_state"):  # fmt: skip
        rc[f"torch._utils.{name}"] = getattr(_utils, name)
    for dtype in DTYPE_OF_STORAGE_NAME.values():
        rc[str(dtype)] = dtype  # "torch.float32"
    for name, dtype in DTYPE_OF_STORAGE_NAME.items():
        rc[f"torch.{name}"] = StorageType(dtype)
    for name in ("torch.UntypedStorage", "torch.storage.UntypedStorage",
                 "torch.storage.TypedStorage"):  # fmt: skip
        rc[name] = StorageType(rtorch.uint8)
    return rc


_ALLOWED: dict[str, Any] | None = None
_user_globals: dict[str, Any] = {}


def allowed() -> dict[str, Any]:
    global _ALLOWED
    if _ALLOWED is None:
        _ALLOWED = _allowed_globals()
    return _ALLOWED


def _safe_name(obj: Any) -> str:
    if isinstance(obj, tuple):
        if len(obj) != 2:
            raise ValueError(
                "Expected tuple of length 2 (global, str of callable full path), but got tuple "
                f"of length: {len(obj)}"
            )
        if type(obj[1]) is not str:
            raise TypeError(
                "Expected second item in tuple to be str of callable full path, but got: "
                f"{type(obj[1])}"
            )
        return obj[1]
    return f"{obj.__module__}.{obj.__qualname__}"


def add_user_globals(objs: list[Any]) -> None:
    for obj in objs:
        _user_globals[_safe_name(obj)] = obj[0] if isinstance(obj, tuple) else obj


def remove_user_globals(objs: list[Any]) -> None:
    for obj in objs:
        _user_globals.pop(_safe_name(obj), None)


def user_globals() -> list[Any]:
    return list(_user_globals.values())


def clear_user_globals() -> None:
    _user_globals.clear()


def python3_name(module: str, name: str) -> tuple[str, str]:
    """Python 3's name for a global that protocol 2 wrote under its Python 2
    name (``commands.Popen`` is ``subprocess.Popen``)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def resolve(module: str, name: str) -> Any:
    """The object a GLOBAL refers to, or ``UnpicklingError`` naming it."""
    module, name = python3_name(module, name)
    full = f"{module}.{name}"
    if module in BLOCKED_MODULES:
        raise UnpicklingError(
            f"Trying to load unsupported GLOBAL {full} whose module {module} is blocked."
        )
    table = allowed()
    if full in table:
        return table[full]
    if full in _user_globals:
        return _user_globals[full]
    shown = full[len("builtins.") :] if full.startswith("builtins.") else full
    raise UnpicklingError(
        f"Unsupported global: GLOBAL {shown} was not an allowed global by default. "
        f"Please use `rtorch.serialization.add_safe_globals([{shown}])` or the "
        f"`rtorch.serialization.safe_globals([{shown}])` context manager to allowlist this "
        "global if you trust this class/function."
    )


def _is_allowed_value(obj: Any) -> bool:
    return any(obj is v for v in allowed().values()) or any(
        obj is v for v in _user_globals.values()
    )


_SETITEM_TARGETS = (dict, OrderedDict, Counter)


class Unpickler:
    """Interprets ``data`` (a pickle) under the allowlist.

    ``persistent_load(pid)`` gets each persistent id, already checked to be a
    ``('storage', ...)`` tuple.
    """

    def __init__(self, data: bytes, persistent_load: Callable[[tuple], Any]) -> None:
        self.data = data
        self.pos = 0
        self.persistent_load = persistent_load

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise UnpicklingError(f"pickle data was truncated: needs {n} bytes at byte {self.pos}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def _line(self) -> str:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise UnpicklingError("pickle data was truncated inside a GLOBAL")
        line = self.data[self.pos : end]
        self.pos = end + 1
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            raise UnpicklingError(f"GLOBAL name {line!r} is not UTF-8") from None

    def _unpack(self, fmt: str, n: int) -> Any:
        return struct.unpack(fmt, self._take(n))[0]

    def load(self) -> Any:
        try:
            return self._run()
        except (IndexError, KeyError) as e:
            raise UnpicklingError(
                f"malformed pickle data near byte {self.pos}: "
                f"{'stack underflow' if isinstance(e, IndexError) else f'no memo entry {e}'}"
            ) from None

    def _call(self, what: str, fn: Callable, *args: Any) -> Any:
        try:
            return fn(*args)
        except (UnpicklingError, CheckpointError):
            raise
        except Exception as e:
            raise UnpicklingError(f"{what} failed: {type(e).__name__}: {e}") from e

    def _run(self) -> Any:
        stack: list[Any] = []
        marks: list[list[Any]] = []
        memo: dict[int, Any] = {}
        take, unpack = self._take, self._unpack

        def pop_mark() -> list[Any]:
            nonlocal stack
            if not marks:
                raise UnpicklingError(f"malformed pickle data near byte {self.pos}: no MARK")
            items, stack = stack, marks.pop()
            return items

        while True:
            op = take(1)[0]
            if op == 0x80:  # PROTO
                proto = take(1)[0]
                if proto > 5:
                    raise UnpicklingError(f"unsupported pickle protocol: {proto}")
            elif op == 0x95:  # FRAME: a length prefix, nothing to do
                take(8)
            elif op == 0x2E:  # STOP
                if marks:
                    raise UnpicklingError("malformed pickle data: unclosed MARK at STOP")
                return stack.pop()
            # ---- globals and calls: the risky part ----
            elif op == 0x63:  # GLOBAL
                module = self._line()
                stack.append(resolve(module, self._line()))
            elif op == 0x93:  # STACK_GLOBAL
                name, module = stack.pop(), stack.pop()
                if type(module) is not str or type(name) is not str:
                    raise UnpicklingError("STACK_GLOBAL requires str module and name")
                stack.append(resolve(module, name))
            elif op == 0x52:  # REDUCE
                args = stack.pop()
                func = stack[-1]
                if type(args) is not tuple:
                    raise UnpicklingError(f"REDUCE arguments must be a tuple, got {type(args)}")
                if not _is_allowed_value(func) or not callable(func):
                    raise UnpicklingError(
                        f"Trying to call reduce for unrecognized function {func!r}"
                    )
                stack[-1] = self._call(f"calling {getattr(func, '__name__', func)}", func, *args)
            elif op == 0x81:  # NEWOBJ
                args = stack.pop()
                cls = stack.pop()
                if type(args) is not tuple:
                    raise UnpicklingError(f"NEWOBJ arguments must be a tuple, got {type(args)}")
                if cls is rtorch.nn.Parameter:
                    stack.append(self._call("creating Parameter", cls, *args))
                elif isinstance(cls, type) and _is_allowed_value(cls):
                    stack.append(self._call(f"creating {cls.__name__}", cls.__new__, cls, *args))
                else:
                    raise UnpicklingError(
                        "Can only create new object for nn.Parameter or classes allowlisted "
                        f"via `add_safe_globals` but got {cls!r}"
                    )
            elif op == 0x62:  # BUILD
                state = stack.pop()
                self._build(stack[-1], state)
            elif op == 0x51:  # BINPERSID
                pid = stack.pop()
                if (
                    type(pid) is not tuple
                    or not pid
                    or type(pid[0]) not in (str, bytes)
                    or pid[0] not in ("storage", b"storage")
                ):
                    raise UnpicklingError(
                        f"Only persistent_load of storage is allowed, but got {pid!r}"
                    )
                stack.append(self.persistent_load(pid))
            # ---- containers ----
            elif op == 0x28:  # MARK
                marks.append(stack)
                stack = []
            elif op == 0x61:  # APPEND
                item = stack.pop()
                if type(stack[-1]) is not list:
                    raise UnpicklingError(f"Can only append to lists, but got {type(stack[-1])}")
                stack[-1].append(item)
            elif op == 0x65:  # APPENDS
                items = pop_mark()
                if type(stack[-1]) is not list:
                    raise UnpicklingError(f"Can only extend lists, but got {type(stack[-1])}")
                stack[-1].extend(items)
            elif op == 0x73:  # SETITEM
                value, key = stack.pop(), stack.pop()
                self._check_setitem("SETITEM", stack[-1])
                stack[-1][key] = value
            elif op == 0x75:  # SETITEMS
                items = pop_mark()
                self._check_setitem("SETITEMS", stack[-1])
                if len(items) % 2:
                    raise UnpicklingError("SETITEMS needs key/value pairs")
                for i in range(0, len(items), 2):
                    stack[-1][items[i]] = items[i + 1]
            elif op == 0x90:  # ADDITEMS
                items = pop_mark()
                if type(stack[-1]) is not set:
                    raise UnpicklingError(f"Can only add items to sets, but got {type(stack[-1])}")
                stack[-1].update(items)
            elif op == 0x91:  # FROZENSET
                items = pop_mark()  # rebinds `stack`: pop before appending
                stack.append(frozenset(items))
            elif op == 0x74:  # TUPLE
                items = pop_mark()
                stack.append(tuple(items))
            elif op == 0x85:  # TUPLE1
                stack[-1] = (stack[-1],)
            elif op == 0x86:  # TUPLE2
                b = stack.pop()
                stack[-1] = (stack[-1], b)
            elif op == 0x87:  # TUPLE3
                c, b = stack.pop(), stack.pop()
                stack[-1] = (stack[-1], b, c)
            elif op == 0x29:  # EMPTY_TUPLE
                stack.append(())
            elif op == 0x5D:  # EMPTY_LIST
                stack.append([])
            elif op == 0x7D:  # EMPTY_DICT
                stack.append({})
            elif op == 0x8F:  # EMPTY_SET
                stack.append(set())
            # ---- memo ----
            elif op == 0x71:  # BINPUT
                memo[take(1)[0]] = stack[-1]
            elif op == 0x72:  # LONG_BINPUT
                memo[unpack("<I", 4)] = stack[-1]
            elif op == 0x94:  # MEMOIZE
                memo[len(memo)] = stack[-1]
            elif op == 0x68:  # BINGET
                stack.append(memo[take(1)[0]])
            elif op == 0x6A:  # LONG_BINGET
                stack.append(memo[unpack("<I", 4)])
            # ---- scalars ----
            elif op == 0x4E:  # NONE
                stack.append(None)
            elif op == 0x88:  # NEWTRUE
                stack.append(True)
            elif op == 0x89:  # NEWFALSE
                stack.append(False)
            elif op == 0x4B:  # BININT1
                stack.append(take(1)[0])
            elif op == 0x4D:  # BININT2
                stack.append(unpack("<H", 2))
            elif op == 0x4A:  # BININT
                stack.append(unpack("<i", 4))
            elif op == 0x8A:  # LONG1
                stack.append(int.from_bytes(take(take(1)[0]), "little", signed=True))
            elif op == 0x8B:  # LONG4
                stack.append(int.from_bytes(take(unpack("<i", 4)), "little", signed=True))
            elif op == 0x47:  # BINFLOAT
                stack.append(unpack(">d", 8))
            elif op == 0x58:  # BINUNICODE
                stack.append(self._text(take(unpack("<I", 4))))
            elif op == 0x8C:  # SHORT_BINUNICODE
                stack.append(self._text(take(take(1)[0])))
            elif op == 0x8D:  # BINUNICODE8
                stack.append(self._text(take(unpack("<Q", 8))))
            elif op == 0x55:  # SHORT_BINSTRING (Python 2 str): decoded as PyTorch does
                stack.append(self._text(take(take(1)[0])))
            elif op == 0x54:  # BINSTRING
                stack.append(self._text(take(unpack("<i", 4))))
            elif op == 0x43:  # SHORT_BINBYTES
                stack.append(take(take(1)[0]))
            elif op == 0x42:  # BINBYTES
                stack.append(take(unpack("<I", 4)))
            elif op == 0x8E:  # BINBYTES8
                stack.append(take(unpack("<Q", 8)))
            else:
                raise UnpicklingError(f"Unsupported operand {op} at byte {self.pos - 1}")

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise UnpicklingError(f"string at byte {self.pos} is not UTF-8") from None

    @staticmethod
    def _check_setitem(opcode: str, target: Any) -> None:
        if type(target) not in _SETITEM_TARGETS:
            raise UnpicklingError(
                f"Can only {opcode} for dict, collections.OrderedDict, "
                f"collections.Counter, but got {type(target)}"
            )

    def _build(self, inst: Any, state: Any) -> None:
        if type(inst) is rtorch.nn.Parameter or type(inst) is OrderedDict:
            if not isinstance(state, dict):
                raise UnpicklingError(f"BUILD state for {type(inst).__name__} must be a dict")
            self._call("BUILD", inst.__dict__.update, state)
        elif any(type(inst) is v for v in _user_globals.values()):
            if hasattr(inst, "__setstate__"):
                self._call("BUILD", inst.__setstate__, state)
                return
            slots = None
            if isinstance(state, tuple) and len(state) == 2:
                state, slots = state
            if state:
                self._call("BUILD", inst.__dict__.update, state)
            for k, v in (slots or {}).items():
                self._call("BUILD", setattr, inst, k, v)
        else:
            raise UnpicklingError(
                "Can only build Tensor, Parameter, OrderedDict or types allowlisted "
                f"via `add_safe_globals`, but got {type(inst)}"
            )
