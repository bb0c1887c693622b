"""The uncompressed zip container of PyTorch checkpoints, read and written
with every size checked.

Written from the zip specification (PKWARE APPNOTE), not with ``zipfile``:
the reader must refuse what ``zipfile`` tolerates (duplicate names, entries
that overlap, compressed or encrypted entries, sizes that disagree between
the central directory and the local header) and must read an entry straight
into a tensor's memory; the writer must align every entry's data to 64 bytes
as PyTorch's writer does, so that files can be memory-mapped.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO, NamedTuple

ALIGNMENT = 64
# Sizes and counts at which the zip64 records take over; tests lower them to
# exercise those records without writing 4 GiB.
ZIP64_LIMIT = 0xFFFFFFFF
ZIP64_COUNT_LIMIT = 0xFFFF

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # local file header, 30 bytes
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory entry, 46 bytes
_EOCD = struct.Struct("<IHHHHIIH")  # end of central directory, 22 bytes
_EOCD64 = struct.Struct("<IQHHIIQQQQ")  # zip64 end of central directory, 56 bytes
_LOCATOR64 = struct.Struct("<IIQI")  # zip64 end of central directory locator, 20 bytes
_SIG_LOCAL, _SIG_CENTRAL, _SIG_EOCD = 0x04034B50, 0x02014B50, 0x06054B50
_SIG_EOCD64, _SIG_LOCATOR64 = 0x06064B50, 0x07064B50
_UTF8 = 0x800  # general purpose flag: names are UTF-8
_VERSION = 45  # "version needed": zip64 extensions
_MAX_COMMENT = 0xFFFF


class CheckpointError(RuntimeError):
    """A checkpoint file is malformed: truncated, corrupt or inconsistent.

    The message names the file and what is wrong with it. It subclasses
    ``RuntimeError``, the class PyTorch raises for unreadable archives.
    """


class Entry(NamedTuple):
    """One stored file of the archive: where its bytes are and their CRC-32."""

    name: str
    header_offset: int
    data_offset: int
    size: int
    crc: int


class ZipReader:
    """The entries of a stored (uncompressed) zip archive in ``f``.

    ``f`` is a seekable binary file; the archive starts at its current
    position. Everything is validated on opening: a malformed archive raises
    :class:`CheckpointError` naming ``filename``.
    """

    def __init__(self, f: BinaryIO, filename: str) -> None:
        self.f = f
        self.filename = filename
        self.start = f.tell()
        self.size = f.seek(0, 2) - self.start
        self.entries: dict[str, Entry] = {}
        self._read_directory()

    def error(self, what: str) -> CheckpointError:
        return CheckpointError(f"cannot load checkpoint {self.filename!r}: {what}")

    def _read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise self.error(
                f"the file is truncated: needs bytes {offset}..{offset + n} of {self.size}"
            )
        self.f.seek(self.start + offset)
        data = self.f.read(n)
        if len(data) != n:
            raise self.error("the file is truncated (short read)")
        return data

    def _read_directory(self) -> None:
        tail_len = min(self.size, _EOCD.size + _MAX_COMMENT)
        tail = self._read_at(self.size - tail_len, tail_len)
        # The end record is followed only by its comment: find the last
        # signature whose comment length reaches exactly the end of the file.
        pos = tail.rfind(b"PK\x05\x06")
        while pos >= 0:
            if pos + _EOCD.size <= tail_len:
                comment_len = _EOCD.unpack_from(tail, pos)[7]
                if pos + _EOCD.size + comment_len == tail_len:
                    break
            pos = tail.rfind(b"PK\x05\x06", 0, pos)
        if pos < 0:
            raise self.error("no zip end record (the file is truncated or is not a zip checkpoint)")
        eocd_offset = self.size - tail_len + pos
        _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, pos)
        if disk != 0 or cd_disk != 0 or n_disk != n_total:
            raise self.error("multi-disk zip archives are not supported")
        directory_end = eocd_offset
        if 0xFFFF in (n_total,) or 0xFFFFFFFF in (cd_size, cd_offset):
            n_total, cd_size, cd_offset, directory_end = self._read_zip64(eocd_offset)
        if cd_offset + cd_size > directory_end:
            raise self.error("the central directory lies outside the file")
        directory = self._read_at(cd_offset, cd_size)
        p = 0
        for _ in range(n_total):
            if p + _CENTRAL.size > cd_size:
                raise self.error("the central directory is truncated")
            fields = _CENTRAL.unpack_from(directory, p)
            (sig, _, _, flags, method, _, _, crc, csize, usize, nlen, elen, clen) = fields[:13]
            header_offset = fields[16]
            if sig != _SIG_CENTRAL:
                raise self.error(f"bad central directory signature at byte {cd_offset + p}")
            end = p + _CENTRAL.size + nlen + elen + clen
            if end > cd_size:
                raise self.error("the central directory is truncated")
            raw_name = directory[p + _CENTRAL.size : p + _CENTRAL.size + nlen]
            extra = directory[p + _CENTRAL.size + nlen : p + _CENTRAL.size + nlen + elen]
            p = end
            name = self._decode_name(raw_name, flags)
            if usize == 0xFFFFFFFF or csize == 0xFFFFFFFF or header_offset == 0xFFFFFFFF:
                usize, csize, header_offset = self._zip64_extra(
                    name, extra, usize, csize, header_offset
                )
            if flags & 0x1:
                raise self.error(f"entry {name!r} is encrypted")
            if method != 0:
                raise self.error(
                    f"entry {name!r} is compressed (method {method}); checkpoints are stored "
                    "uncompressed"
                )
            if csize != usize:
                raise self.error(f"entry {name!r} has inconsistent sizes")
            if name in self.entries:
                raise self.error(f"entry {name!r} appears twice")
            self.entries[name] = self._locate(name, raw_name, header_offset, usize, crc, cd_offset)
        if p != cd_size:
            raise self.error("the central directory has trailing bytes")
        # No two entries may share bytes (overlapping entries are how small
        # zips claim to hold huge data).
        spans = sorted(
            (e.header_offset, e.data_offset + e.size, e.name) for e in self.entries.values()
        )
        for (_, end, a), (start, _, b) in zip(spans, spans[1:], strict=False):
            if start < end:
                raise self.error(f"entries {a!r} and {b!r} overlap")

    def _read_zip64(self, eocd_offset: int) -> tuple[int, int, int, int]:
        loc_offset = eocd_offset - _LOCATOR64.size
        sig, disk, rec_offset, n_disks = _LOCATOR64.unpack(
            self._read_at(loc_offset, _LOCATOR64.size)
        )
        if sig != _SIG_LOCATOR64 or disk != 0 or n_disks != 1:
            raise self.error("bad zip64 end record locator")
        if rec_offset + _EOCD64.size > loc_offset:
            raise self.error("the zip64 end record lies outside the file")
        rec = _EOCD64.unpack(self._read_at(rec_offset, _EOCD64.size))
        sig, _, _, _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset = rec
        if sig != _SIG_EOCD64 or disk != 0 or cd_disk != 0 or n_disk != n_total:
            raise self.error("bad zip64 end record")
        return n_total, cd_size, cd_offset, rec_offset

    def _zip64_extra(
        self, name: str, extra: bytes, usize: int, csize: int, offset: int
    ) -> tuple[int, int, int]:
        p = 0
        while p + 4 <= len(extra):
            tag, n = struct.unpack_from("<HH", extra, p)
            if tag == 0x0001:
                values = extra[p + 4 : p + 4 + n]
                q = 0
                out = []
                for v in (usize, csize, offset):
                    if v == 0xFFFFFFFF:
                        if q + 8 > len(values):
                            raise self.error(f"entry {name!r} has a truncated zip64 field")
                        v = struct.unpack_from("<Q", values, q)[0]
                        q += 8
                    out.append(v)
                return out[0], out[1], out[2]
            p += 4 + n
        raise self.error(f"entry {name!r} lacks its zip64 sizes")

    def _decode_name(self, raw: bytes, flags: int) -> str:
        try:
            if flags & _UTF8 or raw.isascii():
                return raw.decode("utf-8")
            return raw.decode("cp437")  # the zip default for names not flagged UTF-8
        except UnicodeDecodeError:
            raise self.error(f"entry name {raw!r} is not valid UTF-8") from None

    def _locate(
        self, name: str, raw_name: bytes, offset: int, size: int, crc: int, limit: int
    ) -> Entry:
        header = self._read_at(offset, _LOCAL.size)
        sig, _, _, method, _, _, _, _, _, nlen, elen = _LOCAL.unpack(header)
        if sig != _SIG_LOCAL:
            raise self.error(f"entry {name!r}: bad local header signature")
        if method != 0:
            raise self.error(f"entry {name!r}: local header says it is compressed")
        if self._read_at(offset + _LOCAL.size, nlen) != raw_name:
            raise self.error(f"entry {name!r}: the local header names another file")
        data_offset = offset + _LOCAL.size + nlen + elen
        if data_offset + size > limit:
            raise self.error(f"entry {name!r} ({size} bytes) runs past its place in the file")
        return Entry(name, offset, data_offset, size, crc)

    def read(self, entry: Entry) -> bytes:
        """The bytes of ``entry``, CRC-checked."""
        data = self._read_at(entry.data_offset, entry.size)
        self.check_crc(entry, data)
        return data

    def readinto(self, entry: Entry, buffer: Any, crc: Callable[[], int] | None = None) -> None:
        """Fills ``buffer`` (exactly ``entry.size`` writable bytes) and checks the
        CRC (computed by ``crc()`` when given: a faster route than zlib's)."""
        view = memoryview(buffer).cast("B")
        if len(view) != entry.size:
            raise self.error(f"entry {entry.name!r}: expected {len(view)} bytes, has {entry.size}")
        self.f.seek(self.start + entry.data_offset)
        done = 0
        while done < entry.size:
            n = self.f.readinto(view[done:])
            if not n:
                raise self.error(f"entry {entry.name!r} is truncated")
            done += n
        if crc is not None:
            if crc() != entry.crc:
                raise self.error(
                    f"entry {entry.name!r} fails its CRC-32 check (the file is corrupt)"
                )
            return
        self.check_crc(entry, view)

    def check_crc(self, entry: Entry, data: Any) -> None:
        if zlib.crc32(data) != entry.crc:
            raise self.error(f"entry {entry.name!r} fails its CRC-32 check (the file is corrupt)")


class ZipWriter:
    """Writes stored entries to ``f`` sequentially (no seeking), each entry's
    data aligned to :data:`ALIGNMENT` bytes from the start of the archive."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.offset = 0
        self.central: list[bytes] = []

    def _write(self, data: Any) -> None:
        self.f.write(data)
        self.offset += memoryview(data).nbytes

    def write(self, name: str, data: Any, crc: int | None = None) -> None:
        """Adds ``name`` holding ``data`` (any contiguous buffer); ``crc`` is its
        CRC-32 when the caller has it already."""
        view = memoryview(data).cast("B")
        size = view.nbytes
        if crc is None:
            crc = zlib.crc32(view)
        raw = name.encode("utf-8")
        big = size >= ZIP64_LIMIT or self.offset >= ZIP64_LIMIT
        local_extra = struct.pack("<HHQQ", 1, 16, size, size) if big else b""
        # Pad with an extra field ("FB", as PyTorch's writer) so data starts aligned.
        before = self.offset + _LOCAL.size + len(raw) + len(local_extra) + 4
        pad = -before % ALIGNMENT
        local_extra += struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        small = 0xFFFFFFFF if big else size
        header_offset = self.offset
        self._write(
            _LOCAL.pack(
                _SIG_LOCAL,
                _VERSION,
                _UTF8,
                0,
                0,
                0x21,
                crc,
                small,
                small,
                len(raw),
                len(local_extra),
            )
        )
        self._write(raw + local_extra)
        self._write(view)
        fields = [size, size, header_offset]
        wide = [v for v in fields if v >= ZIP64_LIMIT]
        if wide:
            # Only the fields that overflow go in the zip64 extra, in this order.
            central_extra = struct.pack("<HH", 1, 8 * len(wide)) + b"".join(
                struct.pack("<Q", v) for v in wide
            )
            fields = [0xFFFFFFFF if v >= ZIP64_LIMIT else v for v in fields]
        else:
            central_extra = b""
        self.central.append(
            _CENTRAL.pack(
                _SIG_CENTRAL, _VERSION, _VERSION, _UTF8, 0, 0, 0x21, crc, fields[1], fields[0],
                len(raw), len(central_extra), 0, 0, 0, 0, fields[2],
            )
            + raw
            + central_extra
        )  # fmt: skip

    def close(self) -> None:
        """Writes the central directory and the end records."""
        cd_offset = self.offset
        for record in self.central:
            self._write(record)
        cd_size, n = self.offset - cd_offset, len(self.central)
        if n >= ZIP64_COUNT_LIMIT or cd_offset >= ZIP64_LIMIT or cd_size >= ZIP64_LIMIT:
            rec_offset = self.offset
            self._write(
                _EOCD64.pack(_SIG_EOCD64, _EOCD64.size - 12, _VERSION, _VERSION, 0, 0, n, n, cd_size, cd_offset)
            )  # fmt: skip
            self._write(_LOCATOR64.pack(_SIG_LOCATOR64, 0, rec_offset, 1))
            n16 = min(n, 0xFFFF)
            self._write(
                _EOCD.pack(_SIG_EOCD, 0, 0, n16, n16, min(cd_size, 0xFFFFFFFF), 0xFFFFFFFF, 0)
            )
        else:
            self._write(_EOCD.pack(_SIG_EOCD, 0, 0, n, n, cd_size, cd_offset, 0))
