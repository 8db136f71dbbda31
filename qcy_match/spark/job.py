"""The Spark job on the driver: validate needs, match them on the executors, report the rejected rows.

Stages (each a ``mapInPandas`` over the functions of :mod:`.worker`, so executors run the library's own code):

1. the needs as ``(_row, _record)`` rows: input row number and the raw row as JSON;
2. validation with the ingest rules, per batch; then a job-wide duplicate-id check (a window over the normalised
   id: the first row keeps the id, as ``qcy-match match`` does);
3. matching, one unit of work per (index directory, batch): each executor's Python worker opens the directory once
   and keeps it. With one directory the units are the batches; :func:`merge_top_k` is the separate step that
   keeps each need's best k once a need is matched against several directories (shards).

Direction ``"achievements"`` (each achievement gets needs) indexes the needs on the driver with the achievements
index's configuration, as ``match_file`` does, saves that index under ``work_dir`` (storage every executor reads),
and matches the achievements of the index, a range of positions per task, against it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import errors
from ..errors import MissingExtraError, UsageError
from ..ingest.records import prepare
from ..ingest.tables import Rejection, iter_table
from ..match import filters as filt
from ..match.engine import MatchEngine
from ..match.jobs import searched_side
from ..match.results import LABEL
from ..output.tables import escape_formula, for_spreadsheet
from . import shards, worker

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

JAVA_HELP = "Spark needs Java 17: install it with 'apt-get install -y openjdk-17-jre-headless' (or set JAVA_HOME)"
_RAW = "_row long, _record string"
_CHECKED = "_row long, id string, _record string, file string, row long, field string, reason string, value string"


def require_spark() -> None:
    """Refuse, in one line, a machine without pyspark or Java."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("Spark jobs need the [spark] extra: pip install 'qcy-match[spark]'") from exc
    home = os.environ.get("JAVA_HOME")
    if not (shutil.which("java") or (home and Path(home, "bin", "java").exists())):
        raise MissingExtraError(JAVA_HELP)


def session(master: str | None = None, app: str = "qcy-match", conf: dict[str, str] | None = None) -> SparkSession:
    """A Spark session (the running one under ``spark-submit``); ``master`` such as ``local[2]`` for one machine."""
    require_spark()
    from pyspark.sql import SparkSession

    # pyspark 4.3 warns on every pandas conversion that it does not fully support pandas 3; the conversions used
    # here (strings, numbers, Arrow) are covered by the tests.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

    if master and master.startswith("local"):  # the workers are this interpreter, with the library installed
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app).config("spark.sql.execution.arrow.pyspark.enabled", "true") \
        .config("spark.ui.showConsoleProgress", "false")
    if master:
        builder = builder.master(master)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@dataclasses.dataclass
class Needs:
    """Needs as the job's first stage takes them: ``(_row, _record)`` rows, their input columns, and the rows the
    reader could not parse (for the report).
    """

    rows: DataFrame
    columns: list[str]
    source: str = "<spark>"
    rejected: list[Rejection] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SparkJob:
    """The matches (the columns of ``qcy-match match``) and the rejected rows (file, row, field, reason, value)."""

    matches: DataFrame
    rejected: DataFrame
    direction: str
    read_rejected: list[Rejection] = dataclasses.field(default_factory=list)  # rows the reader could not parse
    kept: list[DataFrame] = dataclasses.field(default_factory=list)  # persisted stages, until :meth:`release`

    def release(self) -> None:
        """Drop the stages the job persisted (the validated needs) once its outputs are written."""
        for df in self.kept:
            df.unpersist()

    def rejections(self) -> list[Rejection]:
        """Every rejected row, in input order (collected to the driver: rejected rows are few)."""
        found = [rejection(r) for r in self.rejected.collect()]
        return self.read_rejected + sorted(found, key=lambda r: r.row)


def read_needs(spark: SparkSession, path: str | os.PathLike[str], sheet: str | int | None = None,
               partitions: int | None = None) -> Needs:
    """A needs file (any format ``qcy-match match`` reads) read with the library's readers on the driver, so
    encodings, column aliases and unparseable rows are handled as the CLI does; rows are validated by the job.
    """
    frames, rejected, columns = [], [], {}
    for raw, read_rejects in iter_table(path, chunk_rows=50_000, sheet=sheet):
        rejected.extend(read_rejects)
        cols = [c for c in raw.columns if c != worker.ROW]
        columns.update(dict.fromkeys(cols))
        records = [json.dumps(dict(zip(cols, values, strict=True)), ensure_ascii=False, default=_jsonable)
                   for values in raw[cols].itertuples(index=False, name=None)]
        frames.append(pd.DataFrame({worker.ROW: raw[worker.ROW].astype("int64"), worker.RECORD: records}))
    pdf = pd.concat(frames, ignore_index=True)
    df = spark.createDataFrame(pdf, _RAW)
    return Needs(df.repartition(partitions) if partitions else df, list(columns), str(path), rejected)


def _jsonable(value: Any) -> Any:
    """A numpy scalar or array in a row, as JSON can hold it."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def as_needs(df: DataFrame | Needs, source: str = "<spark>") -> Needs:
    """A Spark DataFrame of needs (any columns; ``_row`` if present numbers the rows, else they are numbered in
    order) as the job's first stage takes them.
    """
    if isinstance(df, Needs):
        return df
    from pyspark.sql import functions as F

    columns = [c for c in df.columns if c != worker.ROW]
    record = F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns]))
    if worker.ROW in df.columns:
        rows = df.select(F.col(worker.ROW).cast("long").alias(worker.ROW), record.alias(worker.RECORD))
    else:  # consecutive 1-based numbers in the DataFrame's order, as a file's rows are numbered
        numbered = df.select(record.alias(worker.RECORD)).rdd.zipWithIndex().map(lambda t: (t[1] + 1, t[0][0]))
        rows = numbered.toDF(_RAW)
    return Needs(rows, columns, source)


def match(needs: DataFrame | Needs, index: str | os.PathLike[str], k: int = 10,
          filters: filt.Filters | Iterable[str] | None = None, direction: str = "needs") -> DataFrame:
    """Match a Spark DataFrame of needs against an index directory of achievements: a DataFrame with exactly the
    columns ``qcy-match match`` writes. Rejected rows: use :func:`run`, which returns both.
    """
    return run(needs, index, k, filters, direction).matches


def run(needs: DataFrame | Needs, index: str | os.PathLike[str], k: int = 10,
        filters: filt.Filters | Iterable[str] | None = None, direction: str = "needs",
        work_dir: str | os.PathLike[str] | None = None, partitions: int | None = None) -> SparkJob:
    """The matches and the rejected rows of a Spark matching job (see the module docstring).

    ``index``: an index directory of achievements, on storage every executor reads. ``direction="achievements"``
    indexes the needs into ``work_dir`` (default: a temporary directory, which only a local master can share).
    ``partitions``: tasks of the matching stage (default: twice Spark's default parallelism).
    """
    if k < 1:
        raise UsageError(f"k must be at least 1, not {k}")
    searched_side(direction)
    wanted = filt.parse([filters] if isinstance(filters, str) else filters)
    index = str(index)
    needs = as_needs(needs)
    spark = needs.rows.sparkSession
    valid, rejected, checked = validated(needs)
    sharded = shards.is_sharded(index)
    tasks = partitions or 2 * spark.sparkContext.defaultParallelism
    if direction == "needs":
        columns = _describe(spark, index, needs.columns, wanted, sharded=sharded)
        if sharded:  # needs × shards, each need's pools merged before fusion (spark.shards)
            return SparkJob(shards.match(valid, index, k, wanted, columns, tasks), rejected, direction,
                            list(needs.rejected), [checked])
        # An explicit count: adaptive execution would merge the (small) shuffled needs into one task, and the
        # matching, not the data, is the work to spread.
        valid = valid.repartition(tasks).sortWithinPartitions(worker.ROW)
        matches = valid.mapInPandas(_matcher(index, k, wanted, columns), _schema(columns))
    else:
        # A sharded index's records are the queries here: each shard is an ordinary index directory, read in order.
        parts = shards.shard_paths(index) if sharded else [(index, len(worker.open_index(index)))]
        searched = _index_needs(valid, parts[0][0],
                                Path(work_dir) if work_dir else Path(tempfile.mkdtemp("-qcy-spark")))
        first = worker.open_index(parts[0][0])
        columns = _describe(spark, parts[0][0], [str(c) for c in first.records_.columns], wanted, searched)
        tables = [spark.range(size, numPartitions=tasks).withColumnRenamed("id", "pos").mapInPandas(
            _position_matcher(path, searched, k, wanted, columns), _schema(columns)) for path, size in parts]
        matches = functools.reduce(lambda a, b: a.union(b), tables)
    return SparkJob(matches, rejected, direction, list(needs.rejected), [checked])


def validated(rows: Needs) -> tuple[DataFrame, DataFrame, DataFrame]:
    """The usable rows ``(_row, _record)`` (an id's first row), the rejected ones (the report's columns), and the
    validated stage both read, persisted (unpersist it when done).
    """
    from pyspark import StorageLevel

    # Kept: the usable and the rejected rows both read the validated rows, which should be computed once.
    checked = rows.rows.mapInPandas(_validator(rows.source), _CHECKED).persist(StorageLevel.MEMORY_AND_DISK)
    valid, rejected = _deduplicated(checked, rows.source)
    return valid, rejected, checked


def rejection(row: Any) -> Rejection:
    """A collected row of the rejected rows as a :class:`Rejection`."""
    return Rejection(row["file"], int(row["row"]), row["field"], row["reason"], row["value"] or "")


def _validator(source: str) -> Any:
    def validate(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return worker.validate_batches(batches, source)
    return validate


def _matcher(index: str, k: int, wanted: dict[str, list[str]], columns: list[tuple[str, str]]) -> Any:
    def run_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return worker.match_batches(batches, index, k, wanted, columns)
    return run_batches


def _position_matcher(index: str, searched: str, k: int, wanted: dict[str, list[str]],
                      columns: list[tuple[str, str]]) -> Any:
    def run_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return worker.match_positions(batches, index, searched, k, wanted, columns)
    return run_batches


def _deduplicated(checked: DataFrame, source: str) -> tuple[DataFrame, DataFrame]:
    """The usable rows (each id's first row) and the rejected ones (by validation, or a later row of an id)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    first = F.min(worker.ROW).over(Window.partitionBy("id"))
    marked = checked.withColumn("_first", F.when(F.col("id").isNotNull(), first))
    valid = marked.filter(F.col("id").isNotNull() & (F.col(worker.ROW) == F.col("_first"))) \
        .select(worker.ROW, worker.RECORD)
    invalid = marked.filter(F.col("reason").isNotNull()).select(*worker.REJECTION)
    duplicate = marked.filter(F.col("id").isNotNull() & (F.col(worker.ROW) > F.col("_first"))).select(
        F.lit(source).alias("file"), F.col(worker.ROW).alias("row"), F.lit("id").alias("field"),
        F.concat(F.lit("duplicate id (first used in row "), F.col("_first").cast("string"), F.lit(")")).alias("reason"),
        F.col("id").alias("value"))
    return valid, invalid.unionByName(duplicate)


def _describe(spark: SparkSession, index: str, query_columns: list[str], wanted: dict[str, list[str]],
              searched: str | None = None, sharded: bool = False) -> list[tuple[str, str]]:
    """The output columns, found by one task on an executor (which then keeps the index open), so the driver
    never loads the index for direction needs. An error there (a filter on a field the records lack, an index
    that cannot be read or is not of achievements) is raised here as the library's own error.
    """
    def probe(_: Any) -> dict[str, Any]:
        try:
            if sharded:  # one shard is opened (and kept), never the whole index
                return {"columns": shards.describe(index, query_columns, wanted)}
            engine = worker.open_index(index)
            if engine.side_ != "achievements":
                raise UsageError(f"{index} is an index of {engine.side_}; matching against an index needs an "
                                 "index of achievements (build it with 'qcy-match index --achievements FILE')")
            return {"columns": worker.describe(index, query_columns, wanted, searched)}
        except errors.QcyError as exc:
            return {"error": type(exc).__name__, "message": str(exc)}
        except OSError as exc:
            return {"error": "IndexFormatError", "message": f"{index}: cannot be read ({exc})"}

    answer = spark.sparkContext.parallelize([0], 1).map(probe).collect()[0]
    if "error" in answer:
        raise getattr(errors, answer["error"], errors.QcyError)(answer["message"])
    return [tuple(c) for c in answer["columns"]]


def _schema(columns: list[tuple[str, str]]) -> str:
    return ", ".join(f"`{name}` {kind}" for name, kind in columns)


def _index_needs(valid: DataFrame, index: str, work_dir: Path) -> str:
    """Direction achievements: the usable needs, indexed with the achievements index's configuration (as
    ``match_file`` does) and saved under ``work_dir`` for the executors.
    """
    rows = valid.toPandas().sort_values(worker.ROW)  # in input order, as match_file indexes them (ties by position)
    records = prepare(worker.records_of(rows)).records
    if len(records) == 0:
        raise errors.RejectedRowsError("no usable needs to index (see the rejected-rows report)")
    config = worker.open_index(index).config
    path = work_dir / "needs-index"
    MatchEngine(config).index(records, side="needs").save(path)
    return str(path)


def for_csv(matches: DataFrame) -> DataFrame:
    """The matches as safe to write as CSV as every CSV the package writes: text a spreadsheet would run as a
    formula gets a leading quote, a CR becomes a line feed (:func:`qcy_match.output.tables.for_spreadsheet`).
    """
    names = [escape_formula(c) for c in matches.columns]
    schema = ", ".join(f"`{n}` {t}" for n, (_, t) in zip(names, matches.dtypes, strict=True))

    def clean(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield for_spreadsheet(batch, "csv")

    return matches.mapInPandas(clean, schema)


def merge_top_k(matches: DataFrame, k: int, direction: str = "needs") -> DataFrame:
    """Each query's best ``k`` rows across units of work (one query matched against several index directories),
    ranked again by score, ties by the found record's id. The step a sharded index needs; with one directory each
    query's rows already come from a single unit.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    query, found = f"{LABEL[direction]}_id", f"{LABEL[searched_side(direction)]}_id"
    order = Window.partitionBy(query).orderBy(F.col("score").desc(), F.col(found))
    return matches.withColumn("rank", F.row_number().over(order).cast("long")).filter(F.col("rank") <= k) \
        .select(*matches.columns)
