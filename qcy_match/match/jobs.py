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

Before anything is written or deleted, the job checks that it can read its inputs and that no output (the table,
the rejected-rows report, the checkpoint) is, lies inside or holds an input (the needs and achievements files, the
index directory) or another output (:func:`qcy_match.output.paths.check_outputs`), and that the filters name fields
of the records searched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import pandas as pd

from .. import persistence
from ..config import EngineConfig
from ..errors import IndexFormatError, UsageError
from ..ingest.records import load_usable, require_rows, xlsx_sheet
from ..ingest.tables import Rejection
from ..output.paths import check_outputs, input_table, output_table
from ..output.rejects import report_rejections
from ..output.tables import write_table
from ..progress import bar as progress_bar
from . import filters as filt
from .device import resolve as resolve_device
from .engine import MatchEngine, RecordsLike
from .results import LABEL, SIDES, Matches
from .stream import Checkpointed, checkpoint_path, validate_file

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
                  show_progress: bool = False, device: str | None = None) -> tuple[Matches, MatchEngine]:
    """Match both sides in one call, in memory. ``direction='needs'``: each need gets achievements;
    ``'achievements'``: the reverse. Returns the matches and the engine built over the searched side.
    ``device``: as in :meth:`MatchEngine.match` (``"cuda"`` scores the batch on a GPU).
    """
    resolve_device(device)  # a GPU asked for and absent fails before the index is built
    corpus, side, queries = orient(direction, achievements, needs)
    engine = MatchEngine(config).index(corpus, side=side, show_progress=show_progress)
    return engine.match(queries, k=k, filters=filters, show_progress=show_progress, device=device), engine


def match_file(needs: str | os.PathLike[str], out: str | os.PathLike[str], *,
               index: MatchEngine | str | os.PathLike[str] | None = None,
               achievements: str | os.PathLike[str] | None = None, direction: str = "needs", k: int = 10,
               filters: filt.Filters | Iterable[str] | None = None, config: EngineConfig | None = None,
               chunk_rows: int = 2000, resume: bool = False, strict: bool = False,
               rejects: str | os.PathLike[str] | None = None, sheet: str | int | None = None,
               show_progress: bool = False, on_chunk: Callable[[JobChunk], None] | None = None,
               device: str | None = None, min_confidence: float | None = None) -> JobResult:
    """Match a needs file against an index of achievements (``index``: loaded, or its directory) or an achievements
    file (``achievements``, indexed with ``config``) and write the table of matches to ``out``.

    With ``direction="achievements"`` each achievement gets needs: the needs file is indexed (with the index's
    configuration when ``index`` is given) and the achievements are the queries. Queries are matched
    ``chunk_rows`` at a time; ``on_chunk``, a progress callback, sees each chunk's queries, matches and table.
    ``resume`` continues an interrupted streamed run (see the module docstring) if the index, the needs file and
    the options are those of that run. Rows that cannot be used are reported to ``rejects`` (default
    ``<out stem>.rejected.csv``); with ``strict`` any such row raises :class:`~qcy_match.errors.RejectedRowsError`
    before output is written, as does a file without a usable row. ``sheet`` selects the worksheet of the inputs
    that are XLSX workbooks. An output that would overwrite an input or another output raises
    :class:`~qcy_match.errors.OutputError` before anything is written. ``device`` (``"cuda"``, or ``"cpu"`` for
    torch's CPU backend) scores each chunk with torch on that device (:mod:`.device`); a GPU asked for where torch
    sees none raises :class:`~qcy_match.errors.UsageError` before anything is read or written. ``min_confidence``
    leaves out matches whose confidence is below it.
    """
    t0 = time.time()
    resolve_device(device)
    needs, out = Path(needs), Path(out)
    if index is not None and achievements is not None:
        raise UsageError("give an index of achievements or an achievements file, not both")
    if index is None and achievements is None:
        raise UsageError("give an index of achievements or an achievements file")
    if k < 1 or chunk_rows < 1:
        raise UsageError(f"k and chunk_rows must be at least 1, not {k} and {chunk_rows}")
    if min_confidence is not None and not 0 <= min_confidence <= 1:
        raise UsageError(f"min_confidence must be between 0 and 1, not {min_confidence}")
    searched_side(direction)  # refuses an unknown direction
    fmt = output_table(out)
    wanted = filt.parse([filters] if isinstance(filters, str) else filters)  # bad filters fail before any work
    streamed = index is not None and direction == "needs" and fmt in RESUMABLE
    if resume and not streamed:
        raise UsageError("resume needs an index (--index), direction 'needs' and a CSV/TSV/JSONL output: only that "
                         "mode is streamed under a checkpoint")
    report = Path(rejects) if rejects else out.with_name(out.stem + ".rejected.csv")
    _check_paths(needs, out, report, index, achievements, config, streamed)
    result = JobResult(out, report, direction, streamed=streamed)
    opts = _Options(k, wanted, chunk_rows, fmt, sheet, show_progress, on_chunk, device, min_confidence)
    if index is not None and streamed:
        return _streamed(*_achievements_index(index, identify=True), needs, opts, resume, strict, result, t0)
    source = Path(achievements) if achievements is not None else _achievements_index(index)[0]  # type: ignore[arg-type]
    engine, queries = _sides(source, needs, result, strict, config, opts)
    out.unlink(missing_ok=True)
    step = chunk_rows if fmt in APPENDABLE else max(1, len(queries))
    result.engine, result.valid, result.index_seconds = engine, len(queries), time.time() - t0
    _write(engine, (queries.iloc[s:s + step].reset_index(drop=True) for s in range(0, len(queries), step)), opts,
           result)
    return result


def _check_paths(needs: Path, out: Path, report: Path, index: MatchEngine | str | os.PathLike[str] | None,
                 achievements: str | os.PathLike[str] | None, config: EngineConfig | None, streamed: bool) -> None:
    """Refuse unreadable inputs, and outputs that would overwrite an input or each other, before any work."""
    input_table(needs)
    if achievements is not None:
        input_table(achievements)
    index_dir = None if index is None or isinstance(index, MatchEngine) else index
    dicts = config.user_dicts if config is not None and achievements is not None else []
    ckpt = checkpoint_path(out) if streamed else None
    check_outputs([out, report, ckpt, ckpt and ckpt.with_name(ckpt.name + ".tmp")],
                  [needs, achievements, index_dir, *dicts])


@dataclasses.dataclass(frozen=True)
class _Options:
    """How a job matches and writes its chunks."""

    k: int
    filters: dict[str, list[str]]
    chunk_rows: int
    fmt: str  # of the output
    sheet: str | int | None  # of XLSX inputs
    show_progress: bool
    on_chunk: Callable[[JobChunk], None] | None
    device: str | None = None  # torch device of the device path, None for the default path
    min_confidence: float | None = None


def _achievements_index(index: MatchEngine | str | os.PathLike[str], identify: bool = False
                        ) -> tuple[MatchEngine, str]:
    """The index, loaded if given as a directory, and with ``identify`` its :func:`index_identity` (else "").
    An index of needs is refused (needs are always read from a file).
    """
    if isinstance(index, MatchEngine):
        engine, identity = index, index_identity(index) if identify else ""
    elif not identify:
        engine, identity = MatchEngine.load(index), ""
    else:
        # The manifest is read before and after loading: an update saved in between would leave the identity
        # naming one version and the engine holding another.
        for _ in range(3):
            before = _manifest_digest(index)
            engine = MatchEngine.load(index)  # refuses a missing or damaged directory
            identity = index_identity(index)
            if identity == before:
                break
        else:
            raise IndexFormatError(f"{index}: changed while it was being loaded, three times; try again")
    if engine.side_ != "achievements":
        name = "the index" if isinstance(index, MatchEngine) else str(index)
        raise UsageError(f"{name} is an index of {engine.side_}; matching against an index needs an index of "
                         "achievements (build it with 'qcy-match index --achievements FILE')")
    return engine, identity


def _sides(achievements: MatchEngine | Path, needs: Path, result: JobResult, strict: bool,
           config: EngineConfig | None, opts: _Options) -> tuple[MatchEngine, pd.DataFrame]:
    """Read the files whole, report rejected rows, and return the engine to search and the queries.

    An index on the query side gives its records as the queries and its configuration to the other side's index.
    """
    side_a: MatchEngine | pd.DataFrame = achievements if isinstance(achievements, MatchEngine) else \
        load_usable(achievements, result.rejected, sheet=opts.sheet).records
    side_n: MatchEngine | pd.DataFrame = load_usable(needs, result.rejected, sheet=opts.sheet).records
    searched, side, queries = orient(result.direction, side_a, side_n)
    _check_filters(searched.records_ if isinstance(searched, MatchEngine) else searched, opts.filters)
    result.report = report_rejections(result.rejected, result.rejects_path, strict)
    if isinstance(queries, MatchEngine):
        config, queries = queries.config, queries.records_
    if not isinstance(searched, MatchEngine):
        searched = MatchEngine(config).index(searched, side=side, show_progress=opts.show_progress)
    return searched, queries


def _check_filters(records: pd.DataFrame, wanted: dict[str, list[str]]) -> None:
    """Refuse a filter on a field the searched records lack, before anything is written (the search would)."""
    filt.mask(records.iloc[:0], wanted)


def index_identity(index: MatchEngine | str | os.PathLike[str]) -> str:
    """What a checkpoint records of the index searched, so a resume against another index is refused: the SHA-256
    of a directory's manifest (which holds the SHA-256 of every file), or of a loaded engine's side, configuration
    and records.
    """
    if isinstance(index, MatchEngine):
        h = hashlib.sha256(json.dumps([index.side_, index.config.to_dict()], sort_keys=True, default=str).encode())
        recs = index.records_.apply(lambda col: col.map(lambda v: "\x1f".join(map(str, v)) if isinstance(v, list)
                                                        else v))
        h.update(json.dumps([str(c) for c in recs.columns]).encode())
        h.update(pd.util.hash_pandas_object(recs, index=False).to_numpy().tobytes())
        return f"records sha256:{h.hexdigest()}"
    digest = _manifest_digest(index)
    if digest is None:
        persistence.read_manifest(index, verify=False)  # says what is wrong with the directory
        raise IndexFormatError(f"{index}: {persistence.LAYOUT.manifest} cannot be read")
    return digest


def _manifest_digest(index: str | os.PathLike[str]) -> str | None:
    """The SHA-256 of an index directory's manifest, or None when it cannot be read."""
    try:
        return f"manifest sha256:{persistence.version(index)}"
    except OSError:
        return None


def _streamed(engine: MatchEngine, identity: str, needs: Path, opts: _Options, resume: bool, strict: bool,
              result: JobResult, t0: float) -> JobResult:
    """Match a needs file chunk by chunk, appending each chunk's table under a checkpoint.

    A failure or an interrupt after the checkpoint was written keeps it, and says so in a note on the exception.
    """
    _check_filters(engine.records_, opts.filters)
    if strict:  # every row is checked before the first is written
        report_rejections(validate_file(needs, sheet=opts.sheet), result.rejects_path, strict)
    options = {"k": opts.k, "filters": opts.filters, "index": identity, "sheet": xlsx_sheet(needs, opts.sheet)}
    if opts.min_confidence is not None:  # only when given, so earlier runs' checkpoints still resume
        options["min_confidence"] = opts.min_confidence
    chunks = Checkpointed(needs, result.out, opts.chunk_rows, options, resume, opts.sheet)
    result.engine, result.index_seconds = engine, time.time() - t0
    try:
        _write(engine, chunks, opts, result)
    except BaseException as exc:
        if chunks.started and chunks.path.exists():
            exc.add_note(f"{chunks.path} is kept: run again with --resume (resume=True) to continue")
        raise
    result.valid, result.skipped_chunks, result.rejected = chunks.valid, chunks.skipped, chunks.rejected
    result.report = report_rejections(result.rejected, result.rejects_path, strict)
    require_rows(needs, result.valid, len(result.rejected))
    return result


def _write(engine: MatchEngine, chunks: Iterable[pd.DataFrame], opts: _Options, result: JobResult) -> None:
    """Match each chunk of queries and write its table: appended at once, or all together for XLSX/Parquet."""
    t0, out = time.time(), result.out
    result.corpus = len(engine)
    tables = []
    with progress_bar(total=result.valid or None, desc="match", unit=LABEL[result.direction],
                      enabled=opts.show_progress) as bar:
        for queries in chunks:
            matches = engine.match(queries, k=opts.k, filters=opts.filters or None, device=opts.device,
                                   min_confidence=opts.min_confidence)
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
        write_table(pd.DataFrame(columns=[f"{query}_id", f"{found}_id", "rank", "score", "confidence"]), out)
    result.match_seconds = time.time() - t0
