"""The raw building blocks on the engine's own tokens and vectors: bm25s and FAISS (flat, HNSW) without the engine.

The engine's overhead is its latency divided by the latency of doing the same work by hand: tokenise the query,
encode it, score BM25 over all documents and take the top k, search FAISS for the top k. The engine additionally
validates the query record, fuses a candidate pool and builds result arrays.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from qcy_match import MatchEngine

from .speed import percentiles, timed


def exact_topk(vectors: np.ndarray, q: np.ndarray, k: int, keep: np.ndarray | None = None) -> np.ndarray:
    """Exact inner-product top-k ids per query (optionally among kept rows only); -1 pads."""
    ids = np.arange(len(vectors)) if keep is None else np.flatnonzero(keep)
    out = np.full((len(q), k), -1, np.int64)
    if len(ids) == 0:
        return out
    sub = vectors[ids]
    kk = min(k, len(ids))
    for s in range(0, len(q), 256):
        sc = q[s:s + 256] @ sub.T
        part = np.argpartition(-sc, kk - 1, axis=1)[:, :kk] if kk < len(ids) else np.tile(np.arange(len(ids)),
                                                                                        (len(sc), 1))
        order = np.argsort(-np.take_along_axis(sc, part, axis=1), axis=1, kind="stable")
        out[s:s + len(sc), :kk] = ids[np.take_along_axis(part, order, axis=1)]
    return out


def recall(found: np.ndarray, truth: np.ndarray, vectors: np.ndarray | None = None,
           queries: np.ndarray | None = None) -> float:
    """Mean share of the true top-k (ignoring -1 padding) found. With ``vectors`` and ``queries``, a found row
    whose score ties the k-th true score counts as found (synthetic corpora hold identical texts)."""
    vals = []
    for i, (f, t) in enumerate(zip(found, truth, strict=True)):
        t, f = t[t >= 0], f[f >= 0]
        if not len(t):
            continue
        if vectors is not None and queries is not None:
            kth = float(np.min(vectors[t] @ queries[i]))
            hits = int(np.sum(vectors[f] @ queries[i] >= kth - 1e-5)) if len(f) else 0
            vals.append(min(hits, len(t)) / len(t))
        else:
            vals.append(len(set(t.tolist()) & set(f.tolist())) / len(t))
    return float(np.mean(vals)) if vals else 1.0


_BUILT: dict[tuple[Any, ...], Any] = {}


def faiss_index(vectors: np.ndarray, kind: str, m: int = 32, ef_construction: int = 80, ef_search: int = 128) -> Any:
    """A raw FAISS index over the vectors; the last one built is reused (a 1M HNSW graph takes minutes to build and
    the raw-anchor and filter measurements need the same one)."""
    import hashlib

    import faiss

    sample = np.ascontiguousarray(vectors[:: max(1, len(vectors) // 4096)])
    key = (kind, vectors.shape, m, ef_construction, hashlib.sha1(sample.tobytes()).hexdigest())
    if key in _BUILT:
        if kind != "flat":
            _BUILT[key].hnsw.efSearch = ef_search
        return _BUILT[key]

    d = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    else:
        index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    index.add(vectors)
    for old in [k for k in _BUILT if k[0] == kind]:
        del _BUILT[old]  # one per kind: the flat and the HNSW index of the current vectors
    _BUILT[key] = index
    return index


def raw_anchors(engine: MatchEngine, needs: pd.DataFrame, repeat: int) -> dict[str, Any]:
    import bm25s

    from qcy_match.index.topk import top_k

    tok = engine.tokenizer_
    vectors = np.ascontiguousarray(engine.vectors(), dtype=np.float32)
    titles = needs["title"].astype(str).tolist()
    texts = [f"{t} {' '.join(k)} {d}" for t, k, d in zip(needs["title"], needs["keywords"], needs["description"],
                                                          strict=True)]
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    bm = bm25s.BM25(k1=engine.config.bm25_k1, b=engine.config.bm25_b, method="lucene")
    bm.index(list(engine.tokens_), show_progress=False)  # bm25s reads lists of strings
    out["bm25s_build_s"] = time.perf_counter() - t0
    q_tokens = [tok.tokenize(t, search_mode=False) for t in texts]
    # A need's vector reads the text the engine's query side encodes (its whole text, EngineConfig.query_dense_text).
    dense_in = texts if engine.config.query_dense_text == "full" else titles
    reads = bool(getattr(engine.encoder_, "reads_tokens", True))

    def encode(xs: list[str]) -> np.ndarray:  # tokens only for an encoder that reads them, as the engine does
        return engine.encoder_.encode(xs, [tok.tokenize(t) if reads else [] for t in xs])

    q_vecs = encode(dense_in)
    truth = exact_topk(vectors, q_vecs, 10)
    out["engine_dense_recall_at_10"] = recall(engine.dense_.search(q_vecs, 10)[0], truth, vectors, q_vecs)
    indexes: dict[str, Any] = {}
    for kind in ("flat", "hnsw"):
        t0 = time.perf_counter()
        indexes[kind] = faiss_index(vectors, kind)
        out[f"faiss_{kind}_build_s"] = time.perf_counter() - t0
        out[f"faiss_{kind}_recall_at_10"] = recall(indexes[kind].search(q_vecs, 10)[1], truth, vectors, q_vecs)
    same_kind = "flat" if engine.dense_.kind_ in ("flat", "numpy") else "hnsw"

    def bm25_top(tokens: list[str]) -> Any:
        ids = [bm.vocab_dict[t] for t in tokens if t in bm.vocab_dict]
        return top_k(np.asarray(bm.get_scores_from_ids(ids)), 10) if ids else None

    it = iter(range(10**9))

    def pipeline() -> Any:
        i = next(it) % len(texts)
        toks = tok.tokenize(texts[i], search_mode=False)
        v = encode([dense_in[i]])
        return bm25_top(toks), indexes[same_kind].search(v, 10)

    parts = {
        "tokenise": lambda: tok.tokenize(texts[next(it) % len(texts)], search_mode=False),
        "encode": lambda: encode([dense_in[next(it) % len(dense_in)]]),
        "bm25s_top10": lambda: bm25_top(q_tokens[next(it) % len(q_tokens)]),
        "faiss_flat_top10": lambda: indexes["flat"].search(q_vecs[next(it) % len(q_vecs)][None], 10),
        "faiss_hnsw_top10": lambda: indexes["hnsw"].search(q_vecs[next(it) % len(q_vecs)][None], 10),
    }
    out["single"] = {name: percentiles(timed(fn, repeat)) for name, fn in parts.items()}
    out["single"][f"pipeline (tokenise+encode+bm25s+faiss {same_kind})"] = percentiles(timed(pipeline, repeat))
    t0 = time.perf_counter()
    toks_all = [tok.tokenize(t, search_mode=False) for t in texts]
    v_all = encode(dense_in)
    for toks in toks_all:
        bm25_top(toks)
    indexes[same_kind].search(v_all, 10)
    out["batch_pipeline_queries_per_s"] = len(texts) / (time.perf_counter() - t0)
    out["pipeline_kind"] = same_kind
    return out
