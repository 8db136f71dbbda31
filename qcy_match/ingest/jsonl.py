"""JSONL rows (one object per line, numbered by line) and JSON arrays (numbered by position)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from .encoding import TextLines, decode_bytes
from .rows import MAX_COLUMNS, MAX_ROW_BYTES, Rejection, Row, check_row, cut


def iter_jsonl(path: Path) -> Iterator[Row]:
    """Rows of a JSONL file, or of a ``.json`` file holding one array of objects."""
    columns: set[str] = set()
    if not _is_array(path):
        with TextLines(path) as lines:
            while (line := lines.next_line()) is not None:
                if line.text is None:
                    yield line.number, None, Rejection("", line.number, "<line>",
                                                       f"line longer than {MAX_ROW_BYTES:,} bytes")
                elif line.text.strip():
                    yield _parse_line(line.number, line.text, columns)
        return
    # A JSON array has to be parsed whole, so it is decoded whole too; JSONL is the streamed format.
    text, _ = decode_bytes(path.read_bytes())
    try:
        items = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{path}: invalid JSON ({exc})") from exc
    for i, item in enumerate(items, 1):
        yield _json_row(i, item, columns)


def _is_array(path: Path) -> bool:
    if path.suffix.lower() != ".json":
        return False
    with open(path, "rb") as fh:
        head = fh.read(4096)
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"[")


def _parse_line(i: int, line: str, columns: set[str]) -> Row:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        return i, None, Rejection("", i, "<line>", f"invalid JSON ({exc.msg} at column {exc.colno})", cut(line))
    except RecursionError:
        return i, None, Rejection("", i, "<line>", "JSON nested too deeply", cut(line))
    return _json_row(i, item, columns)


def _json_row(i: int, item: Any, columns: set[str]) -> Row:
    if not isinstance(item, dict):
        return i, None, Rejection("", i, "<line>", f"expected a JSON object, got {type(item).__name__}", cut(item))
    new = [k for k in item if k not in columns]
    if len(columns) + len(new) > MAX_COLUMNS:
        # Every distinct key becomes a column of the table; a file of ever-new keys would build a vast one.
        return i, None, Rejection("", i, new[0], f"the file would have more than {MAX_COLUMNS:,} distinct fields",
                                  cut(item.get(new[0])))
    row = check_row(i, item)
    if row[1] is not None:
        columns.update(new)
    return row
