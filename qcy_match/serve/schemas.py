"""Request and response bodies: what the OpenAPI document shows and what a bad field is refused for (422)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Scalar = str | int | float | bool | None
Listish = str | list[str] | None


class _Fields(BaseModel):
    """Record fields; other keys are kept as metadata and must hold a scalar or a list of scalars."""

    model_config = ConfigDict(extra="allow")

    description: str | None = None
    industry: Listish = Field(None, description="GB/T 4754-2017 codes at any level: 'C3973', '39', ['C34', 'C39']")
    region: str | None = Field(None, description="Shaanxi city or district, e.g. 西安市高新区")
    keywords: Listish = None
    maturity: str | None = Field(None, description="实验室 / 小试 / 中试 / 产业化")
    transfer_mode: str | None = Field(None, description="转让 / 许可 / 作价入股 / 合作开发 / 技术服务")

    @model_validator(mode="after")
    def _metadata(self) -> _Fields:
        for key, value in (self.model_extra or {}).items():
            if key.startswith("_") or len(key) > 100:
                raise ValueError(f"field name {key[:40]!r} is not allowed (leading '_' or over 100 characters)")
            items = value if isinstance(value, list) else [value]
            if not all(v is None or isinstance(v, str | int | float | bool) for v in items):
                raise ValueError(f"field {key!r} must hold a string, number, boolean or a list of them")
        return self


class Record(_Fields):
    """An achievement (or need) to index."""

    id: str = Field(..., min_length=1, max_length=200)
    title: str = Field(..., min_length=1)

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class Query(_Fields):
    """A need to match (or an achievement, against an index of needs); ``id`` defaults to q1, q2 and so on."""

    id: str | None = Field(None, max_length=200)
    title: str = Field(..., min_length=1)

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class MatchRequest(BaseModel):
    """``queries``: records or plain strings (a string is a title). ``filters``: see README "Filters"."""

    model_config = ConfigDict(extra="forbid")

    queries: list[str | Query] = Field(..., min_length=1)
    k: int = Field(10, ge=1)
    filters: dict[str, str | list[str]] | None = Field(
        None, examples=[{"chain": "集成电路", "region": "关中", "maturity": ["中试", "产业化"]}])
    explain: bool = True


class MatchResult(BaseModel):
    """One query's matches, best first; each row has the columns of the CLI's output tables."""

    query_id: str
    matches: list[dict[str, Any]]


class MatchResponse(BaseModel):
    """Results in the order of the queries."""

    results: list[MatchResult]


class UpsertRequest(BaseModel):
    """Records to add; a record whose id is indexed replaces it."""

    model_config = ConfigDict(extra="forbid")

    records: list[Record] = Field(..., min_length=1)


class Rejected(BaseModel):
    """A record that was not indexed, and why (``index`` is its position in the request)."""

    index: int
    field: str
    reason: str
    value: str


class UpsertResponse(BaseModel):
    """Ids added and replaced, records rejected."""

    added: list[str]
    replaced: list[str]
    rejected: list[Rejected]


class DeleteRequest(BaseModel):
    """Ids to delete."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(..., min_length=1)


class DeleteResponse(BaseModel):
    """Ids deleted, and ids that were not indexed."""

    deleted: list[str]
    missing: list[str]


class ReloadRequest(BaseModel):
    """The name of an index directory beside the served one (built with ``qcy-match index``)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(..., min_length=1, max_length=255)


class ExportRequest(BaseModel):
    """Rows of a shortlist (as ``/v1/match`` returned them) to write as a spreadsheet."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Scalar]] = Field(..., min_length=1)
    format: Literal["xlsx", "csv"] = "xlsx"


class Error(BaseModel):
    """Every error answer; ``fields`` names the bad fields of a 422."""

    error: str
    fields: list[dict[str, str]] | None = None
