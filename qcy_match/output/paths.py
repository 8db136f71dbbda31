"""What a job may read and where it may write: never over one of its own inputs.

Every command that writes calls :func:`check_outputs` with everything it will write and everything it reads, before
it writes or deletes anything. Paths are compared as the file system sees them: symbolic links resolved
(``os.path.realpath``), hard links by device and inode, and a directory together with what lies in it, so a table
written into an index directory (whose unlisted file would make the index unreadable) or a report directory that
holds an input is refused as well as ``--out`` naming the needs file itself.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError, OutputError
from ..ingest.tables import table_format

PathLike = str | os.PathLike[str]
# Files of a directory compared by inode (hard links); past this many entries only paths are compared, so that
# checking a big directory never costs more than the job.
MAX_DIR_ENTRIES = 10_000


def input_table(path: PathLike) -> Path:
    """``path`` if it names a table format this package reads and a file this process can open; else
    :class:`InputError` saying why (unknown type, no such file, a directory, no permission).
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a file")
    table_format(p)
    if p.exists() and not p.is_file():
        raise InputError(f"{p}: is not a regular file")
    try:
        with open(p, "rb"):
            pass
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot be read ({exc.strerror})") from exc
    return p


@dataclasses.dataclass(frozen=True)
class _Claim:
    """A path as the file system sees it: the real path, and the inodes of the file or of the directory's files."""

    path: Path
    real: Path
    inodes: frozenset[tuple[int, int]]

    @classmethod
    def of(cls, path: PathLike) -> _Claim:
        real = Path(os.path.realpath(os.fspath(path)))
        inodes: set[tuple[int, int]] = set()
        try:
            if real.is_dir():
                with os.scandir(real) as it:
                    for entry in itertools.islice(it, MAX_DIR_ENTRIES):
                        if entry.is_file():
                            st = entry.stat()
                            inodes.add((st.st_dev, st.st_ino))
            elif real.exists():
                st = real.stat()
                inodes.add((st.st_dev, st.st_ino))
        except OSError:  # unreadable: its real path is still compared
            pass
        return cls(Path(path), real, frozenset(inodes))

    def clash(self, other: _Claim) -> str | None:
        """How writing ``self`` would touch ``other``, or None when the two are apart."""
        if self.real == other.real or self.inodes & other.inodes:
            return "is the same file as"
        if other.real in self.real.parents:
            return "lies inside"
        if self.real in other.real.parents:
            return "holds"
        return None


def check_outputs(files: Iterable[PathLike | None], inputs: Iterable[PathLike | None],
                  dirs: Iterable[PathLike | None] = ()) -> None:
    """Refuse, before anything is written, outputs that would destroy an input or one another.

    ``files`` are files a job writes or replaces, ``dirs`` directories it writes into, ``inputs`` the files and
    directories it reads (None entries are skipped). Raises :class:`~qcy_match.errors.OutputError` naming the output
    when a file output is a directory (``--out .``) or sits under a file, a directory output is a file, an output is
    not writable, or an output is, lies inside or holds an input or another output (links and hard links included).
    """
    outs = [(Path(p), False) for p in files if p is not None] + [(Path(p), True) for p in dirs if p is not None]
    for path, is_dir in outs:
        _check_shape(path, is_dir)
    claims = [_Claim.of(p) for p, _ in outs]
    read = [_Claim.of(p) for p in inputs if p is not None]
    for claim in claims:
        for other in read:
            how = claim.clash(other)
            if how:
                raise OutputError(f"{claim.path}: {how} the input {other.path}; write the output elsewhere")
    for a, b in itertools.combinations(claims, 2):
        how = a.clash(b)
        if how:
            raise OutputError(f"{a.path}: {how} the output {b.path}; give the outputs different places")


def output_dir(path: PathLike) -> Path:
    """``path`` if a directory can be written there (see :func:`check_outputs`), else :class:`OutputError`."""
    _check_shape(Path(path), True)
    return Path(path)


def output_table(path: PathLike) -> str:
    """The table format of ``path`` if a table can be written there (see :func:`check_outputs`), else
    :class:`OutputError` (a directory, an unknown extension, no permission).
    """
    _check_shape(Path(path), False)
    try:
        return table_format(path)
    except InputError as exc:
        raise OutputError(str(exc)) from exc


def _check_shape(path: Path, is_dir: bool) -> None:
    """Refuse a file output that is a directory, a directory output that is a file, and an unwritable place."""
    if not is_dir and (path.is_dir() or not path.name):
        raise OutputError(f"{path}: is a directory; give a file name (e.g. {path / 'matches.csv'})")
    if is_dir and path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file, not a directory")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise OutputError(f"{path}: cannot be written (permission denied)")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: cannot be created, {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot be created in {parent} (permission denied)")
