"""A sharded index: records split by a hash of their id into shards searched with corpus-wide BM25 statistics.

Each shard is an ordinary index (its own records, BM25 postings and vectors; on disk an ordinary index directory,
loadable alone). A query is searched in every shard with the statistics of the whole corpus (Elasticsearch's
``dfs_query_then_fetch``): each shard gives its BM25 top-``candidates`` and dense top-``candidates`` with both
signals' scores (:meth:`Shard.pools`), :func:`~qcy_match.match.pool.merge` keeps each signal's global top list, and
the fusion runs over that merged pool, so results equal an unsharded index's (up to exact ties), filters included.

Live updates route each record to the shard its id hashes to (:func:`~qcy_match.index.shards.shard_of`) and keep
the corpus-wide statistics exact (:meth:`~qcy_match.index.shards.CorpusStats.updated`).

On disk::

    DIR/manifest.json      layout "sharded": side, shard count, routing, corpus statistics' counts, and per shard
                           (a "part") its manifest's SHA-256 and its file list with checksums
    DIR/stats_terms.json   the global vocabulary
    DIR/stats_df.npy       document frequency per global term
    DIR/shard-00000/ …     one ordinary index directory per shard
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import persistence
from .._version import __version__
from ..encoders import Encoder
from ..errors import IndexFormatError, UsageError
from ..index.shards import (
    ROUTING,
    STATS_DF,
    STATS_TERMS,
    CorpusIdf,
    CorpusStats,
    scoring_view,
    shard_of,
    term_map,
)
from ..index.sparse import SparseIndex
from ..index.terms import TermLists
from ..ingest.records import from_any, normalize_id
from ..progress import bar as progress_bar
from . import confidence, saved
from . import filters as filt
from . import pool as pools
from .engine import QUERY_CHUNK, Encoded, MatchEngine, RecordsLike, UpdateResult
from .explain import EXPLAIN_FIELDS, explain
from .results import SIDES, Matches
from .snapshot import Snapshot, compacted

LAYOUT_NAME = "sharded"
TOP_FILES = frozenset({STATS_TERMS, STATS_DF})


def empty_shard(shard: int, shards: int, records: int) -> str:
    """Why a build with an empty shard is refused."""
    return f"no record of {records} routes to shard {shard} of {shards}; use fewer shards"


def shard_dir(i: int) -> str:
    """The directory name of shard ``i``."""
    return f"shard-{i:05d}"


@dataclasses.dataclass(frozen=True)
class Shard:
    """One shard's snapshot and its BM25 scoring with the corpus-wide statistics; immutable."""

    snap: Snapshot
    terms: np.ndarray  # global term id of each of the snapshot's BM25 term ids
    scoring: SparseIndex  # the snapshot's BM25 with corpus-wide statistics
    stats: CorpusStats

    @classmethod
    def of(cls, snap: Snapshot, stats: CorpusStats, terms: np.ndarray | None = None) -> Shard:
        """``snap`` scored with ``stats``; ``terms`` is its :func:`term_map` when already known."""
        if terms is None or len(terms) != len(snap.sparse.df_):
            terms = term_map(snap.sparse, stats.terms)
        return cls(snap, terms, scoring_view(snap.sparse, stats, terms), stats)

    def pools(self, engine: MatchEngine, tokens: Sequence[list[str]], vectors: np.ndarray, size: int,
              mask: np.ndarray | None) -> list[pools.Pool]:
        """Each query's candidates in this shard (positions): its BM25 and dense top ``size`` (``mask``: over
        positions), as ``engine`` (any shard's, or the sharded one: its config) takes them.
        """
        d_idx, _ = self.snap.dense.search(vectors, size, mask)
        return engine._pools(self.snap, self.scoring, tokens, vectors, d_idx, size, mask)

    @cached_property
    def idf(self) -> CorpusIdf:
        """IDF of every term of the corpus (the confidence weighs query terms that this shard may lack)."""
        return CorpusIdf(self.stats)

    def confidence(self, query: dict[str, Any], tokens: list[str], live: np.ndarray, signals: list[dict[str, Any]],
                   background: np.ndarray, calibration: confidence.Calibration) -> np.ndarray:
        """The confidence of the matches ``live`` of one query (``query``: its explanation fields; ``background``:
        its statistics against the corpus-wide background sample), from the features an unsharded index computes
        (each match's alone, with corpus-wide IDF and size).
        """
        fields = self.snap.explain_fields
        feats = confidence.features(tokens, [self.snap.tokens[d] for d in live],
                                    np.array([s["bm25_score"] for s in signals]),
                                    np.array([s["dense_score"] for s in signals]), query,
                                    [{c: v[d] for c, v in fields.items()} for d in live], self.idf,
                                    self.stats.n_docs, background)
        return np.asarray(calibration.predict(feats), np.float32)

    def live(self, positions: np.ndarray) -> np.ndarray:
        """Live indices (rows of ``snap.records``) of positions."""
        return positions if self.snap.to_live is None else self.snap.to_live[positions]

    def explanations(self, query: dict[str, Any], tokens: list[str], live: np.ndarray,
                     signals: list[dict[str, Any]], n_keywords: int) -> list[dict[str, Any]]:
        """Why each of the records ``live`` matched one query, with corpus-wide IDF."""
        fields = self.snap.explain_fields
        return [explain(query, {c: v[d] for c, v in fields.items()}, tokens, self.snap.tokens[d],
                        self.scoring.idf_, sig, n_keywords) for d, sig in zip(live, signals, strict=True)]


@dataclasses.dataclass(frozen=True)
class _State:
    """Every shard and the corpus statistics at one moment: what one query batch reads."""

    shards: tuple[Shard, ...]
    stats: CorpusStats

    @cached_property
    def live_offsets(self) -> np.ndarray:
        """Where each shard's records start in the concatenated records."""
        return np.concatenate([[0], np.cumsum([len(s.snap.records) for s in self.shards])]).astype(np.int64)

    @cached_property
    def position_offsets(self) -> np.ndarray:
        """Where each shard's positions start in the merged pools' keys."""
        return np.concatenate([[0], np.cumsum([len(s.snap.dense) for s in self.shards])]).astype(np.int64)

    @cached_property
    def records(self) -> pd.DataFrame:
        return pd.concat([s.snap.records for s in self.shards], ignore_index=True)

    @cached_property
    def background(self) -> confidence.Background:
        """The corpus-wide background sample of the confidence: the one an unsharded index draws."""
        return confidence.Background.merged([confidence.background(s.snap) for s in self.shards])

    @cached_property
    def ids(self) -> np.ndarray:
        return np.concatenate([s.snap.ids for s in self.shards])

    def __len__(self) -> int:
        return int(self.live_offsets[-1])


class ShardedEngine(MatchEngine):
    """A :class:`MatchEngine` whose records are split into ``shards`` by a hash of their id.

    Built like an engine (``ShardedEngine(config, shards=3).index(records)``), from a built one
    (:meth:`from_engine`, or ``engine.save(path, shards=3)``), or loaded (``MatchEngine.load`` opens a sharded
    directory as one). Matching, explanations, live updates and saving behave as an unsharded engine's; results
    are the same up to exact ties. ``records_`` lists the records shard by shard. Solver and consortium rankings
    need an unsharded index.
    """

    def __init__(self, config: Any = None, shards: int = 2, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        if shards < 1:
            raise ValueError(f"shards must be at least 1, not {shards}")
        self.n_shards = shards

    # ---- building -------------------------------------------------------------------------------------------
    def index(self, records: RecordsLike, side: str = "achievements", show_progress: bool = False,
              encoder: Encoder | None = None) -> ShardedEngine:
        """Index records of one side into the shards: one tokeniser and one encoder (fitted on all records) for
        every shard, so vectors and tokens are those an unsharded index holds.
        """
        recs, tokens, vectors = self._prepared(records, side, show_progress, encoder)
        self._install(self._split(recs, tokens, vectors, show_progress))
        return self

    def _split(self, recs: pd.DataFrame, tokens: TermLists, vectors: Encoded | np.ndarray, show_progress: bool = False
               ) -> list[Snapshot]:
        """One snapshot per shard over the records routed to it, in their given order."""
        where = shard_of(recs["id"].astype(str), self.n_shards)
        enc = vectors if isinstance(vectors, Encoded) else Encoded.each(vectors)
        snaps = []
        for s in range(self.n_shards):
            mine = where == s
            rows = np.flatnonzero(mine)
            if not len(rows):
                raise UsageError(empty_shard(s, self.n_shards, len(recs)))
            # Each shard numbers its own terms, as a build of its records alone would.
            snaps.append(self._built(recs.iloc[rows].reset_index(drop=True),
                                     tokens.select(mine).renumbered(), enc.take(rows), show_progress))
        return snaps

    @classmethod
    def from_engine(cls, engine: MatchEngine, shards: int) -> ShardedEngine:
        """The records of an indexed engine split into ``shards`` (its tokens and vectors reused)."""
        if isinstance(engine, ShardedEngine):
            engine = engine._merged()
        self = cls(engine.config, shards=shards)
        self._adopt(engine)
        with engine._write_lock:
            st = engine._snap
            self._install(self._split(st.records, st.tokens, st.dense.live_vectors()))
        return self

    def _merged(self) -> MatchEngine:
        """The same records as one unsharded engine (for re-sharding)."""
        st = self._state
        one = self._shard_engine(self._built(st.records, [t for s in st.shards for t in s.snap.tokens],
                                             self.vectors()))
        return one

    def _adopt(self, engine: MatchEngine) -> None:
        """Take the side, dictionaries, tokeniser and encoder of ``engine`` (shards share them)."""
        self.side_, self.rejected_ = engine.side_, list(getattr(engine, "rejected_", []))
        self.user_dicts_, self.tokenizer_, self.encoder_ = engine.user_dicts_, engine.tokenizer_, engine.encoder_

    def _shard_engine(self, snap: Snapshot) -> MatchEngine:
        """An unsharded engine over one shard's snapshot, sharing this engine's config, tokeniser and encoder."""
        one = MatchEngine(self.config)
        one.side_, one.rejected_, one.user_dicts_ = self.side_, [], self.user_dicts_
        one.tokenizer_, one.encoder_, one._snap = self.tokenizer_, self.encoder_, snap
        return one

    def _install(self, snaps: Sequence[Snapshot]) -> None:
        self.n_shards = len(snaps)
        stats = CorpusStats.of([s.sparse for s in snaps])
        with self._write_lock:
            self._state = _State(tuple(Shard.of(s, stats) for s in snaps), stats)

    # ---- the engine's read-only views -----------------------------------------------------------------------
    @property
    def records_(self) -> pd.DataFrame:
        """Live records, shard by shard (``Matches.indices`` index these)."""
        return self._state.records

    @property
    def tokens_(self) -> Sequence[list[str]]:
        """Token lists of the live records, in ``records_`` order."""
        return [t for s in self._state.shards for t in s.snap.tokens]

    @property
    def _ids(self) -> np.ndarray:
        return self._state.ids

    @property
    def _snap(self) -> Snapshot:  # type: ignore[override]
        """Not one snapshot: what reads one (tuning, calibration features) needs an unsharded index."""
        raise UsageError("this needs an unsharded index (it reads one snapshot); a sharded index has one per shard")

    @property
    def sparse_(self) -> SparseIndex:
        """Not one index: see ``shards_``."""
        raise UsageError("a sharded index has one BM25 index per shard (shards_[i].sparse_)")

    @property
    def dense_(self) -> Any:
        """Not one index: see ``shards_``."""
        raise UsageError("a sharded index has one vector index per shard (shards_[i].dense_)")

    @property
    def shards_(self) -> list[MatchEngine]:
        """Each shard as an unsharded engine (scoring with its own statistics; for inspection)."""
        return [self._shard_engine(s.snap) for s in self._state.shards]

    @property
    def stats_(self) -> CorpusStats:
        """The corpus-wide BM25 statistics every shard is scored with."""
        return self._state.stats

    def __len__(self) -> int:
        return len(self._state)

    def vectors(self, records: RecordsLike | None = None) -> np.ndarray:
        """As :meth:`MatchEngine.vectors`, the live records' vectors in ``records_`` order."""
        if records is not None:
            return super().vectors(records)
        out = np.vstack([s.snap.dense.live_vectors() for s in self._state.shards])
        out.flags.writeable = False
        return out

    # ---- matching -------------------------------------------------------------------------------------------
    def match(self, queries: RecordsLike | Sequence[str], k: int = 10,
              filters: filt.Filters | Iterable[str] | None = None, explain_matches: bool = True,
              show_progress: bool = False, device: str | None = None, min_confidence: float | None = None
              ) -> Matches:
        """As :meth:`MatchEngine.match`: every shard searched with corpus-wide statistics, pools merged, fused.
        The GPU path (``device``) needs an unsharded index.
        """
        if device is not None:
            raise UsageError("the GPU path (device) needs an unsharded index; a sharded one is matched on the CPU")
        if min_confidence is not None and not 0 <= min_confidence <= 1:
            raise ValueError("min_confidence must be between 0 and 1")
        return self._sharded_match(queries, k, filters, explain_matches, show_progress).above(min_confidence)

    def _sharded_match(self, queries: RecordsLike | Sequence[str], k: int,
                       filters: filt.Filters | Iterable[str] | None, explain_matches: bool, show_progress: bool
                       ) -> Matches:
        if k < 1:
            raise ValueError("k must be at least 1")
        state = self._state  # one state for the whole batch, whatever writers do meanwhile
        recs, rejects = self._queries(queries)
        k = min(k, len(state))
        wanted = filt.parse([filters] if isinstance(filters, str) else filters)
        masks = [s.snap.positions(s.snap.filters.mask(wanted)) for s in state.shards]
        n = len(recs)
        idx = np.full((n, k), -1, np.int64)
        scores = np.full((n, k), np.nan, np.float32)
        expl: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        conf = np.full((n, k), np.nan, np.float32)
        calibration = confidence.Calibration.from_dict(self.config.confidence)
        size = min(max(self.config.candidates, k), len(state))
        texts = self._texts(recs)
        bar = progress_bar(total=n, desc="match", enabled=show_progress, unit="query")
        for start in range(0, n, QUERY_CHUNK):
            chunk = slice(start, min(n, start + QUERY_CHUNK))
            q_tokens, q_vecs = self._query_side(recs.iloc[chunk], texts[chunk])
            q_bg = state.background.stats(q_vecs)
            per_shard = [s.pools(self, q_tokens, q_vecs, size, m) for s, m in zip(state.shards, masks, strict=True)]
            q_fields = {c: recs[c].iloc[chunk].to_numpy(dtype=object) for c in EXPLAIN_FIELDS}
            for j, toks in enumerate(q_tokens):
                merged = pools.merge([p[j] for p in per_shard], state.position_offsets[:-1], size)
                keys, fused, signals = pools.fused(merged, k, self.config.dense_weight, self.config.fusion)
                where = np.searchsorted(state.position_offsets, keys, side="right") - 1
                i, m = start + j, len(keys)
                scores[i, :m] = fused
                expl[i] = [{} for _ in range(m)] if explain_matches else []
                q = {c: v[j] for c, v in q_fields.items()}
                for s in np.unique(where):
                    shard, sel = state.shards[s], np.flatnonzero(where == s)
                    live = shard.live(keys[sel] - state.position_offsets[s])
                    idx[i, sel] = state.live_offsets[s] + live
                    conf[i, sel] = shard.confidence(q, toks, live, [signals[x] for x in sel], q_bg[j], calibration)
                    if explain_matches:
                        found = shard.explanations(q, toks, live, [signals[x] for x in sel], self.config.n_keywords)
                        for x, e in zip(sel, found, strict=True):
                            expl[i][x] = e
            bar.update(chunk.stop - chunk.start)
        bar.close()
        ids = np.where(idx >= 0, state.ids[np.maximum(idx, 0)], np.array(None, dtype=object))
        return Matches(recs["id"].astype(str).tolist(), idx, ids, scores, expl if explain_matches else [],
                       query_side=SIDES[1 - SIDES.index(self.side_)], rejected=rejects,
                       confidence=conf).with_confidence()

    def solvers(self, *args: Any, **kwargs: Any) -> Any:
        """Not for sharded indexes (the owner tables are built over one snapshot)."""
        raise UsageError("solver rankings need an unsharded index (MatchEngine.load of a shard-free directory)")

    def consortium(self, *args: Any, **kwargs: Any) -> Any:
        """Not for sharded indexes (see :meth:`solvers`)."""
        raise UsageError("consortium proposals need an unsharded index (MatchEngine.load of a shard-free directory)")

    # ---- live updates ---------------------------------------------------------------------------------------
    def _update(self, records: RecordsLike, replace: bool, show_progress: bool) -> UpdateResult:
        recs, rejects = from_any(records, "<update>")
        recs = recs.reset_index(drop=True)
        where = shard_of(recs["id"].astype(str), self.n_shards)
        out = UpdateResult(rejected=rejects)
        with self._write_lock:
            changes = {}
            for s in np.unique(where):
                one = self._shard_engine(self._state.shards[s].snap)
                res = one._update(recs.iloc[np.flatnonzero(where == s)], replace, show_progress)
                out.added += res.added
                out.replaced += res.replaced
                out.rejected += res.rejected
                changes[int(s)] = one._snap
            self._publish_shards(changes)
        return out

    def delete(self, ids: Iterable[str]) -> UpdateResult:
        """As :meth:`MatchEngine.delete`, each id in the shard it routes to."""
        want = list(dict.fromkeys(normalize_id(i) for i in ids))
        where = shard_of(want, self.n_shards)
        out = UpdateResult()
        with self._write_lock:
            changes = {}
            for s in np.unique(where):
                one = self._shard_engine(self._state.shards[s].snap)
                res = one.delete([w for w, x in zip(want, where, strict=True) if x == s])
                out.deleted += res.deleted
                out.missing += res.missing
                changes[int(s)] = one._snap
            self._publish_shards(changes)
        order = {w: i for i, w in enumerate(want)}  # report in the order asked
        out.deleted.sort(key=order.__getitem__)
        out.missing.sort(key=order.__getitem__)
        return out

    def compact(self) -> ShardedEngine:
        """Compact every shard (new term numbering: the scoring views follow)."""
        with self._write_lock:
            self._publish_shards({i: compacted(s.snap) for i, s in enumerate(self._state.shards)})
        return self

    def _publish_shards(self, changes: dict[int, Snapshot]) -> None:
        """Replace the changed shards' snapshots, apply their statistics' difference, and publish the new state
        (every shard's scoring view follows the new statistics).
        """
        old = self._state
        stats = old.stats
        for s, snap in changes.items():
            if snap is not old.shards[s].snap:
                stats = stats.updated(old.shards[s].snap.sparse, snap.sparse)
        shards = tuple(Shard.of(changes.get(i, s.snap), stats, None if i in changes else s.terms)
                       for i, s in enumerate(old.shards))
        self._state = _State(shards, stats)

    # ---- persistence ----------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], shards: int | None = None) -> Path:
        """Write the sharded directory (see the module docstring); atomic, as :meth:`MatchEngine.save`.

        ``shards`` re-splits the records into that many shards first.
        """
        if shards is not None and shards != self.n_shards:
            return ShardedEngine.from_engine(self, shards).save(path)
        with persistence.locked(path), self._write_lock:
            self.compact()
            state = self._state
            return persistence.save_dir(path, lambda tmp: self._write(state, tmp))

    def _write(self, state: _State, tmp: Path) -> dict[str, Any]:
        parts = {}
        for i, shard in enumerate(state.shards):
            sub = tmp / shard_dir(i)
            sub.mkdir()
            persistence.write_manifest(sub, saved.write(self._shard_engine(shard.snap), shard.snap, sub))
            parts[sub.name] = {"shard": i, "records": len(shard.snap.records)}
        stats = CorpusStats.of([s.snap.sparse for s in state.shards])  # exact sums, without emptied terms
        return top_manifest(tmp, self.side_, stats, parts)

    @classmethod
    def open_shard(cls, path: str | os.PathLike[str], shard: int, verify: bool = True
                   ) -> tuple[MatchEngine, Shard, int]:
        """Open one shard of a sharded directory alone, scored with the corpus-wide statistics (what a worker
        searching that shard needs); returns it with the shard count. The top manifest and the shard's files are
        checked; the other shards are not read. Returns the shard's engine (its tokeniser, encoder and config),
        the shard scored with the corpus-wide statistics, and the shard count.
        """
        root = persistence.resolve(path)
        manifest = _top_manifest(root, verify)
        n = manifest["routing"]["shards"]
        if not 0 <= shard < n:
            raise IndexFormatError(f"{root}: has {n} shards, no shard {shard}")
        engine = _read_shard(MatchEngine, root, manifest, shard, verify)
        stats = CorpusStats.load(root, manifest["stats"]["n_docs"], float(manifest["stats"]["total_len"]))
        return engine, Shard.of(engine._snap, stats), n

    def shard_engine(self, shard: int) -> MatchEngine:
        """Shard ``shard`` as an unsharded engine (for workers that encode queries with the shared encoder)."""
        return self._shard_engine(self._state.shards[shard].snap)


def top_manifest(tmp: Path, side: str, stats: CorpusStats, parts: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Write the corpus statistics into ``tmp`` (the sharded directory being saved, its shards written) and
    return the top manifest's body; ``parts``: ``{shard_dir(i): {"shard": i, "records": n}}``.
    """
    stats.save(tmp)
    return {"library_version": __version__, "layout": LAYOUT_NAME, "side": side,
            "routing": {"method": ROUTING, "shards": len(parts)},
            "counts": {"records": stats.n_docs, "shards": len(parts)},
            "stats": {"n_docs": stats.n_docs, "total_len": stats.total_len, "terms": len(stats.df)},
            "parts": parts}


# ---- reading -----------------------------------------------------------------------------------------------------
TOP_SHAPE: dict[str, type | tuple[type, ...]] = {
    "side": str, "routing": dict, "routing.shards": int, "stats": dict, "stats.n_docs": int,
    "stats.total_len": (int, float), "counts": dict, "counts.records": int, "parts": dict}


def is_sharded(manifest: dict[str, Any]) -> bool:
    """Whether a manifest is a sharded index's top manifest."""
    return manifest.get("layout") == LAYOUT_NAME


def _top_manifest(root: Path, verify: bool) -> dict[str, Any]:
    return _checked_top(root, persistence.read_manifest(root, verify=verify, allowed=TOP_FILES.__contains__))


def _checked_top(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """A read top manifest, refused unless it is a sharded one of the right shape."""
    if not is_sharded(manifest):
        raise IndexFormatError(f"{root}: not a sharded index")
    persistence.expect(root, manifest, TOP_SHAPE)
    if set(manifest["files"]) != TOP_FILES:
        raise IndexFormatError(f"{root}: a sharded index's top level holds {', '.join(sorted(TOP_FILES))}")
    n = manifest["routing"]["shards"]
    if n < 1 or sorted(manifest["parts"]) != [shard_dir(i) for i in range(n)] or \
            manifest["routing"].get("method") != ROUTING:
        raise IndexFormatError(f"{root}: the manifest's shards do not match its routing ({n} shards)")
    return manifest


def _read_shard(cls: type[MatchEngine], root: Path, manifest: dict[str, Any], i: int, verify: bool,
                encoder: Encoder | None = None) -> MatchEngine:
    name = shard_dir(i)
    persistence.read_part(root, manifest, name, verify=verify, allowed=persistence.LAYOUT.holds)
    engine = saved.read(cls, root / name, verify=False, encoder=encoder)  # read_part verified its files
    if engine.side_ != manifest["side"] or len(engine) != manifest["parts"][name].get("records"):
        raise IndexFormatError(f"{root}: shard {name} disagrees with the top manifest (side or record count)")
    wrong = np.flatnonzero(shard_of(engine.records_["id"].astype(str), manifest["routing"]["shards"]) != i)
    if len(wrong):
        raise IndexFormatError(f"{root}: shard {name} holds records routed to another shard; rebuild the index")
    return engine


def read_sharded(root: Path, manifest: dict[str, Any], verify: bool) -> ShardedEngine:
    """Open a sharded directory whose top manifest ``manifest`` was read (see ``MatchEngine.load``): every shard,
    sharing shard 0's encoder (the shards must hold the same encoder and dictionaries), and the statistics, which
    must be the sums of the shards' own.
    """
    manifest = _checked_top(root, manifest)
    n = manifest["routing"]["shards"]
    first = _read_shard(MatchEngine, root, manifest, 0, verify)
    shared = _shared_files(manifest["parts"][shard_dir(0)]["files"])
    engines = [first]
    for i in range(1, n):
        if _shared_files(manifest["parts"][shard_dir(i)]["files"]) != shared:
            raise IndexFormatError(f"{root}: shard {shard_dir(i)} holds another encoder or dictionaries than "
                                   f"{shard_dir(0)}; rebuild the index")
        engines.append(_read_shard(MatchEngine, root, manifest, i, verify, encoder=first.encoder_))
    self = ShardedEngine(first.config, shards=n)
    self._adopt(first)
    try:
        stats = CorpusStats.load(root, manifest["stats"]["n_docs"], float(manifest["stats"]["total_len"]))
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{root}: corpus statistics cannot be read ({exc})") from exc
    snaps = [e._snap for e in engines]
    if not stats.agrees_with([s.sparse for s in snaps]):
        raise IndexFormatError(f"{root}: the corpus statistics are not the sums of the shards'; rebuild the index")
    self._state = _State(tuple(Shard.of(s, stats) for s in snaps), stats)
    return self


_PER_SHARD = {persistence.LAYOUT.records, persistence.LAYOUT.vectors, persistence.LAYOUT.faiss,
              persistence.LAYOUT.bm25_data, persistence.LAYOUT.bm25_indices, persistence.LAYOUT.bm25_indptr,
              persistence.LAYOUT.bm25_doclen, persistence.LAYOUT.bm25_vocab, persistence.LAYOUT.term_ids,
              persistence.LAYOUT.term_offsets, persistence.LAYOUT.partitions, persistence.LAYOUT.groups}


def _shared_files(files: dict[str, Any]) -> dict[str, Any]:
    """The checksums of a shard's files that every shard holds alike (encoder, user dictionaries)."""
    return {name: meta["sha256"] for name, meta in files.items()
            if name not in _PER_SHARD and not persistence.LAYOUT.is_partition_graph(name)}
