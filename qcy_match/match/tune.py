"""Learning from outcomes: fit the fusion weight, the candidate depth and the confidence calibration of an index
on a platform's own judged pairs (a broker's accept/reject, 对接成功), by cross-validation grouped by need.

Judgments are rows of ``need_id``, ``achievement_id`` and ``label`` (a grade 0–3, or accepted/rejected) in any
table format the readers take (:func:`read_judgments`); rows that cannot be used go to the rejected-rows report
with file, row and field. The needs' texts come from a records file.

:func:`tune` tries every setting of a small grid (``dense_weight`` × ``candidates``) on the judged needs; in each
fold the setting with the best nDCG@10 on the other folds' needs is measured on the fold's needs, so the reported
gain over the current setting is held out. The calibration (:mod:`.confidence`) is refitted the same way and
compared by held-out log loss. :func:`save_tuned` writes the chosen setting into the index, through the index's
save path and under its writer lock, only where it improved on held-out needs.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import persistence
from ..errors import InputError
from ..evaluate import mrr_at_k, ndcg_at_k
from ..ingest.records import from_any, normalize_id, xlsx_sheet
from ..ingest.rows import cut
from ..ingest.tables import Rejection, read_table
from . import confidence as cf

if TYPE_CHECKING:
    from .engine import MatchEngine

COLUMNS = {"need_id": "need_id", "需求编号": "need_id", "achievement_id": "achievement_id",
           "成果编号": "achievement_id", "label": "label", "grade": "label", "relevance": "label", "结果": "label",
           "标注": "label"}
WORDS = {"accepted": 1, "accept": 1, "yes": 1, "接受": 1, "对接成功": 1, "成功": 1, "采纳": 1,
         "rejected": 0, "reject": 0, "no": 0, "拒绝": 0, "对接失败": 0, "失败": 0, "不采纳": 0}
WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)
DEPTHS = (50, 100, 200)
K = 10


def read_judgments(path: str | os.PathLike[str], sheet: str | int | None = None
                   ) -> tuple[pd.DataFrame, list[Rejection]]:
    """Judged pairs as ``need_id``, ``achievement_id``, ``grade`` (0–3; accepted 1, rejected 0) and ``row`` (the
    input row), and the rows that could not be used. A later row judging the same pair replaces an earlier one (a
    broker changed their mind).
    """
    raw, rejects = read_table(path, xlsx_sheet(path, sheet))
    name = str(path)
    cols = {c: COLUMNS[str(c).strip().lower()] for c in raw.columns if str(c).strip().lower() in COLUMNS}
    missing = {"need_id", "achievement_id", "label"} - set(cols.values())
    if missing:
        raise InputError(f"{name}: no {', '.join(sorted(missing))} column (columns: "
                         f"{', '.join(str(c) for c in raw.columns if c != '_row')})")
    df = raw.rename(columns=cols)
    rows: list[tuple[str, str, int, int]] = []
    for rec in df.to_dict("records"):
        row = int(rec.get("_row", 0))
        need, ach = normalize_id(rec["need_id"]), normalize_id(rec["achievement_id"])
        grade = _grade(rec["label"])
        if not need:
            rejects.append(Rejection(name, row, "need_id", "empty"))
        elif not ach:
            rejects.append(Rejection(name, row, "achievement_id", "empty"))
        elif grade is None:
            rejects.append(Rejection(name, row, "label", "not a grade 0–3 nor accepted/rejected",
                                     cut(rec["label"])))
        else:
            rows.append((need, ach, grade, row))
    out = pd.DataFrame(rows, columns=["need_id", "achievement_id", "grade", "row"])
    out = out.drop_duplicates(["need_id", "achievement_id"], keep="last").reset_index(drop=True)
    return out, rejects


def _grade(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    text = normalize_id(value).lower()
    if text in WORDS:
        return WORDS[text]
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() and 0 <= number <= 3 else None


@dataclasses.dataclass
class TuneReport:
    """What :func:`tune` found. Metrics are means over judged needs, held out (each fold's needs scored with the
    setting chosen on the other folds).
    """

    current: dict[str, Any]
    chosen: dict[str, Any]
    needs: int
    pairs: int
    folds: int
    heldout: dict[str, float]
    calibration: dict[str, Any]
    improved_ranking: bool
    improved_calibration: bool
    saved: bool = False

    @property
    def improved(self) -> bool:
        """Whether anything is worth saving."""
        return self.improved_ranking or self.improved_calibration

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON)."""
        return dataclasses.asdict(self)

    def text(self) -> str:
        """The report in a few lines."""
        h = self.heldout
        lines = [f"{self.needs} judged needs, {self.pairs} judged pairs, {self.folds}-fold cross-validation by need",
                 f"current: dense_weight {self.current['dense_weight']}, candidates {self.current['candidates']}",
                 f"chosen:  dense_weight {self.chosen['dense_weight']}, candidates {self.chosen['candidates']}",
                 f"held-out nDCG@10 {h['ndcg_current']:.4f} → {h['ndcg_chosen']:.4f} "
                 f"({h['ndcg_chosen'] - h['ndcg_current']:+.4f}); MRR@10 {h['mrr_current']:.4f} → "
                 f"{h['mrr_chosen']:.4f} ({h['mrr_chosen'] - h['mrr_current']:+.4f})",
                 f"confidence, held-out log loss {h['logloss_current']:.4f} → {h['logloss_refit']:.4f}, ECE "
                 f"{h['ece_current']:.4f} → {h['ece_refit']:.4f}"]
        what = " and ".join(w for w, ok in (("the ranking setting", self.improved_ranking),
                                            ("the confidence calibration", self.improved_calibration)) if ok)
        lines.append(f"{'saved' if self.saved else 'improved (not saved)'}: {what}" if what else
                     "nothing improved on held-out needs; nothing saved")
        return "\n".join(lines)


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def tune(engine: MatchEngine, needs: pd.DataFrame, judgments: pd.DataFrame, folds: int = 5,
         weights: Sequence[float] = WEIGHTS, depths: Sequence[int] = DEPTHS, accept_grade: int = 1,
         seed: int = 0, source: str = "<judgments>") -> tuple[TuneReport, list[Rejection]]:
    """Cross-validate the grid and the calibration on the judged needs (see the module's description).

    ``needs``: the needs' records (their ids are the judgments' ``need_id``). Judgments naming a need that is not
    in ``needs`` or an achievement that is not indexed are returned as rejections.
    """
    if engine.side_ != "achievements":
        raise ValueError("tune needs an index of achievements (judgments pair needs with achievements)")
    recs, _ = from_any(needs)
    recs = recs.reset_index(drop=True)
    rejects: list[Rejection] = []
    need_row = {str(i): r for r, i in enumerate(recs["id"].astype(str))}
    live = engine._snap.id_index
    known = judgments["need_id"].isin(need_row) & judgments["achievement_id"].isin(live)
    for j in judgments[~known].itertuples(index=False):
        field = "need_id" if j.need_id not in need_row else "achievement_id"
        why = "not in the needs file" if field == "need_id" else "not in the index"
        rejects.append(Rejection(source, int(getattr(j, "row", 0)), field, why, cut(getattr(j, field))))
    judged = judgments[known].reset_index(drop=True)
    qids = list(dict.fromkeys(judged["need_id"]))
    if len(qids) < folds or folds < 2:
        raise ValueError(f"{len(qids)} judged needs: cross-validation needs at least max(2, folds={folds})")
    qrels = {q: dict(zip(g["achievement_id"], g["grade"], strict=True)) for q, g in judged.groupby("need_id")}
    queries = recs.iloc[[need_row[q] for q in qids]].reset_index(drop=True)
    current = (float(engine.config.dense_weight), int(engine.config.candidates))
    grid = list(dict.fromkeys([current, *((float(w), int(d)) for w in weights for d in depths)]))
    ndcg = np.zeros((len(grid), len(qids)))
    mrr = np.zeros((len(grid), len(qids)))
    for s, (w, d) in enumerate(grid):
        trial = copy.copy(engine)  # shares the snapshot; only the setting differs
        trial.config = dataclasses.replace(engine.config, dense_weight=w, candidates=d)
        m = trial.match(queries, k=K, explain_matches=False)
        for i, q in enumerate(m.query_ids):
            ranked = [str(x) for x in m.ids[i] if x is not None]
            ndcg[s, i] = ndcg_at_k([ranked], [qrels[q]], K)
            mrr[s, i] = mrr_at_k([ranked], [qrels[q]], K)
    fold_of = np.random.default_rng(seed).permutation(len(qids)) % folds
    chosen_n = np.zeros(len(qids))
    chosen_m = np.zeros(len(qids))
    # The calibration's evidence for every judged pair, once.
    pairs = [(i, live.get_indexer(pd.Index(list(qrels[q])))) for i, q in enumerate(qids)]
    feats = cf.pair_features(engine, queries, pairs)
    labels = [np.array([g >= accept_grade for g in qrels[q].values()], dtype=int) for q in qids]
    cur_cal = cf.Calibration.from_dict(engine.config.confidence)
    p_cur, p_new, y_all = [], [], []
    for f in range(folds):
        test, train = fold_of == f, fold_of != f
        best = _best(ndcg[:, train].mean(axis=1))
        chosen_n[test], chosen_m[test] = ndcg[best, test], mrr[best, test]
        x_tr = np.vstack([feats[i] for i in np.flatnonzero(train)])
        y_tr = np.concatenate([labels[i] for i in np.flatnonzero(train)])
        x_te = np.vstack([feats[i] for i in np.flatnonzero(test)])
        y_all.append(np.concatenate([labels[i] for i in np.flatnonzero(test)]))
        p_cur.append(cur_cal.predict(x_te))
        p_new.append(cf.fit(x_tr, y_tr).predict(x_te) if len(np.unique(y_tr)) == 2 else cur_cal.predict(x_te))
    y, pc, pn = np.concatenate(y_all), np.concatenate(p_cur), np.concatenate(p_new)
    final = _best(ndcg.mean(axis=1))
    x_all, y_fit = np.vstack(feats), np.concatenate(labels)
    refit = cf.fit(x_all, y_fit, encoder=engine.encoder_.name,
                   fitted_on=f"{len(y_fit)} judged pairs of {len(qids)} needs") if len(np.unique(y_fit)) == 2 \
        else cur_cal
    heldout = {"ndcg_current": float(ndcg[0].mean()), "ndcg_chosen": float(chosen_n.mean()),
               "mrr_current": float(mrr[0].mean()), "mrr_chosen": float(chosen_m.mean()),
               "logloss_current": _log_loss(pc, y), "logloss_refit": _log_loss(pn, y),
               "ece_current": cf.expected_calibration_error(pc, y), "ece_refit": cf.expected_calibration_error(pn, y)}
    heldout = {k: round(v, 4) for k, v in heldout.items()}
    gain = chosen_n.mean() - ndcg[0].mean()
    report = TuneReport(
        current={"dense_weight": current[0], "candidates": current[1]},
        chosen={"dense_weight": grid[final][0], "candidates": grid[final][1]}, needs=len(qids),
        pairs=int(len(judged)), folds=folds, heldout=heldout, calibration=refit.to_dict(),
        improved_ranking=bool(gain > 1e-4 and final != 0),
        improved_calibration=bool(heldout["logloss_refit"] < heldout["logloss_current"] - 1e-4))
    return report, rejects


def _best(values: np.ndarray) -> int:
    """The best setting's row; ties go to the earliest (the current setting is row 0)."""
    top = float(values.max())
    return int(np.flatnonzero(values >= top - 1e-12)[0])


def save_tuned(path: str | os.PathLike[str], report: TuneReport, version: str | None = None) -> bool:
    """Write what improved into the index directory ``path`` under its writer lock; returns whether anything was
    written. ``version`` (:func:`qcy_match.persistence.version` when the index was read) refuses to overwrite an
    index that changed meanwhile.
    """
    from .engine import MatchEngine

    if not report.improved:
        return False
    with persistence.locked(path):
        if version is not None and persistence.version(path) != version:
            raise InputError(f"{path}: the index changed while tuning; run tune again")
        engine = MatchEngine.load(path)
        if report.improved_ranking:
            engine.config.dense_weight = float(report.chosen["dense_weight"])
            engine.config.candidates = int(report.chosen["candidates"])
        if report.improved_calibration:
            engine.config.confidence = dict(report.calibration)
        engine.save(Path(path))
    report.saved = True
    return True
