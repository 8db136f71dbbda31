"""Why a record matched: shared keywords, industry and region agreement, each signal's score and rank."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from ..taxonomy import gbt as taxonomy

# The record fields an explanation reads (besides tokens).
EXPLAIN_FIELDS = ("industry", "region_city", "region_group")


def query_idf(idf: Mapping[str, float], tokens: Iterable[str]) -> dict[str, float]:
    """The IDF of a query's own indexed terms, looked up once each: shared keywords are among them, and the index's
    IDF view resolves every term anew.
    """
    out = {}
    for t in set(tokens):
        with contextlib.suppress(KeyError):  # a term no live record holds
            out[t] = idf[t]
    return out


def shared_keywords(query_tokens: list[str], doc_tokens: list[str], idf: Mapping[str, float],
                    n: int = 5) -> list[tuple[str, float]]:
    """Terms both texts contain, weighted by corpus IDF, strongest first."""
    common = set(query_tokens) & set(doc_tokens)
    scored = sorted(((t, float(idf.get(t, 0.0))) for t in common if len(t) > 1), key=lambda x: (-x[1], x[0]))
    return [(t, round(s, 3)) for t, s in scored[:n]]


def industry_agreement(codes_a: list[str], codes_b: list[str]) -> str:
    """Deepest shared GB/T 4754 level (小类/中类/大类/门类), 'none', or 'unknown' when either side has no code."""
    if not (codes_a and codes_b):
        return "unknown"
    return taxonomy.agreement(codes_a, codes_b)


def region_agreement(city_a: str, group_a: str, city_b: str, group_b: str) -> str:
    """'city' (same city), 'group' (same 关中/陕北/陕南), 'none', or 'unknown' when either place is unknown."""
    if not (group_a and group_b):
        return "unknown"
    if city_a and city_a == city_b:
        return "city"
    return "group" if group_a == group_b else "none"


def explain(query: Mapping[str, Any], doc: Mapping[str, Any], query_tokens: list[str], doc_tokens: list[str],
            idf: Mapping[str, float], signals: dict[str, Any], n_keywords: int = 5) -> dict[str, Any]:
    """The explanation of one match."""
    return {
        "shared_keywords": shared_keywords(query_tokens, doc_tokens, idf, n_keywords),
        "industry_agreement": industry_agreement(list(query.get("industry") or []), list(doc.get("industry") or [])),
        "region_agreement": region_agreement(query.get("region_city", ""), query.get("region_group", ""),
                                             doc.get("region_city", ""), doc.get("region_group", "")),
        **signals,
    }
