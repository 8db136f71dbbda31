"""The service's settings: where the index is, who may call, and every limit, in one frozen value."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """What ``qcy-match serve`` was told; the defaults are the documented limits (README, "Portal service")."""

    index: Path
    host: str = "127.0.0.1"
    port: int = 8000
    writable: bool = False
    tokens: Path | None = None
    insecure: bool = False
    # The write-ahead log of acknowledged updates; default: beside the index directory, ``<index>.wal``.
    wal: Path | None = None
    max_body_bytes: int = 2 * 1024 * 1024
    max_queries: int = 100
    max_k: int = 100
    max_records: int = 1000
    max_export_rows: int = 2000
    # Per token (or per client address when no tokens are configured): a token bucket; rate 0 turns it off.
    rate: float = 50.0
    burst: int = 100
    request_timeout: float = 30.0
    # Seconds between snapshots of a writable index (save + log truncation); 0 saves only at shutdown.
    snapshot_interval: float = 300.0

    @property
    def wal_path(self) -> Path:
        """The write-ahead log's file."""
        return self.wal or self.index.with_name(self.index.name + ".wal")

    def problems(self) -> list[str]:
        """Settings that must stop the server from starting."""
        out = []
        if not self.tokens and not self.insecure and not is_loopback(self.host):
            out.append(f"--host {self.host} is not a loopback address: give --tokens FILE (bearer tokens), or "
                       "--insecure to serve without authentication anyway")
        for name in ("max_body_bytes", "max_queries", "max_k", "max_records", "max_export_rows", "burst"):
            if getattr(self, name) < 1:
                out.append(f"--{name.replace('_', '-')} must be at least 1")
        if self.rate < 0 or self.request_timeout <= 0 or self.snapshot_interval < 0:
            out.append("--rate and --snapshot-interval must be ≥ 0 and --request-timeout > 0")
        return out


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
