"""BM25 over jieba tokens in Lucene's layout: term-frequency postings scored at query time with live statistics.

Postings hold raw term frequencies, not precomputed scores (bm25s' layout), so the collection statistics that BM25
reads (document count, document frequencies, mean length) can change as records are added and deleted without
re-indexing: like Lucene, the scorer applies the current statistics at query time. An index is a *main* segment
(built by :meth:`SparseIndex.fit`) plus a small *delta* segment of documents added since, with deletes as a mask.
Instances are immutable: :meth:`SparseIndex.updated` returns a new one, so readers holding the old one are never
disturbed. The statistics are always exact, so scores after any sequence of updates equal a fresh build of the same
documents (tested against bm25s' Lucene variant and against fresh builds).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..persistence import LAYOUT
from .topk import top_k


class _Segment:
    """Postings of a block of documents: CSC arrays (term → documents, tf) and document lengths."""

    def __init__(self, indptr: np.ndarray, docs: np.ndarray, tf: np.ndarray, lengths: np.ndarray) -> None:
        self.indptr, self.docs, self.tf, self.lengths = indptr, docs, tf, lengths

    @classmethod
    def build(cls, token_ids: list[list[int]], n_terms: int) -> _Segment:
        rows = np.fromiter((i for i, doc in enumerate(token_ids) for _ in doc), dtype=np.int64)
        cols = np.fromiter((t for doc in token_ids for t in doc), dtype=np.int64)
        # Duplicate (doc, term) pairs are summed by scipy: that is the term frequency.
        m = sp.csc_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(token_ids), n_terms))
        m.sum_duplicates()
        lengths = np.array([len(d) for d in token_ids], dtype=np.float32)
        return cls(m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data.astype(np.float32), lengths)

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
        t = self._ix._term(term)
        if t is None or self._ix.df_[t] == 0:
            raise KeyError(term)
        return self._ix._idf(int(self._ix.df_[t]))

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
    def fit(self, corpus_tokens: list[list[str]]) -> SparseIndex:
        """Index the token lists of the corpus as one main segment."""
        # Term ids are only ever appended, so a reader holding an older instance ignores ids beyond its own df_.
        self.vocab_: dict[str, int] = {}
        ids = [[self.vocab_.setdefault(t, len(self.vocab_)) for t in doc] for doc in corpus_tokens]
        self.main_ = _Segment.build(ids, len(self.vocab_))
        self.delta_tokens_: list[list[int]] = []
        self.delta_ = _Segment.build([], len(self.vocab_))
        self.alive_: np.ndarray | None = None
        self.df_ = np.diff(self.main_.indptr).astype(np.int64)
        self.n_docs_ = len(corpus_tokens)
        self.total_len_ = float(self.main_.lengths.sum(dtype=np.float64))
        self.__dict__.pop("_weight_cache", None)
        return self

    def updated(self, add: list[list[str]] | None = None, delete: np.ndarray | list[int] | None = None
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
        added = [[new.vocab_.setdefault(t, len(new.vocab_)) for t in doc] for doc in (add or [])]
        if len(new.vocab_) > len(df):
            df = np.concatenate([df, np.zeros(len(new.vocab_) - len(df), np.int64)])
        for doc in added:
            df[np.unique(np.asarray(doc, dtype=np.int64))] += 1
            total += len(doc)
        new.delta_tokens_ = self.delta_tokens_ + added
        new.delta_ = _Segment.build(new.delta_tokens_, len(new.vocab_)) if added else self.delta_
        full = np.concatenate([alive, np.ones(len(added), bool)])
        new.alive_ = None if full.all() else full
        new.df_, new.n_docs_, new.total_len_ = df, self.n_docs_ - len(gone) + len(added), total
        return new

    def __len__(self) -> int:
        """Positions, deleted ones included."""
        return len(self.main_) + len(self.delta_)

    # ---- scoring ------------------------------------------------------------------------------------------------
    def _term(self, token: str) -> int | None:
        t = self.vocab_.get(token)
        return t if t is not None and t < len(self.df_) else None

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.n_docs_ - df + 0.5) / (df + 0.5))

    @property
    def idf_(self) -> Mapping[str, float]:
        """IDF per term under the live statistics."""
        return _IdfView(self)

    def _weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Per posting tf / (tf + k1·(1 - b + b·dl/avgdl)) of each segment, computed once per instance.

        Instances never change (updates make new ones), so the statistics these read are fixed; caching them turns
        a query's work into one scaled gather-add per query term instead of a pass over every document length.
        """
        cached: tuple[np.ndarray, np.ndarray] | None = self.__dict__.get("_weight_cache")
        if cached is None:
            avgdl = np.float32(self.total_len_ / self.n_docs_) if self.n_docs_ else np.float32(1)
            k1, b = np.float32(self.k1), np.float32(self.b)
            parts = []
            for seg in (self.main_, self.delta_):
                norm = k1 * ((np.float32(1) - b) + b * seg.lengths / avgdl)
                parts.append(seg.tf / (norm[seg.docs] + seg.tf))
            cached = (parts[0], parts[1])
            self.__dict__["_weight_cache"] = cached
        return cached

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every position for one query (zeros for unknown tokens and deleted positions)."""
        out = np.zeros(len(self), dtype=np.float32)
        terms = [t for t in (self._term(w) for w in tokens) if t is not None]
        if not terms or self.n_docs_ == 0:
            return out
        offset = 0
        for seg, weight in zip((self.main_, self.delta_), self._weights(), strict=True):
            if len(seg):
                part = out[offset:offset + len(seg)]
                for t in terms:
                    a, z = seg.span(t)
                    if z > a:
                        part[seg.docs[a:z]] += np.float32(self._idf(int(self.df_[t]))) * weight[a:z]
            offset += len(seg)
        if self.alive_ is not None:
            out[~self.alive_] = 0.0
        return out

    def search(self, queries: list[list[str]], k: int, mask: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k positions and scores per query; -1 pads where fewer documents score above zero."""
        n = len(queries)
        idx = np.full((n, k), -1, dtype=np.int64)
        val = np.zeros((n, k), dtype=np.float32)
        for i, q in enumerate(queries):
            s = self.scores(q)
            if mask is not None:
                s = np.where(mask, s, 0.0)
            j, v = top_k(s, k)
            keep = v > 0
            idx[i, : keep.sum()], val[i, : keep.sum()] = j[keep], v[keep]
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
        indptr, docs, tf, lengths = (np.load(path / name, allow_pickle=False) for name in
                                     (LAYOUT.bm25_indptr, LAYOUT.bm25_indices, LAYOUT.bm25_data, LAYOUT.bm25_doclen))
        n_docs = int(meta["n_docs"])
        if (len(indptr) != len(self.vocab_) + 1 or len(docs) != len(tf) or int(indptr[-1]) != len(docs)
                or len(lengths) != n_docs or (len(docs) and (docs.min() < 0 or docs.max() >= n_docs))):
            raise ValueError("BM25 arrays disagree with each other")
        self.main_ = _Segment(indptr.astype(np.int64), docs.astype(np.int32), tf.astype(np.float32),
                              lengths.astype(np.float32))
        self.delta_tokens_ = []
        self.delta_ = _Segment.build([], len(self.vocab_))
        self.alive_ = None
        self.df_ = np.diff(self.main_.indptr).astype(np.int64)
        self.n_docs_ = n_docs
        self.total_len_ = float(lengths.sum(dtype=np.float64))
        return self
