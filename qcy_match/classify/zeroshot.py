"""Zero-shot industry classification: no labelled records, only the GB/T 4754-2017 names and product notes.

Each 小类 becomes a document (its name, its parents' names and its '包括' product terms); a record is scored against
every document by TF-IDF cosine over domain-dictionary words and character 2-grams. Scores at 大类/中类/门类 are
the best of their 小类; chain scores are the best 小类 a chain covers, against '其他' (the best outside every chain).
Confidences come from a temperature fitted on product terms held out of the taxonomy itself (no user data).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..ingest.records import text_of
from ..taxonomy import chains
from ..taxonomy import gbt as taxonomy
from ..text import Tokenizer, normalize
from .calibration import fit_temperature, softmax
from .predictions import Predictions, check_fitted, distinct_words, record_ids, top_k

LEVELS = {"门类": 1, "大类": 2, "中类": 3, "小类": 4, "section": 1, "division": 2, "group": 3, "class": 4,
          "1": 1, "2": 2, "3": 3, "4": 4, "chain": 0, "产业链": 0}
OTHER = "其他"
HELD_OUT = 0.2


def parse_level(level: str | int) -> int:
    """Level number (1 门类 … 4 小类, 0 chains) from a name, a number or 'chain'."""
    key = str(level).strip().lower()
    if key not in LEVELS:
        raise ValueError(f"unknown level {level!r}; use 门类/大类/中类/小类 (or 1-4, section/division/group/class) "
                         "or chain")
    return LEVELS[key]


class ZeroShotClassifier:
    """Match record text against the taxonomy's own words; see the module docstring.

    ``fit()`` takes no training data: it builds the label documents from GB/T 4754 and fits the temperature.

    >>> ZeroShotClassifier("大类").fit().predict(["锂离子电池正极材料"]).labels[0, 0]  # doctest: +SKIP
    'C38'
    """

    def __init__(self, level: str | int = "大类", domain_dict: bool = True, n_evidence: int = 5) -> None:
        self.level = level
        self.domain_dict = domain_dict
        self.n_evidence = n_evidence

    def fit(self) -> ZeroShotClassifier:
        """Build a document per 小类 from the taxonomy and calibrate on product terms held out of it."""
        self.level_ = parse_level(self.level)
        self.tokenizer_ = Tokenizer(domain_dict=self.domain_dict, search_mode=True)
        leaves = [n for n in taxonomy.industries().values() if n.level == 4]
        self.leaves_ = np.array([n.code for n in leaves], dtype=object)
        self.labels_, self.membership_ = self._groups()
        rng = np.random.default_rng(0)
        held: list[tuple[str, int]] = []
        docs_train: list[str] = []
        for i, n in enumerate(leaves):
            keep = [w for w in n.includes if rng.random() >= HELD_OUT]
            out = [w for w in n.includes if w not in keep]
            # Records name several products at once; single held-out terms would teach far too little confidence.
            held += [(" ".join(out[j:j + 4]), i) for j in range(0, len(out), 4)]
            docs_train.append(self._doc(n, keep))
        # Calibrate on terms the scoring documents have not seen, then build the documents from every term.
        vectorizer, docs = self._fit_documents(docs_train)
        if held:
            q = [w for w, _ in held]
            y_leaf = np.array([i for _, i in held])
            scores = self._group_scores(self._cosines(vectorizer.transform(q), docs))
            y = np.argmax(self.membership_[:, y_leaf].T, axis=1)
            self.temperature_ = fit_temperature(scores, y)
        else:
            self.temperature_ = 0.05
        self.vectorizer_, self.documents_ = self._fit_documents([self._doc(n, list(n.includes)) for n in leaves])
        self.feature_names_ = np.array(list(self.vectorizer_.get_feature_names_out()), dtype=object)
        return self

    def _doc(self, node: taxonomy.Industry, includes: list[str]) -> str:
        names = [p.name for p in taxonomy.path(node.code)[1:]]
        return " ".join(names + includes)

    def _analyze(self, text: str) -> list[str]:
        s = normalize(text)
        words = self.tokenizer_.tokenize(s, normalized=True)
        chars = [c for c in s if "\u4e00" <= c <= "\u9fff"]
        # Bigrams carry a marker so the evidence shown to people lists whole words only.
        return words + ["#" + a + b for a, b in zip(chars, chars[1:], strict=False)]

    def _fit_documents(self, docs: list[str]) -> tuple[Any, sparse.csr_matrix]:
        """A TF-IDF vectorizer fitted on ``docs`` and the documents' rows."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(analyzer=self._analyze, sublinear_tf=True)
        return vectorizer, vectorizer.fit_transform(docs).tocsr()

    @staticmethod
    def _cosines(q: sparse.csr_matrix, docs: sparse.csr_matrix) -> np.ndarray:
        """Cosine of each text's row with each 小类 document (TF-IDF rows are unit length)."""
        return np.asarray((q @ docs.T).todense())

    def _groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Labels at the chosen level and a boolean (labels × 小类) membership matrix."""
        leaves = self.leaves_
        if self.level_ == 0:
            cs = chains.chains()
            labels = [c.name for c in cs] + [OTHER]
            member = np.array([[str(code).startswith(c.codes) for code in leaves] for c in cs])
            member = np.vstack([member, ~member.any(axis=0)])
        else:
            groups = sorted({taxonomy.at_level(str(c), self.level_) for c in leaves})
            labels = groups
            index = {g: i for i, g in enumerate(groups)}
            member = np.zeros((len(groups), len(leaves)), dtype=bool)
            for j, c in enumerate(leaves):
                member[index[taxonomy.at_level(str(c), self.level_)], j] = True
        return np.array(labels, dtype=object), member

    def _group_scores(self, leaf_scores: np.ndarray) -> np.ndarray:
        out = np.zeros((len(leaf_scores), len(self.labels_)))
        for g, m in enumerate(self.membership_):
            out[:, g] = leaf_scores[:, m].max(axis=1)
        return out

    def predict(self, records: pd.DataFrame | Sequence[str], k: int = 3, ids: Sequence[str] | None = None
                ) -> Predictions:
        """Top-``k`` labels (codes, or chain names) for records or plain texts."""
        check_fitted(self, "labels_")
        texts = text_of(records) if isinstance(records, pd.DataFrame) else [str(t) for t in records]
        q = self.vectorizer_.transform(texts)
        leaf = self._cosines(q, self.documents_)
        k = min(k, len(self.labels_))
        top, p = top_k(softmax(self._group_scores(leaf) / self.temperature_), k)
        evidence = []
        for r in range(len(texts)):
            best_leaf = int(np.argmax(np.where(self.membership_[top[r, 0]], leaf[r], -1)))
            row = q[r].multiply(self.documents_[best_leaf]).tocsr()
            words = (self.feature_names_[row.indices[j]] for j in np.argsort(-row.data))
            evidence.append(distinct_words((w for w in words if w[0] != "#"), self.n_evidence))
        names = {} if self.level_ == 0 else {str(c): taxonomy.name_of(str(c)) for c in self.labels_[top[:, 0]]}
        return Predictions(record_ids(records, ids), self.labels_[top], p, evidence, names)
