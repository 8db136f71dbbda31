"""Topics: KMeans over the engine's dense vectors, k chosen by silhouette, each topic labelled by c-TF-IDF.

c-TF-IDF treats each cluster as one document: a term's frequency in the cluster (normalised by the cluster's
token count) times log(1 + A / f), where A is the mean token count per cluster and f the term's count over all
clusters, so words common to every topic (技术, 系统) do not make labels.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..text import Tokenizer

logger = logging.getLogger(__name__)


@dataclass
class Topics:
    """Cluster assignment per record and one row per topic."""

    labels: np.ndarray  # topic number per record
    table: pd.DataFrame  # topic, label, size, share, keywords, examples
    k: int
    silhouette: dict[int, float]  # the score of every k tried

    def label_of(self) -> list[str]:
        """The topic label of each record."""
        names = dict(zip(self.table["topic"], self.table["label"], strict=True))
        return [names[int(t)] for t in self.labels]


def choose_k(vectors: np.ndarray, k_range: Sequence[int], seed: int = 0) -> tuple[int, dict[int, float]]:
    """The k of ``k_range`` with the best silhouette (cosine) of seeded KMeans, and every score."""
    from sklearn.metrics import silhouette_score

    scores: dict[int, float] = {}
    for k in k_range:
        if not 2 <= k < len(vectors):
            continue
        labels = _kmeans(vectors, k, seed, n_init=4)
        if len(set(labels)) < 2:
            continue
        with threadpool_limits(1):
            scores[k] = round(float(silhouette_score(vectors, labels, metric="cosine")), 4)
    if not scores:
        return 1, scores
    return max(scores, key=lambda k: (scores[k], -k)), scores


def _kmeans(x: np.ndarray, k: int, seed: int, n_init: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    # One thread: on small inputs OpenMP/BLAS threads only contend (50× slower on a busy 2-core machine).
    with threadpool_limits(1):
        labels: np.ndarray = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(x)
    return labels


def default_k_range(n: int) -> range:
    """From √(n/2) (the usual rule of thumb) up to min(30, n/4): enough topics to tell chains apart, few enough to
    read; silhouette alone drifts to the smallest k on weakly clustered text.
    """
    lo = max(2, int(np.ceil(np.sqrt(n / 2))))
    return range(lo, max(lo, min(30, n // 4)) + 1)


def c_tf_idf(tokens: Sequence[Sequence[str]], labels: np.ndarray, n_words: int = 5) -> dict[int, list[str]]:
    """Top ``n_words`` c-TF-IDF terms of each cluster."""
    counts: dict[int, Counter[str]] = {}
    for toks, lab in zip(tokens, labels, strict=True):
        counts.setdefault(int(lab), Counter()).update(t for t in toks if len(t) > 1)
    total: Counter[str] = Counter()
    for c in counts.values():
        total.update(c)
    mean_len = float(np.mean([sum(c.values()) for c in counts.values()])) if counts else 0.0
    out: dict[int, list[str]] = {}
    for lab, c in counts.items():
        size = max(1, sum(c.values()))
        scored = sorted(((t, n / size * np.log(1 + mean_len / total[t])) for t, n in c.items()),
                        key=lambda x: (-x[1], x[0]))
        out[lab] = [t for t, _ in scored[:n_words]]
    return out


def find_topics(vectors: np.ndarray, texts: Sequence[str], titles: Sequence[str], tokenizer: Tokenizer | None = None,
                k: int | None = None, k_range: Sequence[int] | None = None, seed: int = 0,
                n_words: int = 5) -> Topics:
    """Cluster records into topics. ``k`` fixed, or chosen by silhouette over ``k_range``
    (default :func:`default_k_range`). Deterministic for a given ``seed``. ``texts`` feed the labels: titles and
    keywords (see :func:`label_texts`) label better than descriptions full of boilerplate (授权发明专利).
    """
    n = len(vectors)
    if n == 0:
        raise ValueError("no records to cluster")
    x = np.asarray(vectors, dtype=np.float64)
    scores: dict[int, float] = {}
    if k is None:
        k, scores = choose_k(x, k_range or default_k_range(n), seed)
    k = max(1, min(k, n))
    labels = np.zeros(n, np.int64) if k == 1 else _kmeans(x, k, seed, n_init=10)
    # Number topics by size so topic 0 is the largest, whatever order KMeans found them in.
    sizes = Counter(labels.tolist())
    order = {old: new for new, (old, _) in enumerate(sorted(sizes.items(), key=lambda t: (-t[1], t[0])))}
    labels = np.array([order[int(v)] for v in labels], dtype=np.int64)
    tok = tokenizer or Tokenizer()
    tokens = [tok.tokenize(t, search_mode=False) for t in texts]
    words = c_tf_idf(tokens, labels, n_words)
    rows = []
    for topic in range(k):
        members = np.flatnonzero(labels == topic)
        kw = words.get(topic, [])
        rows.append({"topic": topic, "label": f"T{topic}: " + "·".join(kw[:3]), "size": len(members),
                     "share": round(len(members) / n, 4), "keywords": "、".join(kw),
                     "examples": "；".join(str(titles[i]) for i in members[:3])})
    logger.info("%d records → %d topics (silhouette %s)", n, k, scores.get(k))
    return Topics(labels, pd.DataFrame(rows), k, scores)


def label_texts(records: pd.DataFrame) -> list[str]:
    """Title plus keywords of each record, the text topic labels are drawn from."""
    kws = records["keywords"] if "keywords" in records else pd.Series([[]] * len(records))
    return [f"{t} {' '.join(k)}" for t, k in zip(records["title"], kws, strict=True)]


def topics_by(topic_labels: Sequence[str], groups: pd.Series, by: str) -> pd.DataFrame:
    """How many records of each topic fall in each group (long form: group, topic, records)."""
    df = pd.DataFrame({by: groups.to_numpy(), "topic": list(topic_labels)})
    out = df.groupby([by, "topic"]).size().rename("records").reset_index()
    return out.sort_values([by, "records", "topic"], ascending=[True, False, True], ignore_index=True)
