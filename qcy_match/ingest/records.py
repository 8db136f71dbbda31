"""The record shape shared by achievements and needs, column aliases, and row validation."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import RejectedRowsError
from ..taxonomy import gbt as taxonomy
from ..taxonomy import regions
from ..text import normalize
from .fieldtypes import wrong_type
from .owners import OWNER_FIELDS, canonical_cell
from .tables import Rejection, read_table, table_format

logger = logging.getLogger(__name__)

FIELDS = ("id", "title", "description", "industry", "region", "keywords", "maturity", "transfer_mode")
DERIVED = ("region_city", "region_group")
# Column names people write, Chinese exports included, mapped to the record fields (compared case-insensitively).
ALIASES: dict[str, str] = {
    "id": "id", "编号": "id", "序号": "id", "成果编号": "id", "需求编号": "id", "code": "id",
    "title": "title", "name": "title", "名称": "title", "标题": "title", "成果名称": "title", "需求名称": "title",
    "项目名称": "title",
    "description": "description", "abstract": "description", "text": "description", "内容": "description",
    "简介": "description", "成果简介": "description", "需求内容": "description", "需求描述": "description",
    "摘要": "description", "描述": "description",
    "industry": "industry", "industry_code": "industry", "行业代码": "industry", "行业": "industry",
    "行业分类": "industry", "所属行业": "industry",
    "region": "region", "地区": "region", "所在地": "region", "所在地区": "region", "区域": "region",
    "keywords": "keywords", "keyword": "keywords", "关键词": "keywords", "关键字": "keywords",
    "maturity": "maturity", "成熟度": "maturity", "技术成熟度": "maturity", "成果阶段": "maturity",
    "transfer_mode": "transfer_mode", "合作方式": "transfer_mode", "转化方式": "transfer_mode",
    "交易方式": "transfer_mode", "转让方式": "transfer_mode",
    # Holders of a record (see ingest.owners) and a challenge's explicit parts (see solvers.parts).
    "owner": "owner", "owners": "owner", "institution": "owner", "完成单位": "owner", "所属单位": "owner",
    "申报单位": "owner", "单位": "owner", "成果完成单位": "owner", "持有单位": "owner", "依托单位": "owner",
    "承担单位": "owner", "team": "team", "团队": "team", "团队名称": "team", "科研团队": "team",
    "leader": "leader", "负责人": "leader", "团队负责人": "leader", "项目负责人": "leader", "带头人": "leader",
    "parts": "parts", "子任务": "parts", "任务分解": "parts", "分解任务": "parts", "子课题": "parts",
}
# The readers number each data row in this column (see ingest.tables.read_table); prepare() takes the numbers out
# into Prepared.rows, so no other module sees the column.
READER_ROW = "_row"
# Key in DataFrame.attrs marking a frame that prepare() returned; its value is the frame's columns. pandas carries
# attrs through slicing and copying (and parquet round trips) but also to a frame whose columns were since cut or
# added, so from_any passes a frame through unvalidated only while its columns are still the marked ones.
PREPARED = "qcy_match.prepared"
MATURITY = ("实验室", "小试", "中试", "产业化")
TRANSFER_MODES = ("转让", "许可", "作价入股", "合作开发", "技术服务")
_LIST_SPLIT = re.compile(r"[,，;；、|\s]+")
# Characters that print as nothing: an id copied from a web page or a Word table may carry them unseen.
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def canonical_columns(columns: Iterable[str]) -> dict[str, str]:
    """Map input column names to record fields; unknown columns keep their name (they become metadata)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for col in columns:
        key = ALIASES.get(str(col).strip().lower(), ALIASES.get(str(col).strip()))
        if key and key not in taken:
            out[col] = key
            taken.add(key)
    return out


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [_as_text(v) for v in value if v is not None and _as_text(v)]
    if isinstance(value, float) and value != value:
        return []
    if isinstance(value, float | int):
        return [_as_text(value)]
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
            if isinstance(parsed, list):
                return [str(v).strip() for v in parsed if str(v).strip()]
        except json.JSONDecodeError:
            pass
    return [p for p in _LIST_SPLIT.split(text) if p]


def normalize_id(value: Any) -> str:
    """An id as records hold it: text normalised as :func:`~qcy_match.text.normalize` does (full-width forms folded
    by NFKC, spaces unified, trimmed; no traditional → simplified conversion), without zero-width characters, so
    ``１２３``, ``123\u200b`` and ``123 `` are the one id ``123``.
    """
    return normalize(_as_text(value).translate(_ZERO_WIDTH), traditional=False)


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@dataclasses.dataclass
class Prepared:
    """Validated records, the input row each one came from, and the rows that were rejected."""

    records: pd.DataFrame
    rows: np.ndarray  # 1-based input row of each record (the reader's numbering, see ingest.tables)
    rejected: list[Rejection] = dataclasses.field(default_factory=list)


def prepare(raw: pd.DataFrame, source: str = "<records>") -> Prepared:
    """Validate raw rows and return records in the canonical shape, their input rows and the rejected rows.

    Record columns: the fields of :data:`FIELDS` (``industry`` and ``keywords`` as lists, ``industry`` as canonical
    codes), ``region_city`` and ``region_group``, then every other input column as metadata. The frame is marked
    as prepared (see :data:`PREPARED`). Input rows are the reader's row numbers where ``raw`` came from a reader,
    else 1, 2, 3 …
    """
    mapping = {k: v for k, v in canonical_columns(raw.columns).items() if k != v}
    df = raw.rename(columns=mapping) if mapping else raw
    if READER_ROW in df.columns:
        rownums = df[READER_ROW].to_numpy(dtype=np.int64)
        df = df.drop(columns=READER_ROW)
    else:
        rownums = np.arange(1, len(df) + 1, dtype=np.int64)
    rejects: list[Rejection] = []
    seen: dict[str, int] = {}
    keep: list[int] = []
    ids: list[str] = []
    titles: list[str] = []
    descs: list[str] = []
    codes: list[list[str]] = []
    cols = df.columns
    for i, row in enumerate(df.itertuples(index=False, name=None)):
        rec = dict(zip(cols, row, strict=True))
        rownum = int(rownums[i])
        rid = normalize_id(rec.get("id"))
        title = normalize(rec.get("title"))
        desc = normalize(rec.get("description"))

        def reject(field: str, reason: str, value: Any = "", rownum: int = rownum) -> None:
            rejects.append(Rejection(source, rownum, field, reason, _as_text(value)[:80]))

        wrong = wrong_type(rec)
        if wrong:
            reject(*wrong, rec.get(wrong[0]))
            continue
        if not rid:
            reject("id", "missing id")
            continue
        if rid in seen:  # after normalising: ids that differ only in width or invisible characters collide too
            reject("id", f"duplicate id (first used in row {seen[rid]})", rec.get("id"))
            continue
        if not title:
            reject("title", "missing title", rid)
            continue
        if not any(ch.isalnum() for ch in title + desc):
            reject("title", "empty text: title and description hold no words", title)
            continue
        try:
            row_codes = list(dict.fromkeys(taxonomy.normalize_code(c) for c in _as_list(rec.get("industry"))))
        except taxonomy.UnknownCodeError as exc:
            reject("industry", str(exc), rec.get("industry"))
            continue
        seen[rid] = rownum
        keep.append(i)
        ids.append(rid)
        titles.append(title)
        descs.append(desc)
        codes.append(row_codes)
    # Columns are built as lists and framed once: per-column assignment costs more than validating a single query.
    taken = np.asarray(keep, dtype=np.int64)

    def column(name: str) -> list[Any]:
        return df[name].to_numpy(dtype=object)[taken].tolist() if name in df.columns else [None] * len(keep)

    values: dict[str, Any] = {"id": ids, "title": titles, "description": descs, "industry": codes,
                              "keywords": [[normalize(k) for k in _as_list(v)] for v in column("keywords")]}
    for field in ("region", "maturity", "transfer_mode"):
        values[field] = [normalize(v) for v in column(field)] if field in df.columns else [""] * len(keep)
    located = [regions.locate(r) for r in values["region"]]
    data: dict[str, Any] = {**{f: values[f] for f in FIELDS},
                            "region_city": [c for c, _ in located], "region_group": [g for _, g in located]}
    for c in df.columns:
        if c not in FIELDS and c not in DERIVED:
            data[c] = df[c].iloc[taken].reset_index(drop=True)
    for c in OWNER_FIELDS:  # several per cell, each name normalised: one institution is one owner
        if c in data:
            data[c] = [canonical_cell(v) for v in data[c]]
    out = pd.DataFrame(data)
    out.attrs[PREPARED] = [str(c) for c in out.columns]
    if rejects:
        logger.warning("%s: %d of %d rows rejected", source, len(rejects), len(df))
    return Prepared(out, rownums[taken], rejects)


def load_prepared(path: str | os.PathLike[str], ids_from_rows: bool = False, sheet: str | int | None = None
                  ) -> Prepared:
    """Read a file of achievements or needs and validate it; see :func:`prepare`. With ``ids_from_rows``, a file
    without an id column (a labelled TSV of titles, say) gets each row's number as its id instead of being rejected.
    ``sheet`` names the XLSX worksheet to read (see :func:`~qcy_match.ingest.tables.read_table`). Rows the reader
    could not parse come first among the rejected rows.
    """
    raw, read_rejects = read_table(path, sheet=sheet)
    if ids_from_rows and "id" not in canonical_columns(raw.columns).values():
        rows = raw[READER_ROW] if READER_ROW in raw else range(1, len(raw) + 1)
        raw.insert(0, "id", [str(r) for r in rows])
    prepared = prepare(raw, str(path))
    return Prepared(prepared.records, prepared.rows, read_rejects + prepared.rejected)


def load_records(path: str | os.PathLike[str], ids_from_rows: bool = False, sheet: str | int | None = None
                 ) -> tuple[pd.DataFrame, list[Rejection]]:
    """Read a file of achievements or needs and validate it: the records and the rejected rows (see
    :func:`load_prepared`, which also says each record's input row).
    """
    prepared = load_prepared(path, ids_from_rows, sheet)
    return prepared.records, prepared.rejected


def load_usable(path: str | os.PathLike[str], rejected: list[Rejection], ids_from_rows: bool = False,
                sheet: str | int | None = None) -> Prepared:
    """:func:`load_prepared` for a job that needs rows: the file's rejected rows are added to ``rejected``, and a file
    without a usable row raises :class:`RejectedRowsError`. ``sheet`` is read from an XLSX workbook and ignored for
    other formats (see :func:`xlsx_sheet`).
    """
    prepared = load_prepared(path, ids_from_rows, xlsx_sheet(path, sheet))
    rejected.extend(prepared.rejected)
    require_rows(path, len(prepared.records), len(prepared.rejected))
    return prepared


def xlsx_sheet(path: str | os.PathLike[str], sheet: str | int | None) -> str | int | None:
    """``sheet`` for an XLSX workbook, None for other formats: a job reads files of several formats with one sheet
    option (a workbook of needs against a JSONL file of achievements), and only a workbook has sheets.
    """
    return sheet if sheet is not None and table_format(path) == "xlsx" else None


def require_rows(source: object, usable: int, rejected: int) -> None:
    """Raise :class:`RejectedRowsError` when an input gave no usable row: there is nothing to index or match."""
    if usable == 0:
        raise RejectedRowsError(f"{source}: no usable rows ({rejected} rejected; see the rejected-rows report)")


def from_any(records: pd.DataFrame | Iterable[Mapping[str, Any]], source: str = "<records>"
             ) -> tuple[pd.DataFrame, list[Rejection]]:
    """Accept a DataFrame or an iterable of dicts and return validated records plus rejections.

    A frame :func:`prepare` returned (or rows of it, see :data:`PREPARED`) is returned as it is: validating it
    again would only repeat the work.
    """
    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if df.attrs.get(PREPARED) == [str(c) for c in df.columns] and _still_prepared(df):
        return df, []
    prepared = prepare(df, source)
    return prepared.records, prepared.rejected


def _still_prepared(df: pd.DataFrame) -> bool:
    """Whether the list fields of a marked frame still hold lists. pandas keeps the marker on a frame that gained
    rows since (``reindex``, ``.loc`` with a new label), whose missing cells are NaN: such a frame is validated again.
    """
    return all(all(type(v) is list for v in df[field]) for field in ("industry", "keywords"))


def text_of(records: pd.DataFrame) -> list[str]:
    """The text used for matching: title, keywords and description."""
    kws: Any = records["keywords"] if "keywords" in records else [[]] * len(records)
    return [f"{t} {' '.join(k)} {d}".strip() for t, k, d in zip(records["title"], kws, records["description"],
                                                                  strict=True)]
