"""A :class:`~qcy_match.match.engine.MatchEngine`'s index directory: what ``save`` writes and ``load`` reads.

:mod:`qcy_match.persistence` owns the layout, the checksums and the atomic swap; this module fills the directory
with the engine's parts and reads them back trusting nothing in the manifest: its entries must have the right
types, the directory may hold only :data:`~qcy_match.persistence.LAYOUT` files the manifest lists, and the saved
config names user dictionaries only by their copies inside the directory, so loading never reads a file outside it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow

from .. import persistence
from .._version import __version__
from ..config import EngineConfig
from ..encoders import Encoder, load_encoder
from ..errors import IndexFormatError
from ..index.dense import DenseIndex
from ..index.sparse import SparseIndex
from ..index.terms import TermLists
from ..persistence import LAYOUT
from . import query
from .confidence import Calibration
from .fusion import fuse
from .results import SIDES
from .snapshot import Snapshot

if TYPE_CHECKING:
    from .engine import MatchEngine

E = TypeVar("E", bound="MatchEngine")

# The manifest entries an engine reads, and their types ("a.b" is manifest["a"]["b"]).
SHAPE: dict[str, type] = {"side": str, "config": dict, "counts": dict, "counts.records": int, "encoder": dict,
                          "encoder.name": str, "encoder.params": dict, "index": dict, "index.kind": str,
                          "index.params": dict}


def write(engine: MatchEngine, st: Snapshot, tmp: Path) -> dict[str, Any]:
    """Write snapshot ``st`` of ``engine`` into ``tmp``; returns the manifest body."""
    recs = st.records.copy()
    for col in recs.columns:
        if recs[col].dtype == object and col not in ("industry", "keywords"):
            recs[col] = recs[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    recs.to_parquet(tmp / LAYOUT.records, index=False)
    st.sparse.save(tmp)
    st.tokens.save(tmp)
    engine.encoder_.save(tmp)
    st.dense.save(tmp)
    # The dictionaries the tokens were cut with travel with the index, so the saved config names no outside file.
    names = [LAYOUT.user_dict(i) for i in range(len(engine.user_dicts_))]
    for name, data in zip(names, engine.user_dicts_, strict=True):
        (tmp / name).write_bytes(data)
    return {"library_version": __version__, "side": engine.side_,
            "config": {**engine.config.to_dict(), "user_dicts": names},
            "counts": {"records": len(recs), "vocabulary": len(st.sparse.vocab_), "dim": engine.encoder_.dim},
            "encoder": {"name": engine.encoder_.name, "params": engine.encoder_.params()},
            "index": {"kind": st.dense.kind_, "params": st.dense.params()}}


def read(cls: type[E], path: str | os.PathLike[str], verify: bool = True, encoder: Encoder | None = None) -> E:
    """Open the index directory ``path`` as an engine of class ``cls`` (see ``MatchEngine.load``); a sharded
    directory opens as a :class:`~qcy_match.match.sharded.ShardedEngine`. ``encoder``: use this (already loaded,
    identical) encoder instead of loading the directory's, as the shards of one index do.
    """
    from . import sharded

    root = persistence.resolve(path)
    top = persistence.read_manifest(root, verify=verify, allowed=lambda name: LAYOUT.holds(name)
                                    or name in sharded.TOP_FILES)
    if sharded.is_sharded(top):
        engine = sharded.read_sharded(root, top, verify)
        if not isinstance(engine, cls):
            raise IndexFormatError(f"{root}: a sharded index cannot be opened as a {cls.__name__}")
        return engine
    if issubclass(cls, sharded.ShardedEngine):
        raise IndexFormatError(f"{root}: not a sharded index (open it with MatchEngine.load)")
    manifest = persistence.read_manifest(root, verify=False, allowed=LAYOUT.holds)
    persistence.expect(root, manifest, SHAPE)
    self = cls(_config(root, manifest))
    try:
        self.user_dicts_ = [Path(p).read_bytes() for p in self.config.user_dicts]
        recs = pd.read_parquet(root / LAYOUT.records)
        # The records are Python objects now: hand back the pages Arrow's allocator keeps cached from reading them
        # (96 of the 326 MiB a 100k-record index held after opening).
        pyarrow.default_memory_pool().release_unused()
        for col in ("industry", "keywords"):
            recs[col] = [list(v) for v in recs[col]]
        self.side_ = manifest["side"]
        if self.side_ not in SIDES:
            raise ValueError(f"side {self.side_!r}")
        self.rejected_ = []
        self.tokenizer_ = self._tokenizer()
        # Settings that are checked only where they are used: check them now, so that a manifest with a bad value
        # fails to load instead of failing its first query.
        fuse(np.zeros(1), np.zeros(1), self.config.dense_weight, self.config.fusion)
        Calibration.from_dict(self.config.confidence)
        query.dense_input(self.config, [], list, lambda: ([], []))
        sparse = SparseIndex.load(root)
        tokens = TermLists.load(root, sparse.vocab_, len(recs))
        self.encoder_ = encoder if encoder is not None else \
            load_encoder(manifest["encoder"]["name"], root, manifest["encoder"]["params"])
        self._dense_input(recs.iloc[:0], [], [])  # checks dense_text (after the encoder: it asks what it reads)
        dense = DenseIndex.load(root, manifest["index"]["params"], manifest["index"]["kind"])
        self._snap = Snapshot(recs, tokens, recs["id"].astype(str).to_numpy(dtype=object), sparse, dense)
        self._snap.check()
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise IndexFormatError(f"{root}: index is incomplete or inconsistent ({exc})") from exc
    if not (len(self.records_) == manifest["counts"]["records"] == len(self.dense_) == self.sparse_.n_docs_):
        raise IndexFormatError(f"{root}: record counts disagree between files and manifest")
    return self


def _config(root: Path, manifest: dict[str, Any]) -> EngineConfig:
    """The saved config, its user dictionaries pointing at their copies in ``root``."""
    try:
        # Indexes saved before the tokenizer setting existed were all cut by jieba.
        config = EngineConfig.from_dict({"tokenizer": "jieba", **manifest["config"]})
    except ValueError as exc:
        raise IndexFormatError(f"{root}: manifest config is invalid ({exc})") from exc
    for i, name in enumerate(config.user_dicts):
        if name != LAYOUT.user_dict(i) or name not in manifest["files"]:
            raise IndexFormatError(f"{root}: config names user dictionary {name!r}, not its copy inside the index "
                                   "directory (saved by an older qcy-match, or edited); rebuild the index")
    config.user_dicts = [str(root / name) for name in config.user_dicts]
    return config
