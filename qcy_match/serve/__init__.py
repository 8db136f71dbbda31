"""The portal service: an HTTP API over the engine, a broker's page, and durable live updates.

Needs the ``[serve]`` extra (FastAPI, uvicorn, prometheus-client and the offline Swagger UI assets). Importing this
package without it raises :class:`~qcy_match.errors.MissingExtraError` naming the extra, before anything else loads.
"""

from __future__ import annotations

from importlib.util import find_spec

from ..errors import MissingExtraError

_NEEDS = ("fastapi", "starlette", "uvicorn", "prometheus_client", "fastapi_offline")


def _require() -> None:
    """Fail early, naming the extra, when a package of ``[serve]`` is missing."""
    missing = []
    for name in _NEEDS:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):  # a module set to None in sys.modules, or a broken spec
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise MissingExtraError(f"the portal service needs the [serve] extra ({', '.join(missing)} missing): "
                                "pip install 'qcy-match[serve]'")


_require()
