"""Index directories: a JSON manifest with versions, counts and checksums beside numpy/FAISS/parquet files.

Saving writes a sibling temporary directory and swaps it in with renames, so a crash leaves either the old or the
new index, never a mix. Loading verifies the manifest and every checksum before anything is read. No pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT = "qcy-match-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class IndexFormatError(ValueError):
    """An index directory that is missing, incomplete, corrupted or from an incompatible version."""


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_dir(path: str | os.PathLike[str], write: Callable[[Path], dict[str, Any]]) -> Path:
    """Create ``path`` atomically: ``write(tmp)`` fills a temporary directory and returns the manifest body."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not (target / MANIFEST).is_file() and any(target.iterdir()):
        raise IndexFormatError(f"{target}: exists and is not a qcy-match index; refusing to overwrite it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        body = write(tmp)
        files = sorted(p.name for p in tmp.iterdir())
        body["files"] = {name: {"sha256": sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
                         for name in files}
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **body}
        with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _swap(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(path: str | os.PathLike[str], verify: bool = True) -> dict[str, Any]:
    """Return the manifest of an index directory after checking format, version and file checksums."""
    root = Path(path)
    if not root.is_dir():
        raise IndexFormatError(f"{root}: no such index directory")
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise IndexFormatError(f"{root}: not a qcy-match index (no {MANIFEST})")
    try:
        manifest: dict[str, Any] = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"{mpath}: manifest is not valid JSON ({exc})") from exc
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
        if not f.is_file():
            raise IndexFormatError(f"{root}: file {name} listed in the manifest is missing")
        if f.stat().st_size != meta.get("bytes"):
            raise IndexFormatError(f"{root}: file {name} has {f.stat().st_size} bytes, manifest says "
                                   f"{meta.get('bytes')} (truncated or replaced)")
        if verify and sha256(f) != meta.get("sha256"):
            raise IndexFormatError(f"{root}: file {name} fails its SHA-256 check (corrupted or tampered)")
    return manifest
