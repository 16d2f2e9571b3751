"""What the supplier API answers, as pydantic models: the OpenAPI document's response schemas.

The handlers build plain dicts (the hot path does not validate its own
answers); these models describe them, field for field, so generated clients
and the contract test (tests/integration/test_openapi_contract.py, which
checks every answer of the live API against this document) can trust it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RejectionOut(_Answer):
    index: int = Field(description="0-based position of the record in the request; -1 for a line that was no record")
    line: int | None = Field(None, description="line (NDJSON) or spreadsheet row (CSV/XLSX, header = 1)")
    field: str = Field(description="the field at fault, or `record`")
    reason: str = Field(description="what is wrong and what to send instead")
    code: str = Field(description="invalid, forbidden (another supplier's outlet), unknown_outlet, …")
    outlet_id: str | None = None


class DuplicateOut(_Answer):
    index: int
    line: int | None = None
    reason: str


class IngestAnswer(_Answer):
    """Records accepted (durably on Kafka), duplicates of earlier ones, and rejections with their reasons."""

    accepted: int = Field(description="records accepted")
    reports: int = Field(description="outlet reports published (records grouped per outlet)")
    duplicates: list[DuplicateOut]
    rejected: list[RejectionOut]
    rejected_count: int | None = Field(None, description="all rejections, when `rejected` lists only the first")
    duplicates_count: int | None = Field(None, description="all duplicates, when `duplicates` lists only the first")
    rejected_by_field: dict[str, int] | None = Field(None, description="rejections per field, when lists were cut")
    rejections_report: str | None = Field(None, description="path of the full lists (GET, same key), when cut")


class IngestRefusal(IngestAnswer):
    """Nothing accepted: every record was invalid (422) or named another supplier's outlet (403)."""

    error: str


class ErrorAnswer(_Answer):
    error: str = Field(description="what went wrong and what to do next")


class SkuRejection(_Answer):
    line: int
    field: str
    reason: str


class SkuAnswer(_Answer):
    supplier_id: str
    rows: int
    upserted: int
    rejected: list[SkuRejection]
    rejected_count: int | None = Field(None, description="all rejected rows, when `rejected` lists only the first")


class RejectionReport(_Answer):
    request_id: str
    rejected: list[RejectionOut]
    duplicates: list[DuplicateOut]


def responses(*codes: int, ok: type[BaseModel] | None = None, ok_example: Any = None) -> dict[int | str, Any]:
    """FastAPI `responses` for these status codes, each with its body schema and a description."""
    described = {
        200: "Accepted",
        400: "The body is unusable (not JSON/NDJSON/CSV/XLSX, unsupported content type, empty); nothing accepted",
        401: "No, malformed, unknown or revoked API key",
        403: "Every record names an outlet of another supplier",
        404: "No such thing (or not this key's)",
        408: "The body did not arrive within the body timeout; nothing accepted",
        413: "The body, or what an XLSX file unpacks to, is over a limit; split it",
        422: "No record was valid; each rejection says why",
        429: "Over this key's rate limit; retry after Retry-After seconds",
        503: "Kafka or the database did not answer; nothing accepted, retry the same batch after Retry-After",
    }
    out: dict[int | str, Any] = {}
    for code in codes:
        if code == 200:
            model: type[BaseModel] = ok or IngestAnswer
        elif code in (403, 422) and ok is IngestAnswer:
            model = IngestRefusal
        elif code == 422 and ok is SkuAnswer:
            model = SkuAnswer
        else:
            model = ErrorAnswer
        entry: dict[str, Any] = {"model": model, "description": described[code]}
        if code == 200 and ok_example is not None:
            entry["content"] = {"application/json": {"example": ok_example}}
        out[code] = entry
    return out
