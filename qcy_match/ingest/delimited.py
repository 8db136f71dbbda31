"""CSV and TSV rows, with a quote left open caught instead of swallowing the rest of the file.

A stray ``"`` at the start of a field opens a quoted field that, read by the book, runs on to the next quote in the
file, perhaps thousands of lines later, turning every row in between into one long value. The reader parses
strictly, so such a run shows as an error (a quote that never closes, or closes with text after it); a run that
does close cleanly is caught when a line inside it starts like a row of its own (an id shaped like the row's own,
then a delimiter). Either way the row where the quote opened is rejected and the lines it took in are read again as
rows. A run that closes cleanly and swallows rows whose first column holds no digits goes unseen.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError
from .encoding import Line, RowTooLong, TextLines
from .rows import MAX_ROW_BYTES, Rejection, Row, cut, fit_row, header_names

_DIGITS = re.compile(r"\d+")


def iter_delimited(path: Path, fmt: str) -> Iterator[Row]:
    """Rows of a CSV or TSV file, numbered from 1 after the header (blank lines keep their number)."""
    # csv's own cap (128 KiB by default) would cut long descriptions; rows are capped by TextLines instead.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_ROW_BYTES))
    with TextLines(path) as lines:
        first = lines.next_line()
        if first is None:
            return
        if first.text is None:
            raise InputError(f"{path}: the header line is longer than {MAX_ROW_BYTES:,} bytes")
        lines.push_back([first])
        delimiter = "\t" if fmt == "tsv" or ("\t" in first.text and "," not in first.text) else ","
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (csv.Error, RowTooLong) as exc:
            raise InputError(f"{path}: cannot read the header line ({exc or 'too long'})") from exc
        header = header_names(path, cells)
        yield from _rows(reader, lines, header, delimiter)


def _rows(reader: Iterator[list[str]], lines: TextLines, header: list[str], delimiter: str) -> Iterator[Row]:
    rownum = 0
    while True:
        rownum += 1
        lines.mark()
        try:
            values = next(reader)
        except StopIteration:
            return
        except RowTooLong:
            taken = lines.taken
            if taken[0].text is None:
                yield rownum, None, Rejection("", rownum, "<row>", f"line {taken[0].number} is longer than "
                                              f"{MAX_ROW_BYTES:,} bytes")
            else:
                yield _runaway(rownum, lines, header, delimiter, f"runs past the {MAX_ROW_BYTES:,}-byte row limit")
            continue
        except csv.Error as exc:
            if len(lines.taken) > 1:
                yield _runaway(rownum, lines, header, delimiter, f"is not closed properly ({exc})")
                continue
            # A quote misplaced within one line ('"钛合金"薄壁件') is read leniently, as spreadsheets do.
            values = _loose(lines.taken[0], delimiter)
        else:
            if len(lines.taken) > 1 and _takes_in_rows(lines.taken, delimiter):
                yield _runaway(rownum, lines, header, delimiter, "takes in lines that look like rows of their own")
                continue
        row = fit_row(rownum, values, header)
        if row is not None:
            yield row


def _loose(line: Line, delimiter: str) -> list[str]:
    return next(csv.reader([line.text or ""], delimiter=delimiter), [])


def _runaway(rownum: int, lines: TextLines, header: list[str], delimiter: str, why: str) -> Row:
    """Reject the row where a quoted field opened and hand the lines after it back to be read as rows."""
    taken = lines.taken
    opened = len(_loose(taken[0], delimiter)) - 1
    field = header[opened] if 0 <= opened < len(header) else f"column {opened + 1}"
    reason = f"unclosed quote: the quoted field opened on line {taken[0].number} {why}"
    if len(taken) > 1:
        span = f"line {taken[1].number} is" if len(taken) == 2 else f"lines {taken[1].number}–{taken[-1].number} are"
        reason += f"; {span} read again as rows"
        lines.push_back(taken[1:])
    return rownum, None, Rejection("", rownum, field, reason, cut((taken[0].text or "").rstrip("\r\n")))


def _takes_in_rows(taken: list[Line], delimiter: str) -> bool:
    """Whether a quoted field's continuation lines include the start of a row: an id shaped like the row's own.

    Ids share a shape (``A17`` and ``A18`` are both ``A0``); text that merely spans lines, such as the paragraphs of
    a description, rarely starts a line with such a token followed by a delimiter, so a well-formed multi-line field
    is not mistaken for swallowed rows.
    """
    own = _loose(taken[0], delimiter)
    shape = _DIGITS.sub("0", own[0].strip()) if own else ""
    if "0" not in shape:
        return False
    for line in taken[1:]:
        fields = _loose(line, delimiter)
        if len(fields) > 1 and _DIGITS.sub("0", fields[0].strip()) == shape:
            return True
    return False
