"""An RBF-kernel SVM over sentence vectors whose fitted state is plain arrays, so a classifier that uses it can be
saved without pickle. Training is scikit-learn's ``SVC``; scoring is re-implemented here from the saved support
vectors and dual coefficients, one-vs-one as libsvm does, then turned into per-class scores the way
``SVC(decision_function_shape="ovr")`` does (votes plus a tie-breaking confidence below 1/3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class KernelSVM:
    """Multiclass RBF SVM (one-vs-one) over L2-normalised vectors; labels are integers 0..n_classes-1."""

    def __init__(self, C: float = 4.0, class_weight: str | None = "balanced") -> None:
        self.C = C
        self.class_weight = class_weight

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> KernelSVM:
        """Train on vectors ``x`` and integer labels ``y``; every class in 0..n_classes-1 must occur."""
        from sklearn.svm import SVC

        svm = SVC(C=self.C, kernel="rbf", gamma="scale", class_weight=self.class_weight,
                  decision_function_shape="ovo").fit(x, y)
        if len(svm.classes_) != n_classes:
            raise ValueError("every class needs at least one training vector")
        self.gamma_ = float(svm._gamma)
        self.support_vectors_ = np.asarray(svm.support_vectors_, dtype=np.float32)
        self.dual_coef_ = np.asarray(svm.dual_coef_, dtype=np.float64)
        self.intercept_ = np.asarray(svm.intercept_, dtype=np.float64)
        if n_classes == 2:
            # scikit-learn negates the public arrays of a binary SVC so that positive favours class 1; undo it to
            # keep libsvm's one convention (positive favours the first class of the pair).
            self.dual_coef_, self.intercept_ = -self.dual_coef_, -self.intercept_
        self.n_support_ = np.asarray(svm.n_support_, dtype=np.int64)
        return self

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.n_support_)

    def pairwise(self, x: np.ndarray, chunk: int = 1024) -> np.ndarray:
        """One-vs-one decision values, columns in libsvm's order (0,1), (0,2), …; positive favours the first."""
        k = self.n_classes
        starts = np.concatenate([[0], np.cumsum(self.n_support_)])
        sq = (self.support_vectors_.astype(np.float64) ** 2).sum(1)
        out = np.zeros((len(x), k * (k - 1) // 2))
        for lo in range(0, len(x), chunk):
            part = np.asarray(x[lo:lo + chunk], dtype=np.float64)
            d2 = (part ** 2).sum(1)[:, None] + sq[None, :] - 2.0 * part @ self.support_vectors_.T
            kern = np.exp(-self.gamma_ * np.maximum(d2, 0.0))
            col = 0
            for i in range(k):
                si = slice(starts[i], starts[i + 1])
                for j in range(i + 1, k):
                    sj = slice(starts[j], starts[j + 1])
                    out[lo:lo + len(part), col] = (kern[:, si] @ self.dual_coef_[j - 1, si]
                                                   + kern[:, sj] @ self.dual_coef_[i, sj] + self.intercept_[col])
                    col += 1
        return out

    def decision(self, x: np.ndarray) -> np.ndarray:
        """Per-class scores: one-vs-one votes plus a confidence term in (-1/3, 1/3) that only breaks ties."""
        dec = self.pairwise(x)
        k = self.n_classes
        votes = np.zeros((len(x), k))
        margin = np.zeros((len(x), k))
        col = 0
        for i in range(k):
            for j in range(i + 1, k):
                margin[:, i] += dec[:, col]
                margin[:, j] -= dec[:, col]
                votes[:, i] += dec[:, col] >= 0
                votes[:, j] += dec[:, col] < 0
                col += 1
        return votes + margin / (3 * (np.abs(margin) + 1))

    # ---- persistence: arrays only ------------------------------------------------------------------------------
    def save(self, root: Path, prefix: str) -> dict[str, Any]:
        """Write the arrays as ``{prefix}_*.npy`` under ``root``; return the scalars for the caller's manifest."""
        for name in ("support_vectors_", "dual_coef_", "intercept_", "n_support_"):
            np.save(root / f"{prefix}_{name.rstrip('_')}.npy", getattr(self, name), allow_pickle=False)
        return {"C": self.C, "class_weight": self.class_weight, "gamma": self.gamma_}

    @classmethod
    def load(cls, root: Path, prefix: str, meta: dict[str, Any]) -> KernelSVM:
        """Read what :meth:`save` wrote."""
        self = cls(C=float(meta["C"]), class_weight=meta["class_weight"])
        self.gamma_ = float(meta["gamma"])
        for name in ("support_vectors_", "dual_coef_", "intercept_", "n_support_"):
            setattr(self, name, np.load(root / f"{prefix}_{name.rstrip('_')}.npy", allow_pickle=False))
        k = self.n_classes
        if (self.dual_coef_.shape != (k - 1, len(self.support_vectors_)) or len(self.intercept_) != k * (k - 1) // 2
                or int(self.n_support_.sum()) != len(self.support_vectors_)):
            raise ValueError("kernel SVM arrays disagree in shape")
        return self
