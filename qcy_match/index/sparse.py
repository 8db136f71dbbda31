"""BM25 over jieba tokens in Lucene's layout: term-frequency postings scored at query time with live statistics.

Postings hold raw term frequencies, not precomputed scores (bm25s' layout), so the collection statistics that BM25
reads (document count, document frequencies, mean length) can change as records are added and deleted without
re-indexing: like Lucene, the scorer applies the current statistics at query time. An index is a *main* segment
(built by :meth:`SparseIndex.fit`) plus a small *delta* segment of documents added since, with deletes as a mask.
Instances are immutable: :meth:`SparseIndex.updated` returns a new one, so readers holding the old one are never
disturbed. The statistics are always exact, so scores after any sequence of updates equal a fresh build of the same
documents (tested against bm25s' Lucene variant and against fresh builds).

Top-k retrieval (:meth:`SparseIndex.top`) is exact but does not score every posting: each long postings list is
also kept ordered by impact (its tf-normalised weight), and a query takes the highest-impact postings of all its
terms down to a common threshold, sums them per document, and stops once the k-th best partial score is above what
any document could still reach from the postings it skipped (score-at-a-time with a MaxScore bound, as Lucene and
PISA prune). The surviving documents are then scored exactly, term by term in query order, so the scores are the
bits :meth:`SparseIndex.scores` gives. The statistics BM25 reads come from one :class:`Stats` object, which a caller
can replace (:meth:`SparseIndex.with_stats`) so shards of one collection score with corpus-wide statistics.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..persistence import LAYOUT
from .mapped import mode, within
from .terms import TermLists, ranges, term_ids
from .topk import top_k

# Whether top() tries the pruned search first. Off: on records recombined from CSL sentences (30k and 100k) the
# bound closed early for only 7-35 % of needs (full-length needs hold 50-150 distinct terms whose BM25 weights vary
# little), and the attempts cost more than the full scans they saved (benchmarks/sparse_scale.py). Kept, exact and
# tested, for short queries and for the sharded layout where per-shard lists are short.
PRUNE = False
# Postings lists at most this long are read whole; longer ones get an impact-ordered copy (built on first use).
IMPACT_MIN = 128
# Postings a pruned query first reads (times the pool), and how much more each round reads while the bound is open.
FIRST_BUDGET = 32
BUDGET_GROWTH = 4
# Rescoring more documents than this many times k costs more than reading further.
MAX_RESCORE = 20
# A query whose bound after a round is this many times the k-th partial score will not close early: scan instead.
HOPELESS = 4.0
# Reading a posting by impact (gathered, then sorted by document) costs about this many times a full scan's
# gather-add of it: prune only while the postings read stay this far below the query's total.
SCAN_RATIO = 16
# Documents per block of a BM25 build (see _Segment.build): a block's matrix is ~15 MiB of realistic records.
BUILD_BLOCK = 65_536
# Bytes a chunk of top_many() queries may take: its dense scores (float32) and the sparse product's entries.
CHUNK_BYTES = 256 << 20
# Relative slack on the bound: partial sums are float64 in another order than the float32 exact scores.
BOUND_SLACK = 1e-4
# Budgeted search (top(..., budget=B)): documents rescored exactly, as a multiple of k, chosen by partial score.
RESCORE = 4
# A posting read by the budgeted search costs about this many times a full scan's gather-add of it (head gather,
# threshold selection, sort and reduce): a query whose long lists hold fewer postings than this many budgets is
# scanned whole, exactly and faster.
BUDGET_SCAN_RATIO = 8
# Share of the budget spent on whole postings lists of the query's rarest terms; the rest goes to impact-ordered
# reading of the other lists. On 300k realistic records (benchmarks/sparse_scale.py) spending 3/4 of a budget this
# way kept the known-source hit rate of the exact search where impact-ordered reading alone lost a quarter of it.
WHOLE_SHARE = 0.75


@dataclasses.dataclass(frozen=True)
class Stats:
    """The collection statistics BM25 reads: document frequency per term id, document count, mean length."""

    df: np.ndarray
    n_docs: int
    avgdl: float

    @functools.cached_property
    def idfs(self) -> np.ndarray:
        """Lucene's idf of every term id (computed once: explanations and scoring read it per term)."""
        df = self.df.astype(np.float64)
        return np.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def idf(self, term: int) -> float:
        """Lucene's idf of a term id (0 df for ids beyond ``df``: terms this collection has not seen)."""
        if term < len(self.df):
            return float(self.idfs[term])
        return math.log(1 + (self.n_docs + 0.5) / 0.5)


class _Segment:
    """Postings of a block of documents: CSC arrays (term → documents, tf) and document lengths."""

    def __init__(self, indptr: np.ndarray, docs: np.ndarray, tf: np.ndarray, lengths: np.ndarray) -> None:
        self.indptr, self.docs, self.tf, self.lengths = indptr, docs, tf, lengths

    @classmethod
    def build(cls, ids: np.ndarray, offsets: np.ndarray, n_terms: int) -> _Segment:
        """The postings of documents whose term ids are ``ids[offsets[i]:offsets[i + 1]]``.

        Built a block of documents at a time, twice: the first pass counts each term's postings, the second writes
        each block's postings into their places (terms in order, documents ascending within a term). So the build
        holds the postings once plus one block's, never a matrix entry per token (1.1 GiB more at 1M records).
        """
        n = len(offsets) - 1
        counts = np.zeros(n_terms, np.int64)
        for cnt, _, _ in _blocks(ids, offsets, n_terms):
            counts += cnt
        indptr = np.zeros(n_terms + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        docs = np.empty(int(indptr[-1]), np.int32)
        tf = np.empty(int(indptr[-1]), np.float32)
        fill = indptr[:-1].copy()
        for cnt, d, f in _blocks(ids, offsets, n_terms):
            at = ranges(fill, cnt)
            docs[at], tf[at] = d, f
            fill += cnt
        return cls(indptr, docs, tf, np.diff(offsets).astype(np.float32)[:n])

    @classmethod
    def of_lists(cls, token_ids: list[list[int]], n_terms: int) -> _Segment:
        """The postings of documents given as lists of term ids."""
        lengths = np.fromiter((len(d) for d in token_ids), np.int64, len(token_ids))
        ids = np.fromiter((t for d in token_ids for t in d), np.int32, int(lengths.sum()))
        return cls.build(ids, np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths)]), n_terms)

    def __len__(self) -> int:
        return len(self.lengths)

    def span(self, term: int) -> tuple[int, int]:
        """Where a term's postings lie in ``docs`` / ``tf`` (empty for terms added after this segment was built)."""
        if term + 1 >= len(self.indptr):
            return 0, 0
        return int(self.indptr[term]), int(self.indptr[term + 1])


class _IdfView(Mapping[str, float]):
    """IDF of every term under the live statistics, computed on demand (the vocabulary can be large)."""

    def __init__(self, index: SparseIndex) -> None:
        self._ix = index

    def __getitem__(self, term: str) -> float:
        t = self._ix.vocab_.get(term)
        table = self._ix._live_idf()
        v = table[t] if t is not None and t < len(table) else math.nan
        if v != v:  # NaN: a term no live record holds
            raise KeyError(term)
        return v

    def __iter__(self) -> Iterator[str]:
        return (w for w, t in list(self._ix.vocab_.items()) if t < len(self._ix.df_) and self._ix.df_[t] > 0)

    def __len__(self) -> int:
        return int((self._ix.df_ > 0).sum())


class SparseIndex:
    """BM25 (Lucene variant: idf = ln(1 + (N - df + 0.5)/(df + 0.5)), tf / (tf + k1·(1 - b + b·dl/avgdl))).

    Positions: the main segment's documents first, then the delta's, in the order they were added. Deleted
    positions score 0 and leave the statistics at once.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b

    # ---- building -----------------------------------------------------------------------------------------------
    def fit(self, corpus_tokens: Sequence[Sequence[str]] | TermLists) -> SparseIndex:
        """Index the token lists of the corpus as one main segment. Given :class:`TermLists`, the index shares
        their vocabulary (a saved index stores it once); given lists of strings, it builds its own.
        """
        lists = corpus_tokens if isinstance(corpus_tokens, TermLists) else TermLists.of(corpus_tokens)
        # Term ids are only ever appended, so a reader holding an older instance ignores ids beyond its own df_.
        self.vocab_: dict[str, int] = lists.vocab
        self.main_ = _Segment.build(lists.ids, lists.offsets, len(self.vocab_))
        self.delta_tokens_: list[list[int]] = []
        self.delta_ = _Segment.of_lists([], len(self.vocab_))
        self.alive_: np.ndarray | None = None
        self.df_ = np.diff(self.main_.indptr).astype(np.int64)
        self.n_docs_ = len(corpus_tokens)
        self.total_len_ = float(self.main_.lengths.sum(dtype=np.float64))
        self._clear_caches()
        return self

    def updated(self, add: Sequence[Sequence[str]] | None = None, delete: np.ndarray | list[int] | None = None
                ) -> SparseIndex:
        """A new index with ``delete`` positions removed and ``add`` documents appended to the delta segment."""
        new = object.__new__(SparseIndex)
        new.k1, new.b, new.vocab_, new.main_ = self.k1, self.b, self.vocab_, self.main_
        n_main = len(self.main_)
        alive = np.ones(len(self), bool) if self.alive_ is None else self.alive_.copy()
        df = self.df_.copy()
        gone = np.unique(np.asarray(delete if delete is not None else [], dtype=np.int64))
        gone = gone[alive[gone]]
        alive[gone] = False
        in_main = gone[gone < n_main]
        if len(in_main):
            hits = np.flatnonzero(np.isin(self.main_.docs, in_main))
            np.subtract.at(df, np.searchsorted(self.main_.indptr, hits, side="right") - 1, 1)
        for pos in gone[gone >= n_main]:
            df[np.unique(np.asarray(self.delta_tokens_[pos - n_main], dtype=np.int64))] -= 1
        lengths = np.concatenate([self.main_.lengths, self.delta_.lengths])
        total = self.total_len_ - float(lengths[gone].sum(dtype=np.float64))
        added = [term_ids(doc, new.vocab_) for doc in (add or [])]
        if len(new.vocab_) > len(df):
            df = np.concatenate([df, np.zeros(len(new.vocab_) - len(df), np.int64)])
        for doc in added:
            df[np.unique(np.asarray(doc, dtype=np.int64))] += 1
            total += len(doc)
        new.delta_tokens_ = self.delta_tokens_ + added
        new.delta_ = _Segment.of_lists(new.delta_tokens_, len(new.vocab_)) if added else self.delta_
        full = np.concatenate([alive, np.ones(len(added), bool)])
        new.alive_ = None if full.all() else full
        new.df_, new.n_docs_, new.total_len_ = df, self.n_docs_ - len(gone) + len(added), total
        new._stats_override = None
        return new

    def __len__(self) -> int:
        """Positions, deleted ones included."""
        return len(self.main_) + len(self.delta_)

    # ---- scoring ------------------------------------------------------------------------------------------------
    def _term(self, token: str) -> int | None:
        t = self.vocab_.get(token)
        return t if t is not None and t < len(self.df_) else None

    def stats(self) -> Stats:
        """The statistics scores read: this index's own live ones, or those given to :meth:`with_stats`."""
        if self._stats_override is not None:
            return self._stats_override
        cached: Stats | None = self.__dict__.get("_cache_stats")
        if cached is None:
            cached = Stats(self.df_, self.n_docs_, self.total_len_ / self.n_docs_ if self.n_docs_ else 1.0)
            self.__dict__["_cache_stats"] = cached
        return cached

    def with_stats(self, df: Mapping[str, int] | np.ndarray, n_docs: int, avgdl: float) -> SparseIndex:
        """A copy of this index that scores with the given collection statistics (e.g. a whole collection's, for
        one shard of it: Elasticsearch's dfs_query_then_fetch). ``df`` maps terms to document frequencies, or is an
        array over this index's term ids; terms it lacks count as never seen.
        """
        if isinstance(df, np.ndarray):
            arr = np.zeros(len(self.vocab_), np.int64)
            arr[:min(len(df), len(arr))] = df[:len(arr)]
        else:
            arr = np.array([int(df.get(t, 0)) for t in sorted(self.vocab_, key=self.vocab_.__getitem__)], np.int64)
        new = object.__new__(SparseIndex)
        new.__dict__.update({k: v for k, v in self.__dict__.items() if not k.startswith("_cache")})
        new._stats_override = Stats(arr, int(n_docs), float(avgdl))
        return new

    def _clear_caches(self) -> None:
        for key in [k for k in self.__dict__ if k.startswith("_cache")]:
            del self.__dict__[key]
        self._stats_override: Stats | None = None

    def _live_idf(self) -> list[float]:
        """IDF by term id as Python floats, NaN where no live document holds the term; built on first use, so that
        explanations and confidences, which look terms up one by one, read a list instead of numpy scalars.
        """
        cached: list[float] | None = self.__dict__.get("_cache_live_idf")
        if cached is None:
            cached = np.where(self.df_ > 0, self.stats().idfs[:len(self.df_)], np.nan).tolist()
            self.__dict__["_cache_live_idf"] = cached
        return cached

    @property
    def idf_(self) -> Mapping[str, float]:
        """IDF per term under the live statistics."""
        return _IdfView(self)

    def _weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Per posting tf / (tf + k1·(1 - b + b·dl/avgdl)) of each segment, computed once per instance.

        Instances never change (updates make new ones), so the statistics these read are fixed; caching them turns
        a query's work into one scaled gather-add per query term instead of a pass over every document length.
        """
        cached: tuple[np.ndarray, np.ndarray] | None = self.__dict__.get("_cache_weights")
        if cached is None:
            avgdl = np.float32(self.stats().avgdl)
            k1, b = np.float32(self.k1), np.float32(self.b)
            parts = []
            for seg in (self.main_, self.delta_):
                norm = k1 * ((np.float32(1) - b) + b * seg.lengths / avgdl)
                parts.append(seg.tf / (norm[seg.docs] + seg.tf))
            cached = (parts[0], parts[1])
            self.__dict__["_cache_weights"] = cached
        return cached

    def _impact(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The main segment's long postings lists ordered by impact: each list's weights descending and their
        documents, as (offsets by term id, weights, documents); lists of IMPACT_MIN postings or fewer are empty.

        Built on first use per instance (the weights depend on the statistics), with one sort.
        """
        cached: tuple[np.ndarray, np.ndarray, np.ndarray] | None = self.__dict__.get("_cache_impact")
        if cached is None:
            m = self.main_
            length = np.diff(m.indptr)
            term = np.repeat(np.arange(len(length)), length)
            take = np.flatnonzero(length[term] > IMPACT_MIN)
            w = self._weights()[0][take]
            # Weights lie in (0, 1): term id + (1 - weight) sorts by term, then by weight descending.
            order = take[np.argsort(term[take] + (1.0 - w.astype(np.float64)), kind="stable")]
            offsets = np.zeros(len(length) + 1, np.int64)
            np.cumsum(np.where(length > IMPACT_MIN, length, 0), out=offsets[1:])
            cached = (offsets, self._weights()[0][order], m.docs[order])
            self.__dict__["_cache_impact"] = cached
        return cached

    def _query_terms(self, tokens: list[str]) -> list[int]:
        """Known term ids of a query, repeats kept (a repeated token counts twice, as in bm25s)."""
        return [t for t in (self._term(w) for w in tokens) if t is not None]

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every position for one query (zeros for unknown tokens and deleted positions)."""
        out = np.zeros(len(self), dtype=np.float32)
        terms = self._query_terms(tokens)
        st = self.stats()
        if not terms or st.n_docs == 0:
            return out
        offset = 0
        for seg, weight in zip((self.main_, self.delta_), self._weights(), strict=True):
            if len(seg):
                part = out[offset:offset + len(seg)]
                for t in terms:
                    a, z = seg.span(t)
                    if z > a:
                        part[seg.docs[a:z]] += np.float32(st.idf(t)) * weight[a:z]
            offset += len(seg)
        if self.alive_ is not None:
            out[~self.alive_] = 0.0
        return out

    def _rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The main segment's postings by document (CSR: offsets, term ids sorted, weights), built on first use:
        exact scores of a few documents read their rows instead of searching every query term's postings.
        """
        cached: tuple[np.ndarray, np.ndarray, np.ndarray] | None = self.__dict__.get("_cache_rows")
        if cached is None:
            m = self.main_
            csr = sp.csc_matrix((self._weights()[0], m.docs, m.indptr), shape=(len(m), len(m.indptr) - 1)).tocsr()
            csr.sort_indices()
            cached = (csr.indptr.astype(np.int64), csr.indices.astype(np.int32), csr.data.astype(np.float32))
            self.__dict__["_cache_rows"] = cached
        return cached

    def score_docs(self, tokens: list[str], positions: np.ndarray) -> np.ndarray:
        """``scores(tokens)[positions]`` without scoring the rest: the same float32 sums in the same order."""
        positions = np.asarray(positions, dtype=np.int64)
        out = np.zeros(len(positions), dtype=np.float32)
        terms = self._query_terms(tokens)
        st = self.stats()
        if not terms or st.n_docs == 0 or not len(positions):
            return out
        uniq, slot = np.unique(np.asarray(terms, np.int64), return_inverse=True)
        # Weight of each distinct query term in each document: main documents from their rows, delta ones by
        # searching the (small) delta postings.
        w = np.zeros((len(uniq), len(positions)), np.float32)
        n_main = len(self.main_)
        in_main = np.flatnonzero(positions < n_main)
        if len(in_main):
            indptr, row_terms, row_w = self._rows()
            docs = positions[in_main]
            lens = indptr[docs + 1] - indptr[docs]
            at = np.repeat(indptr[docs] - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
            col = np.repeat(in_main, lens)
            lut = np.full(len(self.main_.indptr), -1, np.int32)  # term id → distinct query term (-1: none)
            lut[uniq[uniq < len(lut)]] = np.flatnonzero(uniq < len(lut))
            j = lut[row_terms[at]]
            hit = j >= 0
            w[j[hit], col[hit]] = row_w[at[hit]]
        in_delta = np.flatnonzero(positions >= n_main)
        if len(in_delta):
            weight = self._weights()[1]
            local = positions[in_delta] - n_main
            for j, t in enumerate(uniq):
                a, z = self.delta_.span(int(t))
                if z > a:
                    at = np.minimum(np.searchsorted(self.delta_.docs[a:z], local), z - a - 1)
                    hit = self.delta_.docs[a:z][at] == local
                    w[j, in_delta[hit]] = weight[a:z][at[hit]]
        # Summed in query order, repeats included, as scores() sums (adding a 0 weight leaves a float32 sum as is):
        # a reduction over the first axis of a C-ordered array adds its rows one after another.
        idf = st.idfs[np.asarray(terms, np.int64)].astype(np.float32)
        out = np.add.reduce(idf[:, None] * w[slot], axis=0, dtype=np.float32)
        if self.alive_ is not None:
            out[~self.alive_[positions]] = 0.0
        return out

    def top(self, tokens: list[str], k: int, mask: np.ndarray | None = None, also: np.ndarray | None = None,
            budget: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``k`` best positions scoring above zero (among ``mask``), best first, lower position on ties, their
        scores, and the scores of the positions ``also`` (e.g. another retriever's candidates): exactly what
        ``top_k`` of :meth:`scores` gives, found without scoring every posting where the bound allows (see the
        module's docstring).

        ``budget`` > 0 reads at most about that many postings of the main segment's long lists, highest impact
        first (:meth:`_budget_candidates`): the returned scores (and those of ``also``) stay exact BM25, only the
        candidate set is approximate. A budget covering the query's postings gives the exact list.
        """
        also = np.empty(0, np.int64) if also is None else np.asarray(also, dtype=np.int64)
        terms = self._query_terms(tokens)
        if not terms or self.stats().n_docs == 0 or k < 1:
            return np.empty(0, np.int64), np.empty(0, np.float32), np.zeros(len(also), np.float32)
        cands = self._budget_candidates(terms, k, mask, budget) if budget > 0 else None
        if cands is None and PRUNE:
            cands = self._pruned_candidates(terms, k, mask)
        if cands is None:
            s = self.scores(tokens)
            kept = s if mask is None else np.where(mask, s, np.float32(0))
            hit = _above(kept, k)
            j, v = top_k(kept[hit], k)
            return hit[j], v, s[also]
        both = np.unique(np.concatenate([cands, also]))
        val = self.score_docs(tokens, both)
        mine = np.isin(both, cands, assume_unique=True)
        c, v = both[mine], val[mine]
        order = np.lexsort((c, -v))[:k]
        order = order[v[order] > 0]
        return c[order], v[order], val[np.searchsorted(both, also)]

    def _postings(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Each segment's postings as a terms × documents CSR matrix of idf · weight (float32), built on first use:
        the operand of :meth:`top_many`'s sparse product. Every entry is the float32 product :meth:`scores` adds.
        """
        cached: tuple[sp.csr_matrix, sp.csr_matrix] | None = self.__dict__.get("_cache_postings")
        if cached is None:
            n_terms = len(self.df_)
            idf = self.stats().idfs.astype(np.float32)
            parts = []
            for seg, weight in zip((self.main_, self.delta_), self._weights(), strict=True):
                # A segment built before later terms were added has a shorter indptr: those terms have no postings.
                indptr = seg.indptr[:n_terms + 1]
                indptr = np.concatenate([indptr, np.full(n_terms + 1 - len(indptr), indptr[-1], indptr.dtype)])
                data = np.repeat(idf[:n_terms], np.diff(indptr)) * weight[:indptr[-1]]
                parts.append(sp.csr_matrix((data, seg.docs[:indptr[-1]], indptr), shape=(n_terms, len(seg))))
            cached = (parts[0], parts[1])
            self.__dict__["_cache_postings"] = cached
        return cached

    def top_many(self, queries: Sequence[list[str]], k: int, mask: np.ndarray | None = None,
                 also: Sequence[np.ndarray] | None = None, budget: int = 0
                 ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """:meth:`top` of each query (``also[i]`` the positions whose scores query i also wants), scored a chunk
        of queries at a time as one sparse product: the chunk's query-term matrix times the postings.

        The query matrix holds each query's known tokens in query order, repeats kept, each worth 1, so the product
        adds to every position the same float32 terms in the same order as :meth:`scores` does: the scores, and so
        the top lists and their ties, are bit for bit those of :meth:`top`. A chunk's dense scores take about
        ``CHUNK_BYTES`` (queries × positions float32 plus the product's entries). Where pruning is on (``PRUNE``),
        each query goes through :meth:`top` instead, whose pruned search reads fewer postings than a full product;
        so does each query that a ``budget`` > 0 reads by budget (:meth:`_budget_reads`), so a batch returns what
        the same queries one at a time return.
        """
        n = len(self)
        alsos = [np.empty(0, np.int64) if also is None else np.asarray(also[i], dtype=np.int64)
                 for i in range(len(queries))]
        if PRUNE:
            return [self.top(q, k, mask, also=a, budget=budget) for q, a in zip(queries, alsos, strict=True)]
        terms = [self._query_terms(q) for q in queries]
        out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [
            (np.empty(0, np.int64), np.empty(0, np.float32), np.zeros(len(a), np.float32)) for a in alsos]
        todo = [i for i, t in enumerate(terms) if t]
        if not todo or self.stats().n_docs == 0 or k < 1:
            return out
        if budget > 0:
            by_budget = {i for i in todo if self._budget_reads(terms[i], mask, budget)}
            for i in sorted(by_budget):
                out[i] = self.top(queries[i], k, mask, also=alsos[i], budget=budget)
            todo = [i for i in todo if i not in by_budget]
            if not todo:
                return out
        step = max(1, CHUNK_BYTES // (12 * max(1, n)))
        main, delta = self._postings()
        n_main = len(self.main_)
        keep = None if mask is None else np.asarray(mask, dtype=np.float32)
        for start in range(0, len(todo), step):
            rows = todo[start:start + step]
            lens = np.array([len(terms[i]) for i in rows], np.int64)
            indptr = np.zeros(len(rows) + 1, np.int64)
            np.cumsum(lens, out=indptr[1:])
            cols = np.fromiter((t for i in rows for t in terms[i]), np.int64, int(indptr[-1]))
            # Not canonicalised (no sorting, no summing of repeats): scipy's product reads the entries in order.
            q = sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=(len(rows), len(self.df_)))
            s = np.zeros((len(rows), n), np.float32)
            s[:, :n_main] = (q @ main).toarray()
            if len(self.delta_):
                s[:, n_main:] = (q @ delta).toarray()
            if self.alive_ is not None:
                s *= self.alive_
            for j, i in enumerate(rows):
                row = s[j]
                also_val = row[alsos[i]]
                if keep is not None:
                    row *= keep  # what np.where(mask, s, 0) gives: scores are finite and never negative
                hit = _above(row, k)
                pick, val = top_k(row[hit], k)
                out[i] = (hit[pick], val, also_val)
        return out

    def _pruned_candidates(self, terms: list[int], k: int, mask: np.ndarray | None) -> np.ndarray | None:
        """Positions that hold the top ``k`` (a superset), or None where reading the impact-ordered postings
        would not stop early (the caller then scores every posting).
        """
        st = self.stats()
        weights = self._weights()[0]
        counts: dict[int, int] = {}
        for t in terms:
            counts[t] = counts.get(t, 0) + 1
        keep = self._kept(mask)
        short_docs, short_val, long_terms = [], [], []
        for t, c in counts.items():
            a, z = self.main_.span(t)
            if z - a > IMPACT_MIN:
                long_terms.append((t, c * st.idf(t)))
            elif z > a:
                short_docs.append(self.main_.docs[a:z])
                short_val.append(c * st.idf(t) * weights[a:z].astype(np.float64))
        total_long = sum(int(np.diff(self.main_.span(t))[0]) for t, _ in long_terms)
        budget = FIRST_BUDGET * k
        if not long_terms or total_long <= SCAN_RATIO * budget:
            return None
        offsets, imp_w, imp_d = self._impact()
        lists = [(imp_w[offsets[t]:offsets[t + 1]], imp_d[offsets[t]:offsets[t + 1]], f) for t, f in long_terms]
        while budget * SCAN_RATIO < total_long:
            # The threshold: about the budget-th highest contribution, estimated from each long list's head.
            head = max(16, 2 * budget // len(lists))
            heads = np.concatenate([w[:head] * f for w, _, f in lists])
            rank = min(budget, len(heads))
            tau = np.partition(heads, len(heads) - rank)[len(heads) - rank]
            docs, val, gap = list(short_docs), list(short_val), []
            unseen = 0.0
            for w, d, f in lists:
                p = int(np.searchsorted(-w, -tau / f, side="right"))
                rest = float(w[p]) * f if p < len(w) else 0.0
                unseen += rest
                docs.append(d[:p])
                val.append(w[:p].astype(np.float64) * f)
                gap.append(np.full(p, rest))
            all_docs = np.concatenate(docs)
            all_val = np.concatenate(val)
            all_gap = np.concatenate([np.zeros(sum(map(len, short_docs)))] + gap)
            if keep is not None:
                ok = keep[all_docs]
                all_docs, all_val, all_gap = all_docs[ok], all_val[ok], all_gap[ok]
            uniq, inv = np.unique(all_docs, return_inverse=True)
            partial = np.bincount(inv, all_val, len(uniq))
            upper = partial + unseen - np.bincount(inv, all_gap, len(uniq))
            if len(uniq) >= k:
                kth = np.partition(partial, len(uniq) - k)[len(uniq) - k] * (1 - BOUND_SLACK)
                main = uniq[upper * (1 + BOUND_SLACK) >= kth].astype(np.int64)
                if unseen * (1 + BOUND_SLACK) < kth and len(main) <= MAX_RESCORE * k:
                    return np.concatenate([main, self._delta_candidates(counts, keep)])
                if unseen > HOPELESS * kth:
                    return None
            budget *= BUDGET_GROWTH
        return None

    def _budget_candidates(self, terms: list[int], k: int, mask: np.ndarray | None, budget: int
                           ) -> np.ndarray | None:
        """Positions likely to hold the top ``k``, from about ``budget`` postings read in decreasing impact order
        (score-at-a-time, anytime: JASS), or None where the query's long lists hold under BUDGET_SCAN_RATIO
        budgets (a full scan is then cheaper) or the read would leave fewer than ``k`` candidates: the caller then
        scans them all, exactly.

        Short lists (IMPACT_MIN postings or fewer: rare, high-IDF terms) are read whole. The long lists are read
        down to one threshold on a posting's contribution (idf · count · weight), chosen so about ``budget`` of
        them pass it; a low-IDF context word of a long need whose best posting is below it costs nothing (term
        pruning falls out of the threshold). Only touched documents are accumulated (sort and reduce, no array of
        N), and the RESCORE·k best partial sums go on to exact rescoring, with the delta segment's documents.
        Under a filter keeping a share ``q`` of positions the budget is read as ``budget / q``, so about as many
        kept postings are read.
        """
        keep = self._kept(mask)
        budget = self._kept_budget(budget, keep)
        uniq, count, t, length = self._main_lists(terms)
        long = length > IMPACT_MIN
        if int(length[long].sum()) <= BUDGET_SCAN_RATIO * budget:
            return None
        f = count[:len(t)] * self.stats().idfs[t]
        indptr = self.main_.indptr
        # Rarest first: whole lists in decreasing idf · count while they fit in WHOLE_SHARE of the budget (short
        # lists always: they cost little and carry the discriminating terms); the rest, impact-ordered.
        order = np.argsort(-f, kind="stable")
        fits = np.zeros(len(t), bool)
        fits[order] = np.cumsum(length[order]) <= WHOLE_SHARE * budget
        whole = (fits | ~long) & (length > 0)
        rest_budget = max(budget - int(length[whole].sum()), budget // 4)
        at = ranges(indptr[t[whole]], length[whole])
        docs = [self.main_.docs[at]]
        val = [np.repeat(f[whole], length[whole]) * self._weights()[0][at]]
        rest = ~whole & long
        if rest.any():
            # The threshold: the rest_budget-th highest contribution among each remaining list's head (a list
            # whose head all passes it is cut at its head: reads stay within 2·rest_budget + 16 per list).
            offsets, imp_w, imp_d = self._impact()
            head = np.minimum(length[rest], max(16, 2 * rest_budget // int(rest.sum())))
            at = ranges(offsets[t[rest]], head)
            contrib = np.repeat(f[rest], head) * imp_w[at]
            rank = min(rest_budget, len(contrib))
            tau = np.partition(contrib, len(contrib) - rank)[len(contrib) - rank]
            read = contrib >= tau
            docs.append(imp_d[at[read]])
            val.append(contrib[read])
        all_docs = np.concatenate(docs)
        all_val = np.concatenate(val)
        if keep is not None:
            ok = keep[all_docs]
            all_docs, all_val = all_docs[ok], all_val[ok]
        cand, inv = np.unique(all_docs, return_inverse=True)
        partial = np.bincount(inv, all_val, len(cand))
        n = RESCORE * k
        if len(cand) > n:
            cand = cand[np.argpartition(-partial, n - 1)[:n]]
        elif len(cand) < k:
            return None
        return np.concatenate([cand.astype(np.int64), self._delta_candidates(uniq.tolist(), keep)])

    @staticmethod
    def _kept_budget(budget: int, keep: np.ndarray | None) -> int:
        """The budget read under a filter keeping a share of positions: ``budget`` / that share."""
        if keep is None:
            return budget
        return int(budget * len(keep) / max(int(np.count_nonzero(keep)), 1))

    def _budget_reads(self, terms: list[int], mask: np.ndarray | None, budget: int) -> bool:
        """Whether :meth:`_budget_candidates` would read by budget rather than leave the query to the full scan
        (its first test: the query's long lists hold more than BUDGET_SCAN_RATIO budgets).
        """
        length = self._main_lists(terms)[3]
        return int(length[length > IMPACT_MIN].sum()) > BUDGET_SCAN_RATIO * self._kept_budget(budget, self._kept(mask))

    def _kept(self, mask: np.ndarray | None) -> np.ndarray | None:
        """Positions a search may return: live ones among ``mask`` (None: every position)."""
        return self.alive_ if mask is None else (mask if self.alive_ is None else mask & self.alive_)

    def _main_lists(self, terms: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A query's distinct terms and their counts, those with postings in the main segment (terms added after it
        was built have none there) and the lengths of their main-segment lists.
        """
        uniq, count = np.unique(np.asarray(terms, np.int64), return_counts=True)
        indptr = self.main_.indptr
        t = uniq[uniq < len(indptr) - 1]
        return uniq, count, t, indptr[t + 1] - indptr[t]

    def _delta_candidates(self, terms: Iterable[int], keep: np.ndarray | None) -> np.ndarray:
        """Delta positions holding any of ``terms`` (the delta is small and read whole)."""
        spans = [self.delta_.span(t) for t in terms]
        docs = np.concatenate([self.delta_.docs[a:z] for a, z in spans] + [np.empty(0, np.int32)])
        pos = np.unique(docs).astype(np.int64) + len(self.main_)
        return pos if keep is None else pos[keep[pos]]

    def search(self, queries: list[list[str]], k: int, mask: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k positions and scores per query; -1 pads where fewer documents score above zero."""
        n = len(queries)
        idx = np.full((n, k), -1, dtype=np.int64)
        val = np.zeros((n, k), dtype=np.float32)
        for i, q in enumerate(queries):
            j, v, _ = self.top(q, k, mask)
            idx[i, :len(j)], val[i, :len(j)] = j, v
        return idx, val

    def keywords(self, tokens: list[str], n: int = 8) -> list[tuple[str, float]]:
        """The ``n`` terms of a text with the highest tf·idf under the corpus IDF."""
        tf = Counter(tokens)
        idf = self.idf_
        scored = [(t, c * idf.get(t, 0.0)) for t, c in tf.items() if len(t) > 1]
        scored.sort(key=lambda x: -x[1])
        return scored[:n]

    # ---- persistence --------------------------------------------------------------------------------------------
    def save(self, path: Path) -> list[str]:
        """Write a compacted index (no delta, no deletes; see :meth:`compacted`) as arrays and a vocabulary."""
        if len(self.delta_) or self.alive_ is not None:
            raise ValueError("save a compacted SparseIndex (the engine compacts before saving)")
        m = self.main_
        arrays = {LAYOUT.bm25_data: m.tf, LAYOUT.bm25_indices: m.docs, LAYOUT.bm25_indptr: m.indptr,
                  LAYOUT.bm25_doclen: m.lengths}
        for name, array in arrays.items():
            np.save(path / name, array, allow_pickle=False)
        terms = sorted(self.vocab_, key=self.vocab_.__getitem__)
        meta = {"k1": self.k1, "b": self.b, "n_docs": self.n_docs_, "terms": terms}
        (path / LAYOUT.bm25_vocab).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return [*arrays, LAYOUT.bm25_vocab]

    @classmethod
    def load(cls, path: Path) -> SparseIndex:
        """Read an index written by :meth:`save`, checking that the arrays agree with each other."""
        meta: dict[str, Any] = json.loads((path / LAYOUT.bm25_vocab).read_text(encoding="utf-8"))
        self = cls(k1=float(meta["k1"]), b=float(meta["b"]))
        self.vocab_ = {str(t): i for i, t in enumerate(meta["terms"])}
        # The postings are mapped, not read: a search reads the pages of its terms' lists (see index.mapped).
        indptr, lengths = (np.load(path / name, allow_pickle=False) for name in (LAYOUT.bm25_indptr,
                                                                                 LAYOUT.bm25_doclen))
        docs, tf = (np.load(path / name, mmap_mode=mode(), allow_pickle=False) for name in (LAYOUT.bm25_indices,
                                                                                           LAYOUT.bm25_data))
        n_docs = int(meta["n_docs"])
        if (len(indptr) != len(self.vocab_) + 1 or len(docs) != len(tf) or int(indptr[-1]) != len(docs)
                or len(lengths) != n_docs or not within(docs, 0, n_docs)):
            raise ValueError("BM25 arrays disagree with each other")
        self.main_ = _Segment(indptr.astype(np.int64), docs.astype(np.int32, copy=False),
                              tf.astype(np.float32, copy=False), lengths.astype(np.float32))
        self.delta_tokens_ = []
        self.delta_ = _Segment.of_lists([], len(self.vocab_))
        self.alive_ = None
        self.df_ = np.diff(self.main_.indptr).astype(np.int64)
        self.n_docs_ = n_docs
        self.total_len_ = float(lengths.sum(dtype=np.float64))
        self._clear_caches()
        return self


def _blocks(ids: np.ndarray, offsets: np.ndarray, n_terms: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per block of :data:`BUILD_BLOCK` documents: each term's posting count, then the block's postings term by term
    (documents ascending, their term frequencies: scipy sums a document's repeated terms).
    """
    n = len(offsets) - 1
    for s in range(0, n, BUILD_BLOCK):
        e = min(n, s + BUILD_BLOCK)
        lengths = np.diff(offsets[s:e + 1])
        rows = np.repeat(np.arange(s, e, dtype=np.int32), lengths)
        m = sp.csc_matrix((np.ones(len(rows), np.float32), (rows - s, np.asarray(ids[offsets[s]:offsets[e]]))),
                          shape=(e - s, n_terms))
        m.sum_duplicates()
        yield np.diff(m.indptr), m.indices.astype(np.int32) + s, m.data


def _above(s: np.ndarray, k: int, sample: int = 4_096) -> np.ndarray:
    """Positions (increasing) that hold the k best positive entries of ``s`` and every entry tied with them.

    A full selection over millions of positive scores costs more than the scores' own gather-add, so a threshold is
    guessed from an evenly spaced sample (a few times k's share of it) and kept only where at least k entries pass
    it: then no entry below it can be among the k best, whatever the sample was.
    """
    if len(s) > 8 * sample:
        pick = s[:: len(s) // sample]
        m = min(len(pick), 4 * (k * len(pick) // len(s) + 1))
        guess = np.partition(pick, len(pick) - m)[len(pick) - m]
        if guess > 0:
            hit = np.flatnonzero(s >= guess)
            if len(hit) >= k:
                return hit
    return np.flatnonzero(s > 0)
