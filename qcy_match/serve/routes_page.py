"""The broker's page at ``/``, its static files, the offline API docs, and the shortlist download."""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from .auth import require
from .blocking import run_blocking
from .schemas import Error, ExportRequest
from .service import FieldError

router = APIRouter()
STATIC = Path(str(resources.files("qcy_match.serve").joinpath("static")))
DOCS_ASSETS = "/docs-assets"
MEDIA = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "csv": "text/csv; charset=utf-8"}


@router.get("/", include_in_schema=False)
def page() -> HTMLResponse:
    """The broker's page (plain HTML/CSS/JS from the package; nothing loads from elsewhere)."""
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))


@router.get("/font/cjk.otf", include_in_schema=False)
def cjk_font() -> Response:
    """A CJK font for browsers without one (the page asks for it only then): the [report] extra's Noto Sans CJK SC,
    or an installed system CJK font; 404 when there is none.
    """
    from ..analytics.plots import cjk_font_path
    from ..errors import MissingExtraError

    try:
        path = cjk_font_path()
    except MissingExtraError:
        return Response(status_code=404)
    return FileResponse(path, media_type="font/otf" if path.suffix == ".otf" else "font/ttf",
                        headers={"cache-control": "public, max-age=86400"})


@router.get("/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    """Swagger UI over ``openapi.json``, with its assets served from the installed package.

    URLs are relative, so the page also works behind a reverse proxy that serves the API under a path prefix.
    """
    assets = DOCS_ASSETS.lstrip("/")
    return get_swagger_ui_html(openapi_url="openapi.json", title="qcy-match API",
                               swagger_js_url=f"{assets}/swagger-ui-bundle.js",
                               swagger_css_url=f"{assets}/swagger-ui.css", swagger_favicon_url=f"{assets}/favicon.png")


@router.post("/v1/shortlist:export", tags=["matching"], summary="A shortlist of match rows as XLSX or CSV",
             dependencies=[Depends(require("read"))], response_class=Response,
             responses={200: {"content": {MEDIA["xlsx"]: {}, MEDIA["csv"]: {}}}, 422: {"model": Error}})
async def export(body: ExportRequest, request: Request) -> Response:
    """Rows are written by the library's table writer, which escapes cells a spreadsheet would run as formulas."""
    limit = request.app.state.settings.max_export_rows
    if len(body.rows) > limit:
        raise FieldError("rows", f"at most {limit} rows per export (got {len(body.rows)})")
    data = await run_blocking(request, _table_bytes, body.rows, body.format)
    name = "候选成果清单." + body.format
    return Response(data, media_type=MEDIA[body.format],
                    headers={"content-disposition": f"attachment; filename=shortlist.{body.format}; "
                                                    f"filename*=UTF-8''{quote(name)}"})


def _table_bytes(rows: list[dict[str, object]], fmt: str) -> bytes:
    import pandas as pd

    from ..output.tables import write_table

    columns = list(dict.fromkeys(k for row in rows for k in row))
    with tempfile.TemporaryDirectory(prefix="qcy-export-") as tmp:
        path = Path(tmp) / f"shortlist.{fmt}"
        write_table(pd.DataFrame(rows, columns=columns), path)
        return path.read_bytes()
