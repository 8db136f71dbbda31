"""Query-side logic: what of a query the dense encoder reads, and the BM25 scores of its terms.

A need written in the buyer's words ("注塑件表面老有凹坑，客户总投诉") shares few terms with the achievement that
answers it, and its title alone (what the index side's dense encoder reads in ``dense_text="title"`` mode) says
less than its description. So a query's dense vector reads its whole text (``EngineConfig.query_dense_text``), and
BM25 can add terms from the query's own best documents (RM3-style pseudo-relevance feedback,
``EngineConfig.prf_docs``). Both are query-side only: the index is built the same way whatever they are set to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from ..config import EngineConfig
from ..index.sparse import SparseIndex
from ..index.topk import top_k

DENSE_TEXTS = ("full", "index")


def dense_input(config: EngineConfig, texts: list[str], tokenize: Callable[[str], list[str]],
                as_indexed: Callable[[], tuple[list[str], list[list[str]]]]) -> tuple[list[str], list[list[str]]]:
    """Texts and tokens the dense encoder reads of a query batch.

    ``"full"``: the query's whole matching text (title, keywords, description), since a query is one text compared
    with many, and a short title-only record asks the same either way; ``"index"``: what the index side reads
    (``as_indexed()``, e.g. titles only under ``dense_text="title"``). ``tokenize`` cuts texts as the index side
    cuts what its encoder reads, so a title-only query is encoded exactly as before in either mode.
    """
    if config.query_dense_text == "full":
        return texts, [tokenize(t) for t in texts]
    if config.query_dense_text != "index":
        raise ValueError(f"query_dense_text must be one of {', '.join(DENSE_TEXTS)}, "
                         f"not {config.query_dense_text!r}")
    return as_indexed()


def term_scores(sparse: SparseIndex, weights: dict[str, float]) -> np.ndarray:
    """BM25 scores of every position for weighted query terms: sum of weight × the term's own BM25 score."""
    out = np.zeros(len(sparse), dtype=np.float32)
    for term, w in weights.items():
        out += np.float32(w) * sparse.scores([term])
    return out


def expansion(sparse: SparseIndex, scores: np.ndarray, doc_tokens: Callable[[int], Sequence[str]], n_docs: int,
              n_terms: int) -> dict[str, float]:
    """RM3's feedback model: terms of the ``n_docs`` best-scoring positions, each weighted by the sum over those
    documents of (document's share of their scores) × (term's share of the document) × IDF, the ``n_terms``
    heaviest, normalised to sum 1. IDF keeps the feedback documents' common words (研究, 方法) out.

    ``doc_tokens(position)`` gives a position's tokens; single characters are left out, as keywords leave them out.
    """
    top, val = top_k(scores, n_docs)
    keep = val > 0
    top, val = top[keep], val[keep]
    if len(top) == 0:
        return {}
    idf = sparse.idf_
    share = val / val.sum()
    model: dict[str, float] = {}
    for pos, p in zip(top, share, strict=True):
        toks = [t for t in doc_tokens(int(pos)) if len(t) > 1]
        if not toks:
            continue
        for term, c in Counter(toks).items():
            model[term] = model.get(term, 0.0) + float(p) * c / len(toks) * idf.get(term, 0.0)
    best = sorted(model.items(), key=lambda kv: (-kv[1], kv[0]))[:n_terms]
    total = sum(w for _, w in best)
    return {t: w / total for t, w in best if w > 0} if total > 0 else {}


def sparse_scores(sparse: SparseIndex, tokens: list[str], config: EngineConfig,
                  doc_tokens: Callable[[int], Sequence[str]]) -> np.ndarray:
    """A query's BM25 scores over every position; with ``config.prf_docs`` > 0, interpolated with those of its
    feedback terms (RM3): (1 - w)·BM25(query) + w·|query|·BM25(feedback model), w = ``config.prf_weight``.

    Without feedback this is exactly :meth:`SparseIndex.scores` (one pass, no per-term loop).
    """
    first = sparse.scores(tokens)
    if config.prf_docs <= 0 or config.prf_weight <= 0 or not tokens:
        return first
    model = expansion(sparse, first, doc_tokens, config.prf_docs, config.prf_terms)
    if not model:
        return first
    w = config.prf_weight
    size = float(len(tokens))
    return np.float32(1 - w) * first + term_scores(sparse, {t: w * size * p for t, p in model.items()})


def sparse_top(sparse: SparseIndex, tokens: list[str], k: int, mask: np.ndarray | None, also: np.ndarray,
               config: EngineConfig, doc_tokens: Callable[[int], Sequence[str]]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What :meth:`SparseIndex.top` gives (the ``k`` best positions above zero among ``mask``, their scores, and the
    scores of ``also``) for :func:`sparse_scores`: the index's own pruned search when feedback is off.
    """
    if config.prf_docs <= 0 or config.prf_weight <= 0:
        return sparse.top(tokens, k, mask, also=also, budget=config.sparse_budget)
    s = sparse_scores(sparse, tokens, config, doc_tokens)
    kept = s if mask is None else np.where(mask, s, np.float32(0))
    j, v = top_k(kept, k)
    keep = v > 0
    return j[keep], v[keep], s[also]


def sparse_top_many(sparse: SparseIndex, tokens: Sequence[list[str]], k: int, mask: np.ndarray | None,
                    also: Sequence[np.ndarray], config: EngineConfig, doc_tokens: Callable[[int], Sequence[str]]
                    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`sparse_top` of each query of a chunk: scored together (:meth:`SparseIndex.top_many`) when feedback is
    off, one by one otherwise (the feedback terms of a query depend on its own first scores).
    """
    if config.prf_docs <= 0 or config.prf_weight <= 0:
        return sparse.top_many(tokens, k, mask, also, budget=config.sparse_budget)
    return [sparse_top(sparse, t, k, mask, a, config, doc_tokens) for t, a in zip(tokens, also, strict=True)]
