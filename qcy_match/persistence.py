"""Index directories: a JSON manifest with versions, counts and checksums beside numpy/FAISS/parquet files.

Saving is atomic under SIGKILL and power loss. The new index is written to a sibling temporary directory and every
file and the directory are fsynced; then two renames swap it in: ``DIR → .DIR.old`` and ``tmp → DIR``, and the
parent directory is fsynced. A process killed between the two renames leaves no ``DIR`` but a complete
``.DIR.old``: :func:`resolve` (used by every load) reads that one, and the next save renames it back first. Leftover
temporary directories are removed by the next save. Concurrent savers are serialised by an advisory lock on the
parent directory (``flock``; on Windows ``msvcrt.locking`` on a lock file in it; where neither exists, none, with a
warning), taken only while saving, so importing this module needs neither.

Loading verifies the manifest (format, version, file list, sizes) and every file's SHA-256 before anything is read,
and refuses file names that leave the directory. Nothing is read with pickle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import IndexFormatError

FORMAT = "qcy-match-index"
# 2: BM25 postings hold term frequencies (scored at query time) instead of precomputed scores.
FORMAT_VERSION = 2


@dataclasses.dataclass(frozen=True)
class Layout:
    """The files of an index directory, named once (model2vec's ``persistence`` ``Layout``).

    Writers and readers take every name from :data:`LAYOUT`; renaming a file here renames it everywhere (and needs a
    new :data:`FORMAT_VERSION`, since existing directories hold the old names).
    """

    manifest: str = "manifest.json"  # format, versions, parameters, counts, and the checksum of every other file
    records: str = "records.parquet"  # the indexed records with their token lists (match.engine)
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


LAYOUT = Layout()

logger = logging.getLogger(__name__)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _old(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # Windows cannot open a directory to fsync it; NTFS journals the renames itself
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for f in path.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(path)


def resolve(path: str | os.PathLike[str]) -> Path:
    """The directory to read for ``path``: itself, or its complete previous version when a save was killed between
    its two renames.
    """
    root = Path(path)
    old = _old(root)
    if not (root / LAYOUT.manifest).is_file() and not root.exists() and (old / LAYOUT.manifest).is_file():
        logger.warning("%s: a save was interrupted; reading the previous version from %s", root, old)
        return old
    return root


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


def save_dir(path: str | os.PathLike[str], write: Callable[[Path], dict[str, Any]]) -> Path:
    """Create ``path`` atomically: ``write(tmp)`` fills a temporary directory and returns the manifest body."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent):
        _recover(target)
        if target.exists() and not (target / LAYOUT.manifest).is_file() and any(target.iterdir()):
            raise IndexFormatError(f"{target}: exists and is not a qcy-match index; refusing to overwrite it")
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            body = write(tmp)
            files = sorted(p.name for p in tmp.iterdir())
            body["files"] = {name: {"sha256": sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
                             for name in files}
            manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **body}
            with open(tmp / LAYOUT.manifest, "w", encoding="utf-8") as fh:
                json.dump(manifest, fh, ensure_ascii=False, indent=1)
            _fsync_tree(tmp)
            _swap(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _platform_module(name: str) -> Any:
    """An optional platform module (``fcntl`` on POSIX, ``msvcrt`` on Windows), or None where it does not exist."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock that serialises the savers of ``directory``'s entries, until the block ends."""
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
    with open(directory / ".qcy-match.lock", "a+b") as fh:
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


def _swap(tmp: Path, target: Path) -> None:
    old = _old(target)
    if target.exists():
        os.rename(target, old)
    # A kill here leaves no target but a complete .old, which resolve() reads and the next save puts back.
    os.rename(tmp, target)
    _fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(path: str | os.PathLike[str], verify: bool = True) -> dict[str, Any]:
    """Return the manifest of an index directory after checking format, version and file checksums."""
    root = resolve(path)
    if not root.is_dir():
        raise IndexFormatError(f"{root}: no such index directory")
    mpath = root / LAYOUT.manifest
    if not mpath.is_file():
        raise IndexFormatError(f"{root}: not a qcy-match index (no {LAYOUT.manifest})")
    try:
        manifest: dict[str, Any] = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"{mpath}: manifest is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise IndexFormatError(f"{mpath}: manifest is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise IndexFormatError(f"{root}: manifest format is {manifest.get('format')!r}, expected {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(f"{root}: index format version {manifest.get('format_version')} cannot be read by "
                               f"this qcy-match (reads version {FORMAT_VERSION}); rebuild the index")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise IndexFormatError(f"{root}: manifest lists no files")
    for name, meta in files.items():
        f = root / name
        if not isinstance(name, str) or not name or Path(name).name != name or name in (".", "..", LAYOUT.manifest) \
                or not isinstance(meta, dict):
            raise IndexFormatError(f"{root}: manifest lists an invalid file entry {name!r}")
        if not f.is_file():
            raise IndexFormatError(f"{root}: file {name} listed in the manifest is missing")
        if f.stat().st_size != meta.get("bytes"):
            raise IndexFormatError(f"{root}: file {name} has {f.stat().st_size} bytes, manifest says "
                                   f"{meta.get('bytes')} (truncated or replaced)")
        if verify and sha256(f) != meta.get("sha256"):
            raise IndexFormatError(f"{root}: file {name} fails its SHA-256 check (corrupted or tampered)")
    return manifest
