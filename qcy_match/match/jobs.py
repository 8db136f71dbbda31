"""The matching job: needs and achievements in, a table of matches and a rejected-rows report out.

:func:`match_file` is the one file-to-file path: ``qcy-match match`` and ``qcy-match demo`` call it, and so can any
program. :func:`match_records` is the same job in memory. Both orient the two sides with :func:`orient`: direction
``"needs"`` gives each need its best achievements, ``"achievements"`` the reverse.

How ``match_file`` reads and writes:

* against an index of achievements, direction ``"needs"``, CSV/TSV/JSONL output: the needs file is read in chunks
  and each chunk's results are appended under a checkpoint, so a killed run can be resumed (:mod:`.stream`);
* otherwise both sides are read whole; appendable outputs (CSV/TSV/JSONL/JSON) are still written a chunk at a time,
  XLSX and Parquet in one piece.

Either way a table without a single match still gets its header row, the rejected-rows report is written beside
the output (``<out stem>.rejected.csv`` unless ``rejects`` says where), and with ``strict`` any rejected row fails
the job before any output is written.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import pandas as pd
from tqdm.auto import tqdm

from ..config import EngineConfig
from ..errors import UsageError
from ..ingest.records import load_usable, require_rows
from ..ingest.tables import Rejection, table_format
from ..output.rejects import report_rejections
from ..output.tables import write_table
from . import filters as filt
from .engine import MatchEngine, RecordsLike
from .results import LABEL, SIDES, Matches
from .stream import Checkpointed, validate_file

logger = logging.getLogger(__name__)

APPENDABLE = ("csv", "tsv", "jsonl", "json")  # written a chunk at a time; the others in one piece
RESUMABLE = ("csv", "tsv", "jsonl")  # can also be cut back to a checkpoint, so they are streamed from an index
T = TypeVar("T")


@dataclasses.dataclass
class JobChunk:
    """One chunk of a job, handed to ``on_chunk`` once its table is written (or kept, for XLSX and Parquet)."""

    queries: pd.DataFrame
    matches: Matches
    table: pd.DataFrame


@dataclasses.dataclass
class JobResult:
    """What one :func:`match_file` run read, matched and wrote."""

    out: Path
    rejects_path: Path
    direction: str = "needs"
    queries: int = 0  # queries matched by this run (a resumed run leaves out the chunks done before)
    corpus: int = 0  # records searched
    valid: int = 0  # usable query rows in the input
    rows: int = 0  # match rows this run wrote
    streamed: bool = False  # read and written chunk by chunk under a checkpoint (resumable)
    skipped_chunks: int = 0  # chunks a resumed run found done
    rejected: list[Rejection] = dataclasses.field(default_factory=list)
    report: str = ""  # one line about the rejected-rows report
    engine: MatchEngine | None = None  # the engine searched: loaded, or built over one of the files
    index_seconds: float = 0.0  # reading the inputs and loading or building the index
    match_seconds: float = 0.0  # matching and writing

    @property
    def searched(self) -> str:
        """The side searched: achievements for direction needs, and the reverse."""
        return searched_side(self.direction)

    @property
    def seconds(self) -> float:
        """Wall time of the whole job."""
        return self.index_seconds + self.match_seconds


def searched_side(direction: str) -> str:
    """The side a direction searches: ``"needs"`` (each need gets achievements) searches achievements."""
    if direction not in SIDES:
        raise UsageError(f"direction must be one of {SIDES}, not {direction!r}")
    return SIDES[1 - SIDES.index(direction)]


def orient(direction: str, achievements: T, needs: T) -> tuple[T, str, T]:
    """``(the side to search, its name, the queries)`` for a direction."""
    side = searched_side(direction)
    return (achievements, side, needs) if side == "achievements" else (needs, side, achievements)


def match_records(achievements: RecordsLike, needs: RecordsLike, direction: str = "needs", k: int = 10,
                  filters: filt.Filters | Iterable[str] | None = None, config: EngineConfig | None = None,
                  show_progress: bool = False) -> tuple[Matches, MatchEngine]:
    """Match both sides in one call, in memory. ``direction='needs'``: each need gets achievements;
    ``'achievements'``: the reverse. Returns the matches and the engine built over the searched side.
    """
    corpus, side, queries = orient(direction, achievements, needs)
    engine = MatchEngine(config).index(corpus, side=side, show_progress=show_progress)
    return engine.match(queries, k=k, filters=filters, show_progress=show_progress), engine


def match_file(needs: str | os.PathLike[str], out: str | os.PathLike[str], *,
               index: MatchEngine | str | os.PathLike[str] | None = None,
               achievements: str | os.PathLike[str] | None = None, direction: str = "needs", k: int = 10,
               filters: filt.Filters | Iterable[str] | None = None, config: EngineConfig | None = None,
               chunk_rows: int = 2000, resume: bool = False, strict: bool = False,
               rejects: str | os.PathLike[str] | None = None, show_progress: bool = False,
               on_chunk: Callable[[JobChunk], None] | None = None) -> JobResult:
    """Match a needs file against an index of achievements (``index``: loaded, or its directory) or an achievements
    file (``achievements``, indexed with ``config``) and write the table of matches to ``out``.

    With ``direction="achievements"`` each achievement gets needs: the needs file is indexed (with the index's
    configuration when ``index`` is given) and the achievements are the queries. Queries are matched
    ``chunk_rows`` at a time; ``on_chunk``, a progress callback, sees each chunk's queries, matches and table.
    ``resume`` continues an interrupted streamed run (see the module docstring). Rows that cannot be used are
    reported to ``rejects`` (default ``<out stem>.rejected.csv``); with ``strict`` any such row raises
    :class:`~qcy_match.errors.RejectedRowsError` before output is written, as does a file without a usable row.
    """
    t0 = time.time()
    needs, out = Path(needs), Path(out)
    result = JobResult(out, Path(rejects) if rejects else out.with_name(out.stem + ".rejected.csv"), direction)
    if index is not None and achievements is not None:
        raise UsageError("give an index of achievements or an achievements file, not both")
    if k < 1 or chunk_rows < 1:
        raise UsageError(f"k and chunk_rows must be at least 1, not {k} and {chunk_rows}")
    searched_side(direction)  # refuses an unknown direction
    fmt = table_format(out)
    wanted = filt.parse([filters] if isinstance(filters, str) else filters)  # bad filters fail before any work
    result.streamed = index is not None and direction == "needs" and fmt in RESUMABLE
    if resume and not result.streamed:
        raise UsageError("resume needs an index (--index), direction 'needs' and a CSV/TSV/JSONL output: only that "
                         "mode is streamed under a checkpoint")
    opts = _Options(k, wanted, chunk_rows, fmt, show_progress, on_chunk)
    if index is not None:
        source: MatchEngine | Path = _achievements_index(index)
    elif achievements is not None:
        source = Path(achievements)
    else:
        raise UsageError("give an index of achievements or an achievements file")
    if isinstance(source, MatchEngine) and result.streamed:
        return _streamed(source, needs, opts, resume, strict, result, t0)
    engine, queries = _sides(source, needs, result, strict, config, show_progress)
    out.unlink(missing_ok=True)
    step = chunk_rows if fmt in APPENDABLE else max(1, len(queries))
    result.engine, result.valid, result.index_seconds = engine, len(queries), time.time() - t0
    _write(engine, (queries.iloc[s:s + step].reset_index(drop=True) for s in range(0, len(queries), step)), opts,
           result)
    return result


@dataclasses.dataclass(frozen=True)
class _Options:
    """How a job matches and writes its chunks."""

    k: int
    filters: dict[str, list[str]]
    chunk_rows: int
    fmt: str  # of the output
    show_progress: bool
    on_chunk: Callable[[JobChunk], None] | None


def _achievements_index(index: MatchEngine | str | os.PathLike[str]) -> MatchEngine:
    """The index, loaded if given as a directory; an index of needs is refused (needs are always read from a file)."""
    engine = index if isinstance(index, MatchEngine) else MatchEngine.load(index)
    if engine.side_ != "achievements":
        name = "the index" if isinstance(index, MatchEngine) else str(index)
        raise UsageError(f"{name} is an index of {engine.side_}; matching against an index needs an index of "
                         "achievements (build it with 'qcy-match index --achievements FILE')")
    return engine


def _sides(achievements: MatchEngine | Path, needs: Path, result: JobResult, strict: bool,
           config: EngineConfig | None, show_progress: bool) -> tuple[MatchEngine, pd.DataFrame]:
    """Read the files whole, report rejected rows, and return the engine to search and the queries.

    An index on the query side gives its records as the queries and its configuration to the other side's index.
    """
    side_a: MatchEngine | pd.DataFrame = achievements if isinstance(achievements, MatchEngine) else \
        load_usable(achievements, result.rejected).records
    side_n: MatchEngine | pd.DataFrame = load_usable(needs, result.rejected).records
    searched, side, queries = orient(result.direction, side_a, side_n)
    result.report = report_rejections(result.rejected, result.rejects_path, strict)
    if isinstance(queries, MatchEngine):
        config, queries = queries.config, queries.records_
    if not isinstance(searched, MatchEngine):
        searched = MatchEngine(config).index(searched, side=side, show_progress=show_progress)
    return searched, queries


def _streamed(engine: MatchEngine, needs: Path, opts: _Options, resume: bool, strict: bool, result: JobResult,
              t0: float) -> JobResult:
    """Match a needs file chunk by chunk, appending each chunk's table under a checkpoint."""
    if strict:  # every row is checked before the first is written
        report_rejections(validate_file(needs), result.rejects_path, strict)
    chunks = Checkpointed(needs, result.out, opts.chunk_rows, {"k": opts.k, "filters": opts.filters}, resume)
    result.engine, result.index_seconds = engine, time.time() - t0
    _write(engine, chunks, opts, result)
    result.valid, result.skipped_chunks, result.rejected = chunks.valid, chunks.skipped, chunks.rejected
    result.report = report_rejections(result.rejected, result.rejects_path, strict)
    require_rows(needs, result.valid, len(result.rejected))
    return result


def _write(engine: MatchEngine, chunks: Iterable[pd.DataFrame], opts: _Options, result: JobResult) -> None:
    """Match each chunk of queries and write its table: appended at once, or all together for XLSX/Parquet."""
    t0, out = time.time(), result.out
    result.corpus = len(engine)
    tables = []
    with tqdm(total=result.valid or None, desc="match", unit=LABEL[result.direction],
              disable=not opts.show_progress) as bar:
        for queries in chunks:
            matches = engine.match(queries, k=opts.k, filters=opts.filters or None)
            chunk = JobChunk(queries, matches, matches.to_frame(queries, engine.records_))
            if len(chunk.table) and opts.fmt in APPENDABLE:
                write_table(chunk.table, out, append=out.exists() and out.stat().st_size > 0)
            elif len(chunk.table):
                tables.append(chunk.table)
            result.queries += len(queries)
            result.rows += len(chunk.table)
            bar.update(len(queries))
            if opts.on_chunk is not None:
                opts.on_chunk(chunk)
    if tables:
        write_table(pd.concat(tables, ignore_index=True), out)
    if not out.exists():  # not a single match: the table still gets its header row
        query, found = LABEL[result.direction], LABEL[result.searched]
        write_table(pd.DataFrame(columns=[f"{query}_id", f"{found}_id", "rank", "score"]), out)
    result.match_seconds = time.time() - t0
