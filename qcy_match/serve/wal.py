"""The write-ahead log of acknowledged updates: appended and fsynced before the reply, replayed at start.

One operation per line: ``<crc32 as 8 hex digits> <JSON>`` and a newline. JSON text holds no raw newline, so a line is a
whole operation. A process killed while appending leaves at most one torn last line, which replay drops and cuts
off (that write was never acknowledged). A bad line *followed by* good ones is not a torn tail but damage, and
replay refuses it rather than silently skip acknowledged writes. The log is truncated after each snapshot
(an atomic save of the index); replaying operations the snapshot already holds is harmless because an upsert sets
a record and a delete removes it, whatever was there.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any

from .. import persistence
from ..errors import IndexFormatError

logger = logging.getLogger(__name__)


def _line(op: dict[str, Any]) -> bytes:
    body = json.dumps(op, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _parse(line: bytes) -> dict[str, Any] | None:
    """The operation of one line, or None when the line is torn or fails its checksum."""
    if not line.endswith(b"\n") or len(line) < 11 or line[8:9] != b" ":
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        op = json.loads(body)
    except ValueError:
        return None
    return op if isinstance(op, dict) and op.get("op") in ("upsert", "delete") else None


def read_ops(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The operations of a log file and the bytes they fill; a torn last line is left out (not cut off)."""
    with open(path, "rb") as fh:
        lines = fh.readlines()
    ops: list[dict[str, Any]] = []
    good_bytes = 0
    for i, line in enumerate(lines):
        op = _parse(line)
        if op is None:
            if any(_parse(rest) is not None for rest in lines[i + 1:]):
                raise IndexFormatError(f"{path}: line {i + 1} is damaged but later lines are intact; "
                                       "refusing to skip acknowledged writes (inspect or move the log away)")
            logger.warning("%s: dropping a torn last line (%d bytes) left by a crash", path, len(line))
            break
        ops.append(op)
        good_bytes += len(line)
    return ops, good_bytes


class WriteAheadLog:
    """An append-only file of operations; :meth:`append` returns only once the operation is on disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        if new:  # the file's name must survive a crash too
            persistence.fsync_dir(self.path.parent)
        self.ops = 0

    def replay(self) -> list[dict[str, Any]]:
        """The logged operations in order; a torn last line is cut off the file."""
        ops, good_bytes = read_ops(self.path)
        if good_bytes < self.path.stat().st_size:
            os.ftruncate(self._fd, good_bytes)
            os.fsync(self._fd)
        self.ops = len(ops)
        return ops

    def append(self, op: dict[str, Any]) -> None:
        """Write one operation and fsync: when this returns, the operation survives a crash."""
        data = _line(op)
        written = 0
        while written < len(data):
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)
        self.ops += 1

    def truncate(self) -> None:
        """Empty the log (after a snapshot holds everything in it)."""
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self.ops = 0

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)
