"""Confidence calibration and the held-out scoring it rests on, as pure functions over score matrices.

Classifiers score held-out folds, choose their settings by held-out accuracy and fit one temperature so that
``softmax(scores / T)`` reads as a probability (temperature scaling); the expected calibration error measures how
well that worked. A model whose training cost grows with the square of its rows learns from a per-class sample
(:func:`sample_rows`) that still gives every fold each class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood of ``softmax(scores / T)`` (temperature scaling)."""
    grid = np.exp(np.linspace(np.log(0.01), np.log(10.0), 121))

    def nll(t: float) -> float:
        p = softmax(scores / t)[np.arange(len(y)), y]
        return float(-np.log(np.maximum(p, 1e-12)).mean())
    return float(min(grid, key=nll))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE of top-1 confidences: the mean gap between confidence and accuracy over equal-width bins."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            gap += m.mean() * abs(float(correct[m].mean()) - float(confidence[m].mean()))
    return gap


def accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose best-scoring class is ``y``."""
    return float((scores.argmax(1) == y).mean())


def best_blend(lexical: np.ndarray, held: dict[float, np.ndarray], y: np.ndarray,
               weights: Sequence[float]) -> tuple[float, float]:
    """The kernel C and weight whose blend of held-out scores, ``lexical + weight * held[C]``, is most accurate;
    ties go to the smaller C and weight (the smoother model, as for the linear C).
    """
    return max(((c, w) for c in held for w in weights),
               key=lambda cw: (accuracy(lexical + cw[1] * held[cw[0]], y), -cw[0], -cw[1]))


def sample_rows(y: np.ndarray, limit: int, whole: int = 50) -> np.ndarray:
    """Sorted row numbers: all rows when there are at most ``limit``, else a seeded sample of each class in
    proportion, keeping classes of up to ``whole`` rows entire so that every calibration fold sees each class.
    """
    if len(y) <= limit:
        return np.arange(len(y))
    rng = np.random.default_rng(0)
    frac = limit / len(y)
    keep = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        take = min(len(members), max(whole, round(len(members) * frac)))
        keep.append(rng.choice(members, take, replace=False))
    return np.sort(np.concatenate(keep))


def held_out_scores(svm: Any, x: sparse.csr_matrix, n_classes: int) -> np.ndarray:
    """Scores for all classes from an SVM trained on a fold that may lack some; those get -1e6 (never chosen)."""
    present = np.asarray(svm.classes_)
    out = np.full((x.shape[0], n_classes), -1e6)
    out[:, present] = np.asarray(x @ full_coef(svm, len(present)).T) + full_intercept(svm, len(present))
    return out


def full_coef(svm: Any, n_classes: int) -> np.ndarray:
    """A linear SVM's coefficients with one row per class."""
    # A binary SVM has one row scoring class 1; give class 0 its negation so every class has a row.
    c = np.asarray(svm.coef_, dtype=np.float64)
    return np.vstack([-c, c]) if n_classes == 2 and c.shape[0] == 1 else c


def full_intercept(svm: Any, n_classes: int) -> np.ndarray:
    """A linear SVM's intercepts with one per class (see :func:`full_coef`)."""
    b = np.asarray(svm.intercept_, dtype=np.float64)
    return np.concatenate([-b, b]) if n_classes == 2 and b.shape[0] == 1 else b
