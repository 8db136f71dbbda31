"""Match a needs file of any size against an index in chunks, with bounded memory and resumable output.

Memory holds the index, one chunk of queries and its results, and the set of ids seen so far (to reject duplicates
across chunks): O(index + chunk_rows·k + n_ids), independent of the file size for CSV/TSV/JSONL (XLSX, JSON arrays
and Parquet files are read whole by their libraries).

After each chunk is appended and fsynced, a checkpoint ``OUT.progress.json`` records the chunks done and the output
size. ``resume=True`` truncates the output to that size (dropping a chunk half-written by a kill), re-reads the
skipped chunks only to rebuild the rejected-rows list and the duplicate check, and appends the rest, so the final
output equals an uninterrupted run's byte for byte. The checkpoint is removed when the run completes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from ..ingest.records import prepare
from ..ingest.tables import Rejection, iter_table, table_format
from ..output.tables import write_table
from .engine import MatchEngine

logger = logging.getLogger(__name__)


@dataclass
class JobResult:
    """Counts of one streamed run."""

    queries: int = 0
    valid: int = 0
    rows: int = 0
    skipped_chunks: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def prepared_chunks(needs: Path, chunk_rows: int, rejected: list[Rejection]) -> Iterator[tuple[int, pd.DataFrame]]:
    """Validated chunks of a needs file; rejected rows (duplicate ids across chunks too) go to ``rejected``."""
    seen: dict[str, int] = {}
    for c, (raw, read_rejects) in enumerate(iter_table(needs, chunk_rows=chunk_rows)):
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


def validate_file(needs: Path, chunk_rows: int = 50_000) -> list[Rejection]:
    """Every rejected row of a needs file, read in chunks (for --strict, before any output is written)."""
    rejected: list[Rejection] = []
    for _ in prepared_chunks(needs, chunk_rows, rejected):
        pass
    return rejected


def checkpoint_path(out: Path) -> Path:
    """Where the progress of a streamed run into ``out`` is recorded."""
    return out.with_name(out.name + ".progress.json")


def _identity(needs: Path, out: Path, k: int, filters: Any, chunk_rows: int) -> dict[str, Any]:
    st = needs.stat()
    return {"needs": str(needs.resolve()), "needs_bytes": st.st_size, "needs_mtime_ns": st.st_mtime_ns,
            "out": str(out.resolve()), "k": k, "filters": filters, "chunk_rows": chunk_rows}


def _write_checkpoint(path: Path, body: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(body, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def match_file(engine: MatchEngine, needs: Path, out: Path, k: int = 10, filters: Iterable[str] | None = None,
               chunk_rows: int = 2000, resume: bool = False,
               progress: Callable[[int], None] | None = None) -> JobResult:
    """Match every need in ``needs`` against ``engine`` and append the table to ``out`` (CSV/TSV/JSONL)."""
    if table_format(out) not in ("csv", "tsv", "jsonl"):
        raise InputError(f"{out}: streamed output must be CSV, TSV or JSONL")
    table_format(needs)
    if not needs.is_file():
        raise InputError(f"{needs}: no such file")
    filt = sorted(filters or [])
    out.parent.mkdir(parents=True, exist_ok=True)
    ident = _identity(needs, out, k, filt, chunk_rows)
    ckpt = checkpoint_path(out)
    done = 0
    if resume:
        if not ckpt.is_file():
            raise InputError(f"{out}: nothing to resume (no {ckpt.name}); run without --resume")
        state = json.loads(ckpt.read_text(encoding="utf-8"))
        if state.get("identity") != ident:
            raise InputError(f"{ckpt}: written for other inputs or options; run without --resume to start over")
        done, size = int(state["chunks_done"]), int(state["bytes"])
        have = out.stat().st_size if out.exists() else 0
        if have < size:
            raise InputError(f"{out}: shorter ({have} bytes) than its checkpoint says ({size}); start over")
        if size == 0:
            out.unlink(missing_ok=True)
        else:
            os.truncate(out, size)
        logger.info("%s: resuming after %d chunks (%d bytes)", out, done, size)
    else:
        out.unlink(missing_ok=True)
        _write_checkpoint(ckpt, {"identity": ident, "chunks_done": 0, "bytes": 0})
    result = JobResult(skipped_chunks=done)
    for c, recs in prepared_chunks(needs, chunk_rows, result.rejected):
        result.valid += len(recs)
        if c < done or not len(recs):
            if c >= done:
                _write_checkpoint(ckpt, {"identity": ident, "chunks_done": c + 1,
                                         "bytes": out.stat().st_size if out.exists() else 0})
            continue
        frame = engine.match(recs, k=k, filters=filt or None).to_frame(recs, engine.records_)
        if len(frame):
            write_table(frame, out, append=out.exists() and out.stat().st_size > 0)
            _fsync(out)
        result.queries += len(recs)
        result.rows += len(frame)
        _write_checkpoint(ckpt, {"identity": ident, "chunks_done": c + 1,
                                 "bytes": out.stat().st_size if out.exists() else 0})
        if progress is not None:
            progress(len(recs))
    ckpt.unlink(missing_ok=True)
    return result
