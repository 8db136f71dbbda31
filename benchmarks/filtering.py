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


def _closest(groups: dict[str, np.ndarray], share: float, n: int) -> tuple[str, np.ndarray]:
    """The filter value whose kept share is closest to ``share`` (in log terms)."""
    name = min(groups, key=lambda v: abs(np.log(max(int(groups[v].sum()), 1) / n) - np.log(share)))
    return name, groups[name]


def partition_sweep(engine: MatchEngine, needs: pd.DataFrame, n_queries: int = 100) -> dict[str, Any]:
    """Per-partition filtered search against today's path (the same index without partitions) and exact search.

    Industry filters (one GB/T code at any level, the one whose share is closest to each selectivity) align with the
    partitions; region filters (a city or group) and the ``bucket`` column do not. One query at a time, as a portal
    sends them; recall@10 of the dense top-10 against exact filtered search (ties at the 10th score count as found).
    """
    from qcy_match.match.filters import FilterIndex
    from qcy_match.taxonomy import gbt

    dense = engine.dense_
    if dense.partitions_ is None:
        raise ValueError("the engine's dense index has no partitions (an hnsw index built by the engine has)")
    today = copy.copy(dense)
    today.partitions_ = None
    vectors = np.asarray(dense.vectors_, dtype=np.float32)
    n = len(vectors)
    titles = needs["title"].astype(str).tolist()[:n_queries]
    q = engine.encoder_.encode(titles, [engine.tokenizer_.tokenize(t) for t in titles])
    q = np.ascontiguousarray(q, dtype=np.float32)
    fi = FilterIndex(engine.records_)
    codes = sorted({gbt.at_level(c, lv) for cs in engine.records_["industry"] for c in cs for lv in (1, 2, 3, 4)})
    industry = {c: fi.mask({"industry": [c]}) for c in codes}
    regions = {r: fi.mask({"region": [r]}) for r in
               sorted(set(engine.records_["region_city"].astype(str)) | set(engine.records_["region_group"]
                                                                            .astype(str))) if r}
    bucket = engine.records_["bucket"].astype(int).to_numpy()
    rng = np.random.default_rng(0)
    cases: list[tuple[str, str, np.ndarray]] = []
    for sel in SELECTIVITIES:
        for kind, groups in (("industry", industry), ("region", regions)):
            name, m = _closest(groups, sel, n)
            cases.append((f"{sel:g}", f"{kind}={name}", np.asarray(m)))
        cases.append((f"{sel:g}", f"bucket<{len(bucket_values(sel))}", bucket < len(bucket_values(sel))))
    big = max(industry, key=lambda c: int(industry[c].sum()) if len(c) == 1 else -1)
    few = np.zeros(n, bool)
    few[rng.choice(np.flatnonzero(industry[big]), 5, replace=False)] = True
    cases += [("short", f"5 of industry={big}", few), ("short", "none", np.zeros(n, bool))]
    rows = []
    for sel, name, keep in cases:
        kept = int(keep.sum())
        truth = exact_topk(vectors, q, K, keep) if kept else np.full((len(q), K), -1)
        row: dict[str, Any] = {"selectivity": sel, "filter": name, "kept": kept}
        for label, index in (("partitions", dense), ("today", today)):
            index.search(q[:2], K, keep)  # warm the caches
            t0 = time.perf_counter()
            found = np.vstack([index.search(q[i:i + 1], K, keep)[0] for i in range(len(q))])
            row[f"{label}_ms"] = (time.perf_counter() - t0) * 1000 / len(q)
            row[f"{label}_recall_at_10"] = recall(found, truth, vectors, q)
            row[f"{label}_short_share"] = _short(found, kept)
        rows.append(row)
    return {"records": n, "queries": len(q), "partition_min": dense.partition_min,
            "partitions": dict(dense.partitions_.sizes),
            "graphs": sorted(int(p) for p in dense.partitions_.graphs), "rows": rows}


def main() -> None:
    import argparse
    import json

    from . import synth
    from .anchors import engine_for

    parser = argparse.ArgumentParser(description="per-partition filtered search against today's path")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/partitions.json"))
    parser.add_argument("--index-dir", type=Path, help="save the built engine here, or load it if it exists")
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.index_dir is not None and args.index_dir.is_dir():
        engine = MatchEngine.load(args.index_dir)
    else:
        engine = engine_for(synth.generate(args.n, 0))
        if args.index_dir is not None:
            engine.save(args.index_dir)
    build_s = time.perf_counter() - t0
    out = {"build_s": build_s, **partition_sweep(engine, synth.generate(args.queries, 0, kind="needs"), args.queries)}
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    lines = ["| selectivity | filter | kept | recall@10 partitions (today) | short | ms/query partitions (today) |",
             "|---|---|---|---|---|---|"]
    for r in out["rows"]:
        lines.append(f"| {r['selectivity']} | {r['filter']} | {r['kept']} | {r['partitions_recall_at_10']:.3f} "
                     f"({r['today_recall_at_10']:.3f}) | {r['partitions_short_share']:.2f} | "
                     f"{r['partitions_ms']:.2f} ({r['today_ms']:.2f}) |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
