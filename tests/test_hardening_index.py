"""Issue 13, index directories: no output path, malformed file or concurrent writer may lose data.

One test (or group) per item; every probe input is generated under tmp_path.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qcy_match import EngineConfig, IndexFormatError, MatchEngine, persistence
from qcy_match.cli import main

CONFIG = EngineConfig(encoder="lsa", index="numpy")


@pytest.fixture
def idx(tmp_path, achievements) -> Path:
    return MatchEngine(CONFIG).index(achievements).save(tmp_path / "idx")


def ids_of(path) -> list[str]:
    return MatchEngine.load(path).records_["id"].tolist()


def manifest_of(path) -> dict:
    return json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))


def write_manifest(path, manifest) -> None:
    (Path(path) / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


# ---- 1: a save replaces only a directory that is provably ours --------------------------------------------------
def write_one_file(tmp: Path) -> dict:
    (tmp / "a.txt").write_text("a", encoding="utf-8")
    return {}


def foreign_dirs(tmp_path: Path) -> list[Path]:
    """Directories a save must not replace: an empty manifest, a real one with extra entries, no manifest."""
    w = tmp_path / "w"
    (w / "src").mkdir(parents=True)
    (w / "manifest.json").write_text("{}", encoding="utf-8")
    (w / "src" / "main.js").write_text("x", encoding="utf-8")
    ours_plus = tmp_path / "ours_plus"
    persistence.save_dir(ours_plus, write_one_file)
    (ours_plus / "notes.txt").write_text("mine", encoding="utf-8")
    (ours_plus / "sub").mkdir()
    bad_json = tmp_path / "bad_json"
    bad_json.mkdir()
    (bad_json / "manifest.json").write_text("{not json", encoding="utf-8")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.csv").write_text("a,b\n", encoding="utf-8")
    return [w, ours_plus, bad_json, plain]


def snapshot_tree(path: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))}


def test_save_refuses_directories_that_are_not_provably_ours(tmp_path, lsa_engine):
    for target in foreign_dirs(tmp_path):
        before = snapshot_tree(target)
        with pytest.raises(IndexFormatError, match="refusing to overwrite") as err:
            lsa_engine.save(target)
        assert str(target) in str(err.value) and "\n" not in str(err.value)
        with pytest.raises(IndexFormatError, match="refusing to overwrite"):  # the classifier's saves too
            persistence.save_dir(target, lambda tmp: {})
        assert snapshot_tree(target) == before, target
    file_target = tmp_path / "file.txt"
    file_target.write_text("keep", encoding="utf-8")
    with pytest.raises(IndexFormatError, match="not a directory"):
        lsa_engine.save(file_target)
    assert file_target.read_text(encoding="utf-8") == "keep"


def test_cli_index_refuses_an_unrelated_directory(tmp_path, capsys, achievements_path):
    w = tmp_path / "w"
    (w / "src").mkdir(parents=True)
    (w / "manifest.json").write_text("{}", encoding="utf-8")
    (w / "src" / "main.js").write_text("x", encoding="utf-8")
    rc = main(["index", "--achievements", str(achievements_path), "--out", str(w), "--encoder", "lsa"])
    err = capsys.readouterr().err
    assert rc != 0 and "refusing to overwrite" in err and "Traceback" not in err
    assert (w / "src" / "main.js").read_text(encoding="utf-8") == "x"


def test_save_replaces_empty_directories_and_its_own(tmp_path, lsa_engine):
    empty = tmp_path / "empty"
    empty.mkdir()
    lsa_engine.save(empty)
    lsa_engine.save(empty)  # its own index, replaced
    assert ids_of(empty) == lsa_engine.records_["id"].tolist()
    only_lock = tmp_path / "only_lock"
    only_lock.mkdir()
    (only_lock / persistence.LOCK_FILE).touch()  # left by Windows saves of an index that was inside it
    lsa_engine.save(only_lock)


def test_new_directories_get_the_umask_permissions(tmp_path, lsa_engine):
    old = os.umask(0o027)
    try:
        path = lsa_engine.save(tmp_path / "perm")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o750  # mkdtemp would have made it 0o700
    assert (path / "records.parquet").stat().st_mode & 0o777 == 0o640


# ---- 4: one writer at a time over load → change → save ------------------------------------------------------------
UPDATER = """
import sys, time
from pathlib import Path
from qcy_match import MatchEngine
index, rid, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
upsert = MatchEngine.upsert
def slow_upsert(self, records, show_progress=False):
    out = upsert(self, records, show_progress)
    time.sleep(1.0)  # widen the window between load and save: without the lock both would load the same version
    return out
MatchEngine.upsert = slow_upsert
MatchEngine.load(index).tokenizer_.tokenize("钛合金")  # jieba's dictionary load, before the start line
while not go.exists():
    time.sleep(0.01)
done, engine = MatchEngine.update_saved(index, upsert=[{"id": rid, "title": "新增记录 钛合金锻件 " + rid}])
assert done.added == [rid], done
"""


def test_two_processes_updating_one_index_both_land(tmp_path, idx):
    script = tmp_path / "updater.py"
    script.write_text(textwrap.dedent(UPDATER), encoding="utf-8")
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get(
        "PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, str(script), str(idx), rid, str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rid in ("U-a", "U-b")]
    time.sleep(0.5)
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    ids = ids_of(idx)
    assert {"U-a", "U-b"} <= set(ids), ids[-3:]
    assert sorted(p.name for p in idx.parent.iterdir()) == ["go", "idx", "updater.py"]


def test_the_lock_is_reentrant_and_excludes_other_threads(idx):
    engine = MatchEngine.load(idx)
    order: list[str] = []

    def other_writer():
        order.append("other waits")
        MatchEngine.update_saved(idx, delete=["never-indexed"])
        order.append("other saved")

    with persistence.locked(idx):
        t = threading.Thread(target=other_writer)
        t.start()
        time.sleep(0.5)
        engine.upsert([{"id": "T-1", "title": "钛合金锻件 热处理"}])
        engine.save(idx)  # re-entrant: the save inside the block does not wait for itself
        order.append("holder saved")
    t.join(timeout=60)
    assert order == ["other waits", "holder saved", "other saved"]
    assert "T-1" in ids_of(idx)


def test_update_saved_deletes_upserts_and_reports(idx, tmp_path):
    done, engine = MatchEngine.update_saved(idx, upsert=[{"id": "N-1", "title": "钛合金锻件"}],
                                            delete=[ids_of(idx)[0], "nope"], out=tmp_path / "copy")
    assert done.added == ["N-1"] and done.missing == ["nope"] and len(done.deleted) == 1
    assert ids_of(tmp_path / "copy") == engine.records_["id"].tolist()
    assert "N-1" not in ids_of(idx)  # out elsewhere: the source is untouched


# ---- 6: a symbolic link to an index is followed, not replaced ------------------------------------------------------
@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_updates_through_a_symlink_change_the_directory_it_points_to(tmp_path, idx):
    link = tmp_path / "idx_link"
    link.symlink_to(idx, target_is_directory=True)
    MatchEngine.update_saved(link, upsert=[{"id": "L-1", "title": "钛合金锻件"}])
    engine = MatchEngine.load(link)
    engine.upsert([{"id": "L-2", "title": "热处理工艺"}])
    engine.save(link)
    assert link.is_symlink() and os.path.realpath(link) == str(idx.resolve())
    assert ids_of(idx)[-2:] == ["L-1", "L-2"] and ids_of(link) == ids_of(idx)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "idx_link"]


# ---- 12: the manifest lists every file, and nothing read lies outside the directory -----------------------------
def test_a_file_dropped_from_the_manifest_is_refused(idx):
    m = manifest_of(idx)
    del m["files"]["records.parquet"]
    write_manifest(idx, m)
    with pytest.raises(IndexFormatError, match="does not list \\(records.parquet\\)"):
        MatchEngine.load(idx)


def test_unlisted_and_foreign_files_are_refused(tmp_path, idx):
    (idx / "extra.txt").write_text("x", encoding="utf-8")
    with pytest.raises(IndexFormatError, match="does not list \\(extra.txt\\)"):
        MatchEngine.load(idx)
    (idx / "extra.txt").unlink()
    m = manifest_of(idx)
    (idx / "notes.txt").write_text("x", encoding="utf-8")
    m["files"]["notes.txt"] = {"sha256": persistence.sha256(idx / "notes.txt"), "bytes": 1}
    write_manifest(idx, m)
    with pytest.raises(IndexFormatError, match="notes.txt, which is not a file"):
        MatchEngine.load(idx)


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_a_listed_file_that_is_a_symlink_is_refused(tmp_path, idx):
    outside = tmp_path / "outside.parquet"
    os.rename(idx / "records.parquet", outside)
    (idx / "records.parquet").symlink_to(outside)
    with pytest.raises(IndexFormatError, match="symbolic link"):
        MatchEngine.load(idx)


@pytest.mark.parametrize("name", ["/etc/passwd", "../dict.txt", "dict.txt", "user_dict_0.txt"])
def test_config_naming_a_user_dictionary_outside_is_refused(idx, name):
    m = manifest_of(idx)
    m["config"]["user_dicts"] = [name]
    write_manifest(idx, m)
    with pytest.raises(IndexFormatError, match="rebuild the index") as err:
        MatchEngine.load(idx)
    assert "\n" not in str(err.value)


def test_user_dictionaries_are_copied_into_the_index(tmp_path, achievements):
    words = tmp_path / "words.txt"
    words.write_text("量子点显示屏幕 50 n\n", encoding="utf-8")
    engine = MatchEngine(dataclasses.replace(CONFIG, user_dicts=[str(words)])).index(achievements)
    path = engine.save(tmp_path / "idx")
    words.unlink()  # the index no longer needs the original
    m = manifest_of(path)
    assert m["config"]["user_dicts"] == ["user_dict_0.txt"] and "user_dict_0.txt" in m["files"]
    loaded = MatchEngine.load(path)
    assert "量子点显示屏幕" in loaded.tokenizer_.tokenize("量子点显示屏幕")
    assert loaded.config.user_dicts == [str(path.resolve() / "user_dict_0.txt")]
    loaded.save(tmp_path / "again")  # re-saved from the bytes it holds
    assert (tmp_path / "again" / "user_dict_0.txt").read_text(encoding="utf-8") == "量子点显示屏幕 50 n\n"


def test_the_loader_reads_only_files_the_manifest_lists(tmp_path, achievements):
    """Every file opened under the directory while loading is the manifest or one it lists (and so is checked)."""
    words = tmp_path / "words.txt"
    words.write_text("钛合金锻件 50 n\n", encoding="utf-8")
    path = MatchEngine(dataclasses.replace(CONFIG, user_dicts=[str(words)])).index(achievements).save(
        tmp_path / "idx")
    root = str(path.resolve())
    opened: list[str] = []
    active = [True]

    def hook(event, args):
        if active[0] and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            name = os.fsdecode(args[0])
            if os.path.realpath(name).startswith(root + os.sep):
                opened.append(os.path.basename(name))

    sys.addaudithook(hook)  # cannot be removed: switched off below
    try:
        MatchEngine.load(path)
    finally:
        active[0] = False
    listed = set(manifest_of(path)["files"])
    assert set(opened) - {"manifest.json"} <= listed
    assert {"records.parquet", "user_dict_0.txt"} <= set(opened)
    assert all(persistence.LAYOUT.holds(n) for n in listed)


# ---- malformed manifest values: one-line IndexFormatError, never another exception ---------------------------------
def leaf_paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaf_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaf_paths(v, (*prefix, i))


def json_containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
                    | st.text(max_size=8), json_containers, max_leaves=6)


@pytest.fixture(scope="module")
def fuzz_index(tmp_path_factory, achievements):
    path = tmp_path_factory.mktemp("fuzz") / "idx"
    words = path.parent / "words.txt"
    words.write_text("钛合金锻件 50 n\n", encoding="utf-8")
    MatchEngine(dataclasses.replace(CONFIG, user_dicts=[str(words)])).index(achievements).save(path)
    return path, manifest_of(path)


@settings(max_examples=int(os.environ.get("QCY_FUZZ_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_manifest_values_load_or_raise_index_format_error(fuzz_index, data):
    path, original = fuzz_index
    paths = sorted(leaf_paths(original), key=lambda p: [str(x) for x in p])
    where = data.draw(st.sampled_from(paths))
    manifest = copy.deepcopy(original)
    if not where:
        manifest = data.draw(JSON)
    else:
        parent = manifest
        for key in where[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) or isinstance(parent, list):
            parent[where[-1]] = data.draw(JSON)
        else:
            del parent[where[-1]]
    write_manifest(path, manifest)
    try:
        MatchEngine.load(path)
    except IndexFormatError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    finally:
        write_manifest(path, original)


# ---- 11: sizes bounded by the index, titles cut -------------------------------------------------------------------
def test_k_is_capped_at_the_index_size(lsa_engine, needs):
    n = len(lsa_engine)
    for k in (n + 1, 10_000_000, 10**9):
        m = lsa_engine.match(needs.head(3), k=k, explain_matches=False)
        assert m.indices.shape == (3, n) and m.scores.shape == (3, n)
    assert lsa_engine.match(needs.head(2), k=5).indices.shape == (2, 5)


def test_huge_titles_are_cut_for_indexing_and_queries(achievements, caplog):
    cap = EngineConfig().max_title_chars
    big = "钛合金锻件热处理工艺" * 200_000  # 2 million characters
    records = [{"id": r.id, "title": r.title, "description": r.description} for r in achievements.head(5).itertuples()]
    records.append({"id": "BIG", "title": big, "description": "钛合金"})
    config = dataclasses.replace(CONFIG, encoder_params={"min_df": 1})
    start = time.perf_counter()
    with caplog.at_level("WARNING", logger="qcy_match.match.engine"):
        engine = MatchEngine(config).index(records)
        matches = engine.match([{"id": "q", "title": big, "description": "锻件"}], k=3)
    assert time.perf_counter() - start < 60
    assert "titles are longer than 1000 characters" in caplog.text
    assert matches.ids[0][0] == "BIG"
    assert engine.records_["title"].iloc[-1] == big  # the stored record keeps its full title
    assert len(engine.tokens_[-1]) < cap
