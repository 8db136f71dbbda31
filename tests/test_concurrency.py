"""Many threads query while one thread adds and deletes: no crash, no deleted record returned, no record lost."""

from __future__ import annotations

import threading
import time

import pytest

from qcy_match import EngineConfig, MatchEngine

QUERIES = ["钛合金锻件热处理", "锂电池回收", "数控机床热误差补偿", "乳制品发酵菌种", "光伏组件"]


def stress(achievements, seconds: float, readers: int) -> dict[str, float]:
    engine = MatchEngine(EngineConfig(encoder="lsa", index="flat")).index(achievements)
    base = set(engine.records_["id"])
    deleted_at: dict[str, float] = {}  # id -> time its delete() returned
    errors: list[BaseException] = []
    violations: list[str] = []
    stop = threading.Event()
    counts = [0] * readers

    def reader(slot: int) -> None:
        try:
            while not stop.is_set():
                started = time.monotonic()
                m = engine.match(QUERIES, k=len(base) + 50, explain_matches=False)
                for rid in m.ids.ravel():
                    # Deleted before this batch began, so the batch's snapshot cannot hold it.
                    if rid is not None and deleted_at.get(rid, float("inf")) < started:
                        violations.append(rid)
                counts[slot] += len(QUERIES)
        except BaseException as exc:  # noqa: BLE001 - any failure in a reader fails the test
            errors.append(exc)

    def writer() -> None:
        i = 0
        try:
            while not stop.is_set():
                rid = f"W{i}"
                engine.add([{"id": rid, "title": f"钛合金锻件 热处理工艺 第{i}号", "description": "锂电池 回收"}])
                if i % 2:
                    engine.delete([rid])
                    deleted_at[rid] = time.monotonic()
                i += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(readers)] + [threading.Thread(target=writer)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.monotonic() - t0
    assert not errors, errors
    assert not violations, violations[:5]
    live = set(engine.records_["id"])
    kept = {r for r in live if r.startswith("W")}
    written = {f"W{j}" for j in range(len(deleted_at) * 2 + 2)}
    # No record lost: every base record and every added-and-not-deleted one is there, nothing deleted is.
    assert base <= live
    assert not (live & set(deleted_at))
    assert all(int(r[1:]) % 2 == 0 for r in kept) and kept <= written
    assert len(kept) >= len(deleted_at)  # each delete followed an add that is kept (every other id)
    m = engine.match(["钛合金锻件热处理工艺"], k=len(engine), explain_matches=False)
    assert set(m.ids[0]) == live
    return {"queries_per_s": sum(counts) / elapsed, "writes": len(deleted_at) * 3, "seconds": elapsed}


def test_concurrent_queries_with_adds_and_deletes(achievements):
    out = stress(achievements, seconds=2.0, readers=3)
    assert out["writes"] > 0 and out["queries_per_s"] > 0


@pytest.mark.slow
def test_concurrent_stress_longer(achievements):
    out = stress(achievements, seconds=10.0, readers=4)
    print(f"stress: {out['queries_per_s']:.0f} queries/s held with {out['writes']} writes in {out['seconds']:.1f} s")
