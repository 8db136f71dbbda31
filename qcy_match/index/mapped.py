"""Checks over memory-mapped arrays that leave them mapped but not resident.

An index maps its large arrays from disk, so opening it costs no reading and its resident memory grows only with the
pages searches touch. Checking such an array on load reads every page, and the pages read stay counted in the
process's resident memory until the kernel needs them back; the checks here give them back block by block.
"""

from __future__ import annotations

import mmap
import os
from typing import Literal

import numpy as np

BLOCK = 1 << 24  # entries per block: 64 MiB of int32
# Whether index files are mapped: not on Windows, where a mapped file cannot be removed, and a save replaces an
# index directory (that another process may have open) by renames and removals.
MAPS = os.name != "nt"


def mode(mapped: bool = True) -> Literal["r"] | None:
    """``np.load``'s ``mmap_mode`` for an index array: read-only mapped where the platform allows it."""
    return "r" if mapped and MAPS else None


def within(a: np.ndarray, lo: int, hi: int) -> bool:
    """Whether every entry of the 1-d array ``a`` lies in [lo, hi) (True when empty)."""
    raw = getattr(a, "_mmap", None)
    for s in range(0, len(a), BLOCK):
        part = a[s:s + BLOCK]
        bad = part.min() < lo or part.max() >= hi
        if isinstance(raw, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            # Read-only file pages: dropping them from this process only; the page cache keeps them.
            raw.madvise(mmap.MADV_DONTNEED)
        if bad:
            return False
    return True
