"""``POST /v1/admin/reload``: swap in a newly built index directory without a failed request."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from .auth import require
from .blocking import run_blocking
from .schemas import Error, ReloadRequest

router = APIRouter()


@router.post("/v1/admin/reload", tags=["admin"], summary="Open an index beside the served one and swap it in",
             dependencies=[Depends(require("write"))],
             responses={401: {"model": Error}, 403: {"model": Error}, 422: {"model": Error}})
async def reload(body: ReloadRequest, request: Request) -> JSONResponse:
    """``path`` names a directory beside the served index. It is loaded and verified (checksums, a test query)
    while the old index keeps answering; then it is swapped in at once. Requests in flight finish on the old one.
    On a writable server, updates logged since the last snapshot are applied to the new index, which is then saved
    as the served directory, so a restart opens what is being served.
    """
    return JSONResponse(await run_blocking(request, request.app.state.service.reload, body.path))
