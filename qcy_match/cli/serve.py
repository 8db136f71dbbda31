"""``serve`` (the portal service: HTTP API and broker's page) and ``token`` (create a bearer token)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import CliError


def _add_serve_parsers(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve an index over HTTP: JSON API under /v1, a broker's page at /, /docs "
                       "(needs the [serve] extra)")
    p.add_argument("--index", type=Path, required=True, help="index directory made by 'qcy-match index'")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--writable", action="store_true",
                   help="accept upserts and deletes (write-ahead logged and fsynced before each reply)")
    p.add_argument("--tokens", type=Path, help="bearer tokens file made by 'qcy-match token' (digests and scopes)")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --host without --tokens (anyone who reaches it may call it)")
    p.add_argument("--wal", type=Path, help="write-ahead log file (default: <index>.wal beside the index)")
    g = p.add_argument_group("limits")
    g.add_argument("--max-body-bytes", type=int, default=2 * 1024 * 1024, help="request body limit (413; 2 MiB)")
    g.add_argument("--max-queries", type=int, default=100, help="queries per /v1/match request (default 100)")
    g.add_argument("--max-k", type=int, default=100, help="largest k (default 100)")
    g.add_argument("--max-records", type=int, default=1000, help="records or ids per update request (1000)")
    g.add_argument("--rate", type=float, default=50.0,
                   help="requests per second per token (or per client address without tokens); 0: no limit (50)")
    g.add_argument("--burst", type=int, default=100, help="requests a caller may send at once (default 100)")
    g.add_argument("--request-timeout", type=float, default=30.0, help="seconds before a request answers 504 (30)")
    g.add_argument("--snapshot-interval", type=float, default=300.0,
                   help="seconds between saves of a writable index (then the log is emptied); 0: at shutdown only")
    p.add_argument("--access-log", action="store_true", help="log one line per request (method, path, status)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the service does")

    p = sub.add_parser("token", help="create a bearer token for 'serve': printed once, only its digest is stored")
    p.add_argument("--tokens", type=Path, required=True, help="tokens file to add it to (created if missing)")
    p.add_argument("--scope", choices=["read", "write"], default="read",
                   help="read: match and look up; write: also upsert, delete and reload (default read)")
    p.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)


def cmd_serve(args: argparse.Namespace) -> None:
    """Serve an index until interrupted."""
    from ..serve.settings import Settings

    settings = Settings(index=args.index, host=args.host, port=args.port, writable=args.writable, tokens=args.tokens,
                        insecure=args.insecure, wal=args.wal, max_body_bytes=args.max_body_bytes,
                        max_queries=args.max_queries, max_k=args.max_k, max_records=args.max_records, rate=args.rate,
                        burst=args.burst, request_timeout=args.request_timeout,
                        snapshot_interval=args.snapshot_interval)
    problems = settings.problems()
    if problems:
        raise CliError("; ".join(problems))
    if args.tokens and not args.tokens.is_file():
        raise CliError(f"--tokens {args.tokens}: no such file (create one with 'qcy-match token --tokens FILE')")
    from ..serve.run import serve

    mode = "writable, log " + str(settings.wal_path) if args.writable else "read-only"
    auth = f"tokens from {args.tokens}" if args.tokens else "no tokens"
    print(f"qcy-match serve: {args.index} on http://{args.host}:{args.port} ({mode}; {auth}); page at /, API docs "
          "at /docs", file=sys.stderr)
    serve(settings, access_log=args.access_log)


def cmd_token(args: argparse.Namespace) -> None:
    """Create a token, print it once, store its digest."""
    from ..serve.tokens import create_token

    text, token = create_token(args.tokens, args.scope)
    print(text)
    print(f"token {token.id} (scope {token.scope}) added to {args.tokens}; only its SHA-256 digest is stored, so "
          "keep the line above: it cannot be shown again", file=sys.stderr)
