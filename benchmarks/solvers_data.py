"""The solver benchmark's data: CSL papers as achievements with owners, challenges written for them, graded truth.

Everything is drawn by one seeded generator (:data:`SEED`) over ``csl/csl_2000.jsonl`` (read from ``--data``,
``$QCY_SHARED_DATA`` or ``../shared/data``; see benchmarks/datasets.py). The repository keeps what the generator
wrote under ``benchmarks/data/solvers/`` (ids, owners, choices and truth; no CSL text, which stays in the shared
folder as its README asks); :func:`build` turns those files plus CSL into records and challenges, and
``python -m benchmarks.solvers_data --check`` regenerates them and compares.

**Institutions** (fictional names, so no real institution's expertise is implied), each with a home city drawn
with 关中 70 %, 陕北 15 %, 陕南 15 % (small ones uniform over the three groups):

- per CSL discipline, ``max(1, min(4, round(n / 15)))`` specialist institutes (n = the discipline's papers);
- 6 comprehensive universities, working in every field;
- 80 small institutions (firms, institutes, colleges).

**Owners** of each paper: a specialist of its discipline with probability 0.55, a comprehensive university 0.25
(weights 6:5:4:3:2:1), a small institution 0.20; with probability 0.15 a second owner drawn by the same rule; 2 % of
the papers (never a challenge's source) name no owner. Owner cells are written as people type them: names joined
by ``；`` ``、`` ``,`` or ``;`` and, in one cell of ten, spaces inside a name (``渭水 材料研究院``), which the reader
folds.

**Strong in a field**: an institution owning at least 3 papers of that discipline.

**Challenges** (each written for papers, never tuned on the held-out split):

- *single*: 150 papers of CSL's dev split (dev) and 150 of its test split (held-out); a title from two of the
  paper's keywords and a description from a template holding two keywords and, in half of them (``sentence``
  style), one sentence of its abstract (not the first, cut to 50 characters), in the other half (``keywords``
  style) only a third keyword.
- *two-part*: 100 dev and 100 held-out pairs of papers from different CSL categories; each part is built like a
  single challenge's text (either style), and the two are written as 一是…二是…, （1）…（2）…, …。此外，…,
  …，同时… or an explicit ``parts`` list (a fifth each); the challenge's region is drawn uniformly from 关中/陕北/陕南.

**Truth** per challenge and per part: grade 2 for the owners of the paper it was written for, grade 1 for the other
institutions strong in that paper's discipline. A two-part challenge's whole-challenge truth is the better grade
over its two parts.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .datasets import REPO, default_data

SEED = 16
OUT = REPO / "benchmarks" / "data" / "solvers"
FILES = ("institutions.csv", "records.csv", "challenges.jsonl", "truth.csv")
PLACES = ("秦川", "终南", "华岳", "骊山", "太白", "渭水", "汉江", "延河", "泾河", "洛水", "丹江", "周原", "杜陵",
          "灞水", "商山", "巴山", "定军", "黄龙", "白鹿", "翠华")
SMALL_KINDS = ("科技有限公司", "技术研究所", "学院", "新材料有限公司")
CITIES = {"关中": ("西安", "宝鸡", "咸阳", "渭南", "铜川", "杨凌"), "陕北": ("榆林", "延安"),
          "陕南": ("汉中", "安康", "商洛")}
MATURITY = ("实验室", "小试", "中试", "产业化")
SEPARATORS = ("；", "、", ",", ";")
SINGLE_TEMPLATES = ("我单位在{k1}和{k2}方面遇到技术瓶颈，{s}，希望寻求合作解决。",
                    "需要解决{k1}相关的关键技术问题，涉及{k2}：{s}。",
                    "企业拟开展{k1}技术攻关，重点是{k2}，{s}。",
                    "征集{k1}、{k2}方向的解决方案：{s}。")
PART_TEMPLATE = "{k1}与{k2}方向，{s}"
TWO_PART_FORMATS = ("yishi", "paren", "cixi", "tongshi", "parts")
STRONG_MIN = 3
_SENTENCES = re.compile(r"[。；;！？!?]|\.(?!\d)")


def _draw_city(rng: np.random.Generator, small: bool) -> str:
    groups = list(CITIES)
    group = groups[rng.integers(3)] if small else groups[rng.choice(3, p=[0.7, 0.15, 0.15])]
    cities = CITIES[group]
    return cities[rng.integers(len(cities))]


def _institutions(rng: np.random.Generator, disciplines: Counter[str]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for i, place in enumerate(PLACES[:6]):
        rows.append({"name": f"{place}大学", "kind": "comprehensive", "discipline": "", "weight": 6 - i})
    for d_i, (disc, n) in enumerate(sorted(disciplines.items())):
        field = re.sub(r"[、,，;；]", "", disc.split("/")[0])  # a separator would split the name in two owners
        for j in range(max(1, min(4, round(n / 15)))):
            rows.append({"name": f"{PLACES[(d_i + 7 * j) % len(PLACES)]}{field}研究院", "kind": "specialist",
                         "discipline": disc, "weight": 1})
    for j in range(80):
        rows.append({"name": f"{PLACES[j % len(PLACES)]}{SMALL_KINDS[j // len(PLACES)]}", "kind": "small",
                     "discipline": "", "weight": 1})
    df = pd.DataFrame(rows)
    if df["name"].duplicated().any():
        raise ValueError(f"institution names collide: {df['name'][df['name'].duplicated()].tolist()}")
    df["city"] = [_draw_city(rng, k == "small") for k in df["kind"]]
    return df


def _one_owner(rng: np.random.Generator, inst: pd.DataFrame, disc: str) -> str:
    u = rng.random()
    if u < 0.55:
        pool = inst[(inst["kind"] == "specialist") & (inst["discipline"] == disc)]
    elif u < 0.80:
        pool = inst[inst["kind"] == "comprehensive"]
    else:
        pool = inst[inst["kind"] == "small"]
    w = pool["weight"].to_numpy(float)
    return str(pool["name"].iloc[rng.choice(len(pool), p=w / w.sum())])


def _typed(rng: np.random.Generator, names: list[str]) -> str:
    """Owner names as people type them: any separator, sometimes a space inside a name."""
    out = []
    for name in names:
        if rng.random() < 0.1:
            cut = 2 + int(rng.integers(max(1, len(name) - 3)))
            name = f"{name[:cut]} {name[cut:]}"
        out.append(name)
    return SEPARATORS[rng.integers(len(SEPARATORS))].join(out)


def sentences(abstract: str) -> list[str]:
    """The abstract's sentences worth quoting (at least 15 characters)."""
    return [s.strip(" ,，") for s in _SENTENCES.split(abstract) if len(s.strip()) >= 15]


def _pick(rng: np.random.Generator, paper: dict[str, Any]) -> dict[str, Any] | None:
    """Keyword and sentence choices for writing about ``paper`` (None when it lacks them): the ``sentence`` style
    quotes one abstract sentence, the ``keywords`` style only a third keyword.
    """
    sents = sentences(paper["abstract"])
    kws = [k for k in paper["keywords"] if k.strip()]
    if len(sents) < 2 or len(kws) < 2:
        return None
    k = rng.choice(len(kws), min(3, len(kws)), replace=False)
    return {"paper": paper["id"], "style": "sentence" if rng.random() < 0.5 else "keywords", "k1": int(k[0]),
            "k2": int(k[1]), "k3": int(k[2]) if len(k) > 2 else -1, "s": int(1 + rng.integers(len(sents) - 1))}


def generate(data: Path) -> dict[str, pd.DataFrame | list[dict[str, Any]]]:
    """Draw institutions, owners, challenges and truth from CSL (deterministic for a given CSL file)."""
    rng = np.random.default_rng(SEED)
    papers = [json.loads(line) for line in (data / "csl" / "csl_2000.jsonl").open(encoding="utf-8")]
    disc = Counter(p["discipline"] for p in papers)
    inst = _institutions(rng, disc)
    city = dict(zip(inst["name"], inst["city"], strict=True))
    recs = []
    for p in papers:
        names = [_one_owner(rng, inst, p["discipline"])]
        if rng.random() < 0.15:
            second = _one_owner(rng, inst, p["discipline"])
            if second != names[0]:
                names.append(second)
        unowned = rng.random() < 0.02
        recs.append({"id": p["id"], "owner": "" if unowned else _typed(rng, names),
                     "owners": "" if unowned else ";".join(names), "region": f"{city[names[0]]}市",
                     "maturity": MATURITY[rng.integers(len(MATURITY))]})
    records = pd.DataFrame(recs)
    by_id = {p["id"]: p for p in papers}
    owned = {r["id"] for r in recs if r["owners"]}
    challenges: list[dict[str, Any]] = []
    for split, prefix in (("dev", "dev-"), ("heldout", "test-")):
        pool = [p for p in papers if p["id"].startswith(prefix) and p["id"] in owned]
        order = rng.permutation(len(pool))
        singles = []
        for i in order:
            pick = _pick(rng, pool[i])
            if pick:
                pick["template"] = int(rng.integers(len(SINGLE_TEMPLATES)))
                singles.append(pick)
            if len(singles) == 150:
                break
        for n, pick in enumerate(singles, 1):
            challenges.append({"id": f"S-{split}-{n:03d}", "split": split, "kind": "single", "parts": [pick]})
        pairs = 0
        order = rng.permutation(len(pool))
        for a, b in zip(order[::2], order[1::2], strict=False):
            pa, pb = pool[a], pool[b]
            if pa["category"] == pb["category"]:
                continue
            first, second = _pick(rng, pa), _pick(rng, pb)
            if not (first and second):
                continue
            pairs += 1
            challenges.append({"id": f"T-{split}-{pairs:03d}", "split": split, "kind": "two_part",
                               "format": TWO_PART_FORMATS[rng.integers(len(TWO_PART_FORMATS))],
                               "region": list(CITIES)[rng.integers(3)], "parts": [first, second]})
            if pairs == 100:
                break
    truth = _truth(challenges, records, by_id)
    return {"institutions": inst.drop(columns="weight"), "records": records.drop(columns="owners"),
            "challenges": challenges, "truth": truth}


def _truth(challenges: list[dict[str, Any]], records: pd.DataFrame, by_id: dict[str, Any]) -> pd.DataFrame:
    """Grade 2: the source paper's owners; grade 1: institutions owning ≥ 3 papers of its discipline."""
    owners = dict(zip(records["id"], records["owners"], strict=True))
    held: Counter[tuple[str, str]] = Counter()
    for pid, cell in owners.items():
        for name in filter(None, cell.split(";")):
            held[(by_id[pid]["discipline"], name)] += 1
    strong: dict[str, set[str]] = {}
    for (d, name), n in held.items():
        if n >= STRONG_MIN:
            strong.setdefault(d, set()).add(name)
    rows = []
    for c in challenges:
        for part, pick in enumerate(c["parts"], 1):
            mine = set(filter(None, owners[pick["paper"]].split(";")))
            field = strong.get(by_id[pick["paper"]]["discipline"], set())
            grades = {**dict.fromkeys(field, 1), **dict.fromkeys(mine, 2)}
            rows += [{"challenge_id": c["id"], "part": part, "owner": o, "grade": g}
                     for o, g in sorted(grades.items())]
    return pd.DataFrame(rows, columns=["challenge_id", "part", "owner", "grade"])


def write(out: Path, data: Path) -> None:
    """Generate and write the four files under ``out``."""
    got = generate(data)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("institutions", "records", "truth"):
        frame = got[name]
        assert isinstance(frame, pd.DataFrame)
        frame.to_csv(out / f"{name}.csv", index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    with (out / "challenges.jsonl").open("w", encoding="utf-8", newline="\n") as fh:
        for c in got["challenges"]:  # type: ignore[union-attr]
            fh.write(json.dumps(c, ensure_ascii=False) + "\n")


@dataclass
class SolverData:
    """Achievements (records with owners) and challenges built from the committed files plus CSL."""

    achievements: pd.DataFrame
    challenges: pd.DataFrame  # id, title, description, region, parts (explicit list or None), split, kind
    parts: dict[str, list[str]]  # challenge id -> the text of each intended part
    truth: dict[str, dict[int, dict[str, int]]]  # challenge id -> part (0: whole) -> owner -> grade


def _sentence(paper: dict[str, Any], pick: dict[str, Any]) -> str:
    """The quoted sentence (cut to 50 characters), or in the keywords style a phrase around the third keyword."""
    if pick["style"] == "sentence":
        return sentences(paper["abstract"])[pick["s"]][:50]
    return f"重点关注{paper['keywords'][pick['k3']]}" if pick["k3"] >= 0 else "寻求可落地的技术方案"


def build(data: Path | None = None, folder: Path = OUT) -> SolverData:
    """Records and challenges as the engine reads them."""
    data = data or default_data()
    papers = {p["id"]: p for p in (json.loads(line) for line in (data / "csl" / "csl_2000.jsonl").open(
        encoding="utf-8"))}
    recs = pd.read_csv(folder / "records.csv", dtype=str, keep_default_na=False)
    ach = pd.DataFrame({"id": recs["id"], "title": [papers[i]["title"] for i in recs["id"]],
                        "description": [papers[i]["abstract"] for i in recs["id"]],
                        "keywords": [papers[i]["keywords"] for i in recs["id"]], "region": recs["region"],
                        "maturity": recs["maturity"], "owner": recs["owner"]})
    rows, parts = [], {}
    for line in (folder / "challenges.jsonl").open(encoding="utf-8"):
        c = json.loads(line)
        texts = []
        for pick in c["parts"]:
            p = papers[pick["paper"]]
            k1, k2 = p["keywords"][pick["k1"]], p["keywords"][pick["k2"]]
            texts.append((k1, k2, _sentence(p, pick)))
        if c["kind"] == "single":
            k1, k2, s = texts[0]
            title = f"{k1}{k2}技术需求"
            desc = SINGLE_TEMPLATES[c["parts"][0]["template"]].format(k1=k1, k2=k2, s=s)
            listed = None
            parts[c["id"]] = [desc]
        else:
            written = [PART_TEMPLATE.format(k1=k1, k2=k2, s=s) for k1, k2, s in texts]
            title = f"{texts[0][0]}与{texts[1][0]}联合攻关"
            desc = {"yishi": "需要联合攻关以下内容：一是{0}；二是{1}。", "paren": "主要任务：（1）{0}；（2）{1}。",
                    "cixi": "{0}。此外，{1}。", "tongshi": "{0}，同时{1}。", "parts": "{0}；{1}。"}[c["format"]].format(
                *written)
            listed = written if c["format"] == "parts" else None
            parts[c["id"]] = written
        rows.append({"id": c["id"], "title": title, "description": desc, "region": c.get("region", ""),
                     "parts": listed, "split": c["split"], "kind": c["kind"]})
    truth: dict[str, dict[int, dict[str, int]]] = {}
    for r in pd.read_csv(folder / "truth.csv", dtype={"grade": int, "part": int}).itertuples(index=False):
        by_part = truth.setdefault(str(r.challenge_id), {})
        by_part.setdefault(int(r.part), {})[str(r.owner)] = int(r.grade)
        whole = by_part.setdefault(0, {})
        whole[str(r.owner)] = max(whole.get(str(r.owner), 0), int(r.grade))
    return SolverData(ach, pd.DataFrame(rows), parts, truth)


def check(data: Path, folder: Path = OUT) -> list[str]:
    """The committed files that differ from a fresh generation (empty when all agree)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp), data)
        return [f for f in FILES if (Path(tmp) / f).read_bytes() != (folder / f).read_bytes()]


def main(argv: list[str] | None = None) -> int:
    """Write the files (``--write``) or compare them with a fresh generation (``--check``)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="folder with csl/ (default: $QCY_SHARED_DATA)")
    ap.add_argument("--write", action="store_true", help="(re)write benchmarks/data/solvers/")
    args = ap.parse_args(argv)
    data = args.data or default_data()
    if args.write:
        write(OUT, data)
        return 0
    diff = check(data)
    print("files agree with a fresh generation" if not diff else f"differ: {', '.join(diff)}", file=sys.stderr)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
