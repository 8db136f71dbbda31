"""Searchers compared in one run: qcy_match variants and the anchors (other libraries on the same data).

Every searcher is built over a corpus DataFrame and answers ``search(queries, k, filters)`` with ranked corpus ids;
filters are turned into a mask by ``qcy_match.filters.FilterIndex`` for every searcher, so all see the same candidates.
Anchors are optional (the ``[bench]`` extra); :func:`available` says which ones import here and why not.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from qcy_match import EngineConfig, MatchEngine
from qcy_match.ingest.records import from_any, text_of
from qcy_match.match import filters as qfilters

logger = logging.getLogger(__name__)
_WORD = re.compile(r"\w")


def jieba_tokens(texts: list[str]) -> list[list[str]]:
    """Plain ``jieba.lcut`` tokens without punctuation: what a user of the anchors would write."""
    import jieba

    return [[t for t in jieba.lcut(s) if _WORD.search(t)] for s in texts]


class Searcher:
    name = "?"

    def search(self, queries: pd.DataFrame, k: int, filters: dict[str, list[str]] | None = None) -> list[list[str]]:
        raise NotImplementedError


class EngineSearcher(Searcher):
    """qcy_match with one fusion setting; the engine is shared between variants (settings are read per call)."""

    def __init__(self, engine: MatchEngine, name: str, fusion: str, dense_weight: float) -> None:
        self.engine, self.name, self.fusion, self.dense_weight = engine, name, fusion, dense_weight

    def search(self, queries: pd.DataFrame, k: int, filters: dict[str, list[str]] | None = None) -> list[list[str]]:
        self.engine.config.fusion, self.engine.config.dense_weight = self.fusion, self.dense_weight
        m = self.engine.match(queries, k=k, filters=filters or None, explain_matches=False)
        return [[x for x in row if x is not None] for row in m.ids]


class ConfigSearcher(EngineSearcher):
    """The default fusion with other config values for the time of a search (e.g. a query-side setting)."""

    def __init__(self, engine: MatchEngine, name: str, **overrides: Any) -> None:
        super().__init__(engine, name, "minmax", EngineConfig().dense_weight)
        self.overrides = overrides

    def search(self, queries: pd.DataFrame, k: int, filters: dict[str, list[str]] | None = None) -> list[list[str]]:
        before = self.engine.config
        self.engine.config = dataclasses.replace(before, **self.overrides)
        try:
            return super().search(queries, k, filters)
        finally:
            self.engine.config = dataclasses.replace(self.engine.config, **{k: getattr(before, k)
                                                                            for k in self.overrides})


def engine_variants(engine: MatchEngine) -> list[Searcher]:
    """The ablation: the default fusion, each signal alone, and reciprocal-rank fusion."""
    w = EngineConfig().dense_weight
    return [EngineSearcher(engine, f"qcy_match (default, minmax w={w})", "minmax", w),
            EngineSearcher(engine, "qcy_match BM25 only (w=0)", "minmax", 0.0),
            EngineSearcher(engine, "qcy_match dense only (w=1)", "minmax", 1.0),
            EngineSearcher(engine, "qcy_match rrf", "rrf", 0.5)]


class ScoreSearcher(Searcher):
    """An anchor that scores every document for a query; the filter mask and top-k are applied here."""

    def __init__(self, corpus: pd.DataFrame) -> None:
        self.records, _ = from_any(corpus)
        self.ids = self.records["id"].astype(str).to_numpy(dtype=object)
        self.texts = text_of(self.records)
        self.filter_index = qfilters.FilterIndex(self.records)

    def scores(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def search(self, queries: pd.DataFrame, k: int, filters: dict[str, list[str]] | None = None) -> list[list[str]]:
        keep = self.filter_index.mask(filters or {})
        out = []
        for text in text_of(from_any(queries)[0]):
            s = np.asarray(self.scores(text), dtype=np.float64)
            if keep is not None:
                s = np.where(keep, s, 0.0)
            top = np.argsort(-s, kind="stable")[:k]
            out.append(list(self.ids[top[s[top] > 0]]))
        return out


class Bm25sAnchor(ScoreSearcher):
    name = "bm25s (anchor)"

    def __init__(self, corpus: pd.DataFrame) -> None:
        import bm25s

        super().__init__(corpus)
        self.model = bm25s.BM25()
        self.model.index(jieba_tokens(self.texts), show_progress=False)

    def scores(self, text: str) -> np.ndarray:
        q = [t for t in jieba_tokens([text])[0] if t in self.model.vocab_dict]
        return self.model.get_scores(q) if q else np.zeros(len(self.ids))


class RankBm25Anchor(ScoreSearcher):
    name = "rank_bm25 BM25Okapi (anchor)"

    def __init__(self, corpus: pd.DataFrame) -> None:
        from rank_bm25 import BM25Okapi

        super().__init__(corpus)
        self.model = BM25Okapi(jieba_tokens(self.texts))

    def scores(self, text: str) -> np.ndarray:
        return np.asarray(self.model.get_scores(jieba_tokens([text])[0]))


class SimilaritiesAnchor(ScoreSearcher):
    """shibing624/similarities ``BM25Similarity`` (rank_bm25 over jieba with its stopword list).

    Scores come from its own ``bm25.get_scores(jieba.lcut(query))``, exactly what its ``most_similar`` computes,
    without building a dict per document per query. It drops duplicate texts, so positions map back through its
    corpus keys.
    """

    name = "similarities BM25 (anchor)"

    def __init__(self, corpus: pd.DataFrame) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from loguru import logger as loguru_logger

        loguru_logger.disable("similarities")  # it logs every corpus addition at DEBUG to stderr
        from similarities import BM25Similarity

        super().__init__(corpus)
        self.model = BM25Similarity(corpus=dict(enumerate(self.texts)))
        self.pos = np.array(list(self.model.corpus.keys()), dtype=np.int64)

    def scores(self, text: str) -> np.ndarray:
        import jieba

        s = np.zeros(len(self.ids))
        s[self.pos] = self.model.bm25.get_scores(jieba.lcut(text))
        return s


ANCHORS: dict[str, tuple[str, Callable[[pd.DataFrame], Searcher]]] = {
    "bm25s": ("bm25s", Bm25sAnchor),
    "rank_bm25": ("rank_bm25", RankBm25Anchor),
    "similarities": ("similarities", SimilaritiesAnchor),
}


def available() -> dict[str, str]:
    """Anchor name -> '' when it imports, else the reason it cannot run here."""
    out = {}
    for name, (module, _) in {**ANCHORS, "faiss": ("faiss", Searcher), "milvus-lite": ("milvus_lite", Searcher),
                              "pymilvus": ("pymilvus", Searcher)}.items():
        try:
            __import__(module)
            out[name] = ""
        except Exception as exc:  # an anchor may fail at import for reasons of its own (missing deps, downloads)
            out[name] = f"{type(exc).__name__}: {exc}"
    return out


def build_anchors(corpus: pd.DataFrame, skip: dict[str, str]) -> list[Searcher]:
    """Anchors over one corpus; any that fails to build is recorded in ``skip`` with the reason."""
    out: list[Searcher] = []
    for name, (_, make) in ANCHORS.items():
        if skip.get(name):
            continue
        try:
            out.append(make(corpus))
        except Exception as exc:  # report, do not abort the suite
            skip[name] = f"{type(exc).__name__}: {exc}"
            logger.warning("anchor %s skipped: %s", name, skip[name])
    return out


def engine_for(corpus: pd.DataFrame, config: EngineConfig | None = None, **kw: Any) -> MatchEngine:
    return MatchEngine(config or EngineConfig(), **kw).index(corpus)
