"""A zip writer whose memory does not grow with the number of members.

``zipfile.ZipFile`` keeps a ``ZipInfo`` per member until it writes the central directory at the
end: about half a kilobyte per file, 50 MB for a 100,000-image export. Here each member's central
directory record is written to a temporary file as soon as the member is stored, and copied to
the output at the end. Members are stored (no compression: images are compressed already), with
ZIP64 records where sizes, offsets or the member count need them.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import time
import zlib
from typing import IO

_MARK_32 = 0xFFFFFFFF  # "see the ZIP64 record" in a 4-byte field
_MARK_16 = 0xFFFF
#: From these on, sizes and offsets (and the member count) go into ZIP64 records.
ZIP64_FROM = 0xFFFFFFFF
ZIP64_COUNT_FROM = 0xFFFF
_UTF8_NAMES = 0x0800
_VERSION = 45  # 4.5: ZIP64
_UNIX_FILE = (0o100644 << 16) | 0  # external attributes: a regular file, rw-r--r--
_CHUNK = 1024 * 1024


def _dos_time(now: float) -> tuple[int, int]:
    t = time.localtime(now)
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), ((t.tm_year - 1980) << 9) | (
        t.tm_mon << 5
    ) | t.tm_mday


class ZipWriter:
    """Write stored members to ``out`` (which need not be seekable); ``close()`` ends the archive.

    >>> with ZipWriter(out) as archive:
    ...     archive.add("cat/1.png", open("1.png", "rb"))
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.offset = 0
        self.count = 0
        self.central = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close() or __exit__)
        self.central_size = 0
        self.dos_time, self.dos_date = _dos_time(time.time())

    def __enter__(self) -> ZipWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.central.close()

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.offset += len(data)

    def add(self, name: str, src: IO[bytes]) -> None:
        """Store ``src`` (a readable, seekable binary file, read twice: its CRC first) as ``name``."""
        crc, size = 0, 0
        while chunk := src.read(_CHUNK):
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
        src.seek(0)
        encoded = name.encode("utf-8")
        big = size >= ZIP64_FROM
        local_extra = struct.pack("<HHQQ", 1, 16, size, size) if big else b""
        header_offset = self.offset
        self._write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                _VERSION,
                _UTF8_NAMES,
                0,  # stored
                self.dos_time,
                self.dos_date,
                crc,
                _MARK_32 if big else size,
                _MARK_32 if big else size,
                len(encoded),
                len(local_extra),
            )
            + encoded
            + local_extra
        )
        written = 0
        while chunk := src.read(_CHUNK):
            self._write(chunk)
            written += len(chunk)
        if written != size:
            raise OSError(f"{name} changed while it was being zipped")
        self._central_record(encoded, crc, size, header_offset)

    def _central_record(self, encoded: bytes, crc: int, size: int, header_offset: int) -> None:
        big_size, big_offset = size >= ZIP64_FROM, header_offset >= ZIP64_FROM
        extra_fields = ([size, size] if big_size else []) + ([header_offset] if big_offset else [])
        extra = (
            struct.pack(f"<HH{len(extra_fields)}Q", 1, 8 * len(extra_fields), *extra_fields) if extra_fields else b""
        )
        record = (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                (3 << 8) | _VERSION,  # made by: Unix
                _VERSION,
                _UTF8_NAMES,
                0,
                self.dos_time,
                self.dos_date,
                crc,
                _MARK_32 if big_size else size,
                _MARK_32 if big_size else size,
                len(encoded),
                len(extra),
                0,  # comment
                0,  # disk
                0,  # internal attributes
                _UNIX_FILE,
                _MARK_32 if big_offset else header_offset,
            )
            + encoded
            + extra
        )
        self.central.write(record)
        self.central_size += len(record)
        self.count += 1

    def close(self) -> None:
        """Write the central directory and the end records (ZIP64 ones where needed)."""
        start = self.offset
        self.central.seek(0)
        shutil.copyfileobj(self.central, self.out, _CHUNK)
        self.offset += self.central_size
        self.central.close()
        size = self.central_size
        zip64 = self.count >= ZIP64_COUNT_FROM or start >= ZIP64_FROM or size >= ZIP64_FROM
        if zip64:
            zip64_end = self.offset
            self._write(
                struct.pack(
                    "<IQHHIIQQQQ", 0x06064B50, 44, _VERSION, _VERSION, 0, 0, self.count, self.count, size, start
                )
            )
            self._write(struct.pack("<IIQI", 0x07064B50, 0, zip64_end, 1))
        count = _MARK_16 if zip64 else self.count
        self._write(
            struct.pack(
                "<IHHHHIIH",
                0x06054B50,
                0,
                0,
                count,
                count,
                _MARK_32 if zip64 else size,
                _MARK_32 if zip64 else start,
                0,
            )
        )
