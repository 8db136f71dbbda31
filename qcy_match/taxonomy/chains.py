"""Shaanxi's 23 key industrial chains and the GB/T 4754 tags (战略性新兴产业 …) as sets of industry codes.

The chains ship as JSON built from ``shaanxi_chains.yaml`` by ``corpora/make_package_data.py`` (the core needs no
YAML parser). A chain or tag expands to canonical code prefixes, so a filter on it is an industry filter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..errors import UnknownChainError
from . import gbt as taxonomy


@dataclass(frozen=True)
class Chain:
    """One key industrial chain: id, Chinese name and the GB/T 4754-2017 codes it covers (prefixes)."""

    id: str
    name: str
    codes: tuple[str, ...]


# Tag names people write, mapped to the tag keys of the taxonomy data.
TAG_ALIASES = {
    "strategic": "strategic", "战略性新兴产业": "strategic", "战新": "strategic",
    "digital": "digital", "数字经济": "digital", "数字经济核心产业": "digital",
    "hightech_mfg": "highTech_mfg", "高技术制造业": "highTech_mfg",
    "hightech_svc": "highTech_svc", "高技术服务业": "highTech_svc",
    "pension": "pension", "养老产业": "pension", "culture": "culture", "文化产业": "culture",
    "ip": "ip密集型", "ip密集型": "ip密集型", "知识产权密集型产业": "ip密集型",
}


@lru_cache(maxsize=1)
def chains() -> tuple[Chain, ...]:
    """The 23 chains in the order of the provincial document."""
    raw = json.loads(resources.files("qcy_match.data").joinpath("shaanxi_chains.json").read_text("utf-8"))
    return tuple(Chain(c["id"], c["name"], tuple(c["codes"])) for c in raw["chains"])


def chain(value: str) -> Chain:
    """Find a chain by id (``integrated_circuits``), name (``集成电路``) or a name without its brackets."""
    v = str(value).strip()
    for c in chains():
        if v in (c.id, c.name) or v == c.name.split("（")[0]:
            return c
    near = [c.name for c in chains() if set(v) & set(c.name)]
    raise UnknownChainError(f"unknown chain {v!r}; " + (f"nearest: {', '.join(near[:5])}; " if near else "")
                            + f"known chains: {', '.join(c.name for c in chains())}")


def chains_of(code: str) -> list[Chain]:
    """Chains that cover a canonical industry code (the code lies under one of the chain's codes)."""
    return [c for c in chains() if code.startswith(c.codes)]


def strategic_sectors() -> list[str]:
    """Top-level 战略性新兴产业 sectors named in the taxonomy (新一代信息技术产业 …)."""
    return sorted({s for n in taxonomy.industries().values() for s in n.strategic})


def tag_codes(value: str) -> tuple[str, ...]:
    """小类 codes carrying a tag: ``strategic``, a 战略性新兴产业 sector name, ``digital``, ``highTech_mfg`` etc."""
    v = str(value).strip()
    nodes = taxonomy.industries().values()
    if v in strategic_sectors():
        return tuple(n.code for n in nodes if v in n.strategic)
    key = TAG_ALIASES.get(v.lower(), TAG_ALIASES.get(v))
    if key is None:
        raise UnknownChainError(f"unknown tag {v!r}; use one of {', '.join(sorted(set(TAG_ALIASES.values())))} "
                                f"or a 战略性新兴产业 sector: {', '.join(strategic_sectors())}")
    return tuple(n.code for n in nodes if key in n.tags)


def expand(key: str, values: list[str]) -> tuple[str, ...]:
    """Code prefixes covered by a ``chain`` or ``tag`` filter's values (OR-ed)."""
    out: dict[str, None] = {}
    for v in values:
        for code in (chain(v).codes if key == "chain" else tag_codes(v)):
            out.setdefault(code)
    return tuple(out)


OTHER = "其他"


def chain_of_codes(codes: Iterable[str]) -> str | None:
    """The one chain of a record's codes: the first code that lies in any chain, and among the chains covering it
    the most specific (乳制品 ``C144`` beats 富硒食品 ``C14``).
    """
    for code in codes:
        best = max(((len(p), c.name) for c in chains() for p in c.codes if str(code).startswith(p)), default=None)
        if best is not None:
            return best[1]
    return None


def record_chain(record: dict[str, object]) -> str:
    """The chain a record is counted under: its own ``chain`` field when filled, else :func:`chain_of_codes` of its
    industry codes, else 其他.
    """
    own = record.get("chain")
    if isinstance(own, str) and own.strip():
        return own.strip()
    codes = record.get("industry")
    if isinstance(codes, str):
        codes = [codes]
    found = chain_of_codes(list(codes)) if isinstance(codes, Iterable) else None
    return found or OTHER
