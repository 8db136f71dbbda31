"""Corpus-fitted encoder: TF-IDF over jieba tokens reduced by TruncatedSVD (latent semantic analysis)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..persistence import LAYOUT
from .base import normalize_rows


class LSAEncoder:
    """TF-IDF (sublinear tf, smooth idf) + TruncatedSVD, stored as plain arrays so loading needs no scikit-learn."""

    name = "lsa"
    reads_tokens = True

    def __init__(self, dim: int = 256, min_df: int = 2, seed: int = 0) -> None:
        self.n_components = dim
        self.min_df = min_df
        self.seed = seed

    @property
    def dim(self) -> int:
        """Vector width after fitting (small corpora get fewer components)."""
        return int(self.components_.shape[0])

    def fit(self, texts: list[str], tokens: list[list[str]]) -> LSAEncoder:
        """Fit the vocabulary, IDF and SVD on the corpus tokens."""
        from sklearn.decomposition import TruncatedSVD

        df: dict[str, int] = {}
        for doc in tokens:
            for t in set(doc):
                df[t] = df.get(t, 0) + 1
        min_df = self.min_df if len(tokens) >= 50 else 1
        vocab = sorted(t for t, n in df.items() if n >= min_df)
        self.vocabulary_ = {t: i for i, t in enumerate(vocab)}
        n = len(tokens)
        self.idf_ = np.array([np.log((1 + n) / (1 + df[t])) + 1 for t in vocab], dtype=np.float32)
        x = self._tfidf(tokens)
        k = max(1, min(self.n_components, x.shape[0] - 1, x.shape[1] - 1))
        svd = TruncatedSVD(n_components=k, random_state=self.seed, algorithm="randomized")
        svd.fit(x)
        self.components_ = svd.components_.astype(np.float32)
        return self

    def _tfidf(self, tokens: list[list[str]]) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for i, doc in enumerate(tokens):
            counts: dict[int, int] = {}
            for t in doc:
                j = self.vocabulary_.get(t)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            for j, c in counts.items():
                rows.append(i)
                cols.append(j)
                vals.append((1.0 + np.log(c)) * self.idf_[j])
        x = sp.csr_matrix((vals, (rows, cols)), shape=(len(tokens), len(self.vocabulary_)), dtype=np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ x)

    def encode(self, texts: list[str], tokens: list[list[str]]) -> np.ndarray:
        """Project token lists into the latent space."""
        return normalize_rows(np.asarray(self._tfidf(tokens) @ self.components_.T))

    def params(self) -> dict[str, Any]:
        """Parameters for the manifest."""
        return {"dim": self.n_components, "min_df": self.min_df, "seed": self.seed}

    def save(self, path: Path) -> list[str]:
        """Write vocabulary, IDF and components."""
        (path / LAYOUT.lsa_vocab).write_text(json.dumps(list(self.vocabulary_), ensure_ascii=False), "utf-8")
        np.save(path / LAYOUT.lsa_idf, self.idf_, allow_pickle=False)
        np.save(path / LAYOUT.lsa_components, self.components_, allow_pickle=False)
        return [LAYOUT.lsa_vocab, LAYOUT.lsa_idf, LAYOUT.lsa_components]

    @classmethod
    def load(cls, path: Path, params: dict[str, Any]) -> LSAEncoder:
        """Read what :meth:`save` wrote."""
        self = cls(**params)
        vocab = json.loads((path / LAYOUT.lsa_vocab).read_text("utf-8"))
        self.vocabulary_ = {t: i for i, t in enumerate(vocab)}
        self.idf_ = np.load(path / LAYOUT.lsa_idf, allow_pickle=False)
        self.components_ = np.load(path / LAYOUT.lsa_components, allow_pickle=False)
        return self
