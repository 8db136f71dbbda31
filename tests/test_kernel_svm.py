"""The pickle-free RBF SVM scores exactly as scikit-learn's SVC that trained it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.svm import SVC

from qcy_match.classify.kernel_svm import KernelSVM


def _data(n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, 240)
    x = rng.normal(size=(240, 24))
    x[:, 0] += 0.8 * y  # separable enough that the classes differ, overlapping enough for real margins
    q = rng.normal(size=(60, 24))
    q[:, 0] += rng.uniform(0, 0.8 * n_classes, 60)
    return (x / np.linalg.norm(x, axis=1, keepdims=True), y, q / np.linalg.norm(q, axis=1, keepdims=True))


@pytest.mark.parametrize("n_classes", [2, 3, 6])
def test_pairwise_and_class_scores_equal_sklearn(n_classes):
    x, y, q = _data(n_classes)
    mine = KernelSVM(C=4.0).fit(x, y, n_classes)
    ovo = SVC(C=4.0, gamma="scale", class_weight="balanced", decision_function_shape="ovo").fit(x, y)
    ovr = SVC(C=4.0, gamma="scale", class_weight="balanced").fit(x, y)
    ref = ovo.decision_function(q)
    # sklearn flips a binary SVC's sign (positive = class 1); libsvm's pair order says positive = class 0
    assert np.allclose(mine.pairwise(q), -ref[:, None] if n_classes == 2 else ref, atol=1e-6)
    if n_classes > 2:
        assert np.allclose(mine.decision(q), ovr.decision_function(q), atol=1e-6)
    assert (mine.decision(x).argmax(1) == y).mean() > 0.6


def test_save_load_and_shape_checks(tmp_path):
    x, y, q = _data(4)
    svm = KernelSVM().fit(x, y, 4)
    meta = svm.save(tmp_path, "k")
    back = KernelSVM.load(tmp_path, "k", meta)
    assert np.array_equal(back.decision(q), svm.decision(q))
    np.save(tmp_path / "k_intercept.npy", svm.intercept_[:-1])
    with pytest.raises(ValueError, match="disagree"):
        KernelSVM.load(tmp_path, "k", meta)


def test_every_class_must_be_present():
    x, y, _ = _data(3)
    with pytest.raises(ValueError, match="every class"):
        KernelSVM().fit(x[y < 2], y[y < 2], 3)
