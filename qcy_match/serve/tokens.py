"""Bearer tokens: created once, stored only as SHA-256 digests with their scope, checked in constant time.

The tokens file is JSON: ``{"tokens": [{"id": …, "sha256": …, "scope": "read"|"write", "created": …}]}``. The
``id`` (the digest's first 12 hex digits) names a token in logs and metrics without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from .. import persistence
from ..errors import InputError

SCOPES = ("read", "write")
PREFIX = "qcy_"


@dataclass(frozen=True)
class Token:
    """A stored token: its public id, digest and scope."""

    id: str
    sha256: str
    scope: str

    def allows(self, scope: str) -> bool:
        """A write token may also read."""
        return scope == "read" or self.scope == "write"


def digest(token: str) -> str:
    """Hex SHA-256 of a token's text."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def read_tokens(path: Path) -> list[Token]:
    """The tokens of a file, refusing one that is malformed (the server must not start half-protected)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        out = [Token(str(t["id"]), str(t["sha256"]), str(t["scope"])) for t in data["tokens"]]
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such tokens file (create one with 'qcy-match token --tokens {path}')") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a qcy-match tokens file ({type(exc).__name__})") from exc
    bad = [t.id for t in out if t.scope not in SCOPES or len(t.sha256) != 64]
    if bad:
        raise InputError(f"{path}: tokens {', '.join(bad)} have an unknown scope or a malformed digest")
    if not out:
        raise InputError(f"{path}: holds no tokens")
    return out


def create_token(path: Path, scope: str) -> tuple[str, Token]:
    """Add a new random token to ``path`` (created with mode 0600 if missing); returns the token's text once."""
    if scope not in SCOPES:
        raise InputError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    existing = read_tokens(path) if path.exists() else []
    text = PREFIX + secrets.token_urlsafe(32)
    h = digest(text)
    token = Token(h[:12], h, scope)
    created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    body = {"tokens": [{"id": t.id, "sha256": t.sha256, "scope": t.scope} for t in existing]
            + [{"id": token.id, "sha256": token.sha256, "scope": scope, "created": created}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    persistence.write_atomic(path, json.dumps(body, indent=1), mode=0o600)
    return text, token


class TokenStore:
    """Looks a presented token up among the stored digests without leaking, by timing, which one is close."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens

    def find(self, presented: str) -> Token | None:
        """The stored token whose digest equals the presented token's, comparing every entry in constant time."""
        h = digest(presented).encode()
        found = None
        for t in self.tokens:
            if hmac.compare_digest(h, t.sha256.encode()):
                found = t
        return found
