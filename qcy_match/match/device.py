"""Batch matching on a torch device (``device="cuda"``, or ``"cpu"`` for torch's CPU backend in tests).

The default path (:meth:`MatchEngine._match_records`) scores one query at a time with numpy and FAISS. Here a chunk
of queries is scored at once on the device, with the same formulas:

* BM25 as one sparse product: the chunk's query-term counts (chunk × terms, CSR) times the postings matrix
  (terms × positions, CSR, each entry idf · tf / (tf + k1·(1 - b + b·dl/avgdl)), as :mod:`..index.sparse` scores);
* exact dense top-k: one matmul in half precision on a GPU (float32 on the CPU backend), over-fetched and rescored
  in float32, so the half-precision rounding only decides which candidates are rescored;
* filters as a mask on the device, and the fusion of :mod:`.fusion` over each query's candidate pool (the union of
  the BM25 top-``candidates`` and the dense top-``candidates``), batched.

Ties are broken as the default path breaks them, by the lower position: every top-k here ranks an int64 key made
of the score's bits and the position, so equal scores never depend on the device's sort. Scores differ from the
default path's only by float rounding (another summation order), so two records whose scores lie within that
rounding (about 1e-6) may swap: the near-ties ``tests/test_device_path.py`` allows. Against an HNSW or IVF index
(50,000 records and more by default) the dense top-k here is exact where the default path's is approximate, so the
lists can differ there by the approximate search's misses.

Explanations are computed on the host for the final top-k only, exactly as the default path computes them.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import MissingExtraError, UsageError
from ..index.sparse import SparseIndex
from ..progress import bar as progress_bar
from . import confidence
from .explain import EXPLAIN_FIELDS, explain, query_idf
from .fusion import METHODS
from .results import Matches
from .snapshot import Snapshot

if TYPE_CHECKING:
    import torch
    from torch import Tensor  # for nested functions, where `torch` names the module _torch() returned

    from .engine import MatchEngine

DEVICES = ("cpu", "cuda")
# Bytes of device memory one query of a chunk takes per indexed position, at the peak: BM25 and dense scores
# (float32), the sparse product's output (value and column), and the int64 keys of a top-k with their temporaries.
BYTES_PER_CELL = 64
CPU_BUDGET = 1 << 30  # bytes a chunk may take on the CPU backend
GPU_SHARE = 0.5  # of the free device memory a chunk may take
MAX_CHUNK = 4096
_MIN_KEY = -(1 << 62)  # the key of an invalid entry (masked out, or a zero BM25 score): below every real key


def _torch() -> Any:
    """The torch module, or a MissingExtraError saying how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise MissingExtraError("device matching needs the [gpu] extra (torch): pip install torch==2.13.0 for the CPU "
                                "backend, or the CUDA wheel of torch 2.13.0 on a GPU machine") from exc
    return torch


def resolve(device: str | None) -> torch.device | None:
    """The torch device a batch runs on; None for the default numpy/FAISS path.

    ``"cuda"`` (or ``"cuda:N"``) where torch sees no GPU raises :class:`~qcy_match.errors.UsageError`: a job that
    asked for a GPU never falls back to the CPU without saying so.
    """
    if device is None or device in ("", "numpy"):
        return None
    kind = str(device).split(":")[0]
    if kind not in DEVICES:
        raise UsageError(f"device must be one of cpu, cuda (or none for the default path), not {device!r}")
    torch = _torch()
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} was asked for but torch {torch.__version__} sees no GPU (a CPU-only "
                         "wheel, no driver, or CUDA_VISIBLE_DEVICES empty); run without --device for the CPU path")
    return torch.device(device)


# ---- the index on the device -----------------------------------------------------------------------------------
def postings(sparse: SparseIndex) -> sp.csr_matrix:
    """The BM25 postings of every position as a terms × positions CSR matrix of idf · saturated tf, in float32.

    Reads the index's segments through their public arrays, and computes each entry exactly as
    :meth:`SparseIndex.scores` does (float32 idf times the float32 saturation), so a sum over one query's terms
    differs from the default path's only in the order of the additions.
    """
    n_terms = len(sparse.df_)
    avgdl = np.float32(sparse.total_len_ / sparse.n_docs_) if sparse.n_docs_ else np.float32(1)
    k1, b = np.float32(sparse.k1), np.float32(sparse.b)
    idf = np.array([math.log(1 + (sparse.n_docs_ - d + 0.5) / (d + 0.5)) for d in sparse.df_.tolist()],
                   np.float64).astype(np.float32)
    parts = []
    for seg in (sparse.main_, sparse.delta_):
        norm = k1 * ((np.float32(1) - b) + b * seg.lengths / avgdl)
        weight = seg.tf / (norm[seg.docs] + seg.tf)
        indptr = np.concatenate([seg.indptr, np.full(n_terms + 1 - len(seg.indptr), seg.indptr[-1], np.int64)]) \
            if len(seg.indptr) < n_terms + 1 else seg.indptr[:n_terms + 1]
        # The segment's CSC (documents × terms) read as CSR is its transpose, terms × documents.
        m = sp.csr_matrix((weight, seg.docs, indptr), shape=(n_terms, len(seg)))
        # Each row scaled by its term's idf: the same float32 product the default path adds.
        m.data = m.data * np.repeat(idf, np.diff(m.indptr))
        parts.append(m)
    return sp.hstack(parts, format="csr", dtype=np.float32)


@dataclasses.dataclass
class DeviceIndex:
    """One snapshot's postings and vectors on one device, built on first use and kept in ``Snapshot.derived``."""

    device: torch.device
    postings: torch.Tensor  # terms × positions, sparse CSR float32
    vectors: torch.Tensor  # positions × d, float32, for the rescoring
    half: torch.Tensor  # positions × d, float16 on a GPU (the same float32 tensor on the CPU backend)
    alive: torch.Tensor | None  # positions not deleted, or None

    @classmethod
    def of(cls, st: Snapshot, device: torch.device) -> DeviceIndex:
        """The snapshot's index on ``device``, moved there on first use."""
        key = f"device-index:{device}"
        cached: DeviceIndex | None = st.derived.get(key)
        if cached is None:
            torch = _torch()
            m = postings(st.sparse)
            p = _csr(m, device)
            dense = st.dense
            stored = np.vstack([dense.vectors_, dense.delta_]) if len(dense.delta_) else dense.vectors_
            vectors = torch.from_numpy(np.asarray(stored, dtype=np.float32)).to(device)
            half = vectors.half() if device.type == "cuda" else vectors
            alive = None if dense.alive_ is None else torch.from_numpy(dense.alive_).to(device)
            cached = cls(device, p, vectors, half, alive)
            st.derived[key] = cached
        return cached


def chunk_size(device: torch.device, positions: int) -> int:
    """Queries per device chunk: as many as fit in a share of the free device memory (a fixed budget on the CPU)."""
    if device.type == "cuda":
        free, _ = _torch().cuda.mem_get_info(device)
        budget = int(free * GPU_SHARE)
    else:
        budget = CPU_BUDGET
    return int(max(1, min(MAX_CHUNK, budget // (BYTES_PER_CELL * max(1, positions)))))


# ---- scoring a chunk -------------------------------------------------------------------------------------------
def _keys(values: torch.Tensor, index: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """int64 keys ordering by value (descending), then by lower ``index``; invalid entries get the lowest key.

    A float32's bits, read as an int32 and with the negative ones' magnitude bits flipped, order as the floats do.
    """
    torch = _torch()
    bits = (values + 0.0).view(torch.int32).to(torch.int64)  # + 0.0 turns -0.0 into 0.0
    bits = torch.where(bits >= 0, bits, bits ^ 0x7FFFFFFF)
    key = bits * (1 << 32) + ((1 << 32) - 1 - index)
    return torch.where(valid, key, torch.full_like(key, _MIN_KEY))


def _top(values: torch.Tensor, valid: torch.Tensor, k: int, index: torch.Tensor | None = None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row the ``k`` best valid columns (positions in ``index``, or the column numbers), best first, lower
    position on ties; returns (columns, validity).

    One float top-k per row, then the k winners sorted by (value, position); only rows where a tie straddles the
    k-th place (which of the tied records make the cut depends on position) are ranked again by int64 keys
    (:func:`_keys`), which cost several passes over the row.
    """
    torch = _torch()
    v = torch.where(valid, values, -torch.inf)
    kk = min(k + 1, v.shape[1])
    val, col = torch.topk(v, kk, dim=1)
    tied = (val[:, k - 1] == val[:, k]) & (val[:, k - 1] > -torch.inf) if kk > k else None
    val, col = val[:, :k], col[:, :k]
    pos = col if index is None else torch.gather(index, 1, col)
    by_pos = torch.sort(pos, dim=1, stable=True).indices
    val, col = torch.gather(val, 1, by_pos), torch.gather(col, 1, by_pos)
    by_val = torch.sort(val, dim=1, descending=True, stable=True).indices
    val, col = torch.gather(val, 1, by_val), torch.gather(col, 1, by_val)
    ok = val > -torch.inf
    if tied is not None and bool(tied.any()):
        rows = tied.nonzero().squeeze(1)
        sub = values[rows]
        sub_pos = torch.arange(sub.shape[1], device=sub.device).expand_as(sub) if index is None else index[rows]
        top, c = torch.topk(_keys(sub, sub_pos, valid.expand_as(values)[rows]), k, dim=1)
        col[rows], ok[rows] = c, top > _MIN_KEY
    return col, ok


def _bm25(ix: DeviceIndex, q_terms: sp.csr_matrix) -> torch.Tensor:
    """Dense (queries × positions) BM25 scores: the query-term counts times the postings, one sparse product."""
    torch = _torch()
    q = _csr(q_terms, ix.device, ix.postings.col_indices().dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out: Tensor = torch.sparse.mm(q, ix.postings).to_dense()
    return out


def _csr(m: sp.csr_matrix, device: torch.device, index_dtype: Any = None) -> Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor on ``device``: int32 indices where they fit (cuSPARSE's
    native width, half the memory of int64), else int64; ``index_dtype`` matches another operand's.
    """
    torch = _torch()
    if index_dtype is None:
        index_dtype = torch.int32 if max(m.nnz, *m.shape) < 2**31 - 1 else torch.int64
    width = np.int32 if index_dtype == torch.int32 else np.int64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        out: Tensor = torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(width)),
                                              torch.from_numpy(m.indices.astype(width)),
                                              torch.from_numpy(m.data.astype(np.float32)), size=m.shape,
                                              device=device)
    return out


def _fuse(sparse: torch.Tensor, dense: torch.Tensor, valid: torch.Tensor, dense_weight: float, method: str,
          rrf_k: float = 60.0) -> torch.Tensor:
    """:func:`.fusion.fuse` over each row's valid entries (the row's candidate pool)."""
    torch = _torch()
    if method == "rrf":
        def ranks(x: Tensor) -> Tensor:
            order = torch.sort(-torch.where(valid, x, -torch.inf), dim=1, stable=True).indices
            r = torch.empty_like(order)
            r.scatter_(1, order, torch.arange(1, x.shape[1] + 1, device=x.device).expand_as(order))
            return r.to(torch.float32)
        return (1 - dense_weight) / (rrf_k + ranks(sparse)) + dense_weight / (rrf_k + ranks(dense))
    if method not in METHODS:
        raise ValueError(f"unknown fusion {method!r}; choose one of {', '.join(METHODS)}")
    top = torch.where(valid, sparse, 0.0).amax(dim=1, keepdim=True)
    s = torch.where(top > 0, sparse / torch.where(top > 0, top, 1.0), 0.0)
    lo = torch.where(valid, dense, torch.inf).amin(dim=1, keepdim=True)
    hi = torch.where(valid, dense, -torch.inf).amax(dim=1, keepdim=True)
    span = hi - lo
    flat = span < 1e-9
    d = torch.where(flat, 0.0, (dense - lo) / torch.where(flat, 1.0, span))
    return (1 - dense_weight) * s + dense_weight * d


@dataclasses.dataclass
class _Chunk:
    """One chunk's final top-k on the host: positions (-1 pads), fused, BM25 and dense scores, 1-based ranks in each
    signal's top list (0: not in it).
    """

    pos: np.ndarray
    fused: np.ndarray
    bm25: np.ndarray
    dense: np.ndarray
    bm25_rank: np.ndarray
    dense_rank: np.ndarray


def score_chunk(ix: DeviceIndex, q_terms: sp.csr_matrix, q_vecs: np.ndarray, mask: torch.Tensor | None, k: int,
                pool: int, dense_weight: float, method: str) -> _Chunk:
    """The fused top-``k`` of a chunk of queries, as :meth:`MatchEngine._match_records` computes it."""
    torch = _torch()
    n = ix.vectors.shape[0]
    keep = torch.ones(n, dtype=torch.bool, device=ix.device) if mask is None else mask
    if ix.alive is not None:
        keep = keep & ix.alive
    q = torch.from_numpy(np.array(q_vecs, dtype=np.float32)).to(ix.device)  # a copy: torch wants it writable
    # BM25: the top `pool` kept positions that score above zero.
    s_all = _bm25(ix, q_terms)
    s_col, s_ok = _top(s_all, keep & (s_all > 0), pool)
    # Dense: the top `pool` kept positions, fetched in half precision with a margin and rescored in float32. On the
    # CPU backend the product is float32 already, so it is its own rescoring and no margin is needed.
    exact = ix.half.dtype == torch.float32
    full = (q.to(ix.half.dtype) @ ix.half.T).float()

    def dense_at(cols: Tensor) -> Tensor:
        return torch.gather(full, 1, cols) if exact else torch.einsum("bd,bcd->bc", q, ix.vectors[cols])

    fetch = min(n, pool if exact else pool + max(32, pool))
    # Exact ties (a query without known words has one dense score for all) go to the lower position here too.
    f_col, _ = _top(full, keep.expand(len(q), -1), fetch)
    f_val = dense_at(f_col)
    f_ok = keep[f_col]
    pick, d_ok = _top(f_val, f_ok, min(pool, fetch), index=f_col)
    d_col = torch.gather(f_col, 1, pick)
    # The candidate pool: the union of both lists, as sorted positions (duplicates and padding marked invalid).
    cand = torch.cat([torch.where(s_ok, s_col, n), torch.where(d_ok, d_col, n)], dim=1)
    cand = torch.sort(cand, dim=1).values
    valid = cand < n
    valid[:, 1:] &= cand[:, 1:] != cand[:, :-1]
    safe = torch.where(valid, cand, 0)
    sparse = torch.gather(s_all, 1, safe)
    del s_all
    dense = dense_at(safe)
    fused = _fuse(sparse, dense, valid, dense_weight, method)
    pick, ok = _top(fused, valid, min(k, cand.shape[1]), index=safe)
    best = torch.gather(safe, 1, pick)

    def rank_in(top: Tensor, ok_top: Tensor) -> Tensor:
        hit = (best[:, :, None] == top[:, None, :]) & ok_top[:, None, :]
        return torch.where(hit.any(dim=2), hit.to(torch.int8).argmax(dim=2) + 1, 0)

    out = _Chunk(torch.where(ok, best, -1).cpu().numpy(), torch.gather(fused, 1, pick).cpu().numpy(),
                 torch.gather(sparse, 1, pick).cpu().numpy(), torch.gather(dense, 1, pick).cpu().numpy(),
                 rank_in(s_col, s_ok).cpu().numpy(), rank_in(d_col, d_ok).cpu().numpy())
    return out


def query_terms(sparse: SparseIndex, tokens: list[list[str]]) -> sp.csr_matrix:
    """Queries × terms counts of the indexed terms (a repeated token counts again, as in the default path)."""
    n_terms = len(sparse.df_)
    rows, cols = [], []
    for i, toks in enumerate(tokens):
        for w in toks:
            t = sparse.vocab_.get(w)
            if t is not None and t < n_terms:
                rows.append(i)
                cols.append(t)
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(tokens), n_terms))
    m.sum_duplicates()
    if sparse.n_docs_ == 0:
        m = m * 0
    return m


# ---- the batch -------------------------------------------------------------------------------------------------
def match_records(engine: MatchEngine, st: Snapshot, recs: pd.DataFrame, k: int, mask: np.ndarray | None,
                  explain_matches: bool, show_progress: bool, device: torch.device) -> Matches:
    """:meth:`MatchEngine._match_records` on ``device``: the same results, up to near-ties (module docstring)."""
    torch = _torch()
    n = len(recs)
    idx = np.full((n, k), -1, np.int64)
    scores = np.full((n, k), np.nan, np.float32)
    expl: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    evidence: list[confidence.Evidence] = []
    pool = min(max(engine.config.candidates, k), len(st.ids))
    texts = engine._texts(recs)
    doc_fields = st.explain_fields if explain_matches else {}
    ix = DeviceIndex.of(st, device)
    # A copy: filter masks are read-only, and torch wants writable arrays.
    mask_t = None if mask is None else torch.from_numpy(np.array(mask, dtype=bool)).to(device)
    step = chunk_size(device, ix.vectors.shape[0])
    bar = progress_bar(total=n, desc=f"match ({device})", enabled=show_progress, unit="query")
    with torch.inference_mode():
        for start in range(0, n, step):
            chunk = slice(start, min(n, start + step))
            q_tokens, q_vecs = engine._query_side(recs.iloc[chunk], texts[chunk])
            got = score_chunk(ix, query_terms(st.sparse, q_tokens), q_vecs, mask_t, k, pool,
                              engine.config.dense_weight, engine.config.fusion)
            ok = got.pos >= 0
            live = got.pos if st.to_live is None else np.where(ok, st.to_live[np.maximum(got.pos, 0)], -1)
            idx[chunk] = live
            scores[chunk] = np.where(ok, got.fused, np.nan)
            q_bg = confidence.background(st).stats(q_vecs)
            evidence += [(toks, [_signals(got, j, r) for r in range(k) if live[j, r] >= 0], q_bg[j])
                         for j, toks in enumerate(q_tokens)]
            if explain_matches:
                q_fields = {c: recs[c].iloc[chunk].to_numpy(dtype=object) for c in EXPLAIN_FIELDS}
                for j, toks in enumerate(q_tokens):
                    q = {c: v[j] for c, v in q_fields.items()}
                    # Shared keywords are query tokens, so their IDF looked up once per query gives the same values
                    # as the index's IDF view at a fraction of the cost (that view resolves each term anew).
                    idf = query_idf(st.sparse.idf_, toks)
                    expl[start + j] = [
                        explain(q, {c: v[d] for c, v in doc_fields.items()}, toks, st.tokens[d], idf,
                                _signals(got, j, r), engine.config.n_keywords)
                        for r, d in enumerate(live[j]) if d >= 0]
            bar.update(chunk.stop - chunk.start)
    bar.close()
    return engine._batch_matches(st, recs, idx, scores, expl if explain_matches else [], evidence)


def _signals(got: _Chunk, row: int, r: int) -> dict[str, Any]:
    """The per-match signals of an explanation, as the default path reports them."""
    return {"bm25_score": round(float(got.bm25[row, r]), 4), "bm25_rank": int(got.bm25_rank[row, r]) or None,
            "dense_score": round(float(got.dense[row, r]), 4), "dense_rank": int(got.dense_rank[row, r]) or None}
