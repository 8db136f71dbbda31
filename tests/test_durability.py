"""Durability: a save killed with SIGKILL at any moment leaves the previous index loadable and complete; saves
and updates take the writer lock (flock, msvcrt, or none with a warning)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from qcy_match import EngineConfig, IndexFormatError, MatchEngine

SAVE_LOOP = """
import os, signal, sys
from qcy_match import MatchEngine
from qcy_match import persistence
target = sys.argv[1]
kill_at = int(os.environ.get("KILL_AT_RENAME", "0"))
calls = 0
real_rename = os.rename
def rename(src, dst):
    global calls
    calls += 1
    if calls == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    real_rename(src, dst)
persistence.os.rename = rename
engine = MatchEngine.load(target)
engine.add([{"id": "K-new", "title": "新增记录 钛合金锻件", "description": "测试"}])
engine.save(target)
"""


def ids_of(path) -> list[str]:
    return MatchEngine.load(path).records_["id"].tolist()


def save_loop_forked(path, base: list[str], tokenizer) -> int:
    """Fork a child that adds one record and saves, again and again; returns its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            engine = MatchEngine.load(path)
            engine.tokenizer_ = tokenizer  # already initialised: jieba's dictionary load would dwarf a save
            i = len(engine) - len(base)
            while True:
                engine.add([{"id": f"K{i}", "title": f"钛合金锻件 第{i}批", "description": "热处理 工艺"}])
                engine.save(path)
                i += 1
        finally:
            os._exit(1)
    return pid


def check_complete(path, base: list[str]) -> int:
    """The index loads (checksums verified) and holds the base records plus K0..Kn-1 exactly; returns n."""
    ids = ids_of(path)
    extra = ids[len(base):]
    assert ids[: len(base)] == base
    assert extra == [f"K{i}" for i in range(len(extra))]
    return len(extra)


@pytest.fixture
def small_index(tmp_path, achievements):
    engine = MatchEngine(EngineConfig(encoder="lsa", index="numpy")).index(achievements)
    path = engine.save(tmp_path / "idx")
    return path, engine.records_["id"].tolist()


def run_kills(path, base: list[str], kills: int, seed: int) -> tuple[int, int]:
    rnd = random.Random(seed)
    saved = 0
    tokenizer = MatchEngine.load(path).tokenizer_
    tokenizer.tokenize("钛合金")
    for _ in range(kills):
        pid = save_loop_forked(path, base, tokenizer)
        time.sleep(rnd.uniform(0.05, 0.5))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        now = check_complete(path, base)
        assert now >= saved  # a completed save is never lost
        saved = now
    return kills, saved


def test_sigkill_at_random_moments_during_saves(small_index):
    path, base = small_index
    kills, saved = run_kills(path, base, kills=12, seed=1)
    assert saved > 0  # the children did complete saves between kills
    MatchEngine.load(path).save(path)  # the next save clears whatever the kills left behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["idx"]


@pytest.mark.slow
def test_sigkill_many_times(small_index):
    path, base = small_index
    kills, saved = run_kills(path, base, kills=200, seed=2)
    print(f"kill points survived: {kills}; saves completed between them: {saved}")


@pytest.mark.parametrize("kill_at", [1, 2])
def test_sigkill_between_and_at_the_renames_in_a_real_process(tmp_path, small_index, kill_at):
    path, base = small_index
    script = tmp_path / "save_once.py"
    script.write_text(textwrap.dedent(SAVE_LOOP), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script), str(path)], env={**os.environ, "KILL_AT_RENAME": str(kill_at)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if kill_at == 2:
        # Killed between the renames: the index directory is gone, its complete previous version is beside it.
        assert not path.exists() and (path.parent / ".idx.old").is_dir()
    assert ids_of(path) == base  # the previous version, complete
    engine = MatchEngine.load(path)
    engine.add([{"id": "K0", "title": "钛合金锻件", "description": "热处理"}])
    engine.save(path)
    assert ids_of(path) == [*base, "K0"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["idx", "save_once.py"]


# ---- refusing damaged directories ------------------------------------------------------------------------------
def test_load_refuses_truncated_manifest(small_index):
    path, _ = small_index
    m = path / "manifest.json"
    m.write_bytes(m.read_bytes()[:50])
    with pytest.raises(IndexFormatError, match="manifest is not valid JSON"):
        MatchEngine.load(path)


@pytest.mark.parametrize("name", ["../outside.npy", "/etc/passwd", "sub/x.npy", "manifest.json"])
def test_load_refuses_file_names_leaving_the_directory(small_index, name):
    path, _ = small_index
    m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    m["files"][name] = {"sha256": "0" * 64, "bytes": 1}
    (path / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="invalid file entry"):
        MatchEngine.load(path)


def _replace_and_resign(path, name, array, allow_pickle=False):
    """Write ``array`` as ``name`` and rewrite the manifest's checksum for it, as a tamperer would."""
    import numpy as np

    from qcy_match.persistence import sha256

    np.save(path / name, array, allow_pickle=allow_pickle)
    m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    m["files"][name] = {"sha256": sha256(path / name), "bytes": (path / name).stat().st_size}
    (path / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


def test_load_refuses_arrays_that_disagree(small_index):
    """Files swapped in from another index, with a manifest rewritten to match, are still caught."""
    import numpy as np

    path, _ = small_index
    _replace_and_resign(path, "bm25_doclen.npy", np.ones(3, np.float32))
    with pytest.raises(IndexFormatError, match="BM25 arrays disagree"):
        MatchEngine.load(path)


def test_npy_with_pickled_objects_is_refused(small_index):
    import numpy as np

    path, _ = small_index
    _replace_and_resign(path, "vectors.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(IndexFormatError, match="incomplete or inconsistent"):
        MatchEngine.load(path)


# ---- platforms without fcntl (Windows) -------------------------------------------------------------------------
@pytest.fixture
def without_fcntl(monkeypatch):
    """qcy_match.persistence imported afresh where ``fcntl`` does not exist, and restored afterwards."""
    import importlib

    from qcy_match import persistence

    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` now raises ImportError
    yield importlib.reload(persistence)
    monkeypatch.undo()
    importlib.reload(persistence)


def test_import_without_fcntl_in_a_fresh_interpreter():
    code = "import sys; sys.modules['fcntl'] = None; import qcy_match.persistence; from qcy_match import MatchEngine"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_save_without_any_lock_warns_and_round_trips(small_index, without_fcntl, monkeypatch, caplog):
    path, base = small_index
    monkeypatch.setitem(sys.modules, "msvcrt", None)
    engine = MatchEngine.load(path)
    engine.add([{"id": "K0", "title": "钛合金锻件", "description": "热处理"}])
    with caplog.at_level("WARNING", logger="qcy_match.persistence"):
        engine.save(path)
    assert "no file locking" in caplog.text
    assert ids_of(path) == [*base, "K0"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["idx"]


def test_save_locks_with_msvcrt_where_fcntl_is_missing(tmp_path, without_fcntl, monkeypatch):
    import types

    calls = []
    fake = types.SimpleNamespace(LK_LOCK=1, LK_UNLCK=0, locking=lambda fd, mode, n: calls.append((mode, n)))
    monkeypatch.setitem(sys.modules, "msvcrt", fake)

    def write(tmp):
        assert calls == [(1, 1)]  # the lock is held while the directory is written
        (tmp / "x.txt").write_text("x", encoding="utf-8")
        return {}

    path = without_fcntl.save_dir(tmp_path / "d", write)
    assert calls == [(1, 1), (0, 1)]
    assert without_fcntl.read_manifest(path)["files"]["x.txt"]["bytes"] == 1


def test_a_save_inside_locked_takes_the_platform_lock_once(tmp_path, without_fcntl, monkeypatch):
    """The writer lock is re-entrant: the save inside ``locked`` neither waits for itself nor locks twice."""
    import types

    calls = []
    fake = types.SimpleNamespace(LK_LOCK=1, LK_UNLCK=0, locking=lambda fd, mode, n: calls.append((mode, n)))
    monkeypatch.setitem(sys.modules, "msvcrt", fake)

    def write(tmp):
        (tmp / "x.txt").write_text("x", encoding="utf-8")
        return {}

    with without_fcntl.locked(tmp_path / "d"):
        without_fcntl.save_dir(tmp_path / "d", write)
        without_fcntl.save_dir(tmp_path / "d", write)
        assert calls == [(1, 1)]
    assert calls == [(1, 1), (0, 1)]
