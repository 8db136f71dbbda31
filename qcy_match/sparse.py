"""BM25 over jieba tokens with bm25s, with in-search filtering and IDF-weighted keywords."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from .topk import top_k


class SparseIndex:
    """BM25 (Lucene variant) over token lists.

    Scores for one query are computed for every document (bm25s ``get_scores``) and filters are applied as a mask
    before the top-k, which is exact and faster than bm25s' ``weight_mask`` for strict filters.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b

    def fit(self, corpus_tokens: list[list[str]]) -> SparseIndex:
        """Index the token lists of the corpus."""
        self.n_docs_ = len(corpus_tokens)
        self.model_ = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        self.model_.index(corpus_tokens, show_progress=False)
        df = Counter(t for doc in corpus_tokens for t in set(doc))
        self.idf_ = {t: math.log(1 + (self.n_docs_ - n + 0.5) / (n + 0.5)) for t, n in df.items()}
        return self

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every document for one query (zeros when no token is known)."""
        ids = [self.model_.vocab_dict[t] for t in tokens if t in self.model_.vocab_dict]
        if not ids:
            return np.zeros(self.n_docs_, dtype=np.float32)
        return np.asarray(self.model_.get_scores_from_ids(ids), dtype=np.float32)

    def search(self, queries: list[list[str]], k: int, mask: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k document indices and scores per query; -1 pads where fewer documents score above zero."""
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
        scored = [(t, c * self.idf_.get(t, 0.0)) for t, c in tf.items() if len(t) > 1]
        scored.sort(key=lambda x: -x[1])
        return scored[:n]

    def save(self, path: Path) -> list[str]:
        """Write the index arrays and vocabulary; returns the file names written."""
        s = self.model_.scores
        np.save(path / "bm25_data.npy", s["data"], allow_pickle=False)
        np.save(path / "bm25_indices.npy", s["indices"], allow_pickle=False)
        np.save(path / "bm25_indptr.npy", s["indptr"], allow_pickle=False)
        meta = {"k1": self.k1, "b": self.b, "n_docs": self.n_docs_, "vocab": self.model_.vocab_dict, "idf": self.idf_}
        (path / "bm25_vocab.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return ["bm25_data.npy", "bm25_indices.npy", "bm25_indptr.npy", "bm25_vocab.json"]

    @classmethod
    def load(cls, path: Path) -> SparseIndex:
        """Read an index written by :meth:`save`."""
        meta: dict[str, Any] = json.loads((path / "bm25_vocab.json").read_text(encoding="utf-8"))
        self = cls(k1=meta["k1"], b=meta["b"])
        self.n_docs_ = int(meta["n_docs"])
        self.idf_ = meta["idf"]
        model = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        model.scores = {"data": np.load(path / "bm25_data.npy", allow_pickle=False),
                        "indices": np.load(path / "bm25_indices.npy", allow_pickle=False),
                        "indptr": np.load(path / "bm25_indptr.npy", allow_pickle=False),
                        "num_docs": self.n_docs_}
        model.vocab_dict = meta["vocab"]
        model.unique_token_ids_set = set(model.vocab_dict.values())
        model.nonoccurrence_array = None
        self.model_ = model
        return self
