"""Index directories: a JSON manifest with versions, counts and checksums beside numpy/FAISS/parquet files.

Saving is atomic under SIGKILL and power loss. The new index is written to a sibling temporary directory and every
file and the directory are fsynced; then two renames swap it in: ``DIR → .DIR.old`` and ``tmp → DIR``, and the
parent directory is fsynced. A process killed between the two renames leaves no ``DIR`` but a complete
``.DIR.old``: :func:`resolve` (used by every load) reads that one, and the next save renames it back first. Leftover
temporary directories are removed by the next save. A symbolic link to an index is followed: the directory it points
to is read and replaced, the link stays.

A save replaces only a directory that is provably one of ours: empty, or holding a qcy-match manifest and exactly
the files it lists. Anything else is refused, so a mistyped output path cannot delete a user's directory.

Writers hold :func:`locked`, an exclusive advisory lock on the parent directory (``flock``; on Windows
``msvcrt.locking`` on a lock file in it; where neither exists, none, with a warning), taken only by writers, so
importing this module needs neither. Every save takes it; hold it yourself around load → change → save so that two
processes updating one index apply their changes one after the other instead of one overwriting the other.

Loading verifies the manifest (format, version, the shape of its entries, a file list that names every file of the
directory and no other) and every file's SHA-256 before anything is read, and refuses file names that leave the
directory and files that are symbolic links. Nothing is read with pickle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import IndexFormatError

FORMAT = "qcy-match-index"
# 2: BM25 postings hold term frequencies (scored at query time) instead of precomputed scores.
# 3: dense partitions (partition labels and per-partition graphs, index.dense.partitions).
# 4: token lists as term ids (index.terms) in two arrays beside the records, not a column of the records table;
#    duplicate dense vectors stored once (the node of each position, index.dense.groups).
FORMAT_VERSION = 4
# The lock file where a directory cannot be locked itself (Windows), in the parent of the saved directories; never
# read, and ignored where it is left inside a directory (one that was once the parent of a saved one).
LOCK_FILE = ".qcy-match.lock"


@dataclasses.dataclass(frozen=True)
class Layout:
    """The files of an index directory, named once (model2vec's ``persistence`` ``Layout``).

    Writers and readers take every name from :data:`LAYOUT`; renaming a file here renames it everywhere (and needs a
    new :data:`FORMAT_VERSION`, since existing directories hold the old names).
    """

    manifest: str = "manifest.json"  # format, versions, parameters, counts, and the checksum of every other file
    records: str = "records.parquet"  # the indexed records (match.engine)
    term_ids: str = "term_ids.npy"  # every record's tokens as BM25 term ids, one after another (index.terms),
    term_offsets: str = "term_offsets.npy"  # and where each record's start
    vectors: str = "vectors.npy"  # dense vectors, float32 or float16 (absent when a float16 HNSW graph holds them)
    faiss: str = "faiss.index"  # the FAISS structure of the hnsw and ivf kinds (slow to rebuild)
    bm25_data: str = "bm25_data.npy"  # BM25 postings (index.sparse): term frequencies,
    bm25_indices: str = "bm25_indices.npy"  # the document of each posting,
    bm25_indptr: str = "bm25_indptr.npy"  # where each term's postings start,
    bm25_doclen: str = "bm25_doclen.npy"  # document lengths,
    bm25_vocab: str = "bm25_vocab.json"  # k1, b, document count and the terms in id order
    lsa_vocab: str = "lsa_vocab.json"  # LSA encoder (encoders.lsa): vocabulary,
    lsa_idf: str = "lsa_idf.npy"  # its IDF weights,
    lsa_components: str = "lsa_components.npy"  # and the SVD components
    groups: str = "dense_groups.npy"  # the distinct stored vector (node) of each dense position, when some repeat
    partitions: str = "partitions.npy"  # the partition label of each dense vector (index.dense.partitions),
    partition_graphs: str = "partition_{}.index"  # and the graph of each large partition, by label + 1
    # Copies of the config's user dictionaries, numbered from 0: the saved config names these, never outside files.
    user_dicts: str = "user_dict_{}.txt"

    def user_dict(self, i: int) -> str:
        """The name of the ``i``-th user dictionary's copy."""
        return self.user_dicts.format(i)

    def partition(self, i: int) -> str:
        """The name of the graph file of the partition labelled ``i - 1``."""
        return self.partition_graphs.format(i)

    def holds(self, name: str) -> bool:
        """Whether ``name`` is a file of an index directory."""
        numbered = (self.user_dicts, self.partition_graphs)
        fixed = {getattr(self, f.name) for f in dataclasses.fields(self)} - set(numbered)
        return name in fixed or any(_numbered(p, name) for p in numbered)

    def is_partition_graph(self, name: str) -> bool:
        """Whether ``name`` is the graph file of a partition."""
        return _numbered(self.partition_graphs, name)


def _numbered(pattern: str, name: str) -> bool:
    """Whether ``name`` is ``pattern`` with a number in place of its ``{}``."""
    return re.fullmatch(re.escape(pattern).replace(r"\{\}", "[0-9]+"), name) is not None


LAYOUT = Layout()

logger = logging.getLogger(__name__)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def version(path: str | os.PathLike[str]) -> str:
    """An index directory's identity: the hex SHA-256 of its manifest, which holds the SHA-256 of every file, so
    any change to the directory changes it. OSError when the manifest cannot be read.
    """
    return sha256(resolve(path) / LAYOUT.manifest)


def _real(path: str | os.PathLike[str]) -> Path:
    """``path`` with symbolic links resolved: saving through a link replaces the directory it points to, and the
    link stays a link (renaming the link itself would leave the real directory stale).
    """
    return Path(os.path.realpath(os.fspath(path)))


def _old(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Replace ``path`` with ``text`` so that a reader or a crash sees the old file or the new one, never half of
    one: written to a temporary file beside it, fsynced, given ``mode`` (e.g. 0o600 for secrets), then renamed.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (new files, renames) durable."""
    if os.name == "nt":  # Windows cannot open a directory to fsync it; NTFS journals the renames itself
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for f in path.iterdir():
        if f.is_dir():
            _fsync_tree(f)  # a part (shard) of the directory
            continue
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    fsync_dir(path)


def resolve(path: str | os.PathLike[str]) -> Path:
    """The directory to read for ``path``: the directory itself (links followed), or its complete previous
    version when a save was killed between its two renames.
    """
    root = _real(path)
    old = _old(root)
    if not root.exists() and (old / LAYOUT.manifest).is_file():
        logger.warning("%s: a save was interrupted; reading the previous version from %s", root, old)
        return old
    return root


# ---- the writer lock ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Holder:
    """One process's hold on a parent directory's lock: a thread lock, how deep, and the OS lock to release."""

    thread_lock: threading.RLock = dataclasses.field(default_factory=threading.RLock)
    depth: int = 0
    os_lock: contextlib.ExitStack = dataclasses.field(default_factory=contextlib.ExitStack)


_HOLDERS: dict[Path, _Holder] = {}  # one per parent directory ever locked; never removed (threads may wait on it)
_HOLDERS_LOCK = threading.Lock()


@contextlib.contextmanager
def locked(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the writer lock of the index directory ``path`` until the block ends; yields the real directory.

    Every :func:`save_dir` takes it, so a save waits for a writer holding it. Hold it around load → change → save
    to make the whole update exclusive::

        with persistence.locked(path):
            engine = MatchEngine.load(path)
            engine.upsert(records)
            engine.save(path)

    Re-entrant within a process (the save inside the block does not deadlock); other threads and processes wait.
    The lock is on ``path``'s parent directory, so it also serialises writers of that directory's other entries.
    Advisory: only writers that take it are excluded; readers never take it.
    """
    target = _real(path)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    with _HOLDERS_LOCK:
        holder = _HOLDERS.setdefault(parent, _Holder())
    with holder.thread_lock:
        if holder.depth == 0:
            holder.os_lock.enter_context(_os_lock(parent))
        holder.depth += 1
        try:
            yield target
        finally:
            holder.depth -= 1
            if holder.depth == 0:
                holder.os_lock.close()


def _platform_module(name: str) -> Any:
    """An optional platform module (``fcntl`` on POSIX, ``msvcrt`` on Windows), or None where it does not exist."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@contextlib.contextmanager
def _os_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock, between processes, on ``directory`` until the block ends."""
    fcntl = _platform_module("fcntl")
    if fcntl is not None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock
        return
    msvcrt = _platform_module("msvcrt")
    if msvcrt is None:
        logger.warning("%s: no file locking on this platform; concurrent saves into it are not serialised",
                       directory)
        yield
        return
    # Windows cannot open a directory as a file: lock the first byte of a lock file in it instead.
    with open(directory / LOCK_FILE, "a+b") as fh:
        fh.seek(0)
        while True:
            try:
                msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
                break
            except OSError:  # LK_LOCK gives up after 10 tries a second apart; a save can take longer
                continue
        try:
            yield
        finally:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)


# ---- saving ------------------------------------------------------------------------------------------------------
def _recover(target: Path) -> None:
    """Undo what a killed save left behind: put back a swapped-out index, drop temporary directories."""
    old = _old(target)
    if old.exists():
        if not target.exists():
            os.rename(old, target)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _foreign(target: Path) -> str | None:
    """Why ``target`` may not be replaced by a save, or None when it is empty or provably a qcy-match directory
    (a manifest of our format and exactly the files it lists). A leftover lock file counts as nothing.
    """
    if not target.is_dir():
        return "exists and is not a directory"
    entries = {p.name: p for p in target.iterdir() if p.name != LOCK_FILE}
    if not entries:
        return None
    mpath = target / LAYOUT.manifest
    if not mpath.is_file() or mpath.is_symlink():
        return f"has no {LAYOUT.manifest}: not a qcy-match directory"
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        return f"{LAYOUT.manifest} cannot be read ({exc})"
    files = manifest.get("files") if isinstance(manifest, dict) and manifest.get("format") == FORMAT else None
    if not isinstance(files, dict):
        return f"{LAYOUT.manifest} is not a qcy-match manifest"
    parts = manifest.get("parts") or {}
    listed = set(files) | {LAYOUT.manifest}
    other = sorted(name for name, p in entries.items()
                   if not (name in listed and not p.is_dir()) and not (name in parts and _part_dir(p)))
    if other:
        return f"holds entries its manifest does not list ({', '.join(other[:5])})"
    return None


def _new_tmp(target: Path) -> Path:
    """A new empty sibling directory, with the permissions the umask gives (``mkdtemp`` would make it 0700)."""
    while True:
        tmp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(6)}")
        try:
            os.mkdir(tmp)
        except FileExistsError:
            continue
        return tmp


def save_dir(path: str | os.PathLike[str], write: Callable[[Path], dict[str, Any]]) -> Path:
    """Create or replace the directory ``path`` atomically: ``write(tmp)`` fills a temporary directory and returns
    the manifest body. Returns the real directory written (links followed).

    Refuses (:class:`IndexFormatError`) to replace anything but an empty directory or a qcy-match one.
    """
    with locked(path) as target:
        _recover(target)
        if target.exists():
            why = _foreign(target)
            if why:
                raise IndexFormatError(f"{target}: {why}; refusing to overwrite it (choose a new or empty directory)")
        tmp = _new_tmp(target)
        try:
            write_manifest(tmp, write(tmp))
            _fsync_tree(tmp)
            _swap(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def write_manifest(root: Path, body: dict[str, Any]) -> dict[str, Any]:
    """Write ``root``'s manifest: ``body`` plus the format, and the size and SHA-256 of every file in ``root``.

    A sub-directory is a *part* (e.g. a shard): an index directory with its own manifest, written first, and
    listed under ``parts`` with that manifest's SHA-256 and a copy of its file list, so the top manifest vouches
    for every file below it. Returns the manifest.
    """
    body["files"] = {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size}
                     for p in sorted(root.iterdir()) if not p.is_dir()}
    parts = {p.name: {**body.get("parts", {}).get(p.name, {}), "manifest_sha256": sha256(p / LAYOUT.manifest),
                      "files": json.loads((p / LAYOUT.manifest).read_text(encoding="utf-8"))["files"]}
             for p in sorted(root.iterdir()) if p.is_dir()}
    if parts:
        body["parts"] = parts
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **body}
    with open(root / LAYOUT.manifest, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, ensure_ascii=False, indent=1)
    return manifest


def _part_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _swap(tmp: Path, target: Path) -> None:
    old = _old(target)
    if target.exists():
        os.rename(target, old)
    # A kill here leaves no target but a complete .old, which resolve() reads and the next save puts back.
    os.rename(tmp, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


# ---- loading -----------------------------------------------------------------------------------------------------
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _file_entry_ok(name: object, meta: object) -> bool:
    return (isinstance(name, str) and bool(name) and Path(name).name == name and name not in (".", "..")
            and name != LAYOUT.manifest and isinstance(meta, dict) and isinstance(meta.get("sha256"), str)
            and _SHA256.fullmatch(meta["sha256"]) is not None and type(meta.get("bytes")) is int
            and meta["bytes"] >= 0)


def read_manifest(path: str | os.PathLike[str], verify: bool = True,
                  allowed: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Return the manifest of an index directory after checking format, version, file list and file checksums.

    The file list must name every file of the directory (an unlisted file is refused, not ignored) and, when
    ``allowed`` is given, only names it accepts (e.g. :meth:`Layout.holds`). ``verify=False`` checks sizes but
    skips the SHA-256 of each file.
    """
    root = resolve(path)
    if not root.is_dir():
        raise IndexFormatError(f"{root}: no such index directory")
    mpath = root / LAYOUT.manifest
    if not mpath.is_file() or mpath.is_symlink():
        raise IndexFormatError(f"{root}: not a qcy-match index (no {LAYOUT.manifest})")
    try:
        manifest: dict[str, Any] = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise IndexFormatError(f"{mpath}: manifest is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise IndexFormatError(f"{mpath}: manifest is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise IndexFormatError(f"{root}: manifest format is {manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise IndexFormatError(f"{root}: index format version {version!r} cannot be read by this qcy-match "
                               f"(reads version {FORMAT_VERSION}); rebuild the index")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise IndexFormatError(f"{root}: manifest lists no files")
    for name, meta in files.items():
        if not _file_entry_ok(name, meta):
            raise IndexFormatError(f"{root}: manifest lists an invalid file entry {name!r}")
        if allowed is not None and not allowed(name):
            raise IndexFormatError(f"{root}: manifest lists {name}, which is not a file of this kind of directory")
    parts = _parts(root, manifest)
    known = {*files, *parts, LAYOUT.manifest, LOCK_FILE}
    unlisted = sorted(p.name for p in root.iterdir() if p.name not in known)
    if unlisted:
        raise IndexFormatError(f"{root}: holds entries its manifest does not list ({', '.join(unlisted[:5])}); "
                               "refusing to read it")
    for name, meta in files.items():
        f = root / name
        if f.is_symlink():
            raise IndexFormatError(f"{root}: file {name} is a symbolic link; refusing to follow it")
        if not f.is_file():
            raise IndexFormatError(f"{root}: file {name} listed in the manifest is missing")
        if f.stat().st_size != meta["bytes"]:
            raise IndexFormatError(f"{root}: file {name} has {f.stat().st_size} bytes, manifest says "
                                   f"{meta['bytes']} (truncated or replaced)")
        if verify and sha256(f) != meta["sha256"]:
            raise IndexFormatError(f"{root}: file {name} fails its SHA-256 check (corrupted or tampered)")
    for name, meta in parts.items():
        part = root / name
        if not _part_dir(part):
            raise IndexFormatError(f"{root}: part {name} listed in the manifest is missing (or not a directory)")
        mfile = part / LAYOUT.manifest
        if not mfile.is_file() or mfile.is_symlink() or sha256(mfile) != meta["manifest_sha256"]:
            raise IndexFormatError(f"{root}: part {name} has a missing or changed {LAYOUT.manifest} (it fails the "
                                   "SHA-256 the top manifest lists: a shard was rebuilt, replaced or tampered with)")
    return manifest


def read_part(root: Path, manifest: Mapping[str, Any], name: str, verify: bool = True,
              allowed: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """The manifest of part ``name`` of ``root`` (checked as :func:`read_manifest` checks a directory), refused
    unless it is the one ``root``'s manifest lists, with the same files.
    """
    meta = manifest.get("parts", {}).get(name) if isinstance(manifest.get("parts"), dict) else None
    if not isinstance(meta, dict):
        raise IndexFormatError(f"{root}: the manifest lists no part {name!r}")
    part = read_manifest(root / name, verify=verify, allowed=allowed)
    if sha256(root / name / LAYOUT.manifest) != meta.get("manifest_sha256") or part["files"] != meta.get("files"):
        raise IndexFormatError(f"{root}: part {name} is not the one the top manifest lists (its files or its "
                               "manifest changed); rebuild the index")
    return part


def _parts(root: Path, manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The manifest's ``parts`` entries, checked for shape."""
    parts = manifest.get("parts", {})
    if not isinstance(parts, dict):
        raise IndexFormatError(f"{root}: manifest entry parts is not an object")
    for name, meta in parts.items():
        if not (isinstance(name, str) and name and Path(name).name == name and name not in (".", "..")
                and isinstance(meta, dict) and isinstance(meta.get("manifest_sha256"), str)
                and _SHA256.fullmatch(meta["manifest_sha256"]) is not None and isinstance(meta.get("files"), dict)):
            raise IndexFormatError(f"{root}: manifest lists an invalid part entry {name!r}")
    return parts


def expect(root: Path, manifest: Mapping[str, Any], shape: Mapping[str, type | tuple[type, ...]]) -> None:
    """Refuse a manifest whose entries are not of the types in ``shape`` (``"a.b"`` is ``manifest["a"]["b"]``).

    ``int`` never accepts ``bool`` (JSON ``true`` is not a count).
    """
    for key, kind in shape.items():
        value: Any = manifest
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise IndexFormatError(f"{root}: manifest entry {key} is {type(value).__name__}, expected "
                                   f"{' or '.join(k.__name__ for k in kinds)}")
