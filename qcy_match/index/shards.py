"""What shards of one corpus share: which shard holds an id, and the corpus-wide BM25 statistics.

A sharded index scores every shard with the statistics of the whole corpus (document count, total length, the
document frequency of each term), as Elasticsearch's ``dfs_query_then_fetch`` does, so a shard's BM25 scores are
the scores an unsharded index gives the same documents, and the per-shard top lists merge into the unsharded one.

:class:`CorpusStats` holds those statistics over a global vocabulary and is kept exact under live updates: a shard
that changes reports its old and new :class:`~qcy_match.index.sparse.SparseIndex`, and the difference of their
local statistics is applied (:meth:`CorpusStats.updated`). :func:`scoring_view` is the one place that makes a
shard's index score with them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from .sparse import SparseIndex, Stats

# The files of a sharded index's top level, beside its manifest.
STATS_TERMS = "stats_terms.json"  # the global vocabulary, in global term-id order
STATS_DF = "stats_df.npy"  # the document frequency of each global term (int64)
ROUTING = "blake2b-64 of the UTF-8 id, modulo the shard count"


def shard_of(ids: Iterable[str], shards: int) -> np.ndarray:
    """The shard of each id: a stable hash (the same in every process, Python version and machine), so a live
    update finds the shard holding an id from the id alone.
    """
    if shards < 1:
        raise ValueError(f"the shard count must be at least 1, not {shards}")
    return (id_hash(ids) % np.uint64(shards)).astype(np.int64)


def id_hash(ids: Iterable[str]) -> np.ndarray:
    """A stable 64-bit hash of each id (the same in every process, Python version and machine)."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(str(i).encode("utf-8"), digest_size=8).digest(), "little")
                        for i in ids), dtype=np.uint64)


@dataclasses.dataclass(frozen=True)
class CorpusStats:
    """Corpus-wide BM25 statistics: document count, total length and per-term document frequencies.

    ``terms`` maps a term to its global id and is only ever appended to (updates share it), so an older instance
    ignores ids beyond its own ``df``, as :class:`~qcy_match.index.sparse.SparseIndex` does with its vocabulary.
    """

    terms: dict[str, int]
    df: np.ndarray
    n_docs: int
    total_len: float

    @classmethod
    def of(cls, parts: Sequence[SparseIndex]) -> CorpusStats:
        """The sum of the shards' own statistics."""
        terms: dict[str, int] = {}
        for sp in parts:
            for t in sp.vocab_:
                terms.setdefault(t, len(terms))
        df = np.zeros(len(terms), np.int64)
        for sp in parts:
            df[term_map(sp, terms)] += sp.df_
        return cls(terms, df, sum(sp.n_docs_ for sp in parts), float(sum(sp.total_len_ for sp in parts)))

    @classmethod
    def empty(cls) -> CorpusStats:
        """The statistics of no documents (add shards with :meth:`plus`)."""
        return cls({}, np.zeros(0, np.int64), 0, 0.0)

    def plus(self, part: SparseIndex) -> CorpusStats:
        """These statistics with one more shard's added (one shard in memory at a time)."""
        return self.updated(SparseIndex().fit([]), part)

    def updated(self, old: SparseIndex, new: SparseIndex) -> CorpusStats:
        """The statistics after one shard's index changed from ``old`` to ``new``."""
        m_new = term_map(new, self.terms)  # adds the new terms to the shared vocabulary
        df = np.zeros(len(self.terms), np.int64)
        df[: len(self.df)] = self.df
        df[term_map(old, self.terms)] -= old.df_
        df[m_new] += new.df_
        return CorpusStats(self.terms, df, self.n_docs - old.n_docs_ + new.n_docs_,
                           self.total_len - old.total_len_ + new.total_len_)

    # ---- persistence --------------------------------------------------------------------------------------------
    def save(self, path: Path) -> list[str]:
        """Write the vocabulary (JSON) and the document frequencies (``.npy``, no pickle); returns the file names."""
        terms = sorted(self.terms, key=self.terms.__getitem__)[: len(self.df)]
        (path / STATS_TERMS).write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
        np.save(path / STATS_DF, np.asarray(self.df, np.int64), allow_pickle=False)
        return [STATS_TERMS, STATS_DF]

    @classmethod
    def load(cls, path: Path, n_docs: int, total_len: float) -> CorpusStats:
        """Read what :meth:`save` wrote; the counts come from the manifest."""
        terms = json.loads((path / STATS_TERMS).read_text(encoding="utf-8"))
        df = np.load(path / STATS_DF, allow_pickle=False)
        if (not isinstance(terms, list) or df.ndim != 1 or len(df) != len(terms) or df.dtype.kind != "i"
                or (len(df) and int(df.min()) < 0)):
            raise ValueError(f"{STATS_TERMS} and {STATS_DF} disagree")
        return cls({str(t): i for i, t in enumerate(terms)}, df.astype(np.int64), n_docs, total_len)

    def agrees_with(self, parts: Sequence[SparseIndex]) -> bool:
        """Whether these are the sums of the shards' own statistics (a loaded index is checked with this)."""
        fresh = CorpusStats.of(parts)
        if fresh.n_docs != self.n_docs or abs(fresh.total_len - self.total_len) > 0.5:
            return False
        mine = {t: int(self.df[i]) for t, i in self.terms.items() if i < len(self.df) and self.df[i]}
        theirs = {t: int(fresh.df[i]) for t, i in fresh.terms.items() if fresh.df[i]}
        return mine == theirs


class CorpusIdf(Mapping[str, float]):
    """IDF of every term of the corpus under its statistics (what one shard's own view cannot give: terms of other
    shards). Terms no live document holds are absent, as in :attr:`SparseIndex.idf_`.
    """

    def __init__(self, stats: CorpusStats) -> None:
        self._stats = stats
        self._bm25 = Stats(stats.df, stats.n_docs, stats.total_len / stats.n_docs if stats.n_docs else 1.0)

    def __getitem__(self, term: str) -> float:
        t = self._stats.terms.get(term)
        if t is None or t >= len(self._stats.df) or self._stats.df[t] == 0:
            raise KeyError(term)
        return self._bm25.idf(t)

    def __iter__(self) -> Iterator[str]:
        return (w for w, t in list(self._stats.terms.items()) if t < len(self._stats.df) and self._stats.df[t] > 0)

    def __len__(self) -> int:
        return int((self._stats.df > 0).sum())


def term_map(sparse: SparseIndex, terms: dict[str, int]) -> np.ndarray:
    """The global id of each of ``sparse``'s term ids (up to its ``df_``), adding unknown terms to ``terms``."""
    local = list(sparse.vocab_)[: len(sparse.df_)]  # a dict keeps insertion order: local id order
    return np.fromiter((terms.setdefault(t, len(terms)) for t in local), dtype=np.int64, count=len(local))


def scoring_view(sparse: SparseIndex, stats: CorpusStats, global_ids: np.ndarray) -> SparseIndex:
    """``sparse`` scoring with the corpus-wide ``stats`` (``global_ids``: :func:`term_map` of ``sparse``).

    The view is for queries and explanations only (its counts are the corpus's, not the shard's); updates go to
    ``sparse`` itself. The one place where statistics are injected into a shard's BM25.
    """
    view = sparse.with_stats(stats.df[global_ids], stats.n_docs,
                             stats.total_len / stats.n_docs if stats.n_docs else 1.0)
    view.n_docs_ = stats.n_docs  # what readers of the corpus size (the confidence's features) see
    return view
