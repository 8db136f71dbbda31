"""Load test of ``qcy-match serve`` on loopback against the in-process library on the same queries (issue 15).

Usage: python -m benchmarks.serve_load [--clients 16] [--duration 60] [--encoder usem3] [--out benchmarks/results]

1. The in-process reference: one thread calls ``engine.match([need], k=10)`` (explanations on) over the demo needs,
   cycled, for ``--baseline`` seconds: single-query throughput and latency. It runs before and again after the
   server's runs; ratios are given to the mean of the two and to the faster one, since a shared machine's load
   drifts.
2. A real ``qcy-match serve --writable --tokens …`` process on 127.0.0.1 answers ``--clients`` concurrent clients
   (keep-alive connections of a minimal asyncio HTTP/1.1 client, one need per request, k=10, explanations on) for
   ``--duration`` seconds, after one warm-up request per client:
   a. reads only;
   b. reads while a writer streams upserts and deletes (``--write-interval`` s apart). Each upserted record copies a
      need's title, so the readers' queries rank it first while it lives; a reader that receives an id whose delete
      was acknowledged before its request was sent counts a violation (there must be none).
Everything is bounded in time and count and stays on loopback.
Results: ``serve_load.json`` and ``serve_load.md`` (``--stem``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# One OpenMP thread in both the reference and the server (which inherits this environment): the same settings on
# both sides, and FAISS's thread wake-ups cost more than they give on a busy 2-core machine (README, index kinds).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from serve_util import Server, make_token  # noqa: E402


def _needs() -> list[dict[str, Any]]:
    lines = (ROOT / "corpora" / "needs.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _stats(lat: list[float], n_ok: int, errors: int, seconds: float) -> dict[str, Any]:
    a = np.asarray(lat) * 1000 if lat else np.zeros(1)
    return {"requests": n_ok + errors, "ok": n_ok, "errors": errors, "seconds": round(seconds, 2),
            "throughput": round(n_ok / seconds, 1), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p95_ms": round(float(np.percentile(a, 95)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2)}


def baseline(index: Path, needs: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """In-process single-query throughput of the library over the same queries."""
    from qcy_match import MatchEngine

    engine = MatchEngine.load(index)
    for q in needs[:10]:
        engine.match([q], k=10)
    lat = []
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < seconds:
        t = time.perf_counter()
        engine.match([needs[i % len(needs)]], k=10)
        lat.append(time.perf_counter() - t)
        i += 1
    return _stats(lat, len(lat), 0, time.perf_counter() - t0)


class Conn:
    """A minimal HTTP/1.1 keep-alive client: the load generator shares the cores with the server, so it should cost
    as little as possible (httpx spends several times more CPU per request).
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.head = (f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                     "Content-Type: application/json\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = json.dumps(body, ensure_ascii=False).encode()
        try:
            self.writer.write(b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
                              % (path.encode(), self.head, len(data), data))
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            payload = json.loads(await self.reader.readexactly(length))
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            self.close()
            raise
        if b"connection: close" in head.lower():
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def load(url: str, token: str, needs: list[dict[str, Any]], clients: int, seconds: float,
               write_interval: float | None) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    deleted: dict[str, float] = {}  # id -> when its delete was acknowledged
    lat: list[float] = []
    errors = violations = 0
    writes = {"upserts": 0, "deletes": 0, "errors": 0}
    conns = [Conn(host, int(port), token) for _ in range(clients + 1)]
    for i, c in enumerate(conns[:clients]):  # warm-up: connections open, first batches done
        await c.post("/v1/match", {"queries": [needs[i % len(needs)]], "k": 10})
    stop = time.monotonic() + seconds

    async def reader(c: int) -> None:
        nonlocal errors, violations
        i = c
        while time.monotonic() < stop:
            sent = time.monotonic()
            try:
                status, body = await conns[c].post("/v1/match", {"queries": [needs[i % len(needs)]], "k": 10})
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors += 1
                continue
            finally:
                i += clients
            if status != 200:
                errors += 1
                continue
            lat.append(time.monotonic() - sent)
            got = {m["achievement_id"] for r in body["results"] for m in r["matches"]}
            violations += sum(1 for g in got if g in deleted and deleted[g] < sent)

    async def writer() -> None:
        n = 0
        alive: list[str] = []
        conn = conns[clients]
        while time.monotonic() < stop - 1:
            need = needs[n % len(needs)]
            rid = f"W{n:05d}"
            body = {"records": [{"id": rid, "title": need["title"], "description": need.get("description", ""),
                                 "industry": need.get("industry"), "region": need.get("region")}]}
            status, _ = await conn.post("/v1/records:upsert", body)
            writes["upserts" if status == 200 else "errors"] += 1
            alive.append(rid)
            n += 1
            await asyncio.sleep(write_interval or 0)
            if len(alive) > 3:
                gone = alive.pop(0)
                status, _ = await conn.post("/v1/records:delete", {"ids": [gone]})
                if status == 200:
                    deleted[gone] = time.monotonic()
                    writes["deletes"] += 1
                else:
                    writes["errors"] += 1
                await asyncio.sleep(write_interval or 0)

    t0 = time.monotonic()
    tasks = [reader(c) for c in range(clients)] + ([writer()] if write_interval is not None else [])
    await asyncio.gather(*tasks)
    out = _stats(lat, len(lat), errors, time.monotonic() - t0)
    for c in conns:
        c.close()
    out["deleted_ids_returned"] = violations
    if write_interval is not None:
        out["writes"] = writes
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per load phase (default 60)")
    ap.add_argument("--baseline", type=float, default=30.0, help="seconds of in-process reference (default 30)")
    ap.add_argument("--encoder", default="usem3", help="encoder of the benchmark index (default usem3)")
    ap.add_argument("--write-interval", type=float, default=0.1, help="seconds between writes in phase b (0.1)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--stem", default="serve_load", help="file names of the results (default serve_load)")
    args = ap.parse_args()
    from qcy_match import EngineConfig, MatchEngine, load_records

    needs = _needs()
    with tempfile.TemporaryDirectory(prefix="qcy-serve-load-") as tmp:
        index = Path(tmp) / "idx"
        records, _ = load_records(ROOT / "corpora" / "achievements.jsonl")
        MatchEngine(EngineConfig(encoder=args.encoder)).index(records).save(index)
        print(f"index: {len(records)} achievements, encoder {args.encoder}; in-process reference "
              f"({args.baseline:g} s)…", file=sys.stderr)
        ref = baseline(index, needs, args.baseline)
        ref["load_avg"] = os.getloadavg()[0]
        print(f"  {ref}", file=sys.stderr)
        token = make_token(Path(tmp) / "tokens.json", "write")
        result: dict[str, Any] = {"machine": {"cores": os.cpu_count(), "load_avg": os.getloadavg(),
                                              "python": platform.python_version()},
                                  "omp_num_threads": os.environ["OMP_NUM_THREADS"],
                                  "corpus": {"achievements": len(records), "queries": len(needs),
                                             "encoder": args.encoder, "k": 10, "explain": True},
                                  "clients": args.clients, "in_process": ref}
        with Server(index, "--writable", "--tokens", str(Path(tmp) / "tokens.json"), "--rate", "0",
                    "--snapshot-interval", "20", log=Path(tmp) / "serve.log") as srv:
            for phase, interval in (("reads", None), ("reads_with_writes", args.write_interval)):
                print(f"{phase}: {args.clients} clients, {args.duration:g} s…", file=sys.stderr)
                r = asyncio.run(load(srv.url, token, needs, args.clients, args.duration, interval))
                r["load_avg"] = os.getloadavg()[0]
                result[phase] = r
                print(f"  {r}", file=sys.stderr)
        print(f"in-process reference again ({args.baseline:g} s)…", file=sys.stderr)
        ref2 = baseline(index, needs, args.baseline)
        ref2["load_avg"] = os.getloadavg()[0]
        print(f"  {ref2}", file=sys.stderr)
        result["in_process_after"] = ref2
        mean = (ref["throughput"] + ref2["throughput"]) / 2
        best = max(ref["throughput"], ref2["throughput"])
        for phase in ("reads", "reads_with_writes"):
            result[phase]["ratio_to_in_process"] = round(result[phase]["throughput"] / mean, 3)
            result[phase]["ratio_to_best_in_process"] = round(result[phase]["throughput"] / best, 3)
        result["machine"]["load_avg_after"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.stem}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    rows = [("in-process library, 1 thread, before", ref), ("in-process library, 1 thread, after", ref2)]
    rows += [(f"HTTP, {args.clients} clients, {p.replace('_', ' ')}", result[p])
             for p in ("reads", "reads_with_writes")]
    lines = ["| run | queries/s | ÷ in-process (mean / best) | p50 ms | p95 ms | p99 ms | errors "
             "| deleted ids returned | load avg |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows:
        ratio = f"{r['ratio_to_in_process']} / {r['ratio_to_best_in_process']}" if "ratio_to_in_process" in r else ""
        lines.append(f"| {name} | {r['throughput']} | {ratio} | {r['p50_ms']} | "
                     f"{r['p95_ms']} | {r['p99_ms']} | {r['errors']} | {r.get('deleted_ids_returned', '')} | "
                     f"{r['load_avg']:.1f} |")
    w = result["reads_with_writes"].get("writes", {})
    lines.append(f"\nWrites in the second run: {w}. Corpus: {len(records)} achievements ({args.encoder}), "
                 f"{len(needs)} demo needs cycled, k=10 with explanations; {os.cpu_count()} cores, load average "
                 f"{result['machine']['load_avg'][0]:.2f} before / {result['machine']['load_avg_after'][0]:.2f} after.")
    (args.out / f"{args.stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
