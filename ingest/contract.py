"""The supplier contract: records, report messages, and the one set of validation rules.

Every path into Baogong — HTTP, spreadsheet, a supplier's own Kafka producer —
validates with this module, so a record accepted on one path is accepted on
all of them and a rejection reads the same everywhere.

Pure: no I/O. What validation needs to know about the world (the catalogue,
who owns which outlet, the clock) comes in a `Context`.

Shapes:
- a *record* is one line a supplier sends: one outlet, one necessity, one time;
- a *report* is what travels on Kafka: one outlet's lines for one
  `reported_at` (an outlet reports all its necessities at once), key = outlet id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ingest.units import UnitError, to_canonical

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _aware(value: datetime) -> datetime:
    """Naive times are Asia/Shanghai (the contract); aware ones are kept."""
    return value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value


class InventoryRecord(BaseModel):
    """One stock line as a supplier sends it (JSON object, NDJSON line or CSV row)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    outlet_id: str = Field(min_length=1, max_length=64)
    necessity: str | None = Field(None, min_length=1, max_length=64)
    sku: str | None = Field(None, min_length=1, max_length=64)
    quantity: float = Field(ge=0, allow_inf_nan=False, description="on-hand stock, in `unit`")
    unit: str = Field(min_length=1, max_length=16)
    reported_at: datetime = Field(description="ISO 8601 with offset; naive means Asia/Shanghai")
    sold_24h: float | None = Field(None, ge=0, allow_inf_nan=False, description="sold in the last 24 h, in `unit`")
    message_id: str | None = Field(None, min_length=1, max_length=128, description="idempotency key")

    _aware = field_validator("reported_at")(_aware)


class ReportLine(BaseModel):
    """One necessity inside a report message, in the necessity's canonical unit."""

    model_config = ConfigDict(extra="ignore")

    necessity: str | None = Field(None, min_length=1, max_length=64)
    sku: str | None = Field(None, min_length=1, max_length=64)
    quantity: float = Field(ge=0, allow_inf_nan=False)
    unit: str = Field(min_length=1, max_length=16)
    sold_24h: float | None = Field(None, ge=0, allow_inf_nan=False)
    message_id: str | None = Field(None, min_length=1, max_length=128)


class InventoryReport(BaseModel):
    """The message on `supply.inventory.v1`: one outlet, one `reported_at`, its lines."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["inventory"] = "inventory"
    v: Literal[1] = 1
    supplier_id: str = Field(min_length=1, max_length=64)
    outlet_id: str = Field(min_length=1, max_length=64)
    reported_at: datetime
    received_at: datetime | None = None
    lines: list[ReportLine] = Field(min_length=1)

    _aware = field_validator("reported_at", "received_at")(lambda v: None if v is None else _aware(v))


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one record (or message) was refused. `index` is 0-based; CSV callers add the line."""

    index: int
    field: str
    reason: str
    code: Literal["invalid", "forbidden", "unknown_outlet", "duplicate"] = "invalid"
    outlet_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "field": self.field, "reason": self.reason, "code": self.code}
        if self.outlet_id is not None:
            out["outlet_id"] = self.outlet_id
        return out


@dataclass(frozen=True, slots=True)
class StockLine:
    """A validated stock line in canonical units, ready to group or to write."""

    outlet_id: str
    necessity: str
    quantity: float
    unit: str
    reported_at: datetime
    sold_24h: float | None
    message_id: str | None


@dataclass(frozen=True)
class Context:
    """What validation needs to know: catalogue units, outlet owners, the clock and its limits."""

    units: Mapping[str, str]  # necessity code -> canonical unit
    outlet_owner: Mapping[str, str]  # outlet id -> supplier id
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock_skew: timedelta = timedelta(minutes=5)
    retention: timedelta = timedelta(days=35)


def _field_error(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "record"
    return loc, first["msg"]


def check_line(
    index: int,
    outlet_id: str,
    necessity: str | None,
    quantity: float,
    unit: str,
    reported_at: datetime,
    sold_24h: float | None,
    message_id: str | None,
    ctx: Context,
    supplier_id: str,
) -> StockLine | Rejection:
    """The rules every stock line obeys, whatever path it came by."""
    owner = ctx.outlet_owner.get(outlet_id)
    if owner is None:
        return Rejection(
            index, "outlet_id", f"unknown outlet {outlet_id!r}; register it first", "unknown_outlet", outlet_id
        )
    if owner != supplier_id:
        return Rejection(
            index, "outlet_id", f"outlet {outlet_id!r} belongs to another supplier", "forbidden", outlet_id
        )
    if necessity is None:
        return Rejection(
            index, "necessity", "give `necessity` (a catalogue code) or a mapped `sku`", outlet_id=outlet_id
        )
    canonical = ctx.units.get(necessity)
    if canonical is None:
        known = ", ".join(sorted(ctx.units))
        return Rejection(index, "necessity", f"unknown necessity {necessity!r}; known: {known}", outlet_id=outlet_id)
    if reported_at > ctx.now + ctx.clock_skew:
        return Rejection(
            index,
            "reported_at",
            f"{reported_at.isoformat()} is in the future; check the clock and the UTC offset",
            outlet_id=outlet_id,
        )
    if reported_at < ctx.now - ctx.retention:
        return Rejection(
            index,
            "reported_at",
            f"{reported_at.isoformat()} is older than the {ctx.retention.days}-day retention",
            outlet_id=outlet_id,
        )
    try:
        qty = to_canonical(quantity, unit, canonical)
        sold = None if sold_24h is None else to_canonical(sold_24h, unit, canonical)
    except UnitError as exc:
        return Rejection(index, "unit", str(exc), outlet_id=outlet_id)
    return StockLine(outlet_id, necessity, qty, canonical, reported_at, sold, message_id)


def validate_records(
    rows: Sequence[Mapping[str, Any]], ctx: Context, supplier_id: str
) -> tuple[list[StockLine], list[Rejection]]:
    """Validate supplier records; every good record survives a bad neighbour."""
    good: list[StockLine] = []
    bad: list[Rejection] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            bad.append(Rejection(index, "record", f"expected an object, got {type(row).__name__}"))
            continue
        try:
            rec = InventoryRecord.model_validate(row)
        except ValidationError as exc:
            name, reason = _field_error(exc)
            outlet = row.get("outlet_id")
            bad.append(Rejection(index, name, reason, outlet_id=outlet if isinstance(outlet, str) else None))
            continue
        result = check_line(
            index,
            rec.outlet_id,
            rec.necessity,
            rec.quantity,
            rec.unit,
            rec.reported_at,
            rec.sold_24h,
            rec.message_id,
            ctx,
            supplier_id,
        )
        (good if isinstance(result, StockLine) else bad).append(result)  # type: ignore[arg-type]
    return good, bad


def group_reports(lines: Iterable[StockLine], supplier_id: str, received_at: datetime) -> list[InventoryReport]:
    """Group lines into one report per (outlet, reported_at), in first-seen order."""
    groups: dict[tuple[str, datetime], list[StockLine]] = {}
    for line in lines:
        groups.setdefault((line.outlet_id, line.reported_at), []).append(line)
    return [
        InventoryReport(
            supplier_id=supplier_id,
            outlet_id=outlet_id,
            reported_at=reported_at,
            received_at=received_at,
            lines=[
                ReportLine(
                    necessity=ln.necessity,
                    sku=None,
                    quantity=ln.quantity,
                    unit=ln.unit,
                    sold_24h=ln.sold_24h,
                    message_id=ln.message_id,
                )
                for ln in lines_
            ],
        )
        for (outlet_id, reported_at), lines_ in groups.items()
    ]


def validate_report(raw: bytes, ctx: Context) -> tuple[InventoryReport | None, list[StockLine], list[Rejection]]:
    """Validate one message from `supply.inventory.v1`, as the stream worker sees it.

    A message that is not a report at all gives (None, [], [rejection]); a
    report with some bad lines gives the good lines and a rejection per bad one
    (index = line number in `lines`).
    """
    try:
        report = InventoryReport.model_validate_json(raw)
    except ValidationError as exc:
        name, reason = _field_error(exc)
        return None, [], [Rejection(-1, name, reason)]
    good: list[StockLine] = []
    bad: list[Rejection] = []
    for index, ln in enumerate(report.lines):
        result = check_line(
            index,
            report.outlet_id,
            ln.necessity,
            ln.quantity,
            ln.unit,
            report.reported_at,
            ln.sold_24h,
            ln.message_id,
            ctx,
            report.supplier_id,
        )
        (good if isinstance(result, StockLine) else bad).append(result)  # type: ignore[arg-type]
    return report, good, bad
