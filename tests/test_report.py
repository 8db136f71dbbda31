"""The demand report: tables, CSV/XLSX, plots with Chinese glyphs, the HTML page, the CLI, headless Chromium."""

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from qcy_match.analytics import demand as an
from qcy_match.analytics import report as rp
from qcy_match.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables(demo_analysis):
    return rp.build_tables(demo_analysis, slots=4, chain="钢铁深加工", seed=0)


def test_tables_cover_every_section(tables, demo_analysis):
    assert set(rp.SECTIONS) == set(tables.tables)
    assert tables.tables["gap_chain"]["needs"].sum() == len(demo_analysis.needs)
    assert len(tables.tables["roadshow_shortlist"]) <= 4
    assert "钢铁深加工" in tables.notes["roadshow"]
    cal = dict(zip(tables.tables["calibration"]["item"], tables.tables["calibration"]["value"], strict=True))
    assert float(cal["weak-match threshold"]) == pytest.approx(demo_analysis.min_confidence, abs=1e-4)
    assert float(cal["good-pair strength threshold (roadshow, unused supply)"]) == pytest.approx(
        demo_analysis.threshold, abs=1e-4)
    for dim in an.DIMENSIONS:
        assert tables.tables[f"need_topics_by_{dim}"]["records"].sum() == len(demo_analysis.needs)


def test_written_tables_round_trip(tables, tmp_path):
    page = rp.write_report(tables, tmp_path)
    assert page.is_file()
    sheets = pd.read_excel(tmp_path / "tables.xlsx", sheet_name=None)
    for name, df in tables.tables.items():
        csv = pd.read_csv(tmp_path / "tables" / f"{name}.csv", encoding="utf-8-sig", keep_default_na=False)
        assert list(csv.columns) == list(df.columns) and len(csv) == len(df), name
        assert len(sheets[name[:31]]) == len(df), name
    gap = pd.read_csv(tmp_path / "tables" / "gap_region.csv", encoding="utf-8-sig")
    assert set(gap["region"]) >= {"关中", "陕北", "陕南"}


def test_plot_font_has_every_glyph_the_report_uses(tables):
    pytest.importorskip("matplotlib")
    from fontTools.ttLib import TTFont

    from qcy_match.analytics.plots import cjk_font_path

    cmap = TTFont(str(cjk_font_path()), fontNumber=0).getBestCmap()
    text = "".join(str(v) for df in tables.tables.values() for col in df.columns for v in [col, *df[col].tolist()])
    text += "供需缺口按产业链区域弱匹配需求占比成果数量最佳强度分布阈值主题闲置供给行业未进入任何前的总"
    missing = {ch for ch in text if "\u4e00" <= ch <= "\u9fff" and ord(ch) not in cmap}
    assert not missing


def test_cli_report_on_demo_corpus(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "rep"
    assert main(["report", "--achievements", str(ROOT / "corpora/achievements.jsonl"),
                 "--needs", str(ROOT / "corpora/needs.jsonl"), "--out", str(out), "--industry", "C34",
                 "--slots", "3"]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 6
    assert "@font-face" in html and "QcyCJK" in html
    assert "路演推介名单" in html and "揭榜挂帅" in html
    # Every plot is a real PNG that matplotlib reads back.
    import matplotlib.image as mpimg

    for png in (out / "plots").glob("*.png"):
        img = mpimg.imread(png)
        assert img.shape[0] > 200 and img.shape[1] > 400 and img.std() > 0.05, png
    for m in re.finditer(r'data:image/png;base64,([A-Za-z0-9+/=]+)"', html):
        assert base64.b64decode(m.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    short = pd.read_csv(out / "tables" / "roadshow_shortlist.csv", encoding="utf-8-sig")
    assert 1 <= len(short) <= 3
    assert pd.read_csv(out / "input.rejected.csv").empty


def test_cli_report_rejects_unknown_scope(tmp_path, capsys):
    args = ["report", "--achievements", str(ROOT / "tests/data/achievements.jsonl"),
            "--needs", str(ROOT / "tests/data/needs.jsonl"), "--out", str(tmp_path / "r"), "--no-plots",
            "--encoder", "lsa"]
    assert main([*args, "--chain", "不存在的链"]) == 2
    assert "unknown chain" in capsys.readouterr().err
    assert main([*args, "--industry", "Z99"]) == 2
    assert "--industry" in capsys.readouterr().err


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(chromium() is None, reason="headless Chromium not installed (make report-check installs it)")
def test_page_renders_in_headless_chromium(tables, demo_analysis, tmp_path):
    pytest.importorskip("matplotlib")
    rp.add_plots(tables, demo_analysis)
    page = rp.write_report(tables, tmp_path)
    shot = tmp_path / "shot.png"
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1280,1600", f"--screenshot={shot}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[:2] == (1600, 1280)
    assert img.std() > 0.05  # not a blank page
