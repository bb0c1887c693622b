"""Messages between the DataLoader and its workers over a Unix socket pair.

A message is a pickle plus the descriptors of the shared-memory tensors it
holds, sent together with ``sendmsg``/SCM_RIGHTS: no per-tensor connection
to a resource-sharer thread (what ``multiprocessing.Queue`` does), and the
kernel owns descriptors in flight, so a process killed mid-transfer leaks
nothing. Frame: 12-byte header (payload length, descriptor count) carrying
the first descriptors, more descriptors in 1-byte frames when a message has
over ``_MAX_FDS``, then the payload.
"""

from __future__ import annotations

import array
import socket
import struct
from typing import Any

from rtorch.multiprocessing.reductions import dumps_with_fds, loads_with_fds

_HEADER = struct.Struct("<QI")
_MAX_FDS = 250  # the kernel takes at most 253 per message (SCM_MAX_FD)
_ANC_SPACE = socket.CMSG_SPACE(_MAX_FDS * 4)


class ChannelClosed(EOFError):
    """The other end closed the socket (or its process died)."""


def send(sock: socket.socket, obj: Any) -> None:
    """Sends ``obj``; its tensors travel as shared-memory descriptors."""
    payload, fds = dumps_with_fds(obj)
    header = _HEADER.pack(len(payload), len(fds))
    chunks = [fds[i : i + _MAX_FDS] for i in range(0, len(fds), _MAX_FDS)] or [[]]
    _sendmsg_all(sock, header, chunks[0])
    for chunk in chunks[1:]:
        _sendmsg_all(sock, b"\0", chunk)
    sock.sendall(payload)


def _sendmsg_all(sock: socket.socket, data: bytes, fds: list[int]) -> None:
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sent = sock.sendmsg([data], anc)
    if sent < len(data):
        sock.sendall(data[sent:])


def _recv_exact(sock: socket.socket, n: int, fds: list[int]) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data, anc, flags, _ = sock.recvmsg(n - len(buf), _ANC_SPACE)
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(cdata[: len(cdata) - len(cdata) % got.itemsize])
                fds.extend(got)
        if flags & socket.MSG_CTRUNC:
            _close(fds)
            raise RuntimeError("DataLoader channel: descriptors were truncated")
        if not data:
            _close(fds)
            raise ChannelClosed("DataLoader channel closed")
        buf += data
    return bytes(buf)


def recv(sock: socket.socket) -> Any:
    """Receives one message sent by :func:`send` (blocks until complete)."""
    fds: list[int] = []
    size, nfds = _HEADER.unpack(_recv_exact(sock, _HEADER.size, fds))
    while len(fds) < nfds:
        _recv_exact(sock, 1, fds)
    try:
        payload = _recv_exact(sock, size, []) if size else b""
    except BaseException:
        _close(fds)
        raise
    return loads_with_fds(payload, fds)


def _close(fds: list[int]) -> None:
    import os

    for fd in fds:
        os.close(fd)
    fds.clear()
