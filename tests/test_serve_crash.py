"""``kill -9`` during a stream of upserts and deletes loses no acknowledged write (write-ahead log, fsync, replay).

A client streams updates to a real ``qcy-match serve --writable`` process, which is SIGKILLed at a random moment
(seeded); after each restart every acknowledged id holds its last acknowledged content, or is gone if its last
acknowledged operation deleted it. The one request in flight at the kill may or may not have landed. Odd runs
snapshot every 0.4 s, so kills also land during saves and log truncations. ``QCY_SERVE_CRASH_RUNS`` sets the runs.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
httpx = pytest.importorskip("httpx", reason="the [serve] extra is not installed")

from serve_util import Server, build_index  # noqa: E402

from qcy_match import MatchEngine  # noqa: E402

RUNS = int(os.environ.get("QCY_SERVE_CRASH_RUNS", "4"))
POOL = [f"P{i:02d}" for i in range(40)]


class Stream:
    """Sequential updates until the server dies; what was acknowledged, and what was in flight."""

    def __init__(self, url: str, run: int, rng: random.Random) -> None:
        self.url, self.run, self.rng = url, run, rng
        self.acked: list[dict[str, str | None]] = []
        self.inflight: dict[str, str | None] = {}

    def __call__(self) -> None:
        n = 0
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=20) as client:
            while time.monotonic() < deadline and n < 2000:
                n += 1
                ids = self.rng.sample(POOL, self.rng.randint(1, 3))
                if self.rng.random() < 0.2:
                    op: dict[str, str | None] = dict.fromkeys(ids)
                    path, body = "/v1/records:delete", {"ids": ids}
                else:
                    op = {i: f"运行{self.run}第{n}次更新 钛合金记录{i}" for i in ids}
                    path, body = "/v1/records:upsert", {"records": [{"id": i, "title": t, "industry": "C33"}
                                                                     for i, t in op.items()]}
                self.inflight = op
                try:
                    res = client.post(self.url + path, json=body)
                except httpx.HTTPError:
                    return  # the server is gone; this op may or may not have landed
                assert res.status_code == 200, res.text
                self.acked.append(op)
                self.inflight = {}


def _state(url: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    with httpx.Client(timeout=20) as client:
        for i in POOL:
            res = client.get(f"{url}/v1/records/{i}")
            assert res.status_code in (200, 404), res.text
            out[i] = res.json()["title"] if res.status_code == 200 else None
    return out


def _check(seen: dict[str, str | None], model: dict[str, str | None], inflight: dict[str, str | None]) -> None:
    for i in POOL:
        allowed = {model.get(i)} | ({inflight[i]} if i in inflight else set())
        assert seen[i] in allowed, f"{i}: found {seen[i]!r}, acknowledged {model.get(i)!r}"


def test_sigkill_during_updates_loses_no_acknowledged_write(tmp_path, achievements):
    idx = build_index(achievements, tmp_path / "idx")
    rng = random.Random(15)
    model: dict[str, str | None] = {}
    inflight: dict[str, str | None] = {}
    acked_total = 0
    for run in range(RUNS):
        srv = Server(idx, "--writable", "--rate", "0", "--snapshot-interval", "0.4" if run % 2 else "0").start()
        seen = _state(srv.url)
        _check(seen, model, inflight)
        model = {i: seen[i] for i in POOL}  # the in-flight op's outcome is settled (and durable) now
        stream = Stream(srv.url, run, random.Random(rng.random()))
        t = threading.Thread(target=stream)
        t.start()
        time.sleep(rng.uniform(0.4, 2.5))
        srv.kill()
        t.join(40)
        assert not t.is_alive()
        for op in stream.acked:
            model.update(op)
        inflight = stream.inflight
        acked_total += len(stream.acked)
    assert acked_total >= RUNS, "the stream should get writes acknowledged before each kill"
    srv = Server(idx, "--writable", "--rate", "0").start()
    _check(_state(srv.url), model, inflight)
    final = _state(srv.url)
    # A clean stop snapshots and empties the log (uvicorn re-raises the SIGTERM it handled, hence -15).
    assert srv.stop() in (0, -signal.SIGTERM)
    assert idx.with_name("idx.wal").stat().st_size == 0
    engine = MatchEngine.load(idx)
    titles = dict(zip(engine.records_["id"], engine.records_["title"], strict=True))
    assert {i: titles.get(i) for i in POOL} == final
    assert len(engine) == len(achievements) + sum(v is not None for v in final.values())
