"""Export an index to a Milvus collection: the path for serving beyond one machine (``[milvus]`` extra).

The collection holds, per record: its ``id`` (primary key), the engine's dense ``vector`` (inner product, as the
engine scores), ``sector`` (the GB/T 4754 门类 of its first code, the partition key), ``codes`` (every code with
the codes above it, so "at or below a filtered code" is an array test), the place (``region``, ``region_city``,
``region_group``), ``maturity``, ``transfer_mode``, the holders (``owner``, and ``team``/``leader`` where indexed)
as arrays of canonical names, the ``title``, and every metadata column as a dynamic field (its text, as the
engine's filters compare it). Where the server supports it, ``text`` (title, keywords, description) is analysed
with Milvus's jieba tokenizer and a BM25 function fills ``text_sparse`` for full-text and hybrid search; a server
without it gets the collection without those two fields, and the result says why.

:mod:`.query` turns the engine's filters into the collection's filter expression.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MissingExtraError, UsageError
from ..ingest.owners import OWNER_FIELDS, owners_of
from ..ingest.records import text_of
from ..match.engine import MatchEngine
from ..match.results import metadata_columns

logger = logging.getLogger(__name__)

VARCHAR_BYTES = 65_535  # Milvus's limit on a VARCHAR field, in bytes
FIELD_BYTES = 1_024  # region, maturity, transfer mode: short labels
CODE_LEVELS = (1, 3, 4, 5)  # lengths of a 门类, 大类, 中类 and 小类 code (C, C39, C397, C3973)
INDEX_TYPES = ("HNSW", "FLAT", "IVF_FLAT", "AUTOINDEX")
BATCH = 2_000


@dataclasses.dataclass
class ExportResult:
    """What :func:`export` wrote."""

    collection: str
    records: int
    dim: int
    bm25: bool  # the text field with the jieba analyzer and a BM25 function were created
    bm25_reason: str = ""  # why not, when the server refused them
    fields: list[str] = dataclasses.field(default_factory=list)
    metadata: list[str] = dataclasses.field(default_factory=list)  # metadata columns, as dynamic fields


def client(uri: str) -> Any:
    """A pymilvus client: ``uri`` is a server (``http://host:19530``) or a local ``.db`` file (milvus-lite)."""
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise MissingExtraError("Milvus export needs the [milvus] extra: pip install 'qcy-match[milvus]'") from exc
    return MilvusClient(uri)


def ancestors(codes: list[str]) -> list[str]:
    """Each code and the codes above it, once: a filter on any of them lets the record through."""
    return list(dict.fromkeys(c[:n] for c in codes for n in CODE_LEVELS if n <= len(c)))


def export(index: MatchEngine | str | os.PathLike[str], uri: str, collection: str, *, index_type: str = "HNSW",
           drop: bool = False, text: bool = True, batch: int = BATCH) -> ExportResult:
    """Write the records and vectors of an index of achievements (or needs) to a new Milvus collection.

    ``index_type``: the vector index (FLAT is exact, as the engine's flat index; HNSW is the serving choice).
    ``drop``: replace an existing collection of that name, else it is refused. ``text``: try the jieba/BM25 part.
    """
    if index_type not in INDEX_TYPES:
        raise UsageError(f"index_type must be one of {INDEX_TYPES}, not {index_type!r}")
    engine = index if isinstance(index, MatchEngine) else MatchEngine.load(index)
    mc = client(uri)
    try:
        if mc.has_collection(collection):
            if not drop:
                raise UsageError(f"{uri}: collection {collection!r} exists; give another name or drop it")
            mc.drop_collection(collection)
        records, vectors = engine.records_, engine.vectors()
        rows = _Rows(records, vectors)
        result = ExportResult(collection, len(records), int(vectors.shape[1]), bm25=False, metadata=rows.metadata)
        if text:
            try:
                _create(mc, collection, rows, index_type, bm25=True)
                _insert(mc, collection, rows, batch, bm25=True)
                result.bm25 = True
            except Exception as exc:  # a server without analyzers or BM25 functions: the dense part alone
                result.bm25_reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
                logger.warning("Milvus collection without BM25 text: %s", result.bm25_reason)
                if mc.has_collection(collection):
                    mc.drop_collection(collection)
        if not result.bm25:
            _create(mc, collection, rows, index_type, bm25=False)
            _insert(mc, collection, rows, batch, bm25=False)
        mc.flush(collection)
        mc.load_collection(collection)
        result.fields = [f["name"] for f in mc.describe_collection(collection)["fields"]]
        return result
    finally:
        mc.close()


class _Rows:
    """The collection's rows, built a batch at a time from the records."""

    def __init__(self, records: pd.DataFrame, vectors: np.ndarray) -> None:
        self.records, self.vectors = records, vectors
        self.holders = [c for c in OWNER_FIELDS if c in records.columns or c == "owner"]
        reserved = {"id", "vector", "sector", "codes", "region", "region_city", "region_group", "maturity",
                    "transfer_mode", "title", "text", "text_sparse", *self.holders}
        self.metadata = [c for c in metadata_columns(records) if c not in reserved]
        self.codes = [ancestors(list(c)) for c in records["industry"]]
        none: list[list[str]] = [[] for _ in range(len(records))]
        self.owners = {c: [owners_of(v) for v in records[c]] if c in records else none for c in self.holders}
        self.texts = text_of(records)

    def capacity(self, values: list[list[str]]) -> int:
        return max(1, max((len(v) for v in values), default=1))

    def batches(self, size: int, bm25: bool) -> Iterator[list[dict[str, Any]]]:
        recs = self.records
        meta = {c: recs[c].astype(str).tolist() for c in self.metadata}  # as the engine's filters compare them
        industry: list[list[str]] = [list(c) for c in recs["industry"]]
        for start in range(0, len(recs), size):
            out = []
            for i in range(start, min(start + size, len(recs))):
                codes = industry[i]
                row: dict[str, Any] = {
                    "id": str(recs["id"].iat[i]), "vector": self.vectors[i].astype(np.float32).tolist(),
                    "sector": codes[0][0] if codes else "", "codes": self.codes[i],
                    "title": _cut(recs["title"].iat[i], VARCHAR_BYTES),
                    **{f: _cut(recs[f].iat[i], FIELD_BYTES) for f in ("region", "region_city", "region_group",
                                                                      "maturity", "transfer_mode")},
                    **{c: self.owners[c][i] for c in self.holders},
                    **{c: meta[c][i] for c in self.metadata}}
                if bm25:
                    row["text"] = _cut(self.texts[i], VARCHAR_BYTES)
                out.append(row)
            yield out


def _cut(value: Any, limit: int) -> str:
    """Text within a VARCHAR's byte limit, cut at a character boundary."""
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def _create(mc: Any, name: str, rows: _Rows, index_type: str, bm25: bool) -> None:
    from pymilvus import DataType, Function, FunctionType

    schema = mc.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.VARCHAR, max_length=FIELD_BYTES, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(rows.vectors.shape[1]))
    schema.add_field("sector", DataType.VARCHAR, max_length=8, is_partition_key=True)
    schema.add_field("codes", DataType.ARRAY, element_type=DataType.VARCHAR, max_length=16,
                     max_capacity=rows.capacity(rows.codes))
    for f in ("region", "region_city", "region_group", "maturity", "transfer_mode"):
        schema.add_field(f, DataType.VARCHAR, max_length=FIELD_BYTES)
    for c in rows.holders:
        schema.add_field(c, DataType.ARRAY, element_type=DataType.VARCHAR, max_length=FIELD_BYTES,
                         max_capacity=rows.capacity(rows.owners[c]))
    schema.add_field("title", DataType.VARCHAR, max_length=VARCHAR_BYTES)
    params = mc.prepare_index_params()
    params.add_index(field_name="vector", index_type=index_type, metric_type="IP",
                     params={"M": 32, "efConstruction": 200} if index_type == "HNSW" else {})
    if bm25:
        schema.add_field("text", DataType.VARCHAR, max_length=VARCHAR_BYTES, enable_analyzer=True,
                         analyzer_params={"tokenizer": "jieba"})
        schema.add_field("text_sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["text"], output_field_names=["text_sparse"]))
        params.add_index(field_name="text_sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    mc.create_collection(name, schema=schema, index_params=params)


def _insert(mc: Any, name: str, rows: _Rows, size: int, bm25: bool) -> None:
    for batch in rows.batches(size, bm25):
        mc.insert(name, batch)
