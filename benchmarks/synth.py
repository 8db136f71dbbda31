"""Seeded synthetic achievements and needs for the scale runs.

Text is built from the GB/T 4754-2017 names and "includes" terms shipped in ``qcy_match/data/gbt4754.json`` plus a
small technical vocabulary, so jieba sees realistic Chinese technical words and records of one industry share
vocabulary. Industry codes (小类) and cities are Zipf-skewed, as on a real platform where a few chains (equipment,
electronics, materials) and Xi'an dominate. ``bucket`` is a uniform integer 0..999 kept as metadata so a filter with
an exact selectivity can be written (``bucket in {0..k-1}`` keeps k/1000 of the records).

The same seed always gives the same records (numpy ``default_rng``); nothing here is random at module level.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from qcy_match.taxonomy import regions

METHODS = ("制备方法", "关键技术", "工艺优化", "智能控制系统", "在线监测装置", "检测方法", "集成应用", "设计与开发",
           "数字化平台", "成套装备", "改性技术", "回收利用技术", "仿真与优化", "评价方法", "绿色生产工艺")
QUALITIES = ("高效", "低成本", "高精度", "绿色", "节能", "轻量化", "高可靠性", "智能化", "柔性", "长寿命", "低能耗",
             "高性能", "模块化", "国产化")
PROBLEMS = ("能耗高", "精度不足", "成本偏高", "寿命短", "效率低", "稳定性差", "依赖进口", "污染排放大", "良品率低",
            "检测滞后")
GAINS = ("效率", "良品率", "使用寿命", "精度", "产能", "可靠性")
NEED_VERBS = ("急需", "寻求", "希望引进", "拟合作开发", "征集")
# Sections where technology transfer happens: farming, mining, manufacturing, utilities, construction, IT,
# research and technical services, environment, health.
TECH_SECTIONS = "ABCDEIMNQ"
MATURITY = ("实验室", "小试", "中试", "产业化")
TRANSFER = ("转让", "许可", "作价入股", "合作开发", "技术服务")


@dataclass(frozen=True)
class Vocabulary:
    """Terms per 小类 code, in a fixed order."""

    codes: tuple[str, ...]
    names: tuple[str, ...]
    terms: tuple[tuple[str, ...], ...]


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """Level-4 codes with their name and included products (at least the name itself, cleaned of short bits)."""
    text = resources.files("qcy_match.data").joinpath("gbt4754.json").read_text("utf-8")
    nodes = [n for n in json.loads(text)["nodes"] if n["level"] == 4 and n["code"][0] in TECH_SECTIONS]
    codes, names, terms = [], [], []
    for n in nodes:
        name = str(n["name"])
        inc = [t for t in n.get("includes", []) if 2 <= len(t) <= 10 and "未列明" not in t and not t.startswith("以")]
        stem = name.removesuffix("制造").removesuffix("服务").removesuffix("生产") or name
        codes.append(n["code"])
        names.append(name)
        terms.append(tuple(dict.fromkeys([stem, *inc])))
    return Vocabulary(tuple(codes), tuple(names), tuple(terms))


def _zipf_weights(n: int, a: float, rng: np.random.Generator) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** a
    return rng.permutation(w / w.sum())


def _cities() -> list[tuple[str, tuple[str, ...]]]:
    return [(c, places) for c, (_, places) in regions.CITIES.items()]


def generate(n: int, seed: int = 0, kind: str = "achievements", zipf_a: float = 1.0) -> pd.DataFrame:
    """``n`` synthetic records of one side (``achievements`` or ``needs``) as a DataFrame in the input shape.

    Needs of one seed draw industries from the same skewed distribution as achievements of the same seed, so a
    need usually finds achievements that share its industry vocabulary.
    """
    if kind not in ("achievements", "needs"):
        raise ValueError(f"kind must be 'achievements' or 'needs', not {kind!r}")
    voc = vocabulary()
    # The distributions depend on the seed only, so both sides of one seed share them.
    base = np.random.default_rng(seed)
    ind_p = _zipf_weights(len(voc.codes), zipf_a, base)
    cities = _cities()
    city_p = 1.0 / np.arange(1, len(cities) + 1) ** 1.3
    city_p /= city_p.sum()
    rng = np.random.default_rng([seed, 0 if kind == "achievements" else 1])
    ind = rng.choice(len(voc.codes), size=n, p=ind_p)
    second = rng.choice(len(voc.codes), size=n, p=ind_p)
    has_second = rng.random(n) < 0.15
    city = rng.choice(len(cities), size=n, p=city_p)
    r = rng.integers(0, 1 << 30, size=(n, 12))
    bucket = rng.integers(0, 1000, size=n)
    prefix = "A" if kind == "achievements" else "N"
    rows = []
    for i in range(n):
        t = voc.terms[ind[i]]
        j = r[i, 0] % len(t)
        # Two different terms where the code has them, so titles do not repeat a word.
        a, b, c = t[j], t[(j + 1 + r[i, 1] % max(1, len(t) - 1)) % len(t)], t[r[i, 2] % len(t)]
        method = METHODS[r[i, 3] % len(METHODS)]
        quality = QUALITIES[r[i, 4] % len(QUALITIES)]
        problem = PROBLEMS[r[i, 5] % len(PROBLEMS)]
        gain = GAINS[r[i, 6] % len(GAINS)]
        pct = 10 + r[i, 7] % 60
        field = voc.names[ind[i]]
        if kind == "achievements":
            form = r[i, 8] % 4
            title = (f"{quality}{a}{method}", f"基于{b}的{a}{method}", f"一种{a}及其{method}",
                     f"{a}与{b}{method}")[form]
            desc = (f"针对{field}领域{a}{problem}的问题，研发了{quality}{b}{method}，{gain}提升{pct}%。"
                    f"可用于{c}等产品，已完成{MATURITY[r[i, 9] % 4]}验证。")
        else:
            verb = NEED_VERBS[r[i, 8] % len(NEED_VERBS)]
            title = (f"{a}{problem}问题{verb}解决方案", f"{verb}{quality}{a}技术", f"{a}{b}{method}需求")[r[i, 9] % 3]
            desc = f"我公司从事{field}，现有{a}{problem}，{verb}{quality}{b}相关技术，要求{gain}提高{pct}%以上。"
        name, places = cities[city[i]]
        district = places[r[i, 10] % len(places)] if r[i, 11] % 2 else ""
        codes = [voc.codes[ind[i]]] + ([voc.codes[second[i]]] if has_second[i] and second[i] != ind[i] else [])
        city_name = name if name.endswith(("新区", "杨凌")) else f"{name}市"
        rows.append({"id": f"{prefix}{i:07d}", "title": title, "description": desc, "industry": codes,
                     "region": f"{city_name}{district}", "keywords": [a, b],
                     "maturity": MATURITY[r[i, 9] % 4], "transfer_mode": TRANSFER[r[i, 10] % 5],
                     "bucket": int(bucket[i])})
    return pd.DataFrame(rows)


def bucket_values(selectivity: float) -> list[str]:
    """Values of the ``bucket`` column that keep the given share of records (a multiple of 0.1 %)."""
    k = max(1, round(selectivity * 1000))
    return [str(v) for v in range(k)]
