r"""Text files line by line: each line decoded on its own (UTF-8 or GB18030), with a cap on a row's size.

Exports glued together from several sources mix encodings; decoding the whole file as one would turn the rows of
the other encoding into mojibake or rejections. Splitting on the raw bytes is safe because neither UTF-8 nor
GB18030 uses a byte below 0x30 inside a multi-byte character, so ``\r`` and ``\n`` always end a line.
"""

from __future__ import annotations

import io
import logging
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from ..errors import InputError
from .rows import MAX_ROW_BYTES, REPLACEMENT

logger = logging.getLogger(__name__)

ENCODINGS = ("utf-8-sig", "gb18030")
NAMES = {"utf-8-sig": "UTF-8", "gb18030": "GB18030"}
BOM = b"\xef\xbb\xbf"


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8 (with or without BOM) or GB18030, the encodings Chinese exports use.

    Returns ``(text, encoding)``. If no encoding decodes cleanly, the one with fewest errors is used with
    U+FFFD in place of bad bytes, so the rows that hold them can be rejected one by one.
    """
    try:
        # Plain UTF-8 on the bytes after a BOM: the utf-8-sig codec is written in Python, slow line by line.
        return raw.removeprefix(BOM).decode("utf-8"), "utf-8-sig"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        pass
    best = min(ENCODINGS, key=lambda e: raw.decode(e, errors="replace").count(REPLACEMENT))
    return raw.decode(best, errors="replace"), best + " (with undecodable bytes)"


class RowTooLong(Exception):
    """Raised by :class:`TextLines` when the row being read passes :data:`MAX_ROW_BYTES`."""


class Line(NamedTuple):
    """One physical line: its 1-based number in the file, its text (None when over the size cap), its bytes."""

    number: int
    text: str | None
    size: int


class TextLines:
    r"""The physical lines of a text file, for a reader that may hand some back to read them again.

    Lines end at ``\n``, ``\r\n`` or a lone ``\r``, as in Python's universal newlines; ends are kept. A reader
    calls :meth:`mark` at the start of each row; :attr:`taken` then holds the lines that row consumed. Iterating
    raises :class:`RowTooLong` when those lines would pass ``max_row_bytes``; a line that alone is longer is read
    past without being held and shows as a :class:`Line` whose text is None.
    """

    def __init__(self, path: str | os.PathLike[str], max_row_bytes: int = MAX_ROW_BYTES) -> None:
        """Open ``path``; refuse UTF-16 text, which the line splitting cannot handle."""
        self.path = Path(path)
        self.max_row_bytes = max_row_bytes
        self._fh = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        if self._fh.peek(2)[:2] in (b"\xff\xfe", b"\xfe\xff"):
            self._fh.close()
            raise InputError(f"{self.path}: UTF-16 text (Excel's 'Unicode text'); save it as UTF-8 CSV instead")
        self._raw = raw_lines(self._fh, max_row_bytes)
        self._pending: deque[Line] = deque()
        self._count = 0
        self.taken: list[Line] = []
        self._taken_size = 0
        self.seen: dict[str, list[int]] = {}

    def __enter__(self) -> TextLines:
        """Use as a context manager that closes the file."""
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        """Close the file and say whether it mixed encodings."""
        self.close()

    def close(self) -> None:
        """Close the file and log a warning when its lines came in more than one encoding."""
        self._fh.close()
        if len(self.seen) > 1:
            parts = "; ".join(f"{name} on lines {', '.join(map(str, lines[:3]))}{'…' if len(lines) > 3 else ''}"
                              for name, lines in self.seen.items())
            logger.warning("%s: the file mixes encodings (%s); each line was decoded on its own", self.path, parts)

    def __iter__(self) -> TextLines:
        """Iterate over the lines' text."""
        return self

    def __next__(self) -> str:
        """The next line's text, counted into :attr:`taken`."""
        line = self._pending.popleft() if self._pending else self._read()
        if line is None:
            raise StopIteration
        if line.text is None or self._taken_size + line.size > self.max_row_bytes:
            if self.taken:
                # The row so far is too long; this line may start a good row of its own, so it stays unread.
                self._pending.appendleft(line)
            else:
                self.taken.append(line)
            raise RowTooLong
        self.taken.append(line)
        self._taken_size += line.size
        return line.text

    def mark(self) -> None:
        """Start a new row: forget the lines taken so far."""
        self.taken = []
        self._taken_size = 0

    def push_back(self, lines: list[Line]) -> None:
        """Hand lines back: they are read again, in order, before the rest of the file."""
        self._pending.extendleft(reversed(lines))

    def next_line(self) -> Line | None:
        """The next whole :class:`Line` (None at the end), outside any row."""
        return self._pending.popleft() if self._pending else self._read()

    def _read(self) -> Line | None:
        raw = next(self._raw, None)
        if raw is None:
            return None
        self._count += 1
        if isinstance(raw, int):
            return Line(self._count, None, raw)
        text, encoding = decode_bytes(raw)
        if encoding in NAMES and not raw.isascii():  # an undecodable line is rejected with its row instead
            lines = self.seen.setdefault(NAMES[encoding], [])
            if len(lines) < 4:
                lines.append(self._count)
        return Line(self._count, text, len(raw))


def raw_lines(fh: io.BufferedReader, cap: int) -> Iterator[bytes | int]:
    r"""The lines of a binary file with their ends (``\n``, ``\r\n`` or a lone ``\r``).

    A line longer than ``cap`` bytes comes as its length (an int), read past without being held.
    """
    head = b""  # the start of a line, read but not yet ended
    while True:
        chunk = fh.readline(max(cap + 1 - len(head), 1))
        data = head + chunk if head else chunk
        if not data:
            return
        # What is left after an over-long line may hold whole lines; otherwise only a CR can end one early.
        parts = data.splitlines(keepends=True) if head or b"\r" in chunk else [data]
        head = parts.pop()
        for part in parts:
            yield part if len(part) <= cap else len(part)
        # A CR at the end of what was read ends the line only if no LF follows it.
        if not chunk or head.endswith(b"\n") or (head.endswith(b"\r") and fh.peek(1)[:1] != b"\n"):
            yield head if len(head) <= cap else len(head)
            head = b""
        elif len(head) > cap:
            size, head = _skip_line(fh, len(head))
            yield size


def _skip_line(fh: io.BufferedReader, size: int) -> tuple[int, bytes]:
    """Read to the end of an over-long line; return its full length and what was read past its end."""
    while chunk := fh.readline(1 << 20):
        cr = chunk.find(b"\r")
        if 0 <= cr < len(chunk) - 1 and chunk[cr + 1] != 0x0A:  # a lone CR ends the line
            return size + cr + 1, chunk[cr + 1:]
        size += len(chunk)
        if chunk.endswith(b"\n") or (chunk.endswith(b"\r") and fh.peek(1)[:1] != b"\n"):
            break
    return size, b""
