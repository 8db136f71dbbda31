"""Live updates (``--writable`` only): upsert and delete by id, each logged and fsynced before the reply."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from .auth import Denied, require
from .blocking import run_blocking
from .schemas import DeleteRequest, DeleteResponse, Error, UpsertRequest, UpsertResponse
from .service import FieldError

router = APIRouter()
_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": Error}, 403: {"model": Error}, 422: {"model": Error},
                                            429: {"model": Error}}


@router.get("/v1/records/{record_id}", tags=["records"], summary="One indexed record by id",
            dependencies=[Depends(require("read"))], responses={404: {"model": Error}, 401: {"model": Error}})
async def get_record(record_id: str, request: Request) -> JSONResponse:
    """The record's fields as indexed (industry codes canonical, keywords as a list) and its metadata."""
    found = await run_blocking(request, request.app.state.service.record, record_id)
    if found is None:
        return JSONResponse({"error": f"no record with id {record_id!r}"}, status_code=404)
    return JSONResponse(found)


def _within_limit(request: Request, field: str, count: int) -> None:
    """Refuse a write that names more records than one request may (``--max-records``)."""
    limit = request.app.state.settings.max_records
    if count > limit:
        raise FieldError(field, f"at most {limit} {field} per request (got {count})")


async def _writable(request: Request) -> None:
    if request.app.state.service.wal is None:
        raise Denied(403, "this server is read-only (start it with --writable to accept updates)")


@router.post("/v1/records:upsert", tags=["records"], summary="Add or replace records (write scope, --writable)",
             response_model=UpsertResponse, dependencies=[Depends(require("write")), Depends(_writable)],
             responses=_ERRORS)
async def upsert(body: UpsertRequest, request: Request) -> JSONResponse:
    """A record whose id is indexed replaces it. The reply comes after the update is in the write-ahead log."""
    _within_limit(request, "records", len(body.records))
    records = [r.model_dump(exclude_none=True) for r in body.records]
    result = await run_blocking(request, request.app.state.service.upsert, records)
    metrics = request.app.state.metrics
    metrics.writes.labels("added").inc(len(result["added"]))
    metrics.writes.labels("replaced").inc(len(result["replaced"]))
    return JSONResponse(result)


@router.post("/v1/records:delete", tags=["records"], summary="Delete records by id (write scope, --writable)",
             response_model=DeleteResponse, dependencies=[Depends(require("write")), Depends(_writable)],
             responses=_ERRORS)
async def delete(body: DeleteRequest, request: Request) -> JSONResponse:
    """When this answers, no query sees the deleted records; unknown ids come back as ``missing``."""
    _within_limit(request, "ids", len(body.ids))
    result = await run_blocking(request, request.app.state.service.delete, list(dict.fromkeys(body.ids)))
    request.app.state.metrics.writes.labels("deleted").inc(len(result["deleted"]))
    return JSONResponse(result)
