"""Filters: parse ``key=value,value`` specs and turn them into a boolean mask over the indexed records.

Values within one filter are OR-ed; different filters are AND-ed. Industry values are GB/T 4754 codes at any
level and match every code under them; ``chain`` values (Shaanxi's key chains, e.g. 集成电路) and ``tag`` values
(``strategic``, a 战略性新兴产业 sector, ``digital`` …) expand to the codes they cover;
region values are a group (关中/陕北/陕南), a city or a district name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import chains, regions, taxonomy

KEYS = ("industry", "chain", "tag", "region", "maturity", "transfer_mode")
Filters = Mapping[str, str | Sequence[str]]


class FilterError(ValueError):
    """A filter that names an unknown field or value."""


def parse(spec: Filters | Iterable[str] | None) -> dict[str, list[str]]:
    """Normalise filters given as a mapping or as CLI strings like ``industry=39,C27``."""
    if not spec:
        return {}
    items: list[tuple[str, str | Sequence[str]]] = []
    if isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        for s in spec:
            if "=" not in s:
                raise FilterError(f"filter {s!r} must look like key=value[,value…], e.g. industry=39,C27")
            name, _, text = s.partition("=")
            items.append((name, text))
    out: dict[str, list[str]] = {}
    for raw_key, value in items:
        key = str(raw_key).strip()
        values: list[str] = [value] if isinstance(value, str) else list(value)
        parts = [p.strip() for v in values for p in str(v).replace("，", ",").split(",") if p.strip()]
        if not parts:
            raise FilterError(f"filter {key!r} has no value")
        if key == "industry":
            try:
                parts = [taxonomy.normalize_code(p) for p in parts]
            except taxonomy.UnknownCodeError as exc:
                raise FilterError(f"filter industry: {exc}") from exc
        elif key in ("chain", "tag"):
            try:
                chains.expand(key, parts)  # fail on unknown names now, not at search time
            except chains.UnknownChainError as exc:
                raise FilterError(f"filter {key}: {exc}") from exc
        out.setdefault(key, []).extend(parts)
    return out


def mask(records: pd.DataFrame, filters: Mapping[str, list[str]]) -> np.ndarray | None:
    """Boolean array of the records that pass every filter, or None when there is no filter."""
    if not filters:
        return None
    keep = np.ones(len(records), dtype=bool)
    for key, values in filters.items():
        if key in ("industry", "chain", "tag"):
            # A record passes only through a code at or below a covered code: one coded just 'C39' is not let
            # through by a filter on C3973, since it may be any other electronics industry.
            prefixes = tuple(values) if key == "industry" else chains.expand(key, values)
            m = [any(c.startswith(prefixes) for c in codes) for codes in records["industry"]]
        elif key == "region":
            m = [any(regions.region_matches(v, c, g, r) for v in values)
                 for c, g, r in zip(records["region_city"], records["region_group"], records["region"], strict=True)]
        elif key in ("maturity", "transfer_mode"):
            # Cells may list several modes ("转让/许可"); any listed one satisfies the filter.
            m = [any(v in str(cell) for v in values) for cell in records[key]]
        elif key in records.columns:
            m = records[key].astype(str).isin(values).tolist()
        else:
            raise FilterError(f"unknown filter {key!r}; use one of {', '.join(KEYS)} or a metadata column "
                              f"({', '.join(c for c in records.columns if not c.startswith('_'))})")
        keep &= np.asarray(m, dtype=bool)
    return keep
