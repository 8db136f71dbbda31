"""Spark over sharded indexes: matching (needs × shards fan out) and the distributed build (``spark-index``).

Matching, direction needs (``dfs_query_then_fetch``, the steps of :mod:`qcy_match.match.distributed`):

1. every usable need is paired with every shard, one stage per shard, so each task opens exactly one shard (kept
   by its Python worker, keyed by path, version and shard; see :func:`~qcy_match.match.distributed.open_shard`),
   and gives each need's candidate pool in that shard: the shard's BM25 and dense top-``candidates`` with both
   signals' scores, scored with the corpus-wide statistics;
2. each need's pools are merged and fused (grouped by need): its best k, as one unsharded index would give them;
3. each shard writes the table rows of the matches it holds, with explanations (corpus-wide IDF).

Direction achievements: the needs are indexed on the driver (with the shards' configuration) and each shard's
records are matched against that index, a range of positions of one shard per task.

Building: validated records are routed to shards by id; one task per shard tokenises, encodes and writes it; the
driver fits the encoder beforehand on a sample and writes the statistics and the manifest afterwards.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import errors, persistence
from ..config import EngineConfig
from ..errors import RejectedRowsError, UsageError
from ..ingest.records import prepare
from ..match import distributed as dist
from ..match.sharded import empty_shard, shard_dir
from . import worker

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_POOLS = "_row long, shard long, pos long, bm25 double, dense double, bm25_rank long, dense_rank long"
_HITS = ("_row long, shard long, pos long, rank long, score double, bm25_score double, bm25_rank long, "
         "dense_score double, dense_rank long")
FIT_SAMPLE = 100_000  # records the driver fits a corpus-fitted encoder on (all of them below this)


def _queries(rows: pd.DataFrame) -> pd.DataFrame:
    """Validated ``(_row, _record)`` rows as query records, numbered by ``_row``."""
    prepared = prepare(worker.records_of(rows))
    return prepared.records.assign(_row=[int(r) for r in prepared.rows])


def match(valid: DataFrame, index: str, k: int, wanted: dict[str, list[str]], columns: list[tuple[str, str]],
          partitions: int | None) -> DataFrame:
    """Direction needs over a sharded index: the matches of the usable needs ``valid`` (``(_row, _record)``)."""
    from pyspark.sql import functions as F

    spark = valid.sparkSession
    shards = dist.shard_count(index)
    config, n_docs = dist.shard_config(index)
    tasks = partitions or spark.sparkContext.defaultParallelism
    query, rank = columns[0][0], columns[2][0]  # the need's id and the rank, as to_frame names them
    needs = valid.repartition(tasks)

    def pools(shard: int) -> Any:
        def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            opened = dist.open_shard(index, shard)
            for batch in batches:
                queries = _queries(batch)
                yield dist.shard_pools(opened, queries, queries["_row"], k, wanted)
        return run

    def fuse(rows: pd.DataFrame) -> pd.DataFrame:
        return dist.fuse_pools(rows, config, k, n_docs)

    # needs × shards: one stage per shard, so each task opens exactly one shard
    fanned = functools.reduce(lambda a, b: a.union(b), [needs.mapInPandas(pools(s), _POOLS) for s in range(shards)])
    hits = fanned.groupBy(worker.ROW).applyInPandas(fuse, _HITS).join(valid, worker.ROW).persist()
    with_row = [*columns, (worker.ROW, worker.LONG)]

    def table(shard: int) -> Any:
        def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            opened = dist.open_shard(index, shard)
            for rows in batches:
                queries = _queries(rows.drop_duplicates(worker.ROW))
                out = dist.shard_rows(opened, rows, queries, k)
                if len(out):  # the need's row number, to put the rows in the input's order at the end
                    out[worker.ROW] = out[query].map(dict(zip(queries["id"], queries["_row"], strict=True)))
                    yield worker.conform(out, with_row)
        return run

    schema = ", ".join(f"`{name}` {kind}" for name, kind in with_row)
    rows = functools.reduce(lambda a, b: a.union(b), [
        hits.filter(F.col("shard") == s).repartition(tasks).mapInPandas(table(s), schema) for s in range(shards)])
    return rows.orderBy(worker.ROW, rank).select(*[F.col(f"`{c}`") for c, _ in columns])


def describe(index: str, query_columns: list[str], wanted: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The output columns for queries with ``query_columns`` (one probe matched in shard 0 alone); refuses
    filters on fields the records lack and an index of needs.
    """
    opened = dist.open_shard(index, 0)
    if opened.engine.side_ != "achievements":
        raise UsageError(f"{index} is an index of {opened.engine.side_}; matching against an index needs an index "
                         "of achievements")
    dist.check_filters(opened, wanted)
    probe = {c: None for c in query_columns} | {"id": "probe", "title": "技术"}
    queries = prepare(pd.DataFrame([probe])).records.assign(_row=1)
    config, n_docs = dist.shard_config(index)
    hits = dist.fuse_pools(dist.shard_pools(opened, queries, [1], 1, {}), config, 1, n_docs)
    table = dist.shard_rows(opened, hits, queries, 1)
    return [(str(c), worker._kind(table[c].dtype)) for c in table.columns]


def shard_paths(index: str) -> list[tuple[str, int]]:
    """Each shard's directory (an ordinary index directory) and record count, in shard order."""
    manifest = persistence.read_manifest(index, verify=False, allowed=lambda name: True)
    return [(str(Path(index) / shard_dir(i)), int(manifest["parts"][shard_dir(i)]["records"]))
            for i in range(dist.shard_count(index))]


def is_sharded(index: str) -> bool:
    """Whether ``index`` is a sharded directory (False for anything unreadable: the job reports that itself)."""
    try:
        return dist.shard_count(index) > 0
    except (OSError, ValueError, errors.QcyError):
        return False


# ---- the distributed build ---------------------------------------------------------------------------------------
def build(valid: DataFrame, columns: list[str], out: str | os.PathLike[str], shards: int, config: EngineConfig,
          side: str = "achievements", fit_sample: int = FIT_SAMPLE, seed: int = 0) -> Path:
    """Build the sharded index ``out`` from the usable records ``valid`` (``(_row, _record)``): the encoder is
    fitted on the driver on a seeded sample (every record up to ``fit_sample``), each shard is tokenised, encoded
    and written by one task into a staging directory beside ``out`` (storage every executor writes), and the
    driver writes the statistics and the manifest. ``columns``: the input's columns (every shard gets them all).
    """
    if shards < 1:
        raise UsageError(f"shards must be at least 1, not {shards}")
    total = valid.count()
    if total == 0:
        raise RejectedRowsError("no usable records to index (see the rejected-rows report)")
    fraction = dist.sample_fraction(total, fit_sample)
    sample = valid if fraction >= 1 else valid.sample(False, fraction, seed)
    out = Path(out)
    staging = out.with_name(f".{out.name}.build-{secrets.token_hex(6)}")
    staging.mkdir(parents=True)
    try:
        return _build(valid, columns, out, shards, config, side, staging, sample, total)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _build(valid: DataFrame, columns: list[str], out: Path, shards: int, config: EngineConfig, side: str,
           staging: Path, sample: DataFrame, total: int) -> Path:
    from pyspark.sql import functions as F

    dist.write_template(_records(sample.orderBy(worker.ROW).toPandas(), columns), config, side, staging)
    where = str(staging)

    def route(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            ids = prepare(worker.records_of(batch)).records["id"].astype(str)
            yield batch.assign(shard=dist.shard_of(ids, shards))

    def build_one(rows: pd.DataFrame) -> pd.DataFrame:
        rows = rows.sort_values(worker.ROW)
        done = dist.build_shard(Path(where), int(rows["shard"].iloc[0]), shards, _records(rows, columns))
        return pd.DataFrame([done])

    routed = valid.mapInPandas(route, f"{worker.ROW} long, {worker.RECORD} string, shard long")
    built = routed.groupBy("shard").applyInPandas(build_one, "shard long, records long") \
        .agg(F.collect_list("shard")).collect()[0][0]
    missing = sorted(set(range(shards)) - set(built))
    if missing:
        raise UsageError(empty_shard(missing[0], shards, total))
    return dist.finish_build(staging, out, shards)


def _records(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Validated rows as records with every input column (a column no row of a shard has is still there)."""
    raw = worker.records_of(rows)
    for c in columns:
        if c not in raw:
            raw[c] = None
    return prepare(raw).records
