"""The matching engine: index one side (achievements or needs), match the other side against it."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence, Sized
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import persistence, threads
from ..config import EngineConfig
from ..encoders import Encoder, make_encoder
from ..index.dense import DenseIndex
from ..index.sparse import SparseIndex
from ..index.terms import TermLists
from ..ingest.records import from_any, normalize_id, text_of
from ..ingest.tables import Rejection
from ..progress import bar as progress_bar
from ..solvers.consortium import Consortium, ConsortiumModel
from ..solvers.votes import SolverRanking, VotingModel
from ..text import Tokenizer, check_user_dict, resolve_backend
from . import confidence, query, saved, teams
from . import device as device_path
from . import filters as filt
from . import pool as pools
from .explain import EXPLAIN_FIELDS, explain, query_idf
from .results import SIDES, Matches
from .snapshot import Snapshot, changed, compacted


@dataclasses.dataclass(frozen=True)
class Encoded:
    """Vectors of records as distinct rows and the row of each record: records that share a dense text share its
    vector, and the n × d matrix of every record is built only where one is asked for (:meth:`full`).
    """

    rows: np.ndarray
    of: np.ndarray

    @classmethod
    def each(cls, vectors: np.ndarray) -> Encoded:
        """One row per record."""
        return cls(vectors, np.arange(len(vectors)))

    def take(self, records: np.ndarray) -> Encoded:
        """The vectors of some records (by position)."""
        return Encoded(self.rows, self.of[records])

    def full(self) -> np.ndarray:
        """The n × d matrix."""
        return self.rows[self.of]


logger = logging.getLogger(__name__)

RecordsLike = pd.DataFrame | Iterable[Mapping[str, Any]]
QUERY_CHUNK = 512
# Loading jieba's dictionary takes seconds; engines with the same dictionaries share one (read-only) tokeniser.
_TOKENIZERS: dict[tuple[Any, ...], Tokenizer] = {}
_TOKENIZERS_LOCK = threading.Lock()


@dataclasses.dataclass
class UpdateResult:
    """What one :meth:`MatchEngine.add` / :meth:`~MatchEngine.upsert` / :meth:`~MatchEngine.delete` call did."""

    added: list[str] = dataclasses.field(default_factory=list)
    replaced: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    rejected: list[Rejection] = dataclasses.field(default_factory=list)


class MatchEngine:
    """Hybrid BM25 + dense matching with industry/region filters and explanations.

    >>> engine = MatchEngine(EngineConfig(encoder="lsa")).index(achievements)  # doctest: +SKIP
    >>> engine.match(needs, k=10, filters={"industry": ["C39"]}).to_frame()  # doctest: +SKIP

    Records can be added, replaced and deleted by id (:meth:`add`, :meth:`upsert`, :meth:`delete`) while other
    threads call :meth:`match`: each query batch reads one immutable snapshot, and writers publish a new one (see
    :mod:`qcy_match.snapshot`), so a record is never returned after its delete returned.
    """

    def __init__(self, config: EngineConfig | None = None, **overrides: Any) -> None:
        self.config = dataclasses.replace(config or EngineConfig(), **overrides)
        self._write_lock = threading.RLock()

    # The current snapshot's parts, for callers that read them (single-threaded use; threads should use ids).
    @property
    def records_(self) -> pd.DataFrame:
        """Live records, in index order."""
        return self._snap.records

    @property
    def tokens_(self) -> Sequence[list[str]]:
        """Token lists of the live records."""
        return self._snap.tokens

    @property
    def sparse_(self) -> SparseIndex:
        """The BM25 index (positions, see :mod:`qcy_match.snapshot`)."""
        return self._snap.sparse

    @property
    def dense_(self) -> DenseIndex:
        """The vector index (positions, see :mod:`qcy_match.snapshot`)."""
        return self._snap.dense

    @property
    def _ids(self) -> np.ndarray:
        return self._snap.ids

    # ---- building -------------------------------------------------------------------------------------------
    def _tokenizer(self) -> Tokenizer:
        """The shared tokeniser for this config, with the user dictionaries' contents in ``user_dicts_``."""
        c = self.config
        # Resolved here, so an index that names rjieba is refused (MissingExtraError) where rjieba is missing
        # rather than queried with jieba's tokens.
        backend = resolve_backend(c.tokenizer)
        key = (tuple(hashlib.sha256(d).hexdigest() for d in self.user_dicts_), tuple(c.user_words), c.domain_dict,
               backend)
        with _TOKENIZERS_LOCK:
            if key not in _TOKENIZERS:
                _TOKENIZERS[key] = Tokenizer(user_dicts=self.user_dicts_, user_words=c.user_words,
                                             domain_dict=c.domain_dict, backend=backend)
            return _TOKENIZERS[key]

    def index(self, records: RecordsLike, side: str = "achievements", show_progress: bool = False,
              encoder: Encoder | None = None) -> MatchEngine:
        """Index records of one side; rows that fail validation are kept in ``rejected_``.

        ``encoder``: an already fitted encoder to use as is (e.g. another index's), instead of fitting a new one.
        """
        recs, tokens, vectors = self._prepared(records, side, show_progress, encoder)
        snap = self._built(recs, tokens, vectors, show_progress)
        with self._write_lock:
            self._snap = snap
        logger.info("indexed %d %s (%d rejected), dense index %s", len(recs), side, len(self.rejected_),
                    snap.dense.kind_)
        return self

    def _prepared(self, records: RecordsLike, side: str, show_progress: bool, encoder: Encoder | None,
                  encode: bool = True) -> tuple[pd.DataFrame, TermLists, Encoded]:
        """Validate, tokenise and encode the records to index (fitting the encoder unless one is given); sets the
        engine's side, tokeniser, encoder and rejected rows. Returns the usable records, their tokens and vectors
        (none unless ``encode``: a distributed build fits the encoder on a sample and encodes on the workers).
        """
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, not {side!r}")
        n = len(records) if isinstance(records, Sized) else None
        with progress_bar(total=n, desc="validate", enabled=show_progress, unit="rec") as bar:
            recs, rejects = from_any(records)
            bar.update(n or len(recs))
        if len(recs) == 0:
            raise ValueError("no usable records to index" + (f" ({len(rejects)} rejected)" if rejects else ""))
        self.rejected_: list[Rejection] = rejects
        self.side_ = side
        # Read once: the tokens are cut with these bytes, and a save stores these bytes, whatever the files become.
        self.user_dicts_: list[bytes] = [check_user_dict(p).read_bytes() for p in self.config.user_dicts]
        self.tokenizer_ = self._tokenizer()
        texts = self._texts(recs)
        tokens = self._tokens(texts, show_progress)
        self.config.tokenizer = self.tokenizer_.backend  # what cut these tokens, for the manifest
        self.encoder_: Encoder = encoder if encoder is not None else \
            make_encoder(self.config.encoder, self.config.encoder_params)
        d_texts, d_tokens = self._dense_input(recs, texts, tokens)
        if encoder is None:
            self.encoder_.fit(d_texts, d_tokens)
        vectors = self._encoded(d_texts, d_tokens, show_progress, "encode") if encode else \
            Encoded.each(np.zeros((0, self.encoder_.dim), np.float32))
        # a prepared frame is passed through as given, possibly a slice
        return recs.reset_index(drop=True), tokens, vectors

    def _built(self, recs: pd.DataFrame, tokens: TermLists | Sequence[Sequence[str]], vectors: Encoded | np.ndarray,
               show_progress: bool = False) -> Snapshot:
        """The searchable snapshot of prepared records (see :meth:`_prepared`)."""
        if not isinstance(tokens, TermLists):
            tokens = TermLists.of(tokens)
        # One step (the BM25 fit is one vectorised pass), so a long build shows which stage it is in.
        with progress_bar(total=len(tokens), desc="bm25", enabled=show_progress, unit="rec") as bar:
            sparse = SparseIndex(self.config.bm25_k1, self.config.bm25_b).fit(tokens)
            bar.update(len(tokens))
        enc = vectors if isinstance(vectors, Encoded) else Encoded.each(vectors)
        dense = DenseIndex(self.config.index, **self.config.index_params).fit(
            enc.rows, show_progress, labels=filt.partition_labels(recs), rows_of=enc.of)
        snap = Snapshot(recs, tokens, recs["id"].astype(str).to_numpy(dtype=object), sparse, dense)
        snap.check()
        return snap

    def _texts(self, recs: pd.DataFrame) -> list[str]:
        """Matching texts, cut to ``max_text_chars`` so one huge description cannot stall tokenising or encoding,
        their titles cut to ``max_title_chars`` first (with a warning, as :meth:`_dense_input` cuts them).
        """
        tcap = self.config.max_title_chars
        long = sum(len(t) > tcap for t in recs["title"].astype(str))
        if long:
            logger.warning("%d of %d titles are longer than %d characters; only their first %d are indexed and "
                           "encoded (EngineConfig.max_title_chars)", long, len(recs), tcap, tcap)
            recs = recs.assign(title=self._titles(recs))
        texts = text_of(recs)
        cap = self.config.max_text_chars
        long = sum(len(t) > cap for t in texts)
        if long:
            logger.warning("%d of %d texts are longer than %d characters; only their first %d are indexed and "
                           "encoded (EngineConfig.max_text_chars)", long, len(texts), cap, cap)
            texts = [t[:cap] for t in texts]
        return texts

    # ---- live updates ---------------------------------------------------------------------------------------
    def add(self, records: RecordsLike, show_progress: bool = False) -> UpdateResult:
        """Index new records without a rebuild; a record whose id is already indexed is rejected (see upsert)."""
        return self._update(records, replace=False, show_progress=show_progress)

    def upsert(self, records: RecordsLike, show_progress: bool = False) -> UpdateResult:
        """Add records, replacing any indexed record with the same id."""
        return self._update(records, replace=True, show_progress=show_progress)

    def delete(self, ids: Iterable[str]) -> UpdateResult:
        """Remove records by id; when this returns, no query sees them. Unknown ids are reported as missing.

        Ids are normalised as records' ids are (``１２３`` and ``123 `` name record ``123``).
        """
        want = list(dict.fromkeys(normalize_id(i) for i in ids))
        with self._write_lock:
            st = self._snap
            loc = st.id_index.get_indexer(pd.Index(want)) if want else np.empty(0, np.int64)
            found = loc[loc >= 0]
            if len(found):
                self._publish(changed(st, found, st.records.iloc[:0], [], np.empty((0, 0), np.float32)))
        return UpdateResult(deleted=[w for w, i in zip(want, loc, strict=True) if i >= 0],
                            missing=[w for w, i in zip(want, loc, strict=True) if i < 0])

    def compact(self) -> MatchEngine:
        """Merge the delta segments and drop deleted records now (saving does this too)."""
        with self._write_lock:
            self._snap = compacted(self._snap)
        return self

    def _publish(self, snap: Snapshot) -> None:
        self._snap = compacted(snap) if snap.needs_compaction() else snap

    def _update(self, records: RecordsLike, replace: bool, show_progress: bool) -> UpdateResult:
        recs, rejects = from_any(records, "<update>")
        recs = recs.reset_index(drop=True)
        with self._write_lock:
            st = self._snap
            ids = recs["id"].astype(str).tolist()
            loc = st.id_index.get_indexer(pd.Index(ids)) if ids else np.empty(0, np.int64)
            if not replace and (loc >= 0).any():
                rejects = rejects + [Rejection("<update>", 0, "id", "id is already indexed (use upsert to replace)",
                                               i) for i, j in zip(ids, loc, strict=True) if j >= 0]
                recs, loc = recs[loc < 0].reset_index(drop=True), loc[loc < 0]
            texts = self._texts(recs)
            tokens = self._tokens(texts, show_progress)
            d_texts, d_tokens = self._dense_input(recs, texts, tokens)
            vectors = self._encode(d_texts, d_tokens, show_progress, "encode")
            self._publish(changed(st, loc[loc >= 0], recs, tokens, vectors))
        new_ids = recs["id"].astype(str).tolist()
        return UpdateResult(added=[i for i, j in zip(new_ids, loc, strict=True) if j < 0],
                            replaced=[i for i, j in zip(new_ids, loc, strict=True) if j >= 0], rejected=rejects)

    def _dense_input(self, recs: pd.DataFrame, texts: list[str], tokens: Sequence[list[str]]
                     ) -> tuple[list[str], list[list[str]]]:
        """Texts and tokens the dense encoder reads (see ``EngineConfig.dense_text``); empty token lists for an
        encoder that reads only the text.
        """
        if self.config.dense_text not in ("title", "full"):
            raise ValueError(f"dense_text must be 'title' or 'full', not {self.config.dense_text!r}")
        chosen = self._titles(recs) if self.config.dense_text == "title" else texts
        if not self._encoder_reads_tokens():
            return chosen, [[] for _ in chosen]
        if self.config.dense_text == "title":
            return chosen, self.tokenizer_.tokenize_many(chosen, normalized=True)
        return chosen, tokens if isinstance(tokens, list) else list(tokens)

    def _titles(self, recs: pd.DataFrame) -> list[str]:
        """Titles cut to ``max_title_chars`` (:meth:`_texts` warns about the cut ones)."""
        cap = self.config.max_title_chars
        return [t[:cap] for t in recs["title"].astype(str)]

    def _encoder_reads_tokens(self) -> bool:
        """Whether the encoder reads tokens (``Encoder.reads_tokens``; an encoder of the caller's may not say)."""
        return bool(getattr(self.encoder_, "reads_tokens", True))

    def _tokens(self, texts: list[str], show_progress: bool) -> TermLists:
        """The index tokens of normalised texts as term ids (a block's lists of strings live only while it is
        converted), with a progress bar of the records (moved every 4,096).
        """
        step = 4096
        vocab: dict[str, int] = {}
        parts = []
        with progress_bar(total=len(texts), desc="tokenise", enabled=show_progress, unit="rec") as bar:
            for i in range(0, len(texts), step):
                parts.append(TermLists.of(self.tokenizer_.tokenize_many(texts[i:i + step], normalized=True), vocab))
                bar.update(min(step, len(texts) - i))
        return TermLists.joined(parts, vocab)

    def _encode(self, texts: list[str], tokens: list[list[str]], show_progress: bool, desc: str) -> np.ndarray:
        """Vectors of texts, one row each (see :meth:`_encoded`)."""
        return self._encoded(texts, tokens, show_progress, desc).full()

    def _encoded(self, texts: list[str], tokens: list[list[str]], show_progress: bool, desc: str) -> Encoded:
        """Vectors of texts (the encoder reads the matching tokens); a text held by several records is encoded once
        (one title posted through several channels, boilerplate titles): the encoder reads each text alone, so the
        vectors are those of encoding every record, up to the rounding that batch sizes change.
        """
        where: dict[str, int] = {}
        inverse = np.fromiter((where.setdefault(t, len(where)) for t in texts), np.int64, len(texts))
        if len(where) == len(texts):
            return Encoded(self._encode_all(texts, tokens, show_progress, desc), inverse)
        first = np.unique(inverse, return_index=True)[1]
        return Encoded(self._encode_all(list(where), [tokens[i] for i in first], show_progress, desc), inverse)

    def _encode_all(self, texts: list[str], tokens: list[list[str]], show_progress: bool, desc: str) -> np.ndarray:
        step = 256
        parts = [self.encoder_.encode(texts[i:i + step], tokens[i:i + step])
                 for i in progress_bar(range(0, len(texts), step), desc=desc, enabled=show_progress, unit="chunk")]
        return np.vstack(parts) if parts else np.zeros((0, self.encoder_.dim), np.float32)

    def __len__(self) -> int:
        return len(self._snap.records)

    def vectors(self, records: RecordsLike | None = None) -> np.ndarray:
        """Dense vectors (read-only): of the live indexed records in ``records_`` order, or of ``records`` encoded
        the way queries are.
        """
        if records is None:
            out = self.dense_.live_vectors().view()
        else:
            recs, _ = from_any(records)
            texts = self._texts(recs)
            parts = [self._query_side(recs.iloc[i:i + QUERY_CHUNK], texts[i:i + QUERY_CHUNK])[1]
                     for i in range(0, len(texts), QUERY_CHUNK)]
            out = np.vstack(parts) if parts else np.zeros((0, self.encoder_.dim), np.float32)
        out.flags.writeable = False
        return out

    # ---- matching -------------------------------------------------------------------------------------------
    def _queries(self, queries: RecordsLike | Sequence[str]) -> tuple[pd.DataFrame, list[Rejection]]:
        if isinstance(queries, str):
            queries = [queries]
        if isinstance(queries, list | tuple) and queries and all(isinstance(q, str) for q in queries):
            queries = [{"id": f"q{i + 1}", "title": q} for i, q in enumerate(queries)]
        return from_any(queries, "<queries>")  # type: ignore[arg-type]

    def match(self, queries: RecordsLike | Sequence[str], k: int = 10,
              filters: filt.Filters | Iterable[str] | None = None, explain_matches: bool = True,
              show_progress: bool = False, device: str | None = None, min_confidence: float | None = None
              ) -> Matches:
        """Best ``k`` indexed records for each query (records, dicts, or plain strings), best first.

        ``filters`` (e.g. ``{"industry": ["39", "C27"], "region": "关中"}``) are applied inside the search, so each
        query gets min(k, records passing the filter) results. Queries failing validation go to
        ``Matches.rejected``. The result arrays are (queries, min(k, records in the index)): a k beyond the index
        size allocates nothing for slots no record could fill. ``min_confidence`` drops the matches whose
        calibrated confidence (:mod:`.confidence`) is below it, so a row may hold none.

        ``device`` (``"cuda"``, or ``"cpu"`` for torch's CPU backend) scores the batch with torch on that device
        (:mod:`qcy_match.match.device`, the [gpu] extra); None, the default, is the numpy/FAISS path.
        """
        if min_confidence is not None and not 0 <= min_confidence <= 1:
            raise ValueError("min_confidence must be between 0 and 1")
        # one snapshot for the whole batch, whatever writers do meanwhile
        return self._match_in(self._snap, queries, k, filters, explain_matches, show_progress, device
                              ).above(min_confidence)

    def _match_in(self, st: Snapshot, queries: RecordsLike | Sequence[str], k: int,
                  filters: filt.Filters | Iterable[str] | None, explain_matches: bool, show_progress: bool,
                  device: str | None = None) -> Matches:
        """:meth:`match` against snapshot ``st``."""
        if k < 1:
            raise ValueError("k must be at least 1")
        on = device_path.resolve(device)  # a GPU asked for and absent fails here, before any work
        recs, rejects = self._queries(queries)
        k = min(k, len(st.ids))
        keep = st.filters.mask(filt.parse([filters] if isinstance(filters, str) else filters))
        if on is not None:
            out = device_path.match_records(self, st, recs, k, st.positions(keep), explain_matches, show_progress, on)
        else:
            # A small request runs every per-query stage on one thread (see qcy_match.threads)
            with threads.for_queries(len(recs), st.dense.parallel_from):
                out = self._match_records(st, recs, k, st.positions(keep), explain_matches, show_progress)
        return dataclasses.replace(out, rejected=rejects)

    def _match_records(self, st: Snapshot, recs: pd.DataFrame, k: int, mask: np.ndarray | None,
                       explain_matches: bool, show_progress: bool) -> Matches:
        """Match prepared queries against snapshot ``st``; ``mask`` is over positions."""
        n = len(recs)
        idx = np.full((n, k), -1, np.int64)
        scores = np.full((n, k), np.nan, np.float32)
        expl: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        # Candidates per signal, never more than the index holds: a manifest's 'candidates' is not trusted to be
        # small, and k is already at most the index size.
        pool = min(max(self.config.candidates, k), len(st.ids))
        texts = self._texts(recs)
        bar = progress_bar(total=n, desc="match", enabled=show_progress, unit="query")
        doc_fields = st.explain_fields if explain_matches else {}
        idf = st.sparse.idf_
        evidence: list[confidence.Evidence] = []
        for start in range(0, n, QUERY_CHUNK):
            chunk = slice(start, min(n, start + QUERY_CHUNK))
            q_tokens, q_vecs = self._query_side(recs.iloc[chunk], texts[chunk])
            q_bg = confidence.background(st).stats(q_vecs)
            d_idx, _ = st.dense.search(q_vecs, pool, mask)
            chunk_pools = self._pools(st, st.sparse, q_tokens, q_vecs, d_idx, pool, mask)
            if explain_matches:
                q_fields = {c: recs[c].iloc[chunk].to_numpy(dtype=object) for c in EXPLAIN_FIELDS}
            for j, (toks, candidates) in enumerate(zip(q_tokens, chunk_pools, strict=True)):
                i = start + j
                keys, fused, signals = pools.fused(candidates, k, self.config.dense_weight, self.config.fusion)
                best = keys if st.to_live is None else st.to_live[keys]
                m = len(best)
                idx[i, :m], scores[i, :m] = best, fused
                evidence.append((toks, signals, q_bg[j]))
                if explain_matches:
                    q = {c: v[j] for c, v in q_fields.items()}
                    q_idf = query_idf(idf, toks)
                    expl[i] = [explain(q, {c: v[d] for c, v in doc_fields.items()}, toks, st.tokens[d],
                                       q_idf, sig, self.config.n_keywords)
                               for d, sig in zip(best, signals, strict=True)]
            bar.update(chunk.stop - chunk.start)
        bar.close()
        return self._batch_matches(st, recs, idx, scores, expl if explain_matches else [], evidence)

    def _batch_matches(self, st: Snapshot, recs: pd.DataFrame, idx: np.ndarray, scores: np.ndarray,
                       expl: list[list[dict[str, Any]]],
                       evidence: list[confidence.Evidence]) -> Matches:
        """The :class:`Matches` of a batch from its live indices, fused scores, explanations and, per query, its
        tokens, per-match signals and background statistics (what the confidence reads); every search path ends
        here.
        """
        ids = np.where(idx >= 0, st.ids[np.maximum(idx, 0)], np.array(None, dtype=object))
        conf = confidence.of_matches(st, recs, [e[0] for e in evidence], idx, [e[1] for e in evidence],
                                     np.array([e[2] for e in evidence]).reshape(len(evidence), 2),
                                     confidence.Calibration.from_dict(self.config.confidence))
        return Matches(recs["id"].astype(str).tolist(), idx, ids, scores, expl,
                       query_side=SIDES[1 - SIDES.index(self.side_)], confidence=conf).with_confidence()

    def _query_side(self, recs: pd.DataFrame, texts: list[str]) -> tuple[list[list[str]], np.ndarray]:
        """BM25 tokens and dense vectors of a batch of queries (``texts``: their :meth:`_texts`); every search path
        and the confidence's pair features read queries through here, so they all see the same query.
        """
        # Documents were indexed in search mode (compounds plus their parts); a query keeps its compounds whole
        # so it neither loses precision nor needs the parts to meet documents that hold them.
        q_tokens = [self.tokenizer_.tokenize(t, normalized=True, search_mode=False) for t in texts]
        cut = functools.partial(self.tokenizer_.tokenize, normalized=True) if self._encoder_reads_tokens() else \
            _no_tokens
        q_vecs = self.encoder_.encode(*query.dense_input(
            self.config, texts, cut, functools.partial(self._dense_input, recs, texts, q_tokens)))
        return q_tokens, q_vecs

    def _pools(self, st: Snapshot, sparse: SparseIndex, tokens: Sequence[list[str]], q_vecs: np.ndarray,
               dense_top: np.ndarray, pool: int, mask: np.ndarray | None) -> list[pools.Pool]:
        """Each query's candidates in snapshot ``st`` (positions): the BM25 top ``pool`` scored by ``sparse`` (the
        snapshot's own, or a shard's with corpus-wide statistics), a chunk of queries at once, and the dense top
        lists ``dense_top`` (one row per query, -1 padded).
        """
        d_tops = [row[row >= 0] for row in dense_top]
        hits = query.sparse_top_many(sparse, tokens, pool, mask, d_tops, self.config,
                                     lambda p: st.tokens[p if st.to_live is None else st.to_live[p]])
        return [pools.pool_of(s_top, d_top, np.concatenate([s_val, d_sparse]),
                              functools.partial(st.dense.score, q_vecs[j]))
                for j, ((s_top, s_val, d_sparse), d_top) in enumerate(zip(hits, d_tops, strict=True))]

    # ---- solvers and consortia (揭榜挂帅, 创新联合体) ------------------------------------------------------------
    def solvers(self, needs: RecordsLike | Sequence[str], k: int = 5, filters: filt.Filters | Iterable[str] | None
                = None, unit: str = "owner", model: VotingModel | None = None, show_progress: bool = False
                ) -> SolverRanking:
        """The ``k`` owners (or ``unit="team"`` / ``"leader"``) best placed to solve each challenge, ranked by the
        votes of their matched achievements (:mod:`qcy_match.solvers.votes`), with the supporting records.

        ``filters`` restrict the achievements that vote, as in :meth:`match`. Records naming no owner are listed
        in ``unowned``, never guessed; records without the ``unit`` column raise :class:`~qcy_match.errors.InputError`
        and an index of needs :class:`~qcy_match.errors.UsageError`.
        """
        return teams.solvers(self, self._snap, needs, k, filters, unit, model, show_progress)

    def consortium(self, needs: RecordsLike | Sequence[str], max_members: int = 3,
                   filters: filt.Filters | Iterable[str] | None = None, unit: str = "owner",
                   model: ConsortiumModel | None = None, voting: VotingModel | None = None,
                   show_progress: bool = False) -> Consortium:
        """For each challenge, at most ``max_members`` owners that together cover the most of its parts with the
        strongest evidence, preferring partners in the challenge's region group when evidence is close
        (:mod:`qcy_match.solvers.consortium`); ``model`` overrides the other choice parameters.
        """
        model = dataclasses.replace(model or ConsortiumModel(), max_members=max_members)
        return teams.consortium(self, self._snap, needs, model, filters, unit, voting, show_progress)

    # ---- persistence ----------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], shards: int | None = None) -> Path:
        """Write the index as a directory with a JSON manifest; atomic (see :mod:`qcy_match.persistence`).

        Pending updates are merged first (:meth:`compact`), so the saved index equals a fresh build. User
        dictionaries are copied into the directory. Refuses to replace a directory that is not a qcy-match one.
        ``shards``: write a sharded index of that many shards instead (:mod:`qcy_match.match.sharded`).
        """
        if shards is not None:
            from .sharded import ShardedEngine

            return ShardedEngine.from_engine(self, shards).save(path)
        # The directory's writer lock before the engine's: the order update_saved and its callers take them in.
        with persistence.locked(path), self._write_lock:
            self._snap = st = compacted(self._snap)
            return persistence.save_dir(path, lambda tmp: saved.write(self, st, tmp))

    @classmethod
    def load(cls, path: str | os.PathLike[str], verify: bool = True) -> MatchEngine:
        """Open an index directory, refusing one that is incomplete, corrupted, of another format version, or holds
        a file its manifest does not list. A sharded directory opens as a
        :class:`~qcy_match.match.sharded.ShardedEngine`.
        """
        return saved.read(cls, path, verify)

    @classmethod
    def update_saved(cls, path: str | os.PathLike[str], upsert: RecordsLike | None = None,
                     delete: Iterable[str] = (), out: str | os.PathLike[str] | None = None,
                     show_progress: bool = False) -> tuple[UpdateResult, MatchEngine]:
        """Delete ids from, then upsert records into, the saved index ``path``, and save it to ``out`` (default:
        ``path``), holding the directory's writer lock (:func:`qcy_match.persistence.locked`) from load to save,
        so concurrent updates of one index, from threads or processes, are applied one after the other, none lost.

        Returns what was done and the updated engine.
        """
        dest = path if out is None else out
        with persistence.locked(dest):
            engine = cls.load(path)
            done = engine.delete(delete)
            if upsert is not None:
                up = engine.upsert(upsert, show_progress=show_progress)
                done.added, done.replaced, done.rejected = up.added, up.replaced, up.rejected
            engine.save(dest)
        return done, engine



def _no_tokens(text: str) -> list[str]:
    """The tokens handed to an encoder that reads only the text (``Encoder.reads_tokens`` false)."""
    return []
