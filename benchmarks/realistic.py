"""Seeded realistic achievements and needs: CSL abstract sentences recombined, at any N.

The synthetic corpus of :mod:`benchmarks.synth` is short template text; real records are a title plus an abstract
of a few long sentences. Here every record is drawn from a CSL paper (its *source*):

- description: as many sentences as its source has (so the length distribution follows CSL's), each slot holding
  the source's own sentence at that position with probability ``own`` and otherwise a sentence of another paper of
  the same CSL category (so vocabulary stays within a field, as on a real platform);
- title: a CSL title of the same category (2,000 paper titles plus the 8,000 title-only rows);
- keywords: the source's keywords;
- industry: GB/T 4754 小类 codes. No CSL category → GB/T mapping exists in the project, so :data:`SECTIONS` gives
  each CSL category the GB/T prefixes (门类 or 大类) where its work is applied, and a record draws its 小类 from
  them with seeded Zipf weights (15 % carry a second code);
- region: a Shaanxi city (and half the time a district), Zipf-skewed as in :mod:`benchmarks.synth`.

Needs are written the same way (full-length, several sentences, opened and closed as a firm would), and a share
``known`` of them is built around one achievement (its ``source``): up to two of that achievement's sentences,
one to three further sentences of its category, its industry codes and a title from its keywords, so whether the
engine finds the source within its top 10 can be checked.

Everything is numpy ``default_rng`` seeded: the same (n, seed) gives the same records. Generation is vectorised
up to the final string joins (one Python join per record), and records share the CSL sentence and keyword objects,
so 1M records take about a minute and well under 2 GiB.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import synth
from .datasets import default_data

# GB/T 4754-2017 prefixes where each CSL category's work is applied (a prefix covers its sub-codes). Written for
# this benchmark; it only has to make records of one field share industries, as on a real platform.
SECTIONS: dict[str, tuple[str, ...]] = {
    "工学": ("B", "C", "D", "E", "I"),
    "理学": ("M", "C26", "C39", "I"),
    "医学": ("Q", "C27", "C358"),
    "农学": ("A", "C13", "C14", "C15"),
    "管理学": ("L", "M", "I"),
    "经济学": ("J", "L"),
    "法学": ("S", "L72"),
    "教育学": ("P",),
    "文学": ("R",),
    "艺术学": ("R",),
    "历史学": ("R",),
    "哲学": ("P", "R"),
    "军事学": ("C37", "C38", "C39", "C40"),
}
SENTENCE_END = re.compile(r"(?<=[。；！？])|(?<=\.)(?!\d)")
NEED_OPEN = ("我公司主要从事{}，", "本企业属于{}行业，", "我单位长期从事{}相关业务，", "公司深耕{}领域，")
NEED_CLOSE = ("现寻求相关技术合作。", "希望与高校院所联合攻关。", "拟通过技术转让或合作开发解决。",
              "征集成熟技术方案，可提供中试条件。")
NEED_TITLE = ("{}技术需求", "寻求{}解决方案", "{}关键技术攻关", "{}技术合作开发")


@dataclass(frozen=True)
class Source:
    """CSL papers and titles arranged for vectorised sampling (everything ordered by category)."""

    categories: tuple[str, ...]
    paper_cat: np.ndarray  # category index per paper
    paper_keywords: tuple[list[str], ...]
    sent: np.ndarray  # object array of sentences, papers in order
    sent_start: np.ndarray  # first sentence of each paper
    sent_count: np.ndarray  # sentences per paper
    cat_sent: np.ndarray  # sentence ids ordered by category
    cat_sent_start: np.ndarray  # first entry of each category in cat_sent
    cat_sent_count: np.ndarray
    titles: np.ndarray  # object array, ordered by category
    cat_title_start: np.ndarray
    cat_title_count: np.ndarray
    codes: tuple[str, ...]  # GB/T 小类 codes
    code_names: tuple[str, ...]
    cat_codes: tuple[np.ndarray, ...]  # code ids per category
    abstract_chars: np.ndarray  # CSL abstract lengths, the reference distribution


def _split(abstract: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(abstract) if s.strip()] or [abstract]


@lru_cache(maxsize=2)
def load_source(data: Path | None = None) -> Source:
    """CSL from ``data`` (default: $QCY_SHARED_DATA or ../shared/data) and the GB/T codes shipped with qcy_match."""
    root = data or default_data()
    path = root / "csl" / "csl_2000.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: set QCY_SHARED_DATA to the folder holding csl/")
    papers = [json.loads(line) for line in path.open(encoding="utf-8")]
    cats = tuple(sorted({p["category"] for p in papers}))
    cat_of = {c: i for i, c in enumerate(cats)}
    sentences: list[str] = []
    start, count, pcat = [], [], []
    for p in papers:
        s = _split(p["abstract"])
        start.append(len(sentences))
        count.append(len(s))
        pcat.append(cat_of[p["category"]])
        sentences += s
    sent = np.empty(len(sentences), object)
    sent[:] = sentences
    sent_cat = np.repeat(np.asarray(pcat), count)
    cat_sent = np.argsort(sent_cat, kind="stable")
    cat_sent_count = np.bincount(sent_cat, minlength=len(cats))
    rows = pd.read_csv(root / "csl" / "csl_titles_8000.tsv", sep="\t", dtype=str, quoting=3).dropna()
    tt = [(cat_of[c], t) for c, t in zip(rows["category"], rows["title"], strict=True) if c in cat_of]
    tt += [(cat_of[p["category"]], p["title"]) for p in papers]
    tt.sort(key=lambda x: x[0])
    titles = np.empty(len(tt), object)
    titles[:] = [t for _, t in tt]
    cat_title_count = np.bincount([c for c, _ in tt], minlength=len(cats))
    gbt = _level4()
    cat_codes = tuple(np.asarray([i for i, (c, _) in enumerate(gbt) if c.startswith(SECTIONS[cat])], np.int64)
                      for cat in cats)
    return Source(cats, np.asarray(pcat), tuple(list(p["keywords"]) for p in papers), sent,
                  np.asarray(start), np.asarray(count), cat_sent, np.r_[0, np.cumsum(cat_sent_count)[:-1]],
                  cat_sent_count, titles, np.r_[0, np.cumsum(cat_title_count)[:-1]], cat_title_count,
                  tuple(c for c, _ in gbt), tuple(n for _, n in gbt), cat_codes,
                  np.asarray([len(p["abstract"]) for p in papers]))


def _level4() -> list[tuple[str, str]]:
    from importlib import resources

    text = resources.files("qcy_match.data").joinpath("gbt4754.json").read_text("utf-8")
    return [(n["code"], n["name"]) for n in json.loads(text)["nodes"] if n["level"] == 4]


def _pick(rng: np.random.Generator, start: np.ndarray, count: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """One uniform entry of each row's group (entries ``start[g] .. start[g] + count[g] - 1``)."""
    return start[groups] + (rng.random(len(groups)) * count[groups]).astype(np.int64)


def _industries(src: Source, cat: np.ndarray, rng: np.random.Generator, base: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Main and second 小类 id per record (second -1 where absent), Zipf-weighted within the category's codes."""
    main = np.empty(len(cat), np.int64)
    second = np.full(len(cat), -1, np.int64)
    has_second = rng.random(len(cat)) < 0.15
    for c, ids in enumerate(src.cat_codes):
        rows = np.flatnonzero(cat == c)
        if not len(rows):
            continue
        w = 1.0 / np.arange(1, len(ids) + 1)
        p = base.permutation(w / w.sum())
        main[rows] = ids[rng.choice(len(ids), size=len(rows), p=p)]
        sec = ids[rng.choice(len(ids), size=len(rows), p=p)]
        keep = has_second[rows] & (sec != main[rows])
        second[rows[keep]] = sec[keep]
    return main, second


@dataclass(frozen=True)
class Plan:
    """The numeric draw behind n achievements: every record's source, sentences, title and codes."""

    source: np.ndarray
    cat: np.ndarray
    offsets: np.ndarray  # record i's sentences are flat[offsets[i]:offsets[i + 1]]
    flat: np.ndarray
    title: np.ndarray
    main: np.ndarray
    second: np.ndarray


def plan(n: int, seed: int, src: Source, stream: int = 0, own: float = 0.5) -> Plan:
    base = np.random.default_rng(seed)  # distributions shared by both sides of one seed
    rng = np.random.default_rng([seed, stream])
    source = rng.integers(0, len(src.paper_cat), size=n)
    cat = src.paper_cat[source]
    k = src.sent_count[source]
    offsets = np.r_[0, np.cumsum(k)]
    rec = np.repeat(np.arange(n), k)
    pos = np.arange(offsets[-1]) - offsets[rec]
    mine = src.sent_start[source[rec]] + pos
    other = src.cat_sent[_pick(rng, src.cat_sent_start, src.cat_sent_count, cat[rec])]
    flat = np.where(rng.random(len(rec)) < own, mine, other)
    title = _pick(rng, src.cat_title_start, src.cat_title_count, cat)
    main, second = _industries(src, cat, rng, base)
    return Plan(source, cat, offsets, flat, title, main, second)


def _regions(n: int, rng: np.random.Generator) -> list[str]:
    cities = synth._cities()
    p = 1.0 / np.arange(1, len(cities) + 1) ** 1.3
    city = rng.choice(len(cities), size=n, p=p / p.sum())
    r = rng.integers(0, 1 << 30, size=(n, 2))
    out = []
    for c, a, b in zip(city.tolist(), r[:, 0].tolist(), r[:, 1].tolist(), strict=True):
        name, places = cities[c]
        city_name = name if name.endswith(("新区", "杨凌")) else f"{name}市"
        out.append(city_name + (places[a % len(places)] if b % 2 and places else ""))
    return out


def _codes(src: Source, main: np.ndarray, second: np.ndarray) -> list[list[str]]:
    return [[src.codes[m]] if s < 0 else [src.codes[m], src.codes[s]]
            for m, s in zip(main.tolist(), second.tolist(), strict=True)]


def achievements(n: int, seed: int = 0, data: Path | None = None) -> pd.DataFrame:
    """``n`` achievements in the input shape (id, title, description, keywords, industry, region, maturity,
    transfer_mode) plus ``field``, the CSL category they were drawn from (kept as metadata)."""
    src = load_source(data)
    p = plan(n, seed, src)
    sent, off, flat = src.sent, p.offsets.tolist(), p.flat
    desc = ["".join(sent[flat[off[i]:off[i + 1]]]) for i in range(n)]
    rng = np.random.default_rng([seed, 2])
    extra = rng.integers(0, 1 << 30, size=(n, 2))
    return pd.DataFrame({
        "id": [f"R{i:07d}" for i in range(n)], "title": src.titles[p.title].tolist(), "description": desc,
        "keywords": [src.paper_keywords[s] for s in p.source.tolist()], "industry": _codes(src, p.main, p.second),
        "region": _regions(n, rng), "field": np.asarray(src.categories, object)[p.cat].tolist(),
        "maturity": [synth.MATURITY[x % len(synth.MATURITY)] for x in extra[:, 0].tolist()],
        "transfer_mode": [synth.TRANSFER[x % len(synth.TRANSFER)] for x in extra[:, 1].tolist()]})


def needs(n: int, n_achievements: int, seed: int = 0, known: float = 0.5, data: Path | None = None
          ) -> pd.DataFrame:
    """``n`` full-length needs against the ``n_achievements`` of the same seed; the first ``known`` share name the
    achievement they were written from in ``source`` (empty otherwise)."""
    src = load_source(data)
    rng = np.random.default_rng([seed, 3])
    n_known = int(round(n * known))
    # Known-source needs: the target's plan, regenerated (numbers only) for the targets.
    target = rng.choice(n_achievements, size=min(n_known, n_achievements), replace=False)
    n_known = len(target)
    a = plan(n_achievements, seed, src)
    free = plan(n, seed, src, stream=1)
    t_cat = a.cat[target]
    cat = np.concatenate([t_cat, free.cat[n_known:]])
    main = np.concatenate([a.main[target], free.main[n_known:]])
    second = np.concatenate([a.second[target], free.second[n_known:]])
    extra = rng.integers(0, 1 << 30, size=(n, 6))
    fillers = _pick(rng, src.cat_sent_start, src.cat_sent_count, np.repeat(cat, 3)).reshape(n, 3)
    titles, descs, keywords, sources = [], [], [], []
    off = a.offsets
    for i in range(n):
        e = extra[i]
        field = src.code_names[main[i]]
        if i < n_known:
            t = int(target[i])
            own_s = a.flat[off[t]:off[t + 1]]
            take = own_s[rng.permutation(len(own_s))[:2]] if len(own_s) > 2 else own_s
            body = [src.sent[j] for j in take]
            kws = src.paper_keywords[a.source[t]]
            title = NEED_TITLE[e[0] % len(NEED_TITLE)].format("".join(kws[:2]) or field)
            sources.append(f"R{t:07d}")
        else:
            body = [src.sent[j] for j in free.flat[free.offsets[i]:free.offsets[i + 1]]][:3]
            kws = src.paper_keywords[free.source[i]]
            title = NEED_TITLE[e[0] % len(NEED_TITLE)].format(src.titles[free.title[i]])
            sources.append("")
        body += [src.sent[src.cat_sent[j]] for j in fillers[i, :1 + e[1] % 3]]
        descs.append(NEED_OPEN[e[2] % len(NEED_OPEN)].format(field) + "".join(body)
                     + NEED_CLOSE[e[3] % len(NEED_CLOSE)])
        titles.append(title)
        keywords.append(kws)
    return pd.DataFrame({
        "id": [f"N{i:07d}" for i in range(n)], "title": titles, "description": descs, "keywords": keywords,
        "industry": _codes(src, main, second), "region": _regions(n, rng), "source": sources,
        "field": np.asarray(src.categories, object)[cat].tolist(),
        "maturity": [synth.MATURITY[x % len(synth.MATURITY)] for x in extra[:, 4].tolist()],
        "transfer_mode": [synth.TRANSFER[x % len(synth.TRANSFER)] for x in extra[:, 5].tolist()]})
