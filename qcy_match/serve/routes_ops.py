"""Probes, metrics, the index summary and the filter vocabulary."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from .auth import require

router = APIRouter()


@router.get("/healthz", tags=["operations"], summary="The process is alive (open, for probes)")
async def healthz() -> dict[str, str]:
    """Always ``{"status": "ok"}`` while the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"], summary="The index is loaded: its version and counts (open)")
async def readyz(request: Request) -> JSONResponse:
    """Version (the manifest's digest), creation time, side, live record count, pending logged updates."""
    return JSONResponse(request.app.state.service.ready())


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics (read scope when tokens are set)",
            dependencies=[Depends(require("read"))])
def metrics(request: Request) -> Response:
    """Requests, latency histograms per endpoint, errors, index size, pending log, writes."""
    state = request.app.state
    m, svc = state.metrics, state.service
    m.records.set(len(svc.engine))
    m.pending.set(svc.wal.ops if svc.wal else 0)
    m.generation.set(svc.generation)
    return Response(m.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/v1/index", tags=["index"], summary="The served index's manifest summary",
            dependencies=[Depends(require("read"))])
def index_summary(request: Request) -> JSONResponse:
    """Version, creation time, library version, encoder, index kind, counts, files, live state."""
    return JSONResponse(request.app.state.service.summary())


@router.get("/v1/options", tags=["index"], summary="Values the filters take (chains, regions, industries, …)")
def options() -> JSONResponse:
    """Chains, region groups and cities, GB/T 4754 门类 and 大类, maturity levels, transfer modes (open)."""
    return JSONResponse(_options())


@lru_cache(maxsize=1)
def _options() -> dict[str, Any]:
    from ..ingest.records import MATURITY, TRANSFER_MODES
    from ..taxonomy import chains, regions
    from ..taxonomy import gbt as taxonomy

    nodes = taxonomy.industries().values()
    return {"chains": [{"id": c.id, "name": c.name} for c in chains.chains()],
            "regions": {"groups": list(regions.GROUPS),
                        "cities": [{"name": c, "group": g} for c, (g, _) in regions.CITIES.items()]},
            "industries": [{"code": n.code, "name": n.name, "level": n.level} for n in nodes if n.level <= 2],
            "maturity": list(MATURITY), "transfer_modes": list(TRANSFER_MODES)}
