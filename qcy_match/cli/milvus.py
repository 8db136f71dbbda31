"""``export-milvus``: an index's records and vectors into a Milvus collection (``[milvus]`` extra)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def _add_milvus_parser(sub: Any) -> None:
    p = sub.add_parser("export-milvus", help="export an index to a Milvus collection ([milvus] extra)")
    p.add_argument("--index", type=Path, required=True, help="index directory made by 'qcy-match index'")
    p.add_argument("--uri", required=True, help="Milvus server (http://host:19530) or a local .db file (milvus-lite)")
    p.add_argument("--collection", required=True, help="collection to create")
    p.add_argument("--vector-index", choices=["HNSW", "FLAT", "IVF_FLAT", "AUTOINDEX"], default="HNSW",
                   help="Milvus vector index (default HNSW; FLAT is exact)")
    p.add_argument("--drop", action="store_true", help="replace an existing collection of that name")
    p.add_argument("--no-text", action="store_true", help="leave out the jieba-analysed text and its BM25 function")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the library does")


def cmd_export_milvus(args: argparse.Namespace) -> None:
    """Export and print one line: records, dimension, and whether the BM25 part was created (or why not)."""
    from ..milvus import export

    t0 = time.time()
    res = export(args.index, args.uri, args.collection, index_type=args.vector_index, drop=args.drop,
                 text=not args.no_text)
    text = "text with jieba + BM25" if res.bm25 else f"no BM25 text ({res.bm25_reason or 'not asked for'})"
    print(f"exported {res.records} records (dim {res.dim}) from {args.index} → {args.uri} collection "
          f"{res.collection!r}; {text}; {len(res.metadata)} metadata fields ({time.time() - t0:.1f} s)",
          file=sys.stderr)
