"""A sharded index built and searched in pieces, for a cluster: plain pandas in and out, no pyspark import.

The Spark jobs (:mod:`qcy_match.spark`) run these functions on executors; anything else that can ship a function
and a batch of rows to workers that share storage could run them too.

Building (``qcy-match spark-index``):

1. the driver fits the encoder on a seeded sample of the records (all of them up to ``fit_sample``, so a small
   corpus gets the encoder a local build fits) and writes it as a *template*: a one-record index directory that
   holds the encoder, the user dictionaries and the configuration (:func:`write_template`);
2. each shard's records (routed by :func:`~qcy_match.index.shards.shard_of`, in input order) are tokenised,
   encoded and indexed by one task, which writes an ordinary index directory into a staging directory
   (:func:`build_shard`; a retried task replaces what a failed attempt left);
3. the driver sums the shards' BM25 statistics, one shard at a time, and writes the top manifest, moving the
   shards into the index directory in one atomic save (:func:`finish_build`).

The result equals ``ShardedEngine(config, shards=N).index(records)`` saved (same files but for timestamps) when the
sample holds every record.

Searching (``qcy-match spark-match`` over a sharded index), ``dfs_query_then_fetch`` in three steps: each (batch of
queries, shard) gives every query's candidate pool in that shard (:func:`shard_pools`); each query's pools are
merged and fused (:func:`fuse_pools`), as :meth:`ShardedEngine.match` does in one process; each shard then writes
the table rows of the matches it holds, with explanations (:func:`shard_rows`).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import persistence
from ..config import EngineConfig
from ..errors import IndexFormatError
from ..index.shards import CorpusStats, shard_of
from ..index.sparse import SparseIndex
from . import confidence, saved
from . import filters as filt
from . import pool as pools
from .engine import MatchEngine
from .explain import EXPLAIN_FIELDS
from .results import SIDES, Matches
from .sharded import Shard, ShardedEngine, is_sharded, shard_dir, top_manifest

TEMPLATE = "template"  # the staging directory's template index
SHARD_KEY = 1 << 40  # pool keys across shards: shard · SHARD_KEY + position (shard-major, as ShardedEngine's)


# ---- building ----------------------------------------------------------------------------------------------------
def sample_fraction(total: int, fit_sample: int) -> float:
    """The fraction of ``total`` records to fit the encoder on: all of them up to ``fit_sample``."""
    return 1.0 if total <= fit_sample else fit_sample / total


def write_template(sample: pd.DataFrame, config: EngineConfig, side: str, staging: Path) -> Path:
    """Fit the encoder on ``sample`` (validated records) and save it, with the configuration and dictionaries, as
    a one-record index in ``staging``; returns its path.
    """
    engine = MatchEngine(config)
    recs, tokens, _ = engine._prepared(sample, side, False, None, encode=False)
    one = recs.iloc[:1]
    _, _, vectors = engine._prepared(one, side, False, engine.encoder_)
    engine._snap = engine._built(one, tokens[:1], vectors)
    return engine.save(staging / TEMPLATE)


def build_shard(staging: Path, shard: int, shards: int, records: pd.DataFrame) -> dict[str, int]:
    """Tokenise, encode and index one shard's records (validated, in input order) with the template's encoder,
    and write the shard's index directory into ``staging``. Returns the shard and its record count.
    """
    template = MatchEngine.load(staging / TEMPLATE)
    wrong = shard_of(records["id"].astype(str), shards) != shard
    if wrong.any():
        raise ValueError(f"{int(wrong.sum())} records given to shard {shard} route to another shard")
    engine = MatchEngine(template.config)
    recs, tokens, vectors = engine._prepared(records, template.side_, False, template.encoder_)
    snap = engine._built(recs, tokens, vectors)
    final = staging / shard_dir(shard)
    tmp = staging / f".{final.name}.tmp-{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        persistence.write_manifest(tmp, saved.write(engine, snap, tmp))
        if final.exists():  # what an earlier attempt of this task left
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"shard": shard, "records": len(recs)}


def finish_build(staging: Path, out: str | os.PathLike[str], shards: int) -> Path:
    """Sum the shards' statistics and save the sharded index ``out`` (atomically, as every save), moving the
    shards out of ``staging``, which is then removed.
    """
    template = persistence.read_manifest(staging / TEMPLATE)
    stats, parts = CorpusStats.empty(), {}
    for i in range(shards):
        name = shard_dir(i)
        manifest = persistence.read_manifest(staging / name)
        stats = stats.plus(SparseIndex.load(staging / name))
        parts[name] = {"shard": i, "records": int(manifest["counts"]["records"])}

    def write(tmp: Path) -> dict[str, Any]:
        for name in parts:
            os.rename(staging / name, tmp / name)
        return top_manifest(tmp, str(template["side"]), stats, parts)

    path = persistence.save_dir(out, write)
    shutil.rmtree(staging, ignore_errors=True)
    return path


# ---- searching ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class OpenShard:
    """One shard of a sharded directory, opened alone by a worker: its engine (tokeniser, encoder, config), its
    scoring with the corpus-wide statistics, the shard count, the corpus size and the corpus-wide background sample
    of the confidence.
    """

    engine: MatchEngine
    shard: Shard
    index: int
    shards: int
    n_docs: int
    background: confidence.Background


_OPEN: OrderedDict[tuple[str, str, int], OpenShard] = OrderedDict()
_OPEN_LOCK = threading.Lock()
# Shards a process keeps open (the most recently used): a worker holds one shard's memory, not the index's.
KEEP_ENV = "QCY_SHARDS_KEPT"


def open_shard(path: str | os.PathLike[str], shard: int) -> OpenShard:
    """Shard ``shard`` of the sharded directory ``path``, opened once per process and kept while the directory is
    unchanged (keyed by its real path, :func:`~qcy_match.persistence.version` and the shard); a process keeps the
    ``QCY_SHARDS_KEPT`` (default 1) most recently used shards.
    """
    key = (os.path.realpath(path), persistence.version(path), shard)
    with _OPEN_LOCK:
        found = _OPEN.get(key)
        if found is None:
            keep = max(1, int(os.environ.get(KEEP_ENV, "1") or 1))
            while len(_OPEN) >= keep:  # drop first, so two shards are never held at once
                _OPEN.popitem(last=False)
            engine, one, n = ShardedEngine.open_shard(path, shard)
            found = _OPEN[key] = OpenShard(engine, one, shard, n, one.scoring.n_docs_,
                                           corpus_background(path, n, one, shard))
        _OPEN.move_to_end(key)
        return found


def corpus_background(path: str | os.PathLike[str], shards: int, own: Shard, index: int
                      ) -> confidence.Background:
    """The background sample an in-process sharded search reads (:attr:`_State.background`): each other shard is
    opened in turn, one at a time, for its own part of it (once per process and directory version).
    """
    parts = [confidence.background(own.snap if s == index else ShardedEngine.open_shard(path, s)[1].snap)
             for s in range(shards)]
    return confidence.Background.merged(parts)


def pool_size(config: EngineConfig, k: int, n_docs: int) -> int:
    """Candidates per signal, as :meth:`MatchEngine.match` takes them."""
    return min(max(config.candidates, k), n_docs)


def shard_config(path: str | os.PathLike[str]) -> tuple[EngineConfig, int]:
    """The configuration (shared by every shard) and the corpus size of a sharded directory, from its manifests
    alone (what the step that fuses needs, without opening a shard).
    """
    root = persistence.resolve(path)
    manifest = persistence.read_manifest(root, verify=False, allowed=lambda name: True)
    if not is_sharded(manifest):
        raise IndexFormatError(f"{root}: not a sharded index")
    first = persistence.read_manifest(root / shard_dir(0), verify=False, allowed=persistence.LAYOUT.holds)
    try:
        return EngineConfig.from_dict({"tokenizer": "jieba", **first["config"]}), int(manifest["stats"]["n_docs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexFormatError(f"{root}: manifest config is invalid ({exc})") from exc


POOL_COLUMNS = ("_row", "shard", "pos", "bm25", "dense", "bm25_rank", "dense_rank")


def shard_pools(opened: OpenShard, queries: pd.DataFrame, rows: Iterable[int], k: int,
                filters: dict[str, list[str]]) -> pd.DataFrame:
    """Every query's candidates in one shard (validated ``queries``; ``rows`` numbers them): one row per
    candidate with both signals' scores and its rank in this shard's top list of each signal (0: not in it).
    """
    engine, shard = opened.engine, opened.shard
    k = min(k, opened.n_docs)
    mask = shard.snap.positions(shard.snap.filters.mask(filters))
    q_tokens, q_vecs = engine._query_side(queries, engine._texts(queries))
    found = shard.pools(engine, q_tokens, q_vecs, pool_size(engine.config, k, opened.n_docs), mask)
    rows = list(rows)
    return pd.DataFrame({
        "_row": np.repeat(np.asarray(rows, np.int64), [len(p) for p in found]),
        "shard": np.full(sum(len(p) for p in found), opened.index, np.int64),
        "pos": np.concatenate([p.keys for p in found] or [np.empty(0, np.int64)]),
        "bm25": np.concatenate([p.sparse for p in found] or [np.empty(0, np.float32)]).astype(np.float64),
        "dense": np.concatenate([p.dense for p in found] or [np.empty(0, np.float32)]).astype(np.float64),
        "bm25_rank": np.concatenate([p.sparse_rank for p in found] or [np.empty(0, np.int64)]),
        "dense_rank": np.concatenate([p.dense_rank for p in found] or [np.empty(0, np.int64)])})


HIT_COLUMNS = ("_row", "shard", "pos", "rank", "score", "bm25_score", "bm25_rank", "dense_score", "dense_rank")


def fuse_pools(rows: pd.DataFrame, config: EngineConfig, k: int, n_docs: int) -> pd.DataFrame:
    """One query's candidate rows from every shard (:func:`shard_pools`) merged and fused: its best ``k``, with
    their rank, fused score and signals (``config``: the index's, see :func:`shard_config`).
    """
    size = pool_size(config, k, n_docs)
    keys = rows["shard"].to_numpy(np.int64) * SHARD_KEY + rows["pos"].to_numpy(np.int64)
    order = np.argsort(keys, kind="stable")
    one = pools.Pool(keys[order], rows["bm25"].to_numpy(np.float32)[order],
                     rows["dense"].to_numpy(np.float32)[order], rows["bm25_rank"].to_numpy(np.int64)[order],
                     rows["dense_rank"].to_numpy(np.int64)[order])
    merged = pools.merge([one], [0], size)
    best, fused, signals = pools.fused(merged, min(k, n_docs), config.dense_weight, config.fusion)
    row = int(rows["_row"].iloc[0]) if len(rows) else -1
    return pd.DataFrame({"_row": np.full(len(best), row, np.int64), "shard": best // SHARD_KEY,
                         "pos": best % SHARD_KEY, "rank": np.arange(1, len(best) + 1, dtype=np.int64),
                         "score": fused.astype(np.float64),
                         **{c: [s[c] for s in signals] for c in ("bm25_score", "bm25_rank", "dense_score",
                                                                  "dense_rank")}})


def shard_rows(opened: OpenShard, hits: pd.DataFrame, queries: pd.DataFrame, k: int) -> pd.DataFrame:
    """The table rows (:meth:`Matches.to_frame`'s columns) of the matches ``hits`` (:func:`fuse_pools` rows of
    this shard) for the validated ``queries``, whose ``_row`` column numbers them.
    """
    shard, engine = opened.shard, opened.engine
    queries = queries.reset_index(drop=True)
    at = {int(r): i for i, r in enumerate(queries["_row"])}
    k = min(k, opened.n_docs)
    idx = np.full((len(queries), k), -1, np.int64)
    scores = np.full((len(queries), k), np.nan, np.float32)
    expl: list[list[dict[str, Any]]] = [[{} for _ in range(k)] for _ in range(len(queries))]
    conf = np.full((len(queries), k), np.nan, np.float32)
    calibration = confidence.Calibration.from_dict(engine.config.confidence)
    q_tokens, q_vecs = engine._query_side(queries, engine._texts(queries))
    q_bg = opened.background.stats(q_vecs)
    q_fields = {c: queries[c].to_numpy(dtype=object) for c in EXPLAIN_FIELDS}
    for _, group in hits.groupby("_row", sort=False):
        i = at[int(group["_row"].iloc[0])]
        slots = group["rank"].to_numpy(np.int64) - 1
        live = shard.live(group["pos"].to_numpy(np.int64))
        idx[i, slots], scores[i, slots] = live, group["score"].to_numpy(np.float32)
        signals = [{"bm25_score": b, "bm25_rank": _rank(br), "dense_score": d, "dense_rank": _rank(dr)}
                   for b, br, d, dr in group[["bm25_score", "bm25_rank", "dense_score", "dense_rank"]]
                   .itertuples(index=False, name=None)]
        q = {c: v[i] for c, v in q_fields.items()}
        for s, e in zip(slots, shard.explanations(q, q_tokens[i], live, signals, engine.config.n_keywords),
                        strict=True):
            expl[i][s] = e
        conf[i, slots] = shard.confidence(q, q_tokens[i], live, signals, q_bg[i], calibration)
    ids = np.where(idx >= 0, shard.snap.ids[np.maximum(idx, 0)], np.array(None, dtype=object))
    matches = Matches(queries["id"].astype(str).tolist(), idx, ids, scores, expl,
                      query_side=SIDES[1 - SIDES.index(engine.side_)], confidence=conf).with_confidence()
    return matches.to_frame(queries.drop(columns="_row"), shard.snap.records)


def _rank(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def check_filters(opened: OpenShard, filters: dict[str, list[str]]) -> None:
    """Refuse filters on fields the shard's records lack (before a job starts)."""
    filt.mask(opened.shard.snap.records.iloc[:0], filters)


def shard_count(path: str | os.PathLike[str]) -> int:
    """The shard count of a sharded directory, 0 for an unsharded one (the manifest alone is read)."""
    manifest = persistence.read_manifest(path, verify=False, allowed=lambda name: True)
    return int(manifest["routing"]["shards"]) if is_sharded(manifest) else 0
