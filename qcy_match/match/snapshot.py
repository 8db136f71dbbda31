"""An engine's searchable state as an immutable snapshot, and the copy-on-write steps that change it.

Readers take one snapshot and use only it, so a query never sees half an update; writers build a new snapshot
from the current one and publish it with one reference assignment. Records have two numberings:

* *live index*: position in ``records`` (what :class:`~qcy_match.results.Matches` reports), live records only;
* *position*: the BM25 and vector segments' numbering, main segment first, then the delta, deleted ones included.

Live order is position order restricted to live positions, so ``live`` (live index → position) is increasing and
ties broken by the lower position are broken by the lower live index: the order a fresh build over ``records``
would give.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ..index.dense import DenseIndex
from ..index.sparse import SparseIndex
from ..index.terms import TermLists
from .explain import EXPLAIN_FIELDS
from .filters import FilterIndex, partition_labels

# The delta segments are searched exactly, and deleted positions cost memory and scan time, so they are merged into
# a fresh main segment once they pass this size (the larger of the two bounds).
COMPACT_MIN = 2_000
COMPACT_FRACTION = 0.10


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Live records and their indexes; never mutated after construction."""

    records: pd.DataFrame
    tokens: TermLists  # the BM25 index's terms: tokens.vocab is sparse.vocab_
    ids: np.ndarray
    sparse: SparseIndex
    dense: DenseIndex

    @cached_property
    def live(self) -> np.ndarray | None:
        """Live index → position, or None when every position is live."""
        return None if self.dense.alive_ is None else np.flatnonzero(self.dense.alive_)

    @cached_property
    def to_live(self) -> np.ndarray | None:
        """Position → live index (-1 for deleted positions), or None when they coincide."""
        if self.live is None:
            return None
        out = np.full(len(self.dense), -1, np.int64)
        out[self.live] = np.arange(len(self.live))
        return out

    @cached_property
    def explain_fields(self) -> dict[str, np.ndarray]:
        """The columns explanations read, as object arrays: row look-ups in a DataFrame cost microseconds each."""
        return {c: self.records[c].to_numpy(dtype=object) for c in EXPLAIN_FIELDS}

    @cached_property
    def filters(self) -> FilterIndex:
        """Filter masks over the live records, grouped by distinct value and cached (see FilterIndex)."""
        return FilterIndex(self.records)

    @cached_property
    def derived(self) -> dict[str, Any]:
        """Tables other stages derive from these records, by name, built once per snapshot (e.g. owner tables)."""
        return {}

    @cached_property
    def id_index(self) -> pd.Index:
        """Id → live index lookups."""
        return pd.Index(self.ids)

    def positions(self, keep: np.ndarray | None) -> np.ndarray | None:
        """A mask over live records as a mask over positions (deleted ones off); None keeps every position."""
        if self.live is None:
            return keep
        out = np.zeros(len(self.dense), bool)
        out[self.live] = True if keep is None else keep
        return out

    def check(self) -> None:
        """Raise if the parts disagree (a bug, or files from different indexes)."""
        n = len(self.records)
        if self.tokens.vocab is not self.sparse.vocab_:
            raise ValueError("token lists and BM25 index number their terms differently")
        if not (n == len(self.tokens) == len(self.ids) == self.sparse.n_docs_
                and len(self.sparse) == len(self.dense)
                and (self.live is None or len(self.live) == n)):
            raise ValueError(f"record counts disagree: {n} records, {len(self.tokens)} token lists, "
                             f"{self.sparse.n_docs_} BM25 documents, {len(self.dense)} vector positions")

    def needs_compaction(self) -> bool:
        """Whether the delta and the deleted positions have grown past the merge bound."""
        extra = len(self.dense.delta_) + (len(self.dense) - len(self.records))
        return extra > max(COMPACT_MIN, COMPACT_FRACTION * len(self.records))


def changed(st: Snapshot, delete_live: np.ndarray, add: pd.DataFrame, add_tokens: Sequence[Sequence[str]],
            add_vectors: np.ndarray) -> Snapshot:
    """A snapshot without the live records ``delete_live`` and with ``add`` appended."""
    delete_live = np.unique(np.asarray(delete_live, dtype=np.int64))
    gone = delete_live if st.live is None else st.live[delete_live]
    keep = np.ones(len(st.records), bool)
    keep[delete_live] = False
    records = pd.concat([st.records[keep], add], ignore_index=True) if len(add) else \
        st.records[keep].reset_index(drop=True)
    tokens = st.tokens.select(keep).extended(add_tokens)
    ids = np.concatenate([st.ids[keep], add["id"].astype(str).to_numpy(dtype=object)]) if len(add) else st.ids[keep]
    new = Snapshot(records, tokens, ids,
                   st.sparse.updated(add_tokens, gone),
                   st.dense.updated(add_vectors if len(add) else None, gone))
    new.check()
    return new


def compacted(st: Snapshot) -> Snapshot:
    """The same live records with fresh main segments: what a fresh build over ``st.records`` holds."""
    if st.live is None and not len(st.dense.delta_):
        return st
    tokens = st.tokens.renumbered()  # the vocabulary of a fresh build: deleted records' terms drop out
    sparse = SparseIndex(st.sparse.k1, st.sparse.b).fit(tokens)
    return Snapshot(st.records, tokens, st.ids, sparse, st.dense.compacted(partition_labels(st.records)))
