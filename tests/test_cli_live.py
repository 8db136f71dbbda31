"""CLI: index --update/--delete, and streamed match resumed after a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qcy_match import MatchEngine
from qcy_match.cli import main

CORPORA = Path(__file__).parent.parent / "corpora"
LSA = ["--encoder", "lsa"]


@pytest.fixture
def index_dir(tmp_path, achievements_path):
    out = tmp_path / "idx"
    assert main(["index", "--achievements", str(achievements_path), "--out", str(out), *LSA]) == 0
    return out


def test_update_and_delete_by_id(tmp_path, index_dir, capsys):
    before = MatchEngine.load(index_dir).records_["id"].tolist()
    upd = tmp_path / "upd.jsonl"
    upd.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": before[0], "title": "钛合金 锻件 新版", "description": "更新后的描述"},
        {"id": "NEW-1", "title": "钙钛矿量子点光伏组件", "description": "叠层 组件"},
        {"id": "", "title": "没有编号"}]) + "\n", encoding="utf-8")
    assert main(["index", "--index", str(index_dir), "--update", str(upd), "--delete", f"{before[1]},nope"]) == 0
    err = capsys.readouterr().err
    assert "deleted 1" in err and "nope" in err and "added 1, replaced 1" in err and "1 rejected" in err
    after = MatchEngine.load(index_dir)
    ids = after.records_["id"].tolist()
    assert before[1] not in ids and "NEW-1" in ids and len(ids) == len(before)
    assert after.records_.set_index("id").loc[before[0], "title"] == "钛合金 锻件 新版"
    ids_file = tmp_path / "del.txt"
    ids_file.write_text("NEW-1\n\n" + before[2] + "\n", encoding="utf-8")
    assert main(["index", "--index", str(index_dir), "--delete", f"@{ids_file}"]) == 0
    assert len(MatchEngine.load(index_dir)) == len(before) - 2


def test_update_usage_errors(index_dir, capsys):
    assert main(["index", "--index", str(index_dir)]) == 2
    assert "--update" in capsys.readouterr().err
    assert main(["index", "--delete", "A1"]) == 2
    assert "--index" in capsys.readouterr().err


def many_needs(path: Path, n: int) -> Path:
    base = [json.loads(line) for line in (CORPORA / "needs.jsonl").read_text(encoding="utf-8").splitlines()]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            rec = dict(base[i % len(base)], id=f"N{i:06d}")
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        fh.write('{"broken\n')
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_resume_after_sigkill_gives_the_same_output(tmp_path, index_dir, fmt):
    needs = many_needs(tmp_path / "needs.jsonl", 900)
    ref, out = tmp_path / f"ref.{fmt}", tmp_path / f"out.{fmt}"
    common = ["match", "--index", str(index_dir), "--needs", str(needs), "--top-k", "3", "--chunk-rows", "60"]
    assert main([*common, "--out", str(ref)]) == 0
    ckpt = out.with_name(out.name + ".progress.json")
    proc = subprocess.Popen([sys.executable, "-m", "qcy_match.cli", *common, "--out", str(out)],
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and json.loads(ckpt.read_text() or "{}").get("chunks_done", 0) >= 3:
            break
        time.sleep(0.02)
    time.sleep(0.05)  # land somewhere inside the next chunk
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists() and out.exists()
    assert out.read_bytes() != ref.read_bytes()
    assert main([*common, "--out", str(out), "--resume"]) == 0
    assert out.read_bytes() == ref.read_bytes()
    assert not ckpt.exists()
    assert (tmp_path / "out.rejected.csv").read_bytes() == (tmp_path / "ref.rejected.csv").read_bytes()


def test_resume_without_checkpoint_is_refused(tmp_path, index_dir, needs_path, capsys):
    out = tmp_path / "m.csv"
    rc = main(["match", "--index", str(index_dir), "--needs", str(needs_path), "--out", str(out), "--resume"])
    assert rc == 3 and "nothing to resume" in capsys.readouterr().err
