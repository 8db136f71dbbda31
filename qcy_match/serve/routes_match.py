"""``POST /v1/match``: queries in, each query's matches with explanations out."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from .auth import require
from .blocking import wait_future
from .schemas import Error, MatchRequest, MatchResponse
from .service import FieldError

router = APIRouter()


@router.post("/v1/match", tags=["matching"], summary="Match needs to the indexed achievements",
             response_model=None, dependencies=[Depends(require("read"))],
             responses={200: {"model": MatchResponse}, 401: {"model": Error}, 422: {"model": Error},
                        429: {"model": Error}})
async def match(body: MatchRequest, request: Request) -> Response:
    """Each query (a record, or a plain string taken as its title) gets its best ``k`` records, best first.

    Rows carry the CLI's output columns: ids, ``rank``, ``score``, titles, ``shared_keywords``,
    ``industry_agreement``, ``region_agreement``, each signal's score and rank, the matched record's industry,
    region, maturity, transfer mode and metadata.
    """
    settings = request.app.state.settings
    if len(body.queries) > settings.max_queries:
        raise FieldError("queries", f"at most {settings.max_queries} queries per request (got {len(body.queries)})")
    if body.k > settings.max_k:
        raise FieldError("k", f"k must be at most {settings.max_k}")
    queries = [q if isinstance(q, str) else q.model_dump(exclude_none=True) for q in body.queries]
    future = request.app.state.batcher.submit(queries, body.k, body.filters, body.explain)
    ids, rows = await wait_future(request, future)
    request.app.state.metrics.queries.inc(len(ids))
    payload = {"results": [{"query_id": q, "matches": r} for q, r in zip(ids, rows, strict=True)]}
    # Serialised here: a pydantic response model would re-validate every row for nothing.
    return Response(json.dumps(payload, ensure_ascii=False, allow_nan=False), media_type="application/json")
