"""Speed and memory on the realistic corpus (:mod:`benchmarks.realistic`) at 100k and 1M records, against the raw
pipeline measured in the same run: the figures of issue 18.

    python -m benchmarks.scale_realistic --out benchmarks/results            # make bench-scale (100k, 1M)
    python -m benchmarks.scale_realistic --ns 10000 --stem bench_realistic_smoke

Each N runs in a process of its own (so its memory figures are its own) and measures, with the default
configuration and explanations on:

- build: seconds per stage (tokenise / encode / index, by wrapping the engine's functions as
  :mod:`benchmarks.speed` does), peak RSS beyond the input table (the process's high-water mark is reset once the
  input is built), index size on disk;
- the raw pipeline's build: rjieba tokens (jieba where rjieba is missing) + a bm25s index + encoding the titles with
  the engine's encoder (timed on a sample of ``--encode-sample`` titles and scaled to N: encoding is per record)
  + a FAISS index of the same kind as the engine's (flat or HNSW) over the engine's vectors;
- the saved index opened in a fresh process: open seconds and RSS (total, and beyond the imports);
- single-need latency p50/p95/p99, unfiltered and filtered on the need's own GB/T 大类, then unfiltered again while
  a CPU-bound process runs beside it; the raw pipeline's single-need latency (tokenise + encode the need's whole
  text, as the engine's query side does + bm25s top-10 + FAISS top-10);
- batch needs/s of ``engine.match(needs)`` and of the raw pipeline over the same full-length needs;
- dense recall@10 of the engine's dense index against exact search on its own vectors, and the share of needs
  written from a known achievement that find it in their top 10 (engine, raw bm25s, raw FAISS).

The parent writes ``<stem>.json`` and ``<stem>.md``: a table shaped like issue 18's, each figure with its ratio to
its anchor from the same run, and the growth from one N to the next.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import realistic, report
from .child import run_json
from .datasets import REPO
from .raw import faiss_index, recall
from .speed import dir_size, percentiles, rss_mib, stage_timer, timed

logger = logging.getLogger(__name__)
DEFAULT_NS = "100000,1000000"
GIB = 1024.0
# Targets of issue 18 that are absolute (the others are ratios to the raw pipeline of the same run).
TARGET_BUILD_PEAK_MIB = 3 * GIB
TARGET_LOADED_RSS_MIB = 2 * GIB
TARGET_OPEN_S = 10.0
NOTES = [
    "Realistic corpus: records recombined from CSL abstract sentences (benchmarks/realistic.py, seeded), titles from "
    "CSL titles of the same category, GB/T 小类 from a documented category → GB/T prefix table; needs are full-length "
    "(opening, 2–6 sentences, closing), half of them written from a known achievement.",
    "Default configuration, explanations on. Single-need latency includes validation, tokenising and encoding; the raw "
    "pipeline is rjieba (else jieba) tokens + bm25s (lucene) top-10 + FAISS top-10 of the engine's own kind, "
    "with the engine's encoder; a need's vector reads the text the engine's query side encodes (its whole text).",
    "The raw build's encoding is timed on a sample of titles and scaled to N (marked 'scaled'). The corpus draws its "
    "titles from CSL's 10,000, so most records share their title with others; the engine encodes each distinct "
    "title once and keeps each distinct vector once (see each row's distinct titles), the raw pipeline encodes "
    "every record's.",
    "Timings are wall-clock on a shared 2-core machine: compare ratios within one run. OMP_NUM_THREADS as found "
    "(see each row's environment).",
]


# ---- memory helpers -------------------------------------------------------------------------------------------

def reset_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux: writing 5 to clear_refs); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def hwm_mib() -> float:
    """RSS high-water mark since the last :func:`reset_peak` (VmHWM), NaN where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# ---- the raw pipeline -----------------------------------------------------------------------------------------

def raw_tokenizer() -> tuple[str, Any]:
    try:
        import rjieba

        return "rjieba", lambda t: rjieba.cut(t)
    except ImportError:
        import jieba

        return "jieba", jieba.lcut


def texts_of(df: pd.DataFrame) -> list[str]:
    """The matching text (title, keywords, description), as qcy_match.ingest.records.text_of writes it."""
    return [f"{t} {' '.join(k)} {d}".strip() for t, k, d in zip(df["title"], df["keywords"], df["description"],
                                                                 strict=True)]


class RawPipeline:
    """bm25s + FAISS by hand: what a user would write without the engine."""

    def __init__(self, engine: Any, corpus: pd.DataFrame, encode_sample: int) -> None:
        import bm25s

        self.tok_name, self.cut = raw_tokenizer()
        self.encoder = engine.encoder_
        self.build_s: dict[str, float] = {}
        # Cut in chunks, timed without the interning that follows each chunk: at 1M records a token list per
        # record of fresh strings would take ~10 GiB, and interning is not what a raw pipeline pays for.
        tokens: list[list[str]] = []
        words: dict[str, str] = {}
        chars, spent = 0, 0.0
        for s in range(0, len(corpus), 10_000):
            texts = texts_of(corpus.iloc[s:s + 10_000])
            chars += sum(map(len, texts))
            t0 = time.perf_counter()
            cut = [self.cut(t) for t in texts]
            spent += time.perf_counter() - t0
            tokens += [[words.setdefault(w, w) for w in doc] for doc in cut]
        del words, cut, texts
        self.build_s["tokenise"] = spent
        self.chars_per_s = chars / spent
        t0 = time.perf_counter()
        self.bm = bm25s.BM25(k1=engine.config.bm25_k1, b=engine.config.bm25_b, method="lucene")
        self.bm.index(tokens, show_progress=False)
        self.build_s["bm25s_index"] = time.perf_counter() - t0
        del tokens
        titles = corpus["title"].astype(str).tolist()
        m = min(len(titles), encode_sample)
        t0 = time.perf_counter()
        self.encode(titles[:m])
        self.build_s["encode (scaled)"] = (time.perf_counter() - t0) * len(titles) / m
        vectors = np.ascontiguousarray(engine.vectors(), dtype=np.float32)
        self.kind = "flat" if engine.dense_.kind_ in ("flat", "numpy") else "hnsw"
        t0 = time.perf_counter()
        self.faiss = faiss_index(vectors, self.kind)
        self.build_s[f"faiss_{self.kind}_add"] = time.perf_counter() - t0
        del vectors
        self.build_s["total"] = sum(self.build_s.values())

    def encode(self, titles: list[str]) -> np.ndarray:
        return np.asarray(self.encoder.encode(titles, [self.cut(t) for t in titles]), dtype=np.float32)

    def bm25_top(self, tokens: list[str], k: int = 10) -> np.ndarray:
        ids = [self.bm.vocab_dict[t] for t in tokens if t in self.bm.vocab_dict]
        if not ids:
            return np.empty(0, np.int64)
        s = np.asarray(self.bm.get_scores_from_ids(ids))
        part = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
        return part[np.argsort(-s[part], kind="stable")]

    # A need's vector reads the text the engine's query side encodes (its whole text, cut by the encoder:
    # query_dense_text="full"), so both sides search with the same vectors and pay the same encoding.
    def one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        top = self.bm25_top(self.cut(text))
        _, ids = self.faiss.search(self.encode([text]), 10)
        return top, ids[0]

    def batch(self, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
        tops = [self.bm25_top(self.cut(t)) for t in texts]
        _, ids = self.faiss.search(self.encode(texts), 10)
        return tops, ids


# ---- one N in this process ------------------------------------------------------------------------------------

def busy_process() -> subprocess.Popen[bytes]:
    """A CPU-bound process beside the measurement (one core of the machine kept busy)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


# Where a single need's time goes, for the tail profile (functions the engine calls through these names).
QUERY_STAGES = {
    "query side (tokenise, encode)": [("qcy_match.match.engine", "MatchEngine._query_side")],
    "bm25": [("qcy_match.match.query", "sparse_top_many")],
    "dense": [("qcy_match.index.dense", "DenseIndex.search")],
    "background": [("qcy_match.match.confidence", "Background.stats")],
    "confidence": [("qcy_match.match.confidence", "of_matches")],
    "explain": [("qcy_match.match.engine", "explain")],
}


def tail_profile(run: Any, repeat: int) -> dict[str, Any]:
    """Run ``run()`` (one need) ``repeat`` times with its stages timed and garbage collections counted; returns the
    mean milliseconds per stage of the slowest 5 % of runs and of the runs at or below the median (what makes the
    tail), and the collections of the oldest generation with their time.
    """
    full: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") == 2:
            if phase == "start":
                on_gc.t0 = time.perf_counter()  # type: ignore[attr-defined]
            else:
                full.append(time.perf_counter() - on_gc.t0)  # type: ignore[attr-defined]

    rows: list[dict[str, float]] = []
    gc.callbacks.append(on_gc)
    try:
        with stage_timer(QUERY_STAGES) as spent:
            for _ in range(repeat):
                for key in spent:
                    spent[key] = 0.0
                n_full = len(full)
                t0 = time.perf_counter()
                run()
                total = time.perf_counter() - t0
                rows.append({"total": total, **spent, "gc (oldest generation)": sum(full[n_full:])})
    finally:
        gc.callbacks.remove(on_gc)
    frame = pd.DataFrame(rows) * 1000
    frame["other"] = frame["total"] - frame.drop(columns="total").sum(axis=1)
    slow = frame[frame["total"] >= frame["total"].quantile(0.95)]
    fast = frame[frame["total"] <= frame["total"].median()]
    return {"runs": repeat, "slowest_5pct_ms": slow.mean().round(2).to_dict(),
            "median_or_faster_ms": fast.mean().round(2).to_dict(),
            "full_collections": len(full), "full_collection_ms": round(1000 * sum(full), 1)}


def open_in_fresh_process(path: Path, needs: Path | None = None) -> dict[str, Any]:
    """Open the saved index in a new interpreter: seconds and RSS, total and beyond the imports; then, with
    ``needs`` (a JSONL file), match them one at a time and take the RSS again (what serving holds once searches
    have read the mapped files and built their caches).
    """
    code = ("import json, time, sys; import pandas as pd; from qcy_match import MatchEngine; "
            "from benchmarks.speed import rss_mib, rss_split_mib; "
            "r0 = rss_mib(); t0 = time.perf_counter(); e = MatchEngine.load(sys.argv[1]); "
            "s = time.perf_counter() - t0; r1 = rss_mib(); out = {'open_s': s, 'rss_imports_mib': r0, "
            "'rss_loaded_mib': r1, 'index_rss_mib': r1 - r0, 'records': len(e), 'loaded_split_mib': rss_split_mib()}\n"
            "if len(sys.argv) > 2:\n"
            "    needs = pd.read_json(sys.argv[2], lines=True).to_dict('records')\n"
            "    [e.match([q], k=10, explain_matches=True) for q in needs]\n"
            "    out.update(rss_after_queries_mib=rss_mib(), queries=len(needs), after_split_mib=rss_split_mib())\n"
            "print(json.dumps(out))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    argv = [str(path)] + ([str(needs)] if needs is not None else [])
    out = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def exact_top10(vectors: np.ndarray, q: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact inner-product top-k without copying the corpus vectors (raw.exact_topk copies them: 2 GiB at 1M)."""
    out = np.empty((len(q), k), np.int64)
    for s in range(0, len(q), 64):
        sc = q[s:s + 64] @ vectors.T
        part = np.argpartition(-sc, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sc, part, axis=1), axis=1, kind="stable")
        out[s:s + len(sc)] = np.take_along_axis(part, order, axis=1)
    return out


def hit_share(found: list[np.ndarray] | np.ndarray, targets: np.ndarray) -> float | None:
    rows = [i for i, t in enumerate(targets) if t >= 0]
    if not rows:
        return None
    return float(np.mean([targets[i] in set(np.asarray(found[i]).tolist()) for i in rows]))


def run_one(n: int, n_needs: int = 1000, repeat: int = 200, seed: int = 0, encode_sample: int = 20_000
            ) -> dict[str, Any]:
    from qcy_match import EngineConfig, MatchEngine

    out: dict[str, Any] = {"n": n, "env": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                                           "load_avg_start": [round(x, 2) for x in os.getloadavg()]}}
    t0 = time.perf_counter()
    corpus = realistic.achievements(n, seed)
    needs_df = realistic.needs(n_needs, n, seed)
    out["generate_s"] = time.perf_counter() - t0
    out["corpus_chars_per_record"] = float(corpus["description"].str.len().mean())
    out["need_chars_per_record"] = float(needs_df["description"].str.len().mean())
    # Titles are drawn from CSL's: the engine encodes each distinct title once and its graphs hold each distinct
    # vector once, so the build and the dense recall depend on how many there are.
    out["distinct_titles"] = int(corpus["title"].nunique())
    gc.collect()
    rss_input = rss_mib()
    resettable = reset_peak()
    with stage_timer() as stages:
        t0 = time.perf_counter()
        engine = MatchEngine(EngineConfig()).index(corpus)
        build_s = time.perf_counter() - t0
    peak = hwm_mib()
    out["build"] = {"s": build_s, "stages_s": dict(stages), "index_kind": engine.dense_.kind_,
                    "encoder": engine.config.encoder, "rss_input_mib": rss_input, "peak_rss_mib": peak,
                    "peak_beyond_input_mib": peak - rss_input if resettable else None}
    logger.info("%d: engine built in %.0f s", n, build_s)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "idx"
        t0 = time.perf_counter()
        engine.save(path)
        out["build"]["save_s"] = time.perf_counter() - t0
        out["build"]["disk_mib"] = dir_size(path) / 2**20
        needs_file = Path(tmp) / "needs.jsonl"
        needs_df.head(100).to_json(needs_file, orient="records", lines=True, force_ascii=False)
        out["loaded"] = open_in_fresh_process(path, needs_file)

    reset_peak()
    rss0 = rss_mib()
    raw = RawPipeline(engine, corpus, encode_sample)
    out["raw_build"] = {"s": raw.build_s, "tokenizer": raw.tok_name, "tokenise_chars_per_s": raw.chars_per_s,
                        "peak_beyond_start_mib": hwm_mib() - rss0, "faiss_kind": raw.kind,
                        "encode_sample": min(n, encode_sample)}
    del corpus
    gc.collect()
    logger.info("%d: raw pipeline built in %.0f s", n, raw.build_s["total"])

    needs = needs_df.to_dict("records")
    texts = texts_of(needs_df)
    it = iter(range(10**9))

    def single(filtered: bool) -> Any:
        q = needs[next(it) % len(needs)]
        f = {"industry": [q["industry"][0][:3]]} if filtered else None
        return engine.match([q], k=10, filters=f, explain_matches=True)

    def raw_single() -> Any:
        i = next(it) % len(texts)
        return raw.one(texts[i])

    lat = {"unfiltered": percentiles(timed(lambda: single(False), repeat)),
           "industry_filter": percentiles(timed(lambda: single(True), repeat)),
           "raw_single": percentiles(timed(raw_single, repeat))}
    hog = busy_process()
    try:
        time.sleep(0.5)
        lat["unfiltered_beside_cpu_hog"] = percentiles(timed(lambda: single(False), repeat))
        lat["raw_single_beside_cpu_hog"] = percentiles(timed(raw_single, repeat))
    finally:
        hog.kill()
        hog.wait()
    out["latency"] = lat
    out["tail_profile"] = tail_profile(lambda: single(False), repeat)
    logger.info("%d: single-need latency measured (p50 %.1f ms filtered)", n, lat["industry_filter"]["p50_ms"])

    t0 = time.perf_counter()
    res = engine.match(needs_df, k=10, explain_matches=True)
    e_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    r_bm, r_dense = raw.batch(texts)
    r_s = time.perf_counter() - t0
    out["batch"] = {"needs": len(needs_df), "engine_needs_per_s": len(needs_df) / e_s,
                    "raw_needs_per_s": len(needs_df) / r_s}
    logger.info("%d: batch %.0f needs/s (raw %.0f)", n, out["batch"]["engine_needs_per_s"],
                out["batch"]["raw_needs_per_s"])
    ids = engine.records_["id"].astype(str).to_numpy()
    pos = {v: i for i, v in enumerate(ids)}
    targets = np.asarray([pos.get(s, -1) if s else -1 for s in needs_df["source"]])
    engine_found = [np.asarray([pos[x] for x in row if x is not None]) for row in res.ids]
    out["known_source_hit_at_10"] = {"needs": int((targets >= 0).sum()), "engine": hit_share(engine_found, targets),
                                     "raw_bm25s": hit_share(r_bm, targets), "raw_faiss": hit_share(r_dense, targets)}

    vectors = np.ascontiguousarray(engine.vectors(), dtype=np.float32)
    q_vecs = np.ascontiguousarray(engine.vectors(needs_df), dtype=np.float32)
    truth = exact_top10(vectors, q_vecs)
    out["dense_recall_at_10"] = recall(engine.dense_.search(q_vecs, 10)[0], truth, vectors, q_vecs)
    out["raw_faiss_recall_at_10"] = recall(raw.faiss.search(q_vecs, 10)[1], truth, vectors, q_vecs)
    out["env"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return out


# ---- the suite: one process per N, then the report ------------------------------------------------------------

def run_subprocess(n: int, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    result = run_json("benchmarks.scale_realistic", ["--one", str(n), "--needs", str(args.needs), "--repeat",
                                                     str(args.repeat), "--seed", str(args.seed), "--encode-sample",
                                                     str(args.encode_sample)],
                      "--json", log_dir / f"{args.stem}_{n}.log")
    return {"n": n, **result} if "error" in result else result


def summary(r: dict[str, Any]) -> dict[str, float | None]:
    """The headline figures of one N (None where a part failed)."""
    lat, b = r["latency"], r["build"]
    return {
        "batch": r["batch"]["engine_needs_per_s"], "raw_batch": r["batch"]["raw_needs_per_s"],
        "filtered_p50": lat["industry_filter"]["p50_ms"], "unfiltered_p50": lat["unfiltered"]["p50_ms"],
        "raw_p50": lat["raw_single"]["p50_ms"],
        "loaded_p50": lat["unfiltered_beside_cpu_hog"]["p50_ms"],
        "loaded_p99": lat["unfiltered_beside_cpu_hog"]["p99_ms"],
        "build_s": b["s"], "raw_build_s": r["raw_build"]["s"]["total"],
        "tokenise_s": b["stages_s"].get("tokenise"), "raw_tokenise_s": r["raw_build"]["s"]["tokenise"],
        "peak_beyond_input_mib": b.get("peak_beyond_input_mib"),
        "loaded_rss_mib": r["loaded"].get("rss_loaded_mib"), "open_s": r["loaded"].get("open_s"),
        "dense_recall": r["dense_recall_at_10"],
    }


def growth(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """From each N to the next: how each figure moved (latency and build up, batch throughput down)."""
    ok = [r for r in results if "error" not in r]
    out = []
    for a, b in zip(ok, ok[1:], strict=False):
        sa, sb = summary(a), summary(b)

        def up(key: str, sa: dict[str, Any] = sa, sb: dict[str, Any] = sb) -> float | None:
            return sb[key] / sa[key] if sa[key] and sb[key] else None

        out.append({"from": a["n"], "to": b["n"], "records": b["n"] / a["n"],
                    "filtered_p50": up("filtered_p50"), "unfiltered_p50": up("unfiltered_p50"),
                    "raw_p50": up("raw_p50"),
                    "batch_fall": sa["batch"] / sb["batch"] if sa["batch"] and sb["batch"] else None,
                    "raw_batch_fall": sa["raw_batch"] / sb["raw_batch"] if sa["raw_batch"] and sb["raw_batch"]
                    else None,
                    "build_s": up("build_s"), "raw_build_s": up("raw_build_s")})
    return out


def _f(x: Any, nd: int = 1) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def _r(a: Any, b: Any) -> str:
    return "–" if not a or not b else f"{a / b:.2f}×"


def markdown(rep: dict[str, Any]) -> str:
    m = rep["machine"]
    lines = [f"# Realistic-corpus scale benchmark ({rep['seconds']:.0f} s)", "",
             f"Machine: {m['cores']} cores, {m.get('memory_gib')} GiB, {m['platform']}, Python {m['python']}, "
             f"load average at the end {m.get('load_avg')}.", ""]
    lines += [f"- {x}" for x in rep["notes"]] + [""]
    rows = rep["results"]
    lines += ["## Issue 18's table (engine, with the raw pipeline's figure and engine ÷ raw)", "",
              "| realistic records | batch needs/s (raw) [engine ÷ raw] | filtered p50 ms (raw single) [÷ raw] | "
              "unfiltered p50 ms [÷ raw] | p99 ms beside a CPU hog [÷ its p50] | build s (raw) [÷ raw] | "
              "tokenise s (raw) | dense recall@10 |", "|" + "---|" * 8]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['n']} | error: {r['error']} |" + " |" * 6)
            continue
        s = summary(r)
        lines.append(
            f"| {r['n']:,} | {_f(s['batch'], 0)} ({_f(s['raw_batch'], 0)}) [{_r(s['batch'], s['raw_batch'])}] | "
            f"{_f(s['filtered_p50'])} ({_f(s['raw_p50'])}) [{_r(s['filtered_p50'], s['raw_p50'])}] | "
            f"{_f(s['unfiltered_p50'])} [{_r(s['unfiltered_p50'], s['raw_p50'])}] | "
            f"{_f(s['loaded_p99'])} [{_r(s['loaded_p99'], s['loaded_p50'])}] | "
            f"{_f(s['build_s'], 0)} ({_f(s['raw_build_s'], 0)}) [{_r(s['build_s'], s['raw_build_s'])}] | "
            f"{_f(s['tokenise_s'], 0)} ({_f(s['raw_tokenise_s'], 0)}) | {_f(s['dense_recall'], 3)} |")
    lines += ["", "## Memory and opening (ratio to issue 18's target)", "",
              "| records | input MiB | build peak beyond input MiB [÷ 3 GiB] | disk MiB | loaded RSS MiB [÷ 2 GiB] | "
              "index RSS beyond imports MiB | open s [÷ 10 s] | RSS after 100 needs MiB (owned + mapped files) |",
              "|" + "---|" * 8]
    for r in rows:
        if "error" in r:
            continue
        s, b, ld = summary(r), r["build"], r["loaded"]
        after = ld.get("after_split_mib") or {}
        lines.append(f"| {r['n']:,} | {_f(b['rss_input_mib'], 0)} | {_f(s['peak_beyond_input_mib'], 0)} "
                     f"[{_r(s['peak_beyond_input_mib'], TARGET_BUILD_PEAK_MIB)}] | {_f(b['disk_mib'], 0)} | "
                     f"{_f(s['loaded_rss_mib'], 0)} [{_r(s['loaded_rss_mib'], TARGET_LOADED_RSS_MIB)}] | "
                     f"{_f(ld.get('index_rss_mib'), 0)} | {_f(s['open_s'], 2)} [{_r(s['open_s'], TARGET_OPEN_S)}] | "
                     f"{_f(ld.get('rss_after_queries_mib'), 0)} ({_f(after.get('anon'), 0)} + "
                     f"{_f(after.get('file'), 0)}) |")
    lines += ["", "## Details", "",
              "| records | build stages s (tokenise / encode / index) | raw build s (tokenise / bm25s / encode "
              "scaled / FAISS) | raw tokeniser chars/s | latency p50 / p95 / p99 ms: unfiltered; filtered; raw; "
              "raw beside hog | known source in top 10: engine / raw bm25s / raw FAISS | raw FAISS recall@10 | "
              "distinct titles | load avg start → end |", "|" + "---|" * 9]
    for r in rows:
        if "error" in r:
            continue
        st, rb, lat = r["build"]["stages_s"], r["raw_build"]["s"], r["latency"]

        def ppp(x: dict[str, float]) -> str:
            return f"{x['p50_ms']:.1f} / {x['p95_ms']:.1f} / {x['p99_ms']:.1f}"

        k = r["known_source_hit_at_10"]
        lines.append(
            f"| {r['n']:,} | {_f(st.get('tokenise'))} / {_f(st.get('encode'))} / {_f(st.get('index'))} | "
            + " / ".join(_f(v) for key, v in rb.items() if key != "total")
            + f" | {r['raw_build']['tokenise_chars_per_s'] / 1e6:.2f}M ({r['raw_build']['tokenizer']}) | "
            f"{ppp(lat['unfiltered'])}; {ppp(lat['industry_filter'])}; {ppp(lat['raw_single'])}; "
            f"{ppp(lat['raw_single_beside_cpu_hog'])} | {_f(k['engine'], 3)} / {_f(k['raw_bm25s'], 3)} / "
            f"{_f(k['raw_faiss'], 3)} | {_f(r['raw_faiss_recall_at_10'], 3)} | {r.get('distinct_titles', '')} | "
            f"{r['env']['load_avg_start']} → "
            f"{r['env']['load_avg_end']} |")
    tails = [r for r in rows if "error" not in r and "tail_profile" in r]
    if tails:
        lines += ["", "## Where a single need's time goes (unfiltered, mean ms: slowest 5 % of runs | runs at or "
                  "below the median)", ""]
        stages = list(tails[0]["tail_profile"]["slowest_5pct_ms"])
        lines += ["| records | " + " | ".join(stages) + " | full collections (ms) |", "|" + "---|" * (len(stages) + 2)]
        for r in tails:
            t = r["tail_profile"]
            slow, fast = t["slowest_5pct_ms"], t["median_or_faster_ms"]
            lines.append(f"| {r['n']:,} | " + " | ".join(f"{_f(slow.get(k))} \\| {_f(fast.get(k))}" for k in stages)
                         + f" | {t['full_collections']} ({t['full_collection_ms']}) |")
    g = rep.get("growth") or []
    if g:
        lines += ["", "## Growth (issue 18 target 0: latency ≤ 2.5× and batch fall ≤ 2.5× from 100k to 1M)", "",
                  "| from → to | records × | filtered p50 × | unfiltered p50 × | raw p50 × | batch falls ÷ | "
                  "raw batch falls ÷ | build × | raw build × |", "|" + "---|" * 9]
        for x in g:
            lines.append(f"| {x['from']:,} → {x['to']:,} | {_f(x['records'])} | {_f(x['filtered_p50'], 2)} | "
                         f"{_f(x['unfiltered_p50'], 2)} | {_f(x['raw_p50'], 2)} | {_f(x['batch_fall'], 2)} | "
                         f"{_f(x['raw_batch_fall'], 2)} | {_f(x['build_s'], 2)} | {_f(x['raw_build_s'], 2)} |")
    return "\n".join(lines) + "\n"


def run_all(ns: list[int], out_dir: Path, stem: str = "bench_realistic", needs: int = 1000, repeat: int = 200,
            seed: int = 0, encode_sample: int = 20_000) -> tuple[Path, Path]:
    """Every N in its own process, then ``<stem>.json`` and ``<stem>.md`` in ``out_dir``."""
    args = argparse.Namespace(needs=needs, repeat=repeat, seed=seed, encode_sample=encode_sample, stem=stem)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results = []
    for n in ns:
        logger.info("realistic scale: %d records", n)
        results.append(run_subprocess(n, args, out_dir))
    rep = {"notes": NOTES, "results": results, "growth": growth(results), "seconds": time.time() - t0,
           "machine": report.machine(), "params": {"needs": needs, "repeat": repeat, "seed": seed,
                                                   "encode_sample": encode_sample}}
    j, m = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    j.write_text(json.dumps(rep, indent=1, ensure_ascii=False, default=float), encoding="utf-8")
    m.write_text(markdown(rep), encoding="utf-8")
    return j, m


def parse_ns(spec: str) -> list[int]:
    return [int(float(x)) for x in spec.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ns", default=DEFAULT_NS, help=f"record counts, comma-separated (default {DEFAULT_NS})")
    ap.add_argument("--needs", type=int, default=1000, help="needs in the batch (and cycled by single queries)")
    ap.add_argument("--repeat", type=int, default=200, help="single needs timed per measurement")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--encode-sample", type=int, default=20_000, help="titles the raw build encodes (scaled to N)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--stem", default="bench_realistic")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("faiss", "faiss.loader", "bm25s", "qcy_match"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.one is not None:
        r = run_one(args.one, args.needs, args.repeat, args.seed, args.encode_sample)
        (args.json or Path(f"realistic_{args.one}.json")).write_text(json.dumps(r, default=float))
        return 0
    j, m = run_all(parse_ns(args.ns), args.out, args.stem, args.needs, args.repeat, args.seed, args.encode_sample)
    print(f"wrote {j}, {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
