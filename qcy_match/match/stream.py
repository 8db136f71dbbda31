"""Read a needs file of any size in chunks and append each chunk's results to the output, resumably.

Memory holds one chunk of queries and the set of ids seen so far (to reject duplicates across chunks), independent of
the file size for CSV/TSV/JSONL (XLSX, JSON arrays and Parquet files are read whole by their libraries).

After each chunk is appended, the output is fsynced and a checkpoint ``OUT.progress.json`` records the chunks done
and the output size. A resumed run truncates the output to that size (dropping a chunk half-written by a kill),
re-reads the skipped chunks only to rebuild the rejected-rows list and the duplicate check, and appends the rest, so
the final output equals an uninterrupted run's byte for byte. The checkpoint also records what the run read (the
needs file's size and time, the index's identity, the options): a resume against anything else is refused, since
its chunks would mix two runs' results. :func:`qcy_match.match.jobs.match_file` drives it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from .. import persistence
from ..errors import InputError
from ..ingest.records import prepare, xlsx_sheet
from ..ingest.tables import Rejection, iter_table, table_format

logger = logging.getLogger(__name__)


def prepared_chunks(needs: Path, chunk_rows: int, rejected: list[Rejection], sheet: str | int | None = None
                    ) -> Iterator[tuple[int, pd.DataFrame]]:
    """Validated chunks of a needs file; rejected rows (duplicate ids across chunks too) go to ``rejected``.
    ``sheet``: the worksheet of an XLSX file (ignored for other formats).
    """
    seen: dict[str, int] = {}
    for c, (raw, read_rejects) in enumerate(iter_table(needs, chunk_rows=chunk_rows, sheet=xlsx_sheet(needs, sheet))):
        rejected.extend(read_rejects)
        prepared = prepare(raw, str(needs))
        rejected.extend(prepared.rejected)
        recs, rows = prepared.records, prepared.rows
        ids = recs["id"].astype(str)
        dup = ids.isin(seen.keys()).to_numpy()
        for rid, row in zip(ids[dup], rows[dup], strict=True):
            rejected.append(Rejection(str(needs), int(row), "id", f"duplicate id (first used in row {seen[rid]})",
                                      rid))
        seen.update(zip(ids[~dup], rows[~dup].tolist(), strict=True))
        yield c, recs[~dup].reset_index(drop=True)


def validate_file(needs: Path, chunk_rows: int = 50_000, sheet: str | int | None = None) -> list[Rejection]:
    """Every rejected row of a needs file, read in chunks (for strictness, before any output is written)."""
    rejected: list[Rejection] = []
    for _ in prepared_chunks(needs, chunk_rows, rejected, sheet):
        pass
    return rejected


def checkpoint_path(out: Path) -> Path:
    """Where the progress of a streamed run into ``out`` is recorded."""
    return out.with_name(out.name + ".progress.json")


class Checkpointed:
    """The chunks of a needs file still to match into ``out``; each is checkpointed once its results are appended.

    Iterating yields the validated queries of each chunk not done yet. The caller appends their results to ``out``
    before asking for the next one; only then is the chunk recorded as done, so a kill at any moment loses at most
    the chunk in hand. ``identity`` (the index's identity and the options) must match the checkpoint's, as must the
    needs file, for a run to resume. ``started`` tells whether this run has written a checkpoint of its own (which a
    failure leaves behind for a resume).
    """

    def __init__(self, needs: Path, out: Path, chunk_rows: int, identity: dict[str, Any], resume: bool,
                 sheet: str | int | None = None) -> None:
        table_format(needs)
        if not needs.is_file():
            raise InputError(f"{needs}: no such file")
        self.needs, self.out, self.chunk_rows, self.resume, self.sheet = needs, out, chunk_rows, resume, sheet
        st = needs.stat()
        self.identity = {"needs": str(needs.resolve()), "needs_bytes": st.st_size, "needs_mtime_ns": st.st_mtime_ns,
                         "out": str(out.resolve()), **identity, "chunk_rows": chunk_rows}
        self.path = checkpoint_path(out)
        self.rejected: list[Rejection] = []
        self.valid = 0  # usable needs in every chunk, the skipped ones too
        self.skipped = 0  # chunks a resumed run found done
        self.started = False

    def __iter__(self) -> Iterator[pd.DataFrame]:
        """Queries of each chunk to match, after resuming or starting over."""
        done = self.skipped = self._start()
        self.started = True
        for c, recs in prepared_chunks(self.needs, self.chunk_rows, self.rejected, self.sheet):
            self.valid += len(recs)
            if c < done:
                continue
            if len(recs):
                yield recs
                if self.out.exists():
                    _fsync(self.out)
            self._record(c + 1)
        self.path.unlink(missing_ok=True)

    def _start(self) -> int:
        """Chunks already done: the checkpoint's when resuming (output cut back to its size), else none."""
        if not self.resume:
            self.out.unlink(missing_ok=True)
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self._record(0)
            return 0
        if not self.path.is_file():
            raise InputError(f"{self.out}: nothing to resume (no {self.path.name}); run without --resume")
        identity, done, size = self._read()
        self._same_run(identity)
        have = self.out.stat().st_size if self.out.exists() else 0
        if have < size:
            raise InputError(f"{self.out}: shorter ({have} bytes) than its checkpoint says ({size}); start over")
        if size == 0:
            self.out.unlink(missing_ok=True)
        else:
            os.truncate(self.out, size)
        logger.info("%s: resuming after %d chunks (%d bytes)", self.out, done, size)
        return done

    def _read(self) -> tuple[dict[str, Any], int, int]:
        """The checkpoint's identity, chunks done and output size; a damaged checkpoint is refused, not guessed at."""
        again = "run without --resume to start over"
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise InputError(f"{self.path}: not a readable checkpoint ({exc}); {again}") from exc
        if not isinstance(state, dict) or not isinstance(state.get("identity"), dict) or \
                not all(type(state.get(k)) is int and state[k] >= 0 for k in ("chunks_done", "bytes")):
            raise InputError(f"{self.path}: not a checkpoint of qcy-match (an identity object and counts expected); "
                             f"{again}")
        return state["identity"], state["chunks_done"], state["bytes"]

    def _same_run(self, saved: dict[str, Any]) -> None:
        """Refuse a checkpoint written for other inputs or options, naming the first difference."""
        for key in sorted(set(saved) | set(self.identity)):
            was, now = saved.get(key), self.identity.get(key)
            if was == now:
                continue
            if key == "index":
                why = ("the index changed since that run began (another version or another index): resuming would "
                       "mix the results of both")
            elif key.startswith("needs"):
                why = "the needs file is another one or changed since that run began"
            else:
                why = f"it was written with {key} {was!r:.60}, this run has {now!r:.60}"
            raise InputError(f"{self.path}: cannot resume: {why}; run without --resume to start over")

    def _record(self, chunks_done: int) -> None:
        size = self.out.stat().st_size if self.out.exists() else 0
        persistence.write_atomic(self.path, json.dumps({"identity": self.identity, "chunks_done": chunks_done,
                                                        "bytes": size}))


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
