"""The portal service end to end: real ``qcy-match serve`` processes on 127.0.0.1, called over HTTP."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
httpx = pytest.importorskip("httpx", reason="the [serve] extra is not installed")

from serve_util import Server, build_index, make_token, post  # noqa: E402

from qcy_match import MatchEngine  # noqa: E402
from qcy_match.ingest.records import from_any  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory, achievements):
    root = tmp_path_factory.mktemp("serve")
    idx = build_index(achievements, root / "rw" / "idx")
    shutil.copytree(idx, root / "ro" / "idx")
    return root


@pytest.fixture(scope="module")
def rw(served):
    """Writable, with read and write tokens, no rate limit."""
    tokens = served / "rw" / "tokens.json"
    tok = {"read": make_token(tokens, "read"), "write": make_token(tokens, "write")}
    with Server(served / "rw" / "idx", "--writable", "--tokens", str(tokens), "--rate", "0") as srv:
        srv.tokens = tok  # type: ignore[attr-defined]
        yield srv


@pytest.fixture(scope="module")
def ro(served):
    """Read-only, small body limit, 10 requests/s per token."""
    tokens = served / "ro" / "tokens.json"
    tok = {"a": make_token(tokens, "read"), "b": make_token(tokens, "read"), "w": make_token(tokens, "write")}
    with Server(served / "ro" / "idx", "--tokens", str(tokens), "--rate", "10", "--burst", "10",
                "--max-body-bytes", "65536", "--max-k", "20", "--max-queries", "10") as srv:
        srv.tokens = tok  # type: ignore[attr-defined]
        yield srv


def _plain(df: pd.DataFrame) -> list[dict]:
    """Frame rows as JSON would carry them (NaN/NA as None)."""
    return json.loads(df.astype(object).where(df.notna(), None).to_json(orient="records", force_ascii=False))


@pytest.mark.parametrize("filters", [None, {"region": "关中"}, {"industry": ["C39", "C34"], "maturity": "中试"},
                                     {"chain": "集成电路"}])
def test_match_rows_equal_the_library(ro, served, needs_path, filters):
    raw = [json.loads(line) for line in needs_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    res = post(ro.url + "/v1/match", {"queries": raw, "k": 5, "filters": filters}, ro.tokens["a"])
    assert res.status_code == 200, res.text
    results = res.json()["results"]
    engine = MatchEngine.load(served / "ro" / "idx")
    needs, _ = from_any(raw)
    want = _plain(engine.match(needs, k=5, filters=filters).to_frame(needs, engine.records_))
    got = [row for r in results for row in r["matches"]]
    assert [r["query_id"] for r in results] == [q["id"] for q in raw]
    assert got == want
    assert got and {"achievement_id", "rank", "score", "shared_keywords", "industry_agreement",
                    "region_agreement", "bm25_score", "dense_score"} <= set(got[0])


def test_plain_string_queries_equal_the_library(ro, served):
    res = post(ro.url + "/v1/match", {"queries": ["集成电路芯片封装", "钛合金"], "k": 3, "explain": False},
               ro.tokens["a"])
    assert res.status_code == 200, res.text
    engine = MatchEngine.load(served / "ro" / "idx")
    queries, _ = from_any([{"id": "q1", "title": "集成电路芯片封装"}, {"id": "q2", "title": "钛合金"}])
    want = _plain(engine.match(queries, k=3, explain_matches=False).to_frame(queries, engine.records_))
    assert [row for r in res.json()["results"] for row in r["matches"]] == want


def test_probes_are_open_and_the_rest_needs_a_token(rw):
    assert httpx.get(rw.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(rw.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["records"] == 24 and len(ready["index"]["version"]) == 16
    for path in ("/v1/index", "/metrics"):
        res = httpx.get(rw.url + path)
        assert res.status_code == 401 and res.headers["www-authenticate"] == "Bearer"
        assert httpx.get(rw.url + path, headers={"authorization": "Bearer qcy_wrong"}).status_code == 401
    res = httpx.get(rw.url + "/v1/index", headers={"authorization": f"Bearer {rw.tokens['read']}"})
    assert res.status_code == 200 and res.json()["counts"]["records"] == 24
    assert post(rw.url + "/v1/match", {"queries": ["芯片"]}).status_code == 401


def test_writes_need_a_write_token_and_a_writable_server(rw, ro):
    rec = {"records": [{"id": "X1", "title": "测试"}]}
    assert post(rw.url + "/v1/records:upsert", rec, rw.tokens["read"]).status_code == 403
    assert post(rw.url + "/v1/records:delete", {"ids": ["A01"]}, rw.tokens["read"]).status_code == 403
    assert post(rw.url + "/v1/admin/reload", {"path": "idx"}, rw.tokens["read"]).status_code == 403
    res = post(ro.url + "/v1/records:upsert", rec, ro.tokens["w"])
    assert res.status_code == 403 and "read-only" in res.json()["error"]


@pytest.mark.parametrize(("body", "field"), [
    ({"queries": []}, "queries"),
    ({"queries": ["芯片"], "k": 0}, "k"),
    ({"queries": ["芯片"], "k": 21}, "k"),
    ({"queries": ["芯片"] * 11}, "queries"),
    ({"queries": ["芯片"], "filters": {"colour": "red"}}, "filters.colour"),
    ({"queries": ["芯片"], "filters": {"industry": "Z99"}}, "filters.industry"),
    ({"queries": [{"id": "n1"}]}, "queries.0.str"),
    ({"queries": [{"title": "a", "id": "x"}, {"title": "b", "id": "x"}]}, "queries.1.id"),
    ({"queries": ["芯片"], "extra": 1}, "extra"),
])
def test_bad_fields_answer_422_naming_the_field(ro, body, field):
    res = post(ro.url + "/v1/match", body, ro.tokens["a"])
    assert res.status_code == 422, res.text
    fields = [f["field"] for f in res.json()["fields"]]
    assert any(f == field or f.startswith(field) for f in fields), fields
    assert "Traceback" not in res.text


def test_bad_json_and_bad_records_answer_422(rw):
    res = httpx.post(rw.url + "/v1/match", content=b'{"queries": [', timeout=10,
                     headers={"authorization": f"Bearer {rw.tokens['read']}", "content-type": "application/json"})
    assert res.status_code == 422 and res.json()["fields"][0]["field"] == "body"
    for rec, field in (({"id": "Y1"}, "records.0.title"), ({"id": "Y1", "title": "t", "owner": {"a": 1}},
                                                           "records.0"), ({"title": "t"}, "records.0.id"),
                       ({"id": "Y1", "title": "t", "_row": 3}, "records.0")):
        res = post(rw.url + "/v1/records:upsert", {"records": [rec]}, rw.tokens["write"])
        assert res.status_code == 422, res.text
        assert res.json()["fields"][0]["field"].startswith(field)


def test_oversized_body_answers_413(ro):
    big = {"queries": ["芯片" * 20_000]}
    assert post(ro.url + "/v1/match", big, ro.tokens["a"]).status_code == 413
    # a streamed body without Content-Length is cut at the limit too
    res = httpx.post(ro.url + "/v1/match", content=iter([b'{"queries": ["', b"x" * 70_000, b'"]}']),
                     headers={"authorization": f"Bearer {ro.tokens['a']}", "content-type": "application/json"})
    assert res.status_code == 413


def test_rate_limit_answers_429_per_token(ro):
    headers = {"authorization": f"Bearer {ro.tokens['b']}"}
    with httpx.Client(timeout=10) as client:  # one connection: 60 requests well inside the 5 s they would need
        answers = [client.get(ro.url + "/v1/index", headers=headers) for _ in range(60)]
    codes = [a.status_code for a in answers]
    assert codes[:5] == [200] * 5 and 429 in codes and set(codes) == {200, 429}
    limited = next(a for a in answers if a.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1 and "rate" in limited.json()["error"]
    # another token has its own bucket
    assert httpx.get(ro.url + "/v1/index", headers={"authorization": f"Bearer {ro.tokens['w']}"}).status_code == 200


def test_upsert_and_delete_are_seen_at_once(rw):
    w, r = rw.tokens["write"], rw.tokens["read"]
    res = post(rw.url + "/v1/records:upsert", {"records": [
        {"id": "N1", "title": "量子点显示薄膜制备技术", "industry": "C39", "region": "西安市", "owner": "某研究院"},
        {"id": "N2", "title": "坏行业代码", "industry": "Q9999"}]}, w)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["added"] == ["N1"] and body["replaced"] == []
    assert body["rejected"][0]["index"] == 1 and body["rejected"][0]["field"] == "industry"
    top = post(rw.url + "/v1/match", {"queries": ["量子点显示薄膜"], "k": 1}, r).json()["results"][0]["matches"][0]
    assert top["achievement_id"] == "N1" and top["achievement_owner"] == "某研究院"
    res = post(rw.url + "/v1/records:upsert", {"records": [{"id": "N1", "title": "量子点发光薄膜第二版"}]}, w)
    assert res.json()["replaced"] == ["N1"]
    got = httpx.get(rw.url + "/v1/records/N1", headers={"authorization": f"Bearer {r}"}).json()
    assert got["title"] == "量子点发光薄膜第二版"
    res = post(rw.url + "/v1/records:delete", {"ids": ["N1", "nope"]}, w)
    assert res.json() == {"deleted": ["N1"], "missing": ["nope"]}
    rows = post(rw.url + "/v1/match", {"queries": ["量子点发光薄膜第二版"], "k": 30}, r).json()["results"][0]["matches"]
    assert "N1" not in {row["achievement_id"] for row in rows}
    assert httpx.get(rw.url + "/v1/records/N1", headers={"authorization": f"Bearer {r}"}).status_code == 404
    wal = rw.index.with_name("idx.wal").read_text(encoding="utf-8").splitlines()
    assert len(wal) == 3 and "坏行业代码" not in "".join(wal)


def test_reload_swaps_without_a_failed_request(rw, served, achievements):
    extra = pd.concat([achievements, from_any([{"id": "R99", "title": "深海耐压钛合金浮力材料",
                                                "industry": "C33"}])[0]], ignore_index=True)
    build_index(extra, served / "rw" / "idx_v2")
    r, w = rw.tokens["read"], rw.tokens["write"]
    assert post(rw.url + "/v1/admin/reload", {"path": "../ro"}, w).status_code == 422
    assert post(rw.url + "/v1/admin/reload", {"path": "missing"}, w).status_code == 422
    before = httpx.get(rw.url + "/readyz").json()
    codes: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 60
            while not stop.is_set() and len(codes) < 400 and time.monotonic() < deadline:
                res = client.post(rw.url + "/v1/match", json={"queries": ["钛合金浮力材料"], "k": 3},
                                  headers={"authorization": f"Bearer {r}"})
                codes.append(res.status_code)

    t = threading.Thread(target=hammer)
    t.start()
    time.sleep(0.3)
    res = post(rw.url + "/v1/admin/reload", {"path": "idx_v2"}, w, timeout=60)
    time.sleep(0.3)
    stop.set()
    t.join(70)
    assert res.status_code == 200, res.text
    assert res.json()["index"]["version"] != before["index"]["version"] and res.json()["records"] == 25
    assert codes and set(codes) == {200}, codes
    top = post(rw.url + "/v1/match", {"queries": ["深海耐压钛合金浮力材料"], "k": 1}, r).json()
    assert top["results"][0]["matches"][0]["achievement_id"] == "R99"


def test_metrics_in_prometheus_format(rw):
    text = httpx.get(rw.url + "/metrics", headers={"authorization": f"Bearer {rw.tokens['read']}"}).text
    assert 'qcy_requests_total{method="POST",route="/v1/match",status="200"}' in text
    assert 'qcy_request_seconds_bucket{le="0.05",route="/v1/match"}' in text
    assert "qcy_index_records " in text and "qcy_errors_total{" in text and "qcy_log_pending_ops" in text


def test_docs_and_page_load_nothing_from_elsewhere(ro):
    spec = httpx.get(ro.url + "/openapi.json").json()
    assert {"/v1/match", "/v1/records:upsert", "/v1/records:delete", "/v1/admin/reload", "/v1/index",
            "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    for path in ("/docs", "/", "/static/app.js", "/static/style.css"):
        res = httpx.get(ro.url + path)
        assert res.status_code == 200
        assert "http://" not in res.text and "https://" not in res.text.replace("https://fastapi", ""), path
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert httpx.get(f"{ro.url}/docs-assets/{asset}").status_code == 200


def test_shortlist_export_escapes_formulas(ro, tmp_path):
    import openpyxl

    rows = [{"achievement_id": "A01", "achievement_title": "=HYPERLINK(\"x\")", "score": 0.5},
            {"achievement_id": "A02", "achievement_title": "芯片封装", "score": 0.4}]
    res = post(ro.url + "/v1/shortlist:export", {"rows": rows, "format": "xlsx"}, ro.tokens["a"])
    assert res.status_code == 200 and "shortlist.xlsx" in res.headers["content-disposition"]
    (tmp_path / "s.xlsx").write_bytes(res.content)
    sheet = openpyxl.load_workbook(tmp_path / "s.xlsx").active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0] == ["achievement_id", "achievement_title", "score"]
    assert values[1][1] == "'=HYPERLINK(\"x\")" and values[2][1] == "芯片封装"
    res = post(ro.url + "/v1/shortlist:export", {"rows": rows, "format": "csv"}, ro.tokens["a"])
    assert "'=HYPERLINK" in res.content.decode("utf-8-sig")
