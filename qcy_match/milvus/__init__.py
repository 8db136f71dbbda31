"""Milvus as the serving path beyond one machine (the ``[milvus]`` extra): export an index, query it as the engine.

pymilvus is imported only inside the functions that talk to a server, so this package imports without the extra.
"""

from .export import ExportResult, ancestors, client, export
from .query import bm25_search, dense_search, filter_expression

__all__ = ["ExportResult", "ancestors", "bm25_search", "client", "dense_search", "export", "filter_expression"]
