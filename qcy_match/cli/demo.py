"""The demo: match the shipped corpus of needs to achievements and print the best matches with their reasons."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ..config import EngineConfig
from ..ingest.records import load_records
from ..match.engine import MatchEngine
from ..output.rejects import report_rejections
from ..output.tables import write_table


def run_demo(corpus: Path, out: Path, config: EngineConfig, k: int = 5, show: int = 6, progress: bool = False,
             rejects_path: Path | None = None, strict: bool = False) -> Any:
    """Index ``corpus/achievements.jsonl``, match ``corpus/needs.jsonl`` and print a summary; returns the table."""
    t0 = time.time()
    achievements, rej_a = load_records(corpus / "achievements.jsonl")
    needs, rej_n = load_records(corpus / "needs.jsonl")
    rejects = rej_a + rej_n
    if rejects_path is not None:
        report_rejections(rejects, rejects_path, strict)
    engine = MatchEngine(config).index(achievements, show_progress=progress)
    t_index = time.time() - t0
    result = engine.match(needs, k=k, show_progress=progress)
    table = result.to_frame(needs, engine.records_)
    write_table(table, out)
    w = sys.stdout.write
    w(f"\nqcy-match demo: {len(needs)} enterprise needs × {len(achievements)} achievements "
      f"(encoder {config.encoder}, index {engine.dense_.kind_}); indexed in {t_index:.1f} s, "
      f"matched in {time.time() - t0 - t_index:.1f} s\n")
    for i in range(min(show, len(needs))):
        need = needs.iloc[i]
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
    agree = table.groupby("need_id").head(1)["industry_agreement"].value_counts().to_dict()
    w(f"\nTop-1 industry agreement over all needs: {agree}\n")
    w(f"Full table ({len(table)} rows): {out}; rejected rows: {len(rejects)}"
      + (f" → {rejects_path}" if rejects_path else "") + "\n")
    return table
