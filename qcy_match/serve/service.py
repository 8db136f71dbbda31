"""The served index: matching on a consistent snapshot, logged updates, snapshots of the log, and hot reloads.

Readers never wait for writers (the engine's snapshots, pinned per batch); writers are serialised by one lock,
which also orders the write-ahead log the same way the engine applies it. A reload opens and checks the new index
outside that lock, then swaps it in with one reference assignment, so a request in flight finishes on the engine it
started with.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .. import persistence
from ..ingest.records import prepare
from ..ingest.tables import Rejection
from ..match.engine import MatchEngine
from .queries import FieldError, MatchItem, Result, match_items
from .rows import cell
from .settings import Settings
from .wal import WriteAheadLog, read_ops

logger = logging.getLogger(__name__)


def open_index(path: Path) -> tuple[MatchEngine, dict[str, Any]]:
    """Load and verify an index directory; also return what ``/readyz`` and ``/v1/index`` report about it."""
    engine = MatchEngine.load(path)
    return engine, index_info(path)


def index_info(path: Path) -> dict[str, Any]:
    """The manifest's summary of an index directory (its version is the manifest's digest)."""
    root = persistence.resolve(path)
    manifest = persistence.read_manifest(root, verify=False)  # load() verified every checksum already
    info = {"name": Path(path).name, "version": persistence.version(root)[:16],
            "created": manifest.get("created"), "library_version": manifest.get("library_version"),
            "format_version": manifest.get("format_version"), "side": manifest.get("side"),
            "encoder": manifest.get("encoder", {}).get("name"), "index_kind": manifest.get("index", {}).get("kind"),
            "counts": manifest.get("counts", {}),
            "files": {"count": len(manifest["files"]), "bytes": sum(f["bytes"] for f in manifest["files"].values())}}
    return info


def _rejection(r: Rejection) -> dict[str, Any]:
    return {"index": max(r.row - 1, 0), "field": r.field, "reason": r.reason, "value": r.value}


class Service:
    """One served index and, with ``writable``, its write-ahead log."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.index
        self.engine, self.info = open_index(self.path)
        self.generation = 0
        self._write_lock = threading.Lock()
        self.wal: WriteAheadLog | None = None
        if settings.writable:
            self.wal = WriteAheadLog(settings.wal_path)
            ops = self.wal.replay()
        elif settings.wal_path.is_file():
            # Updates acknowledged by an earlier writable run, not yet in a snapshot: served too, log left as is.
            ops, _ = read_ops(settings.wal_path)
        else:
            ops = []
        for op in ops:
            self._apply(self.engine, op)
        if ops:
            logger.info("replayed %d logged updates from %s", len(ops), settings.wal_path)

    # ---- reading --------------------------------------------------------------------------------------------
    def match(self, queries: Sequence[str | Mapping[str, Any]], k: int, filters: Mapping[str, Any] | None,
              explain: bool) -> Result:
        """Query ids and, per query, its match rows; bad queries or filters raise :class:`FieldError`."""
        result = self.match_items([MatchItem(queries, k, filters, explain)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def match_items(self, items: list[MatchItem]) -> list[Result | Exception]:
        """Several requests matched together (see :mod:`qcy_match.serve.queries`)."""
        # Matches hold positions in the snapshot the match read, and the rows need that snapshot's records. A write
        # publishes a new snapshot on the engine object; a shallow copy keeps the one current now, so the match and
        # the records it reports come from the same snapshot while writes go on (and a reload may swap
        # self.engine: this batch stays on the engine it started with).
        return match_items(copy.copy(self.engine), items)

    def record(self, rid: str) -> dict[str, Any] | None:
        """The indexed record with id ``rid`` (its fields and metadata), or None."""
        recs = self.engine.records_
        hits = recs.index[recs["id"].astype(str) == rid]
        if not len(hits):
            return None
        row = recs.loc[hits[0]]
        return {c: cell(row[c]) if c not in ("industry", "keywords") else list(row[c])
                for c in recs.columns if not str(c).startswith("_") and c not in ("region_city", "region_group")}

    def ready(self) -> dict[str, Any]:
        """What ``/readyz`` answers."""
        return {"status": "ready", "index": {k: self.info[k] for k in ("name", "version", "created", "side")},
                "records": len(self.engine), "generation": self.generation, "writable": self.wal is not None,
                "pending_log_ops": self.wal.ops if self.wal else 0}

    def summary(self) -> dict[str, Any]:
        """What ``/v1/index`` answers: the manifest's summary plus the live state."""
        return {**self.info, "live_records": len(self.engine), "generation": self.generation,
                "writable": self.wal is not None, "pending_log_ops": self.wal.ops if self.wal else 0}

    # ---- writing --------------------------------------------------------------------------------------------
    def upsert(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Validate, log (fsync), then apply; returns added, replaced and rejected."""
        self._need_wal()
        with self._write_lock:
            prepared = prepare(pd.DataFrame(records), "<records>")
            recs, rejects = prepared.records, prepared.rejected
            res = None
            if len(recs):
                accepted = [records[int(r) - 1] for r in prepared.rows]
                self._log({"op": "upsert", "records": accepted})
                res = self.engine.upsert(recs)
                self.generation += 1
        return {"added": res.added if res else [], "replaced": res.replaced if res else [],
                "rejected": [_rejection(r) for r in rejects + (res.rejected if res else [])]}

    def delete(self, ids: list[str]) -> dict[str, Any]:
        """Log (fsync), then delete; returns deleted and missing ids."""
        self._need_wal()
        with self._write_lock:
            self._log({"op": "delete", "ids": ids})
            res = self.engine.delete(ids)
            self.generation += 1
        return {"deleted": res.deleted, "missing": res.missing}

    def _need_wal(self) -> None:
        if self.wal is None:
            raise PermissionError("this server is read-only (start it with --writable to accept updates)")

    def _log(self, op: dict[str, Any]) -> None:
        assert self.wal is not None  # checked by _need_wal; the log exists exactly when writable
        self.wal.append(op)

    @staticmethod
    def _apply(engine: MatchEngine, op: dict[str, Any]) -> None:
        if op["op"] == "upsert":
            engine.upsert(op["records"])
        else:
            engine.delete(op["ids"])

    def checkpoint(self) -> bool:
        """Save the index atomically and empty the log, when there is anything logged; returns whether it did."""
        if self.wal is None:
            return False
        with self._write_lock:
            if self.wal.ops == 0:
                return False
            n = self.wal.ops
            self.engine.save(self.path)
            self.wal.truncate()
            self.info = {**index_info(self.path), "name": self.info["name"]}
        logger.info("snapshot of %d logged updates saved to %s; log truncated", n, self.path)
        return True

    # ---- reloading ------------------------------------------------------------------------------------------
    def reload(self, name: str) -> dict[str, Any]:
        """Open the index directory ``name`` beside the served one, check it, and swap it in."""
        if not name or name != Path(name).name or name in (".", "..") or name.startswith("."):
            raise FieldError("path", "give the name of an index directory beside the served one (no path parts)")
        target = self.path.parent / name
        if not target.is_dir():
            raise FieldError("path", f"no index directory {name!r} beside the served index")
        try:
            new, info = open_index(target)
            new.match(["索引检查"], k=1)  # it must answer a query before it serves any
        except (persistence.IndexFormatError, ValueError, OSError) as exc:
            raise FieldError("path", f"{name}: {exc}") from exc
        if new.side_ != self.engine.side_:
            raise FieldError("path", f"{name} is an index of {new.side_}, the served one of {self.engine.side_}")
        with self._write_lock:
            if self.wal is not None:
                # Acknowledged writes since the last snapshot must survive: apply them to the new index too,
                # then make it the served directory, so a restart opens what is being served.
                for op in self.wal.replay():
                    self._apply(new, op)
                new.save(self.path)
                self.wal.truncate()
                info = {**index_info(self.path), "name": name}
            self.engine, self.info = new, info
            self.generation += 1
        logger.info("reloaded index %s (version %s, %d records)", name, info["version"], len(new))
        return self.ready()

    def close(self) -> None:
        """Snapshot what is logged and close the log (at shutdown)."""
        if self.wal is not None:
            self.checkpoint()
            self.wal.close()
