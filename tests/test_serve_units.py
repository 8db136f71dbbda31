"""The service's parts alone: write-ahead log, tokens, rate limits, settings, error answers, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")

from serve_util import REPO, build_index, make_token  # noqa: E402

from qcy_match.errors import IndexFormatError  # noqa: E402
from qcy_match.serve.limits import RateLimiter  # noqa: E402
from qcy_match.serve.settings import Settings, is_loopback  # noqa: E402
from qcy_match.serve.tokens import TokenStore, create_token, digest, read_tokens  # noqa: E402
from qcy_match.serve.wal import WriteAheadLog  # noqa: E402


def test_wal_replays_in_order_and_cuts_a_torn_tail(tmp_path):
    log = WriteAheadLog(tmp_path / "x.wal")
    ops = [{"op": "upsert", "records": [{"id": "A", "title": "钛合金"}]}, {"op": "delete", "ids": ["A"]}]
    for op in ops:
        log.append(op)
    log.close()
    with open(tmp_path / "x.wal", "ab") as fh:
        fh.write(b'0badc0de {"op": "upsert", "rec')  # a kill in the middle of an append
    log = WriteAheadLog(tmp_path / "x.wal")
    assert log.replay() == ops and log.ops == 2
    size = (tmp_path / "x.wal").stat().st_size
    log.append({"op": "delete", "ids": ["B"]})
    assert len(log.replay()) == 3 and (tmp_path / "x.wal").stat().st_size > size
    log.truncate()
    assert log.replay() == [] and (tmp_path / "x.wal").stat().st_size == 0


def test_wal_refuses_damage_before_intact_lines(tmp_path):
    log = WriteAheadLog(tmp_path / "x.wal")
    for i in range(3):
        log.append({"op": "delete", "ids": [str(i)]})
    log.close()
    data = bytearray((tmp_path / "x.wal").read_bytes())
    data[12] ^= 1  # one flipped bit in the first line
    (tmp_path / "x.wal").write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="line 1 is damaged"):
        WriteAheadLog(tmp_path / "x.wal").replay()


def test_tokens_file_keeps_digests_only(tmp_path):
    path = tmp_path / "tokens.json"
    read_text = make_token(path, "read")
    write_text, write = create_token(path, "write")
    stored = path.read_text()
    assert read_text not in stored and write_text not in stored and digest(write_text) in stored
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    store = TokenStore(read_tokens(path))
    assert store.find(write_text) == write and store.find(read_text).scope == "read"
    assert store.find("qcy_nope") is None and store.find("") is None
    assert not store.find(read_text).allows("write") and write.allows("read")
    path.write_text('{"tokens": [{"id": "x", "sha256": "00", "scope": "admin"}]}')
    with pytest.raises(ValueError, match="unknown scope"):
        read_tokens(path)


def test_rate_limiter_refills():
    lim = RateLimiter(rate=100, burst=3)
    assert [lim.allow("t") for _ in range(3)] == [0, 0, 0]
    assert lim.allow("t") > 0 and lim.allow("other") == 0
    time.sleep(0.05)
    assert lim.allow("t") == 0
    assert RateLimiter(rate=0, burst=1).allow("t") == 0


def test_settings_refuse_an_open_address_without_tokens(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    assert Settings(tmp_path, host="0.0.0.0").problems()
    assert not Settings(tmp_path, host="0.0.0.0", insecure=True).problems()
    assert not Settings(tmp_path, host="0.0.0.0", tokens=tmp_path / "t").problems()
    res = subprocess.run([sys.executable, "-m", "qcy_match.cli", "serve", "--index", str(tmp_path), "--host",
                          "0.0.0.0"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert res.returncode == 2 and "--tokens" in res.stderr and "--insecure" in res.stderr


def test_missing_extra_names_it():
    code = ("import sys; sys.modules['fastapi'] = None\n"
            "try:\n    import qcy_match.serve\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO).stdout
    assert out.startswith("MissingExtraError") and "[serve]" in out


def test_serve_help_loads_no_web_or_heavy_module():
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "qcy_match.cli", "serve", "--help"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert res.returncode == 0 and "--writable" in res.stdout
    names = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in res.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    assert "qcy_match" in names
    assert not names & {"fastapi", "uvicorn", "starlette", "pandas", "faiss", "jieba"}


@pytest.fixture(scope="module")
def client(tmp_path_factory, achievements):
    from starlette.testclient import TestClient

    from qcy_match.serve.app import create_app

    idx = build_index(achievements, tmp_path_factory.mktemp("units") / "idx")
    app = create_app(Settings(idx, request_timeout=0.5))
    with TestClient(app) as c:
        c.service = app.fastapi.state.service
        yield c


def test_no_traceback_reaches_the_client(client, monkeypatch, caplog):
    def boom(*a, **k):
        raise RuntimeError("secret detail from /internal/path")

    monkeypatch.setattr(client.service, "match_items", boom)
    res = client.post("/v1/match", json={"queries": ["芯片"]})
    assert res.status_code == 500 and res.json() == {"error": "internal error (see the server log)"}
    assert "secret" not in res.text and "Traceback" not in res.text
    assert "RuntimeError" in caplog.text


def test_slow_requests_answer_504(client, monkeypatch):
    monkeypatch.setattr(client.service, "match_items", lambda *a, **k: time.sleep(2))
    t0 = time.monotonic()
    res = client.post("/v1/match", json={"queries": ["芯片"]})
    assert res.status_code == 504 and "0.5 s" in res.json()["error"] and time.monotonic() - t0 < 1.8


def test_read_only_index_summary(client):
    body = client.get("/v1/index").json()
    assert body["counts"]["records"] == 24 and body["writable"] is False and body["encoder"] == "lsa"
    assert json.loads(client.get("/readyz").text)["pending_log_ops"] == 0


def test_batched_requests_get_what_they_would_alone(client, needs):
    from qcy_match.serve.queries import FieldError, MatchItem

    svc = client.service
    first = dict(needs.iloc[0][["id", "title", "description"]])
    items = [MatchItem([first, "钛合金铣削"], 5, {"region": "关中"}, True),
             MatchItem(["芯片封装"], 5, {"region": "关中"}, True),
             MatchItem([{"id": "n1", "title": "锂电池", "owner": "甲公司", "budget": 30},
                        {"title": "光刻胶", "budget": 5.5}], 5, {"region": "关中"}, True),
             MatchItem([{"id": "n1", "title": "传感器", "region": "宝鸡市", "note": "急"}], 3, None, False),
             MatchItem([{"id": 7, "title": "数控机床", "budget": None}], 5, {"region": "关中"}, True),
             MatchItem([{"title": "重复", "id": "x"}, {"title": "重复", "id": "x"}], 5, None, True),
             MatchItem([{"id": "  ", "title": "空白编号"}], 5, None, True),
             MatchItem([{"编号": "z1", "title": "别名列"}], 5, None, True),
             MatchItem(["芯片"], 5, {"industry": "Z99"}, True)]
    together = svc.match_items(items)

    def untied(result):
        # Records tied on one signal's score (often many at a cosine of 0) may get their candidate ranks in another
        # order in a batch than alone, as the library's own batches do; everything else must be equal.
        return result[0], [[{k: v for k, v in row.items() if k not in ("bm25_rank", "dense_rank")} for row in rows]
                           for rows in result[1]]

    for item, got in zip(items, together, strict=True):
        try:
            alone = svc.match(item.queries, item.k, item.filters, item.explain)
        except FieldError as exc:
            assert isinstance(got, FieldError) and got.field == exc.field
        else:
            assert untied(got) == untied(alone)
    assert [isinstance(g, FieldError) for g in together] == [False] * 5 + [True, True, False, True]


def test_the_batcher_survives_a_failed_batch(client, monkeypatch):
    for _ in range(20):  # the slow batch of the 504 test may still hold the one matching thread
        if client.post("/v1/match", json={"queries": ["芯片"]}).status_code == 200:
            break
        time.sleep(0.25)
    with monkeypatch.context() as m:
        m.setattr(client.service, "match_items", lambda *a, **k: None)  # not a list: the batch fails
        assert client.post("/v1/match", json={"queries": ["芯片"]}).status_code == 500
    assert client.post("/v1/match", json={"queries": ["芯片"]}).status_code == 200


def test_a_read_only_server_serves_logged_updates_too(tmp_path, achievements):
    from qcy_match.serve.service import Service

    idx = build_index(achievements, tmp_path / "idx")
    log = WriteAheadLog(tmp_path / "idx.wal")
    log.append({"op": "upsert", "records": [{"id": "L1", "title": "日志中的新成果"}]})
    log.append({"op": "delete", "ids": ["A01"]})
    log.close()
    size = (tmp_path / "idx.wal").stat().st_size
    svc = Service(Settings(idx))
    assert svc.record("L1")["title"] == "日志中的新成果" and svc.record("A01") is None
    assert svc.wal is None and (tmp_path / "idx.wal").stat().st_size == size
