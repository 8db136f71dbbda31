"""The demo: match the shipped corpus of needs to achievements and print the best matches with their reasons."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import EngineConfig
from ..match.jobs import JobChunk, match_file


def run_demo(corpus: Path, out: Path, config: EngineConfig, k: int = 5, show: int = 6, progress: bool = False,
             rejects_path: Path | None = None, strict: bool = False) -> Any:
    """Match ``corpus/needs.jsonl`` against ``corpus/achievements.jsonl`` into ``out`` and print a summary; returns
    the table of matches.
    """
    chunks: list[JobChunk] = []
    res = match_file(corpus / "needs.jsonl", out, achievements=corpus / "achievements.jsonl", k=k, config=config,
                     strict=strict, rejects=rejects_path, show_progress=progress, on_chunk=chunks.append)
    engine = res.engine
    assert engine is not None  # match_file always reports the engine it searched
    w = sys.stdout.write
    w(f"\nqcy-match demo: {res.queries} enterprise needs × {res.corpus} achievements "
      f"(encoder {config.encoder}, index {engine.dense_.kind_}); indexed in {res.index_seconds:.1f} s, "
      f"matched in {res.match_seconds:.1f} s\n")
    shown = [(c, i) for c in chunks for i in range(len(c.queries))][:show]
    for chunk, i in shown:
        need, result = chunk.queries.iloc[i], chunk.matches
        w(f"\n【需求 {need['id']}】{need['title']}  ({need['region']}; {', '.join(need['industry'])})\n")
        for j in range(min(3, k)):
            d = int(result.indices[i, j])
            if d < 0:
                break
            a = engine.records_.iloc[d]
            e = result.explanations[i][j]
            kw = "、".join(t for t, _ in e["shared_keywords"]) or "—"
            w(f"  {j + 1}. {a['id']} {a['title']}  score {result.scores[i, j]:.3f}\n"
              f"     共同关键词: {kw} | 行业一致: {e['industry_agreement']} | 地区: {e['region_agreement']} | "
              f"BM25 {e['bm25_score']:.2f} (#{e['bm25_rank'] or '-'}) · dense {e['dense_score']:.3f} "
              f"(#{e['dense_rank'] or '-'}) | {a['maturity']} · {a['transfer_mode']} · {a.get('owner', '')}\n")
    table = pd.concat([c.table for c in chunks], ignore_index=True)
    agree = table.groupby("need_id").head(1)["industry_agreement"].value_counts().to_dict()
    w(f"\nTop-1 industry agreement over all needs: {agree}\n")
    w(f"Full table ({res.rows} rows): {out}; rejected rows: {len(res.rejected)} → {res.rejects_path}\n")
    return table
