"""PNG plots of a report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_all(report: dict[str, Any], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    scales = {int(n): s for n, s in report.get("scales", {}).items() if "error" not in s}
    if scales:
        ns = sorted(scales)
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, label in (("industry_filter", "engine, industry filter"), ("unfiltered", "engine, no filter")):
            ax.plot(ns, [scales[n]["latency"][key]["p50_ms"] for n in ns], "o-", label=f"{label} p50")
        ax.plot(ns, [scales[n]["latency"]["industry_filter"]["p95_ms"] for n in ns], "o--",
                label="engine, industry filter p95")
        raw = [next((v["p50_ms"] for k, v in scales[n].get("anchors", {}).get("single", {}).items()
                     if k.startswith("pipeline")), None) for n in ns]
        if all(r is not None for r in raw):
            ax.plot(ns, raw, "s:", label="raw bm25s + FAISS pipeline p50")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("achievements")
        ax.set_ylabel("ms per single need (top 10)")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
        written.append(_save(fig, out / "latency_vs_size.png"))
        fig, ax = plt.subplots(figsize=(6, 4))
        for n in ns:
            by = scales[n].get("filters", {}).get("by_selectivity", {})
            if not by:
                continue
            sels = sorted(by, key=float)
            x = [float(s) * 100 for s in sels]
            ax.plot(x, [by[s]["engine_recall_at_10"] for s in sels], "o-", label=f"engine, {n}")
            ax.plot(x, [by[s]["faiss_hnsw_recall_at_10"] for s in sels], "x:", label=f"raw FAISS HNSW, {n}")
            if all("milvus_recall_at_10" in by[s] for s in sels):
                ax.plot(x, [by[s]["milvus_recall_at_10"] for s in sels], "^--", label=f"milvus-lite, {n}")
        ax.set_xscale("log")
        ax.set_xlabel("records kept by the filter (%)")
        ax.set_ylabel("recall@10 vs exact filtered search")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
        written.append(_save(fig, out / "recall_vs_selectivity.png"))
    q = report.get("quality", {}).get("tasks", {})
    if q:
        tasks = list(q)
        systems = list(dict.fromkeys(s for t in q.values() for s in t["results"]))
        fig, ax = plt.subplots(figsize=(max(8, len(tasks) * 1.4), 4.5))
        width = 0.8 / max(1, len(systems))
        for j, s in enumerate(systems):
            vals = []
            for t in tasks:
                r = q[t]["results"].get(s)
                split = "test" if r and "test" in r else (next(iter(r)) if r else None)
                vals.append(r[split]["nDCG@10"] if r and split else 0.0)
            ax.bar([i + j * width for i in range(len(tasks))], vals, width, label=s)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))])
        ax.set_xticklabels([t.replace("csl_", "") for t in tasks], rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("nDCG@10 (test rows)")
        ax.legend(fontsize=6, ncol=2)
        written.append(_save(fig, out / "quality_by_task.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
