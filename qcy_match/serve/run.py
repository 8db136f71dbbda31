"""Run the service with uvicorn (what ``qcy-match serve`` calls)."""

from __future__ import annotations

import logging

import uvicorn

from .app import create_app
from .settings import Settings

logger = logging.getLogger(__name__)


def serve(settings: Settings, access_log: bool = False) -> None:
    """Open the index (replaying the write-ahead log when writable) and serve until SIGINT/SIGTERM.

    A clean stop saves a writable index and empties its log; after SIGKILL the next start replays the log.
    """
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, lifespan="on", access_log=access_log,
                            log_config=None, server_header=False, timeout_keep_alive=5,
                            timeout_graceful_shutdown=max(5, int(settings.request_timeout)))
    uvicorn.Server(config).run()
