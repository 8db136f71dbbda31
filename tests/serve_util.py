"""Start and stop real ``qcy-match serve`` processes on loopback for the service tests (bounded waits only)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_index(records: Any, out: Path) -> Path:
    from qcy_match import EngineConfig, MatchEngine

    MatchEngine(EngineConfig(encoder="lsa")).index(records).save(out)
    return out


def make_token(tokens: Path, scope: str) -> str:
    res = subprocess.run([sys.executable, "-m", "qcy_match.cli", "token", "--tokens", str(tokens), "--scope", scope],
                         capture_output=True, text=True, timeout=60, cwd=REPO, env=_env())
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


class Server:
    """A ``qcy-match serve`` child process; ``url`` is its base URL once :meth:`start` returns."""

    def __init__(self, index: Path, *args: str, log: Path | None = None) -> None:
        self.index = index
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or index.with_name(index.name + f".serve-{self.port}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> Server:
        cmd = [sys.executable, "-m", "qcy_match.cli", "serve", "--index", str(self.index), "--port", str(self.port),
               *self.args]
        self._log = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO, env=_env())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"server not ready after {timeout} s: {self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait (a clean stop snapshots a writable index)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL: nothing runs after it, no snapshot, no flush."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        self._log.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()


def post(url: str, body: Any, token: str | None = None, timeout: float = 30) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return httpx.post(url, content=json.dumps(body, ensure_ascii=False).encode(), headers=headers, timeout=timeout)
