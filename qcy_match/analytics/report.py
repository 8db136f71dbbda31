"""The demand report: every analytics table as CSV and one XLSX, PNG plots, and a self-contained HTML page.

The page embeds its plots (PNG, base64) and a subset of the CJK font holding just the characters it uses, so it
shows Chinese correctly in any browser, with no network and no system fonts.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..output.tables import write_sheets, write_table
from . import demand as an
from . import topics as tp

logger = logging.getLogger(__name__)

# Table name → (section title, what it shows).
SECTIONS: dict[str, tuple[str, str]] = {
    "gap_chain": ("供需缺口：按产业链 Supply–demand gap by chain", "weak_share: share of needs whose top match is "
                  "weak (confidence below the threshold); weak_needs_listed: those needs; inferred: needs grouped by "
                  "an industry code or chain the classifier inferred (they had none)."),
    "gap_industry": ("供需缺口：按行业 Gap by industry (GB/T 4754 大类)", ""),
    "gap_region": ("供需缺口：按区域 Gap by region (关中/陕北/陕南)", ""),
    "unmatched_needs": ("无良好匹配的需求 Needs without a good match",
                        "Where to look for new technology or organise a 揭榜挂帅 open call."),
    "open_call_solvers": ("揭榜挂帅：可能的揭榜方 Who could take on the needs without a good match",
                          "For each need above: owners ranked by the votes of their matched achievements "
                          "(expCombSUM), with the supporting achievements."),
    "open_call_consortia": ("创新联合体建议 Proposed consortia for those needs",
                            "Each need split into its parts; at most 3 owners that cover the most parts with the "
                            "strongest evidence, partners in the need's region group preferred when evidence is "
                            "close (the note says so)."),
    "open_call_uncovered": ("联合体未覆盖的部分 Parts no proposed member covers", ""),
    "roadshow_shortlist": ("路演推介名单 Roadshow shortlist", "Greedy maximum coverage: each slot adds the achievement "
                           "that serves the most needs not yet served (each need counted once)."),
    "roadshow_invitations": ("拟邀请企业 Enterprises to invite", ""),
    "unused_by_industry": ("闲置供给：按行业 Unused supply by industry", "Achievements in no need's top-k."),
    "unused_supply": ("闲置成果及其最佳对象 Unused achievements with their best partner anyway", ""),
    "need_topics": ("需求主题 Demand topics", ""),
    "achievement_topics": ("成果主题 Supply topics", ""),
    "need_topics_by_chain": ("需求主题 × 产业链 Demand topics per chain", ""),
    "need_topics_by_industry": ("需求主题 × 行业 Demand topics per industry", ""),
    "need_topics_by_region": ("需求主题 × 区域 Demand topics per region", ""),
    "calibration": ("阈值与方法 Threshold and method", ""),
}


@dataclass
class Report:
    """The tables, plots and notes of one report."""

    tables: dict[str, pd.DataFrame]
    notes: dict[str, str]
    plots: dict[str, bytes] = field(default_factory=dict)


def build_tables(analysis: an.DemandAnalysis, slots: int = 5, chain: str | None = None, industry: str | None = None,
                 region: str | None = None, seed: int = 0, n_topics: int | None = None) -> Report:
    """Every table of the report (no matplotlib needed)."""
    tables: dict[str, pd.DataFrame] = {}
    for dim in an.DIMENSIONS:
        tables[f"gap_{dim}"] = an.gap_table(analysis, dim)
    tables["unmatched_needs"] = an.unmatched_needs(analysis)
    open_call = _open_call(analysis, tables["unmatched_needs"])
    tables.update(open_call)
    shortlist, invitations = an.roadshow(analysis, slots, chain=chain, industry=industry, region=region)
    tables["roadshow_shortlist"], tables["roadshow_invitations"] = shortlist, invitations
    tables["unused_by_industry"] = an.unused_by(analysis, "industry")
    tables["unused_supply"] = an.unused_supply(analysis)
    engine = analysis.engine
    need_topics = tp.find_topics(engine.vectors(analysis.needs), tp.label_texts(analysis.needs),
                                 analysis.needs["title"].tolist(), k=n_topics, seed=seed)
    ach_topics = tp.find_topics(engine.vectors(), tp.label_texts(analysis.achievements),
                                analysis.achievements["title"].tolist(), k=n_topics, seed=seed)
    tables["need_topics"], tables["achievement_topics"] = need_topics.table, ach_topics.table
    labels = need_topics.label_of()
    for dim in an.DIMENSIONS:
        tables[f"need_topics_by_{dim}"] = tp.topics_by(labels, an.group_of(analysis.needs, dim), dim)
    scope = ", ".join(f"{k}={v}" for k, v in (("chain", chain), ("industry", industry), ("region", region)) if v)
    notes = {
        "threshold": analysis.weak_rule,
        "industry": analysis.industry_rule,
        "roadshow": f"{slots} slots, scope: {scope or 'all records'}; covers "
                    f"{int(shortlist['covered_total'].max()) if len(shortlist) else 0} distinct needs",
        "need_topics": _topic_note(need_topics, "needs"),
        "achievement_topics": _topic_note(ach_topics, "achievements"),
        "open_call_solvers": "" if open_call else "no need lacks a good match, or the achievements name no owner "
                             "(owner, 完成单位, 所属单位, 申报单位 or 单位 column): no solvers or consortia to propose",
    }
    tables["calibration"] = pd.DataFrame([
        {"item": "needs", "value": str(len(analysis.needs))},
        {"item": "achievements", "value": str(len(analysis.achievements))},
        {"item": "top-k per need", "value": str(analysis.k)},
        {"item": "weak-match threshold", "value": f"{analysis.min_confidence:.4f}"},
        {"item": "weak-match rule", "value": analysis.weak_rule},
        {"item": "needs' industry codes", "value": analysis.industry_rule},
        {"item": "good-pair strength threshold (roadshow, unused supply)", "value": f"{analysis.threshold:.4f}"},
        {"item": "strength rule", "value": analysis.threshold_rule},
        {"item": "needs with a weak best match", "value": str(int(analysis.best()["weak"].sum()))},
        {"item": "achievements in nobody's top-k", "value": str(len(tables["unused_supply"]))},
        {"item": "need topics", "value": notes["need_topics"]},
        {"item": "achievement topics", "value": notes["achievement_topics"]},
        {"item": "roadshow", "value": notes["roadshow"]},
        {"item": "chain of a record", "value": "its own 'chain' column, else derived from its first industry code "
                                               "via qcy_match/data/shaanxi_chains.json"},
    ])
    return Report(tables, notes)


def _open_call(analysis: an.DemandAnalysis, unmatched: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Solvers and consortia for the needs without a good match; empty when the achievements name no owner."""
    if "owner" not in analysis.achievements or not len(unmatched):
        return {}
    needs = analysis.needs[analysis.needs["id"].isin(set(unmatched["need_id"]))]
    engine = analysis.engine
    solvers = engine.solvers(needs).table
    solvers.insert(1, "need_title", solvers["need_id"].map(needs.set_index("id")["title"]))
    consortia = engine.consortium(needs)
    return {"open_call_solvers": solvers, "open_call_consortia": consortia.members,
            "open_call_uncovered": consortia.uncovered}


def _topic_note(topics: tp.Topics, side: str) -> str:
    if not topics.silhouette:
        return f"{topics.k} topics of {side} (k fixed)"
    ks = sorted(topics.silhouette)
    return (f"{topics.k} topics of {side}: KMeans on the engine's dense vectors, k chosen by cosine silhouette "
            f"over {ks[0]}–{ks[-1]} (best {topics.silhouette.get(topics.k)}); labels by c-TF-IDF")


def add_plots(report: Report, analysis: an.DemandAnalysis) -> Report:
    """Draw the report's plots (needs the ``[report]`` extra)."""
    from . import plots

    t = report.tables
    report.plots = {
        "gap_chain": plots.gap_chart(t["gap_chain"], "chain", "供需缺口（按产业链）"),
        "gap_region": plots.gap_chart(t["gap_region"], "region", "供需缺口（按区域）"),
        "strength": plots.strength_histogram(analysis.best()["best_confidence"], analysis.min_confidence),
        "need_topics": plots.topic_chart(t["need_topics"], "需求主题（前15）"),
        "achievement_topics": plots.topic_chart(t["achievement_topics"], "成果主题（前15）"),
        "unused": plots.unused_chart(t["unused_by_industry"], "industry"),
    }
    return report


# What write_report puts in its directory: the files it replaces and the folders it fills (callers check them
# against their inputs before anything is written).
PAGE, WORKBOOK = "report.html", "tables.xlsx"
TABLES, PLOTS = "tables", "plots"
REPORT_FILES = (PAGE, WORKBOOK)
REPORT_DIRS = (TABLES, PLOTS)


def write_report(report: Report, out: Path, title: str = "秦创原 技术供需分析报告") -> Path:
    """Write ``out/report.html``, ``out/tables/*.csv``, ``out/tables.xlsx`` and ``out/plots/*.png``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / TABLES).mkdir(exist_ok=True)
    for name, df in report.tables.items():
        write_table(df, out / TABLES / f"{name}.csv")
    write_sheets(report.tables, out / WORKBOOK)
    if report.plots:
        (out / PLOTS).mkdir(exist_ok=True)
        for name, png in report.plots.items():
            (out / PLOTS / f"{name}.png").write_bytes(png)
    page = out / PAGE
    page.write_text(render_html(report, title), encoding="utf-8")
    logger.info("report written to %s", page)
    return page


def _img(report: Report, name: str) -> str:
    png = report.plots.get(name)
    if not png:
        return ""
    return f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(df: pd.DataFrame, max_rows: int = 60) -> str:
    shown = df.head(max_rows)
    body = shown.to_html(index=False, escape=True, border=0, classes="t", na_rep="")
    more = f'<p class="more">… {len(df) - max_rows} more rows in the CSV/XLSX</p>' if len(df) > max_rows else ""
    return body + more


PLOT_AFTER = {"gap_chain": ["gap_chain"], "gap_region": ["gap_region"], "unmatched_needs": ["strength"],
              "unused_by_industry": ["unused"], "need_topics": ["need_topics"],
              "achievement_topics": ["achievement_topics"]}
CSS = """body{font-family:'QcyCJK','Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC',sans-serif;
margin:2em auto;max-width:1200px;color:#222}h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px
solid #ccc}table.t{border-collapse:collapse;font-size:12px}table.t th,table.t td{border:1px solid #ddd;padding:3px 6px;
text-align:left;vertical-align:top}table.t th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}
.note{color:#555}.more{color:#888;font-size:12px}"""


def render_html(report: Report, title: str) -> str:
    """The page as one string."""
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="note">弱匹配阈值 Weak-match threshold: {html.escape(report.notes.get("threshold", ""))}</p>',
             f'<p class="note">路演 Roadshow: {html.escape(report.notes.get("roadshow", ""))}</p>']
    for name, (head, note) in SECTIONS.items():
        if name not in report.tables:
            continue
        parts.append(f'<h2 id="{name}">{html.escape(head)}</h2>')
        extra = report.notes.get(name, "")
        if note or extra:
            parts.append(f'<p class="note">{html.escape(" ".join(x for x in (note, extra) if x))}</p>')
        parts.extend(_img(report, p) for p in PLOT_AFTER.get(name, []))
        parts.append(_table(report.tables[name]))
    body = "\n".join(parts)
    font = _font_face(title + body)
    return (f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{font}{CSS}</style></head><body>\n{body}\n</body></html>\n")


def _font_face(text: str) -> str:
    """An @font-face rule embedding the CJK font cut down to the characters of ``text``; '' when unavailable."""
    try:
        from fontTools import subset
        from fontTools.ttLib import TTFont

        from .plots import cjk_font_path

        path = cjk_font_path()
    except ImportError:
        logger.info("no CJK font to embed; the page relies on the reader's fonts")
        return ""
    chars = "".join(sorted({ch for ch in text if ord(ch) > 127}))
    font = TTFont(str(path), fontNumber=0)
    opts = subset.Options()
    opts.layout_features = []
    opts.notdef_outline = True
    sub = subset.Subsetter(opts)
    sub.populate(text=chars)
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    data = base64.b64encode(buf.getvalue()).decode()
    fmt = "opentype" if path.suffix.lower() == ".otf" else "truetype"
    return f"@font-face{{font-family:'QcyCJK';src:url(data:font/{fmt};base64,{data}) format('{fmt}');}}"
