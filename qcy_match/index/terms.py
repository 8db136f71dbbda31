"""Every record's token list as term ids in two arrays, instead of a Python list of strings per record.

At a million records the lists of strings cost several GiB (a pointer per token and a list object per record) and
every full garbage collection walked them; as one int32 array of term ids with int64 offsets they cost 4 bytes a
token, and a saved index maps them from disk instead of reading them (see :meth:`TermLists.load`).

Term ids are those of a vocabulary ``dict`` that only ever grows, with ids given in insertion order (``vocab[t] ==
position of t in the dict``), so the dict's key order is the id → term table. The BM25 index shares the same dict
(:class:`~qcy_match.index.sparse.SparseIndex`), so one vocabulary serves both and a saved index stores it once.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np

from ..persistence import LAYOUT
from .mapped import mode, within

Vocabulary = dict[str, int]


def ranges(start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Indices of the ranges [start, start + length) one after another (the entries of some rows of a CSR layout)."""
    ends = np.cumsum(length)
    return np.repeat(start - ends + length, length) + np.arange(int(ends[-1]) if len(ends) else 0)


def term_ids(tokens: Iterable[str], vocab: Vocabulary) -> list[int]:
    """The ids of tokens, giving new terms the next ids."""
    return [vocab.setdefault(t, len(vocab)) for t in tokens]


class TermLists(Sequence[list[str]]):
    """Token lists (read back as lists of strings) stored as term ids: ``ids[offsets[i]:offsets[i + 1]]`` are the
    ids of list ``i``. Immutable: :meth:`select` and :meth:`extended` return new instances sharing the vocabulary.
    """

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, vocab: Vocabulary) -> None:
        self.ids = ids
        self.offsets = offsets
        self.vocab = vocab
        self._terms: list[str] = []

    @classmethod
    def of(cls, lists: Iterable[Sequence[str]], vocab: Vocabulary | None = None) -> TermLists:
        """Token lists as term ids under ``vocab`` (a new vocabulary when None; new terms are added to it)."""
        vocab = {} if vocab is None else vocab
        ids, lengths = array("i"), array("q", [0])
        for tokens in lists:
            ids.extend(term_ids(tokens, vocab))
            lengths.append(len(tokens))
        return cls(np.frombuffer(ids, np.int32) if len(ids) else np.zeros(0, np.int32),
                   np.cumsum(np.frombuffer(lengths, np.int64)), vocab)

    @classmethod
    def joined(cls, parts: Sequence[TermLists], vocab: Vocabulary) -> TermLists:
        """The lists of ``parts`` (all under ``vocab``) one after another."""
        if not parts:
            return cls(np.zeros(0, np.int32), np.zeros(1, np.int64), vocab)
        if any(p.vocab is not vocab for p in parts):
            raise ValueError("joined token lists must share one vocabulary")
        bases = np.cumsum([0] + [int(p.offsets[-1]) for p in parts[:-1]])
        offsets = np.concatenate([np.zeros(1, np.int64)] + [p.offsets[1:] - p.offsets[0] + b
                                                            for p, b in zip(parts, bases, strict=True)])
        ids = np.concatenate([np.asarray(p.ids[p.offsets[0]:p.offsets[-1]]) for p in parts])
        return cls(ids.astype(np.int32, copy=False), offsets, vocab)

    # ---- reading ------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        """Tokens per list."""
        return np.diff(self.offsets)

    def terms(self) -> list[str]:
        """The id → term table (a prefix of the vocabulary, refreshed when it has grown)."""
        if len(self._terms) < len(self.vocab):
            # The vocabulary only grows, so the old table stays a prefix; a writer adding terms while this reads
            # would change the dict's size mid-iteration, so read again until one pass completes.
            for _ in range(8):
                try:
                    self._terms = self._terms + list(itertools.islice(self.vocab, len(self._terms), None))
                    break
                except RuntimeError:
                    continue
        return self._terms

    def row(self, i: int) -> np.ndarray:
        """The term ids of list ``i``."""
        return np.asarray(self.ids[self.offsets[i]:self.offsets[i + 1]])

    @overload
    def __getitem__(self, i: int) -> list[str]: ...

    @overload
    def __getitem__(self, i: slice) -> list[list[str]]: ...

    def __getitem__(self, i: int | slice) -> list[str] | list[list[str]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        j = int(i) + n if i < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"token list {i} of {n}")
        terms = self.terms()
        return [terms[t] for t in self.row(j).tolist()]

    def __iter__(self) -> Iterator[list[str]]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same token lists."""
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == list(b) for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable-looking sequence: equal by content, not hashable

    # ---- changing (new instances) -------------------------------------------------------------------------------
    def renumbered(self) -> TermLists:
        """The same lists under a new vocabulary of only the terms they hold, numbered in order of first
        appearance: the vocabulary a fresh index of these lists builds (terms of deleted records drop out).
        """
        ids = np.asarray(self.ids[self.offsets[0]:self.offsets[-1]])
        used, first = np.unique(ids, return_index=True)
        order = np.argsort(first, kind="stable")
        new_id = np.zeros(len(self.vocab), np.int32)
        new_id[used[order]] = np.arange(len(used), dtype=np.int32)
        terms = self.terms()
        vocab = {terms[t]: j for j, t in enumerate(used[order].tolist())}
        return TermLists(new_id[ids], self.offsets - self.offsets[0], vocab)

    def select(self, keep: np.ndarray) -> TermLists:
        """The lists where the boolean mask ``keep`` is set, in order."""
        keep = np.asarray(keep, bool)
        if keep.all():
            return self
        lengths = self.lengths()[keep]
        ids = np.asarray(self.ids)[ranges(self.offsets[:-1][keep], lengths)]
        return TermLists(ids, np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths)]), self.vocab)

    def extended(self, lists: Iterable[Sequence[str]]) -> TermLists:
        """These lists followed by ``lists`` (new terms join the shared vocabulary)."""
        more = TermLists.of(lists, self.vocab)
        return TermLists.joined([self, more], self.vocab) if len(more) else self

    # ---- persistence --------------------------------------------------------------------------------------------
    def save(self, path: Path) -> list[str]:
        """Write the ids and offsets as :attr:`Layout.term_ids` and :attr:`Layout.term_offsets`."""
        offsets = self.offsets - self.offsets[0]
        np.save(path / LAYOUT.term_ids, np.asarray(self.ids[self.offsets[0]:self.offsets[-1]], np.int32),
                allow_pickle=False)
        np.save(path / LAYOUT.term_offsets, offsets.astype(np.int64), allow_pickle=False)
        return [LAYOUT.term_ids, LAYOUT.term_offsets]

    @classmethod
    def load(cls, path: Path, vocab: Vocabulary, n: int, mmap: bool = True) -> TermLists:
        """What :meth:`save` wrote, for ``n`` lists under ``vocab``; ``mmap`` maps the ids from disk (pages are read
        when an explanation reads a record's terms) instead of reading them.

        Checked before use: offsets start at 0, never decrease and end at the id count, and every id is one of the
        vocabulary's (read in blocks, so checking a mapped file does not read it into memory at once).
        """
        ids = np.load(path / LAYOUT.term_ids, mmap_mode=mode(mmap), allow_pickle=False)
        offsets = np.load(path / LAYOUT.term_offsets, allow_pickle=False)
        if ids.ndim != 1 or ids.dtype != np.int32 or offsets.ndim != 1 or offsets.dtype != np.int64:
            raise ValueError(f"{LAYOUT.term_ids} / {LAYOUT.term_offsets} are not int32 / int64 vectors")
        if len(offsets) != n + 1 or offsets[0] != 0 or offsets[-1] != len(ids) or (np.diff(offsets) < 0).any():
            raise ValueError(f"{LAYOUT.term_offsets} does not describe {n} lists of the {len(ids)} term ids")
        if not within(ids, 0, len(vocab)):
            raise ValueError(f"{LAYOUT.term_ids} holds ids outside the vocabulary of {len(vocab)} terms")
        return cls(ids, offsets, vocab)
