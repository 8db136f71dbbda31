"""One benchmark module run in a process of its own, so its memory figures belong to it alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .datasets import REPO


def run_json(module: str, args: list[str], json_flag: str, log: Path) -> dict[str, Any]:
    """Run ``python -m module *args json_flag FILE`` from the repository with its output in ``log``, and return the
    JSON it wrote to FILE plus ``wall_s``; or ``{"error": ...}`` naming the exit status and the log.
    """
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        path = Path(tmp.name)
    cmd = [sys.executable, "-m", module, *args, json_flag, str(path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    with log.open("w") as fh:
        rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    try:
        if rc != 0:
            return {"error": f"exit status {rc}; see {log}"}
        result: dict[str, Any] = json.loads(path.read_text())
        result["wall_s"] = time.perf_counter() - t0
        return result
    finally:
        path.unlink(missing_ok=True)
