"""Filtered search at 50 %, 10 %, 1 % and 0.1 % selectivity (the synthetic ``bucket`` column keeps exact shares).

For each selectivity: the engine's fused top-10 against the same engine with an exact dense index (recall@10 and
the share of queries that got fewer than min(10, kept) results), the engine's dense index alone against exact
filtered search on the same vectors, the same for an HNSW dense index (the approximate path, whatever size the
corpus has), raw FAISS HNSW with an ID selector, and milvus-lite (pymilvus, local file) with a filter expression.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qcy_match import MatchEngine
from qcy_match.index.dense import DenseIndex

from .raw import exact_topk, faiss_index, recall
from .synth import bucket_values

logger = logging.getLogger(__name__)
SELECTIVITIES = (0.5, 0.1, 0.01, 0.001)
K = 10


def _short(found: np.ndarray, kept: int) -> float:
    want = min(K, kept)
    return float(np.mean([(row >= 0).sum() < want for row in found]))


def filter_sweep(engine: MatchEngine, needs: pd.DataFrame, n_queries: int = 100,
                 milvus_max: int = 200_000) -> dict[str, Any]:
    needs = needs.iloc[:n_queries].reset_index(drop=True)
    vectors = np.ascontiguousarray(engine.vectors(), dtype=np.float32)
    titles = needs["title"].astype(str).tolist()
    q_vecs = engine.encoder_.encode(titles, [engine.tokenizer_.tokenize(t) for t in titles])
    # The same engine over the same snapshot, but with an exact dense index: the truth for the fused top-10.
    exact_engine = copy.copy(engine)
    exact_engine._snap = dataclasses.replace(engine._snap, dense=DenseIndex("numpy").fit(vectors))
    t0 = time.perf_counter()
    hnsw = engine.dense_ if engine.dense_.kind_ == "hnsw" else DenseIndex("hnsw").fit(vectors)
    hnsw_build = time.perf_counter() - t0 if hnsw is not engine.dense_ else 0.0
    raw = faiss_index(vectors, "hnsw")
    bucket = engine.records_["bucket"].astype(int).to_numpy()
    milvus = _Milvus(vectors, bucket) if len(vectors) <= milvus_max else None
    out: dict[str, Any] = {"queries": len(needs), "hnsw_build_s": hnsw_build,
                           "milvus": "" if milvus is not None and milvus.ok else
                           (milvus.reason if milvus is not None else f"skipped above {milvus_max} records"),
                           "by_selectivity": {}}
    for sel in SELECTIVITIES:
        values = bucket_values(sel)
        keep = bucket < len(values)
        kept = int(keep.sum())
        f = {"bucket": values}
        t0 = time.perf_counter()
        got = engine.match(needs, k=K, filters=f, explain_matches=False).indices
        engine_s = (time.perf_counter() - t0) / len(needs)
        truth = exact_engine.match(needs, k=K, filters=f, explain_matches=False).indices
        dense_truth = exact_topk(vectors, q_vecs, K, keep)
        row: dict[str, Any] = {"kept": kept, "engine_recall_at_10": recall(got, truth),
                               "engine_short_share": _short(got, kept), "engine_ms_per_query": engine_s * 1000,
                               "engine_dense_recall_at_10": recall(engine.dense_.search(q_vecs, K, keep)[0],
                                                                   dense_truth, vectors, q_vecs)}
        t0 = time.perf_counter()
        h = hnsw.search(q_vecs, K, keep)[0]
        row["hnsw_dense_ms_per_query"] = (time.perf_counter() - t0) * 1000 / len(q_vecs)
        row["hnsw_dense_recall_at_10"] = recall(h, dense_truth, vectors, q_vecs)
        row["hnsw_dense_short_share"] = _short(h, kept)
        import faiss

        params = faiss.SearchParametersHNSW(sel=faiss.IDSelectorBitmap(np.packbits(keep, bitorder="little")),
                                            efSearch=128)
        t0 = time.perf_counter()
        r = raw.search(q_vecs, K, params=params)[1]
        row["faiss_hnsw_ms_per_query"] = (time.perf_counter() - t0) * 1000 / len(q_vecs)
        row["faiss_hnsw_recall_at_10"] = recall(r, dense_truth, vectors, q_vecs)
        row["faiss_hnsw_short_share"] = _short(r, kept)
        if milvus is not None and milvus.ok:
            t0 = time.perf_counter()
            m = milvus.search(q_vecs, len(values))
            row["milvus_batch_ms_per_query"] = (time.perf_counter() - t0) * 1000 / len(q_vecs)
            row["milvus_recall_at_10"] = recall(m, dense_truth, vectors, q_vecs)
            row["milvus_short_share"] = _short(m, kept)
        out["by_selectivity"][str(sel)] = row
    if milvus is not None:
        milvus.close()
    return out


class _Milvus:
    """milvus-lite through pymilvus on a local file (no server); HNSW index, inner product."""

    def __init__(self, vectors: np.ndarray, bucket: np.ndarray) -> None:
        self.ok, self.reason = False, ""
        self.tmp = tempfile.TemporaryDirectory()
        try:
            from pymilvus import DataType, MilvusClient

            t0 = time.perf_counter()
            self.client = MilvusClient(str(Path(self.tmp.name) / "bench.db"))
            schema = self.client.create_schema(auto_id=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vec", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
            schema.add_field("bucket", DataType.INT64)
            ip = self.client.prepare_index_params()
            ip.add_index(field_name="vec", index_type="HNSW", metric_type="IP",
                         params={"M": 32, "efConstruction": 80})
            self.client.create_collection("bench", schema=schema, index_params=ip)
            for s in range(0, len(vectors), 5000):
                self.client.insert("bench", [{"id": s + i, "vec": v.tolist(), "bucket": int(b)} for i, (v, b) in
                                             enumerate(zip(vectors[s:s + 5000], bucket[s:s + 5000], strict=True))])
            self.client.load_collection("bench")
            self.build_s = time.perf_counter() - t0
            self.ok = True
        except Exception as exc:  # an optional anchor: report why, go on
            self.reason = f"{type(exc).__name__}: {exc}"
            logger.warning("milvus-lite skipped: %s", self.reason)

    def search(self, q: np.ndarray, n_values: int) -> np.ndarray:
        out = np.full((len(q), K), -1, np.int64)
        res = self.client.search("bench", data=[v.tolist() for v in q], limit=K, filter=f"bucket < {n_values}",
                                 search_params={"params": {"ef": 128}}, output_fields=[])
        for i, hits in enumerate(res):
            ids = [int(h["id"]) for h in hits]
            out[i, :len(ids)] = ids
        return out

    def close(self) -> None:
        with_client = getattr(self, "client", None)
        if with_client is not None:
            with_client.close()
        self.tmp.cleanup()
