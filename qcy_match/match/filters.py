"""Filters: parse ``key=value,value`` specs and turn them into a boolean mask over the indexed records.

Values within one filter are OR-ed; different filters are AND-ed. Industry values are GB/T 4754 codes at any
level and match every code under them; ``chain`` values (Shaanxi's key chains, e.g. 集成电路) and ``tag`` values
(``strategic``, a 战略性新兴产业 sector, ``digital`` …) expand to the codes they cover;
region values are a group (关中/陕北/陕南), a city or a district name; ``owner`` / ``team`` / ``leader`` values are
names, folded as the records' are (:mod:`qcy_match.ingest.owners`), and a record passes through any of its owners.

This is the one meaning of a filter: the search applies it inside the index, and the demand analytics select a
roadshow's scope with it (:func:`qcy_match.analytics.demand.scope_mask`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FilterError
from ..ingest.owners import OWNER_FIELDS, owner_name, owners_of
from ..taxonomy import chains, regions
from ..taxonomy import gbt as taxonomy

KEYS = ("industry", "chain", "tag", "region", "maturity", "transfer_mode")
Filters = Mapping[str, str | Sequence[str]]


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
        elif key in OWNER_FIELDS:  # the same name however it is typed (see ingest.owners)
            parts = [owner_name(p) for p in parts]
        elif key in ("chain", "tag"):
            try:
                chains.expand(key, parts)  # fail on unknown names now, not at search time
            except chains.UnknownChainError as exc:
                raise FilterError(f"filter {key}: {exc}") from exc
        out.setdefault(key, []).extend(parts)
    return out


def mask(records: pd.DataFrame, filters: Mapping[str, list[str]]) -> np.ndarray | None:
    """Boolean array of the records that pass every filter, or None when there is no filter."""
    return FilterIndex(records).mask(filters)


def partition_labels(records: pd.DataFrame) -> np.ndarray:
    """Each record's dense-index partition: the 门类 letter of its first industry code (A = 0 …), -1 for none.

    Industry filters then keep whole partitions, or a share of one, and are searched partition by partition
    (:mod:`qcy_match.index.dense.partitions`); any other filter is still answered right, just not faster.
    """
    first = [codes[0][:1] if len(codes) and str(codes[0])[:1].isascii() and str(codes[0])[:1].isalpha() else ""
             for codes in records["industry"]]
    return np.array([ord(c.upper()) - ord("A") if c else -1 for c in first], dtype=np.int8)


def _passes(key: str, values: list[str], prefixes: tuple[str, ...]) -> Callable[[Any], bool]:
    """The test one distinct cell value must pass for ``key``."""
    if key in ("industry", "chain", "tag"):
        # A record passes only through a code at or below a covered code: one coded just 'C39' is not let
        # through by a filter on C3973, since it may be any other electronics industry.
        return lambda code: str(code).startswith(prefixes)
    if key == "region":
        return lambda cell: any(regions.region_matches(v, *cell) for v in values)
    if key in ("maturity", "transfer_mode"):
        # Cells may list several modes ("转让/许可"); any listed one satisfies the filter.
        return lambda cell: any(v in cell for v in values)
    return lambda cell: cell in values


class FilterIndex:
    """The records' filterable fields grouped by distinct value, built once per indexed snapshot.

    A filter then costs one test per distinct value (a few thousand industry codes, cities, maturity labels) plus
    marking the rows of the values that pass, instead of a Python call per record: at 1M records that is the
    difference between about a second and a millisecond per query. Recent masks are kept, since portals send the
    same few filters again and again.
    """

    CACHE = 32

    def __init__(self, records: pd.DataFrame) -> None:
        self.records = records
        self._groups: dict[str, tuple[list[Any], np.ndarray, np.ndarray]] = {}
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _group(self, key: str) -> tuple[list[Any], np.ndarray, np.ndarray]:
        """Distinct values of a field, the rows sorted by value and each value's start in them."""
        if key in self._groups:
            return self._groups[key]
        recs = self.records
        if key == "industry":
            lengths = recs["industry"].map(len).to_numpy(dtype=np.int64)
            rows = np.repeat(np.arange(len(recs)), lengths)
            cells: list[Any] = [c for codes in recs["industry"] for c in codes]
        elif key in OWNER_FIELDS:  # a record with several owners passes through any of them
            names = [owners_of(c) for c in recs[key]]
            rows = np.repeat(np.arange(len(recs)), [len(n) for n in names])
            cells = [n for ns in names for n in ns]
        elif key == "region":
            rows = np.arange(len(recs))
            cells = list(zip(recs["region_city"].astype(str), recs["region_group"].astype(str),
                             recs["region"].astype(str), strict=True))
        else:
            rows = np.arange(len(recs))
            cells = recs[key].astype(str).tolist()
        ids, uniq = pd.factorize(pd.Series(cells, dtype=object), use_na_sentinel=False)
        order = np.argsort(ids, kind="stable")
        starts = np.searchsorted(ids[order], np.arange(len(uniq) + 1))
        group = (list(uniq), rows[order], starts)
        self._groups[key] = group
        return group

    def _key_mask(self, key: str, values: list[str]) -> np.ndarray:
        if key not in KEYS and key not in self.records.columns:
            raise FilterError(f"unknown filter {key!r}; use one of {', '.join(KEYS)} or a metadata column "
                              f"({', '.join(c for c in self.records.columns if not c.startswith('_'))})")
        prefixes = tuple(values) if key == "industry" else chains.expand(key, values) if key in ("chain", "tag") \
            else ()
        uniq, rows, starts = self._group("industry" if key in ("chain", "tag") else key)
        test = _passes(key, values, prefixes)
        out = np.zeros(len(self.records), dtype=bool)
        hits = [i for i, v in enumerate(uniq) if test(v)]
        if hits:
            out[np.concatenate([rows[starts[i]:starts[i + 1]] for i in hits])] = True
        return out

    def mask(self, filters: Mapping[str, list[str]]) -> np.ndarray | None:
        """Boolean array of the records that pass every filter (read-only), or None when there is no filter."""
        if not filters:
            return None
        cache_key = json.dumps(sorted((k, sorted(v)) for k, v in filters.items()), ensure_ascii=False)
        with self._lock:
            if cache_key in self._cache:
                self._cache.move_to_end(cache_key)
                return self._cache[cache_key]
            keep = np.ones(len(self.records), dtype=bool)
            for key, values in filters.items():
                keep &= self._key_mask(key, list(values))
            keep.flags.writeable = False
            self._cache[cache_key] = keep
            if len(self._cache) > self.CACHE:
                self._cache.popitem(last=False)
            return keep
