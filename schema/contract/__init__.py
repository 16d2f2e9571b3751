"""The supplier contract: records, report messages, and the one set of validation rules.

Every path into Baogong — HTTP (JSON, NDJSON, CSV, XLSX), `baogong push`, a
supplier's own Kafka producer — validates with this module, so a record
accepted on one path is accepted on all of them and a rejection reads the
same everywhere. The pydantic models here are the contract; the JSON Schema
files in `schema/contract/` are generated from them (`baogong contract
export`), and a test keeps the two identical.

Pure: no I/O. What validation needs to know about the world (catalogue units,
who owns which outlet, SKU maps, the clock) comes in a `Context`.

Shapes:
- a *record* is one line a supplier sends: one outlet, one necessity, one time;
- a *report* is what travels on Kafka: one outlet's lines for one
  `reported_at` (an outlet reports all its necessities at once), key = outlet id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NotRequired
from zoneinfo import ZoneInfo

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from typing_extensions import TypedDict

from schema.catalogue import (
    BUSINESS_TYPE_NAME,
    PRICE_CEILING,
    PRICE_CEILING_ANY_NECESSITY,
    SOLD_24H_MULTIPLE,
    STOCK_CEILING_ANY_NECESSITY,
    STOCK_CEILINGS,
)
from schema.units import UnitError, factor, is_pack_word

SHANGHAI = ZoneInfo("Asia/Shanghai")
Kind = Literal["inventory", "price"]


def _aware(value: datetime | None) -> datetime | None:
    """Naive times are Asia/Shanghai (the contract); aware ones are kept."""
    if value is None:
        return None
    return value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value


#: Text PostgreSQL can store: no NUL character. The free-text fields (`sku`, `message_id`, a report's
#: `supplier_id` and `outlet_id`) carry it in the model, checked in pydantic-core; `outlet_id`,
#: `necessity` and `unit` of a record never match the registry or a unit when they hold a NUL, so
#: `_accept` names the NUL there, off the fast path.
NO_NUL = r"^[^\x00]*$"
_NUL_REASON = "contains a NUL character (\\x00), which cannot be stored; remove it"

_Outlet = Field(min_length=1, max_length=64, description="the outlet's id in the registry; must be yours")
_Necessity = Field(None, min_length=1, max_length=64, description="catalogue code, e.g. rice; or give `sku`")
_Sku = Field(
    None,
    min_length=1,
    max_length=64,
    pattern=NO_NUL,
    description="your SKU code, mapped to a necessity and pack size",
)
_Unit = Field(min_length=1, max_length=32, description="kg, g, 斤, L, ml, piece, a pack such as 5kg or 12x550ml")
_MessageId = Field(
    None, min_length=1, max_length=128, pattern=NO_NUL, description="idempotency key; repeats are duplicates"
)


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    outlet_id: str = _Outlet
    necessity: str | None = _Necessity
    sku: str | None = _Sku
    unit: str = _Unit
    reported_at: datetime = Field(description="ISO 8601 with offset; naive means Asia/Shanghai")
    message_id: str | None = _MessageId
    # naive -> Asia/Shanghai happens in validate_records, once per batch row, not in a Python validator


class InventoryRecord(_Record):
    """One stock line as a supplier sends it (JSON object, NDJSON line, CSV or XLSX row)."""

    quantity: float = Field(ge=0, allow_inf_nan=False, description="on-hand stock in `unit` (a level, not a delta)")
    sold_24h: float | None = Field(None, ge=0, allow_inf_nan=False, description="sold in the last 24 h, in `unit`")


class PriceRecord(_Record):
    """One retail price as a supplier sends it."""

    price: float = Field(gt=0, allow_inf_nan=False, description="CNY per `unit`")


class _Line(BaseModel):
    model_config = ConfigDict(extra="ignore")

    necessity: str | None = _Necessity
    sku: str | None = _Sku
    unit: str = _Unit
    message_id: str | None = _MessageId


class InventoryLine(_Line):
    quantity: float = Field(ge=0, allow_inf_nan=False)
    sold_24h: float | None = Field(None, ge=0, allow_inf_nan=False)


class PriceLine(_Line):
    price: float = Field(gt=0, allow_inf_nan=False)


class _Report(BaseModel):
    model_config = ConfigDict(extra="ignore")

    v: Literal[1] = 1
    supplier_id: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    outlet_id: str = Field(
        min_length=1, max_length=64, pattern=NO_NUL, description="the outlet's id in the registry; must be yours"
    )
    reported_at: datetime
    received_at: datetime | None = None

    _aware = field_validator("reported_at", "received_at")(_aware)


class InventoryReport(_Report):
    """The message on `supply.inventory.v1`: one outlet, one `reported_at`, its stock lines."""

    kind: Literal["inventory"] = "inventory"
    lines: list[InventoryLine] = Field(min_length=1, max_length=1000)


class PriceReport(_Report):
    """The message on `supply.prices.v1`: one outlet, one `reported_at`, its price lines."""

    kind: Literal["price"] = "price"
    lines: list[PriceLine] = Field(min_length=1, max_length=1000)


RECORD_MODELS: dict[Kind, type[_Record]] = {"inventory": InventoryRecord, "price": PriceRecord}
REPORT_MODELS: dict[Kind, type[_Report]] = {"inventory": InventoryReport, "price": PriceReport}
LINE_MODELS: dict[Kind, type[_Line]] = {"inventory": InventoryLine, "price": PriceLine}

RejectCode = Literal["invalid", "forbidden", "unknown_outlet"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one record (or message) was refused. `index` is 0-based in the request; `line` as a person counts."""

    index: int
    field: str
    reason: str
    code: RejectCode = "invalid"
    outlet_id: str | None = None
    line: int | None = None

    @property
    def registry_miss(self) -> bool:
        """Rejected for naming an outlet or SKU the registry may only just have learned of."""
        return self.code == "unknown_outlet" or self.field == "sku"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index}
        if self.line is not None:
            out["line"] = self.line
        out.update(field=self.field, reason=self.reason, code=self.code)
        if self.outlet_id is not None:
            out["outlet_id"] = self.outlet_id
        return out


@dataclass(slots=True)
class Accepted:
    """A validated line in canonical units: `amount` is a quantity (inventory) or CNY per unit (price).

    `line_key` tells the lines of one outlet, necessity and `reported_at` apart
    in `outlet_reports`: the line's `message_id`, else (a report on Kafka) its
    `sku`, else "". Lines sharing a key are summed by the sink; on the HTTP
    path the claims already make a record without a message_id unique per
    outlet, necessity and `reported_at`, so its key is "".
    """

    index: int
    outlet_id: str
    necessity: str
    amount: float
    unit: str
    reported_at: datetime
    sold_24h: float | None
    message_id: str | None
    at: float  # reported_at as POSIX seconds
    line_key: str = ""


@dataclass(frozen=True, slots=True)
class Sku:
    necessity: str
    pack_quantity: float
    pack_unit: str


@dataclass(frozen=True)
class Context:
    """What validation needs to know: catalogue units, outlet owners, SKU maps, the clock and its limits.

    Plausibility: a line's stock may not exceed `stock_ceiling[business type of its outlet]
    [necessity]` (an outlet missing from `outlet_type`, or of a type without ceilings, is looked up
    as type None), its sold_24h not `SOLD_24H_MULTIPLE` times that, a price not
    `price_ceiling[necessity]`; a necessity without a ceiling there gets the catalogue's ceiling
    for any necessity. Defaults: the catalogue's (schema/catalogue.py, where the reasoning is).
    """

    units: Mapping[str, str]  # necessity code -> canonical unit
    outlet_owner: Mapping[str, str]  # outlet id -> supplier id
    skus: Mapping[tuple[str, str], Sku] = field(default_factory=dict)  # (supplier, sku) -> mapping
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock_skew: timedelta = timedelta(minutes=5)
    retention: timedelta = timedelta(days=35)
    outlet_type: Mapping[str, str] = field(default_factory=dict)  # outlet id -> business type code
    stock_ceiling: Mapping[str | None, Mapping[str, float]] = field(default_factory=lambda: STOCK_CEILINGS)
    price_ceiling: Mapping[str, float] = field(default_factory=lambda: PRICE_CEILING)


def _field_error(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "record"
    if first["type"] == "string_pattern_mismatch" and (first.get("ctx") or {}).get("pattern") == NO_NUL:
        return loc, _NUL_REASON
    return loc, first["msg"]


@dataclass(frozen=True, slots=True)
class _Window:
    """The accepted `reported_at` range as POSIX seconds, computed once per batch."""

    earliest: float
    latest: float

    @classmethod
    def of(cls, ctx: Context) -> _Window:
        return cls((ctx.now - ctx.retention).timestamp(), (ctx.now + ctx.clock_skew).timestamp())


#: (unit as written, canonical unit) -> factor, for every spelling accepted so far (a few dozen):
#: the one cache of `units.factor`, read by the fast path in validate_records.
_FACTORS: dict[tuple[str, str], float] = {}


def _accept(
    kind: Kind,
    index: int,
    supplier_id: str,
    outlet_id: str,
    necessity: str | None,
    sku: str | None,
    unit: str,
    amount: float,
    sold_24h: float | None,
    message_id: str | None,
    reported_at: datetime,
    ctx: Context,
    window: _Window,
    line_key: str = "",
) -> Accepted | Rejection:
    """Text, ownership, item, time window, unit and plausibility: the line in canonical units, or why not.

    One call per line; the last word on every line (validate_records' fast path accepts only what
    this accepts, and a test holds the two together).
    """
    for name, text in (("outlet_id", outlet_id), ("necessity", necessity), ("unit", unit)):
        if text is not None and "\x00" in text:
            return Rejection(index, name, _NUL_REASON, outlet_id=None if name == "outlet_id" else outlet_id)
    owner = ctx.outlet_owner.get(outlet_id)
    if owner != supplier_id:
        if owner is None:
            return Rejection(
                index,
                "outlet_id",
                f"unknown outlet {outlet_id!r}; ask the operator to register it",
                "unknown_outlet",
                outlet_id,
            )
        return Rejection(
            index, "outlet_id", f"outlet {outlet_id!r} belongs to another supplier", "forbidden", outlet_id
        )
    pack: Sku | None = None
    if necessity is None:
        if sku is None:
            return Rejection(
                index, "necessity", "give `necessity` (a catalogue code) or a mapped `sku`", outlet_id=outlet_id
            )
        pack = ctx.skus.get((supplier_id, sku))
        if pack is None:
            return Rejection(index, "sku", f"unknown SKU {sku!r}; upload your SKU map first", outlet_id=outlet_id)
        necessity = pack.necessity
    canonical = ctx.units.get(necessity)
    if canonical is None:
        known = ", ".join(sorted(ctx.units))
        return Rejection(index, "necessity", f"unknown necessity {necessity!r}; known: {known}", outlet_id=outlet_id)
    at = reported_at.timestamp()
    if at > window.latest:
        return Rejection(
            index,
            "reported_at",
            f"{reported_at.isoformat()} is in the future; check the clock and the UTC offset",
            outlet_id=outlet_id,
        )
    if at < window.earliest:
        return Rejection(
            index,
            "reported_at",
            f"{reported_at.isoformat()} is older than the {ctx.retention.days}-day retention",
            outlet_id=outlet_id,
        )
    if pack is not None and is_pack_word(unit):
        try:
            per = pack.pack_quantity * factor(pack.pack_unit, canonical)
        except UnitError:
            per = math.nan
        if not 0.0 < per < math.inf:  # a map stored before its pack unit was checked as it is now
            reason = f"SKU {sku!r} is mapped to a pack of {pack.pack_quantity:g} {pack.pack_unit}; fix the SKU map"
            return Rejection(index, "sku", reason, outlet_id=outlet_id)
    else:
        try:
            per = factor(unit, canonical)
        except UnitError as exc:
            return Rejection(index, "unit", str(exc), outlet_id=outlet_id)
        if len(_FACTORS) < 4096:  # a supplier inventing spellings cannot grow it without bound
            _FACTORS[unit, canonical] = per
    if kind == "inventory":
        value = amount * per
        ceiling = _ceilings_of(ctx, outlet_id).get(necessity, STOCK_CEILING_ANY_NECESSITY)
        if not value <= ceiling:  # `not <=`: an overflow to inf (or 0 x inf = nan) is refused too
            return _implausible(index, "quantity", amount, unit, value, canonical, ceiling, necessity, outlet_id, ctx)
        sold = None
        if sold_24h is not None:
            sold = sold_24h * per
            most = ceiling * SOLD_24H_MULTIPLE
            if not sold <= most:
                return _implausible(index, "sold_24h", sold_24h, unit, sold, canonical, most, necessity, outlet_id, ctx)
        return Accepted(index, outlet_id, necessity, value, canonical, reported_at, sold, message_id, at, line_key)
    value = amount / per
    ceiling = ctx.price_ceiling.get(necessity, PRICE_CEILING_ANY_NECESSITY)
    if not 0.0 < value <= ceiling:
        return _implausible(index, "price", amount, unit, value, canonical, ceiling, necessity, outlet_id, ctx)
    return Accepted(index, outlet_id, necessity, value, canonical, reported_at, None, message_id, at, line_key)


def _ceilings_of(ctx: Context, outlet_id: str) -> Mapping[str, float]:
    """Stock ceilings by necessity for the outlet's business type (unknown type: the type None's)."""
    table = ctx.stock_ceiling.get(ctx.outlet_type.get(outlet_id))
    return table if table is not None else ctx.stock_ceiling.get(None, {})


def _implausible(
    index: int,
    name: str,
    given: float,
    unit: str,
    value: float,
    canonical: str,
    limit: float,
    necessity: str,
    outlet_id: str,
    ctx: Context,
) -> Rejection:
    """A number no outlet can have, said with what it came to in the canonical unit and the limit."""
    kind = ctx.outlet_type.get(outlet_id)
    holder = BUSINESS_TYPE_NAME.get(kind, kind) if kind is not None else "outlet"
    if name == "price":
        given_as = f"{_num(given)} CNY per {unit} of {necessity}"
        if not value > 0:
            reason = f"{given_as} comes to 0 CNY per {canonical}; check the unit and the price column"
        else:
            came_to = f"{_num(value)} CNY" if math.isfinite(value) else "more CNY than a number holds"
            reason = (
                f"{given_as} is {came_to} per {canonical}; a price of {necessity} above {_num(limit)} CNY "
                f"per {canonical} is not plausible; check the unit and the price column"
            )
    else:
        verb, what = ("hold", "stock") if name == "quantity" else ("sell in 24 h", "sales")
        amount = f"{_num(given)} {unit} of {necessity}"
        if unit != canonical:
            amount += f" ({_num(value)} {canonical})" if math.isfinite(value) else f" ({_num(value)} in {canonical})"
        reason = (
            f"{amount} is more than any {holder} can {verb} ({what} above {_num(limit)} {canonical} "
            f"is not plausible); check the unit and the {name} column"
        )
    return Rejection(index, name, reason, outlet_id=outlet_id)


def _num(x: float) -> str:
    """A number as a person reads it: 2,000,000 or 6.6 or 1e+308 ("too large a number": inf)."""
    return f"{x:,.15g}" if math.isfinite(x) else "too large a number"


def _row_schema(model: type[BaseModel]) -> Any:
    """The record model's fields and constraints as a TypedDict, `reported_at` left raw.

    pydantic-core validates a row into a plain dict ~3x faster than into a
    model instance (1.6 vs 4.4 µs a record here), and ingest needs only the
    values. `reported_at` is parsed afterwards, once per distinct value in a
    batch (an outlet's lines share one), by the model's own datetime
    validator (`_TIME`). The models stay the contract (JSON Schema, /docs);
    this is built from them, and a batch with any bad row is validated row by
    row with the model itself, so every rejection reads as the model's.
    """
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name == "reported_at":
            fields[name] = Any
            continue
        annotated = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[name] = annotated if info.is_required() else NotRequired[annotated]  # type: ignore[valid-type]
    row = TypedDict(f"{model.__name__}Row", fields)  # type: ignore[misc]
    row.__pydantic_config__ = model.model_config  # type: ignore[attr-defined]
    return row


#: A whole batch through pydantic-core in one call; only a batch with a bad row is validated row by row.
_ROW_LISTS: dict[Kind, TypeAdapter[list[Any]]] = {
    kind: TypeAdapter(list[_row_schema(m)])  # type: ignore[arg-type, misc]
    for kind, m in RECORD_MODELS.items()
}
_TIME: TypeAdapter[datetime] = TypeAdapter(datetime)  # the record models' reported_at validator

#: (index, field values, reported_at made aware, reported_at as POSIX seconds)
Row = tuple[int, dict[str, Any], datetime, float]


def _instant(value: datetime) -> tuple[datetime, float]:
    aware = value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value  # naive means Asia/Shanghai
    return aware, aware.timestamp()


def _parse_records(kind: Kind, rows: Sequence[Any]) -> tuple[list[Row], list[Rejection]]:
    """Each row's valid field values and time, with its index, or the first reason it is not a record."""
    try:
        checked = _ROW_LISTS[kind].validate_python(rows)
    except ValidationError:
        return _parse_one_by_one(kind, rows)  # at least one bad row: find which, keep the others
    good: list[Row] = []
    bad: list[Rejection] = []
    times: dict[Any, tuple[datetime, float] | str] = {}
    for index, fields in enumerate(checked):
        raw = fields["reported_at"]
        when = times.get(raw) if raw.__class__ is str else None
        if when is None:
            try:
                when = _instant(_TIME.validate_python(raw))
            except ValidationError as exc:
                when = exc.errors()[0]["msg"]
            if raw.__class__ is str:
                times[raw] = when
        if isinstance(when, str):  # isinstance, not typing.cast: a cast is a function call per record
            bad.append(Rejection(index, "reported_at", when, outlet_id=fields["outlet_id"]))
        else:
            good.append((index, fields, when[0], when[1]))
    return good, bad


def _parse_one_by_one(kind: Kind, rows: Sequence[Any]) -> tuple[list[Row], list[Rejection]]:
    model = RECORD_MODELS[kind]
    good: list[Row] = []
    bad: list[Rejection] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            bad.append(Rejection(index, "record", f"expected an object, got {type(row).__name__}"))
            continue
        try:
            record = model.model_validate(row)
        except ValidationError as exc:
            name, reason = _field_error(exc)
            outlet = row.get("outlet_id")
            bad.append(Rejection(index, name, reason, outlet_id=outlet if isinstance(outlet, str) else None))
            continue
        good.append((index, dict(record), *_instant(record.reported_at)))
    return good, bad


def validate_records(
    kind: Kind, rows: Sequence[Any], ctx: Context, supplier_id: str
) -> tuple[list[Accepted], list[Rejection]]:
    """Validate supplier records; every good record survives a bad neighbour. Rejections come in row order."""
    parsed, bad = _parse_records(kind, rows)
    window = _Window.of(ctx)
    earliest, latest = window.earliest, window.latest
    units, factors, sold_multiple = ctx.units, _FACTORS, SOLD_24H_MULTIPLE
    inventory = kind == "inventory"
    amount_field = "quantity" if inventory else "price"
    floor = -1.0 if inventory else 0.0  # a stock may be 0 (a quantity is >= 0), a price may not
    no_ceiling = -math.inf
    limits_of = _OutletLimits(ctx, kind, supplier_id)
    good: list[Accepted] = []
    for index, rec, reported_at, at in parsed:
        get = rec.get
        outlet_id, necessity, unit, amount = rec["outlet_id"], get("necessity"), rec["unit"], rec[amount_field]
        # The usual line (own outlet, catalogue necessity, a unit spelling seen before, in the window,
        # a plausible number) is accepted here; anything else goes through _accept, which has the
        # last word and the reasons. A necessity without a ceiling reads as -inf: to _accept.
        if (
            necessity is not None
            and (canonical := units.get(necessity)) is not None
            and (per := factors.get((unit, canonical))) is not None
            and floor
            < (value := amount * per if inventory else amount / per)
            <= (ceiling := limits_of[outlet_id].get(necessity, no_ceiling))
            and earliest <= at <= latest
            and ((sold := get("sold_24h")) is None or (sold := sold * per) <= ceiling * sold_multiple)
        ):
            message_id = get("message_id")
            good.append(
                Accepted(
                    index,
                    outlet_id,
                    necessity,
                    value,
                    canonical,
                    reported_at,
                    sold,
                    message_id,
                    at,
                    message_id or "",
                )
            )
            continue
        message_id = get("message_id")
        result = _accept(
            kind,
            index,
            supplier_id,
            outlet_id,
            necessity,
            get("sku"),
            unit,
            amount,
            get("sold_24h"),
            message_id,
            reported_at,
            ctx,
            window,
            message_id or "",
        )
        if result.__class__ is Accepted:
            good.append(result)  # type: ignore[arg-type]
        else:
            bad.append(result)  # type: ignore[arg-type]
    if bad:
        bad.sort(key=lambda r: r.index)
    return good, bad


class _OutletLimits(dict[str, Mapping[str, float]]):
    """outlet id -> its ceilings by necessity if it is the supplier's, else {} (its lines go to `_accept`).

    validate_records' fast path reads one entry per line: the ownership check and the outlet's
    business type are looked up once per outlet in the batch, on the first miss.
    """

    def __init__(self, ctx: Context, kind: Kind, supplier_id: str) -> None:
        super().__init__()
        self._ctx, self._inventory, self._supplier = ctx, kind == "inventory", supplier_id

    def __missing__(self, outlet_id: str) -> Mapping[str, float]:
        ctx = self._ctx
        if ctx.outlet_owner.get(outlet_id) != self._supplier:
            limits: Mapping[str, float] = {}
        else:
            limits = _ceilings_of(ctx, outlet_id) if self._inventory else ctx.price_ceiling
        self[outlet_id] = limits
        return limits


@dataclass(slots=True)
class ReportGroup:
    """The lines of one report: one outlet, one `reported_at`, at most 1000 lines."""

    outlet_id: str
    reported_at: datetime
    lines: list[Accepted]


def chunk_report(lines: list[Accepted]) -> list[ReportGroup]:
    """One report's lines (one outlet, one `reported_at`) as messages of at most 1000 lines."""
    first = lines[0]
    if len(lines) <= 1000:  # nearly always: no copy
        return [ReportGroup(first.outlet_id, first.reported_at, lines)]
    return [ReportGroup(first.outlet_id, first.reported_at, lines[i : i + 1000]) for i in range(0, len(lines), 1000)]


def encode_report(kind: Kind, supplier_id: str, received_at: datetime, group: ReportGroup) -> bytes:
    """The report message's JSON, exactly what `REPORT_MODELS[kind]` validates (a test holds the two together).

    Built as plain dicts and written by orjson: ~1 µs a line, where building the
    pydantic report and dumping it cost ~8 µs a line on the ingest path.
    """
    if kind == "inventory":
        lines = [
            {
                "necessity": a.necessity,
                "sku": None,
                "unit": a.unit,
                "message_id": a.message_id,
                "quantity": a.amount,
                "sold_24h": a.sold_24h,
            }
            for a in group.lines
        ]
    else:
        lines = [
            {"necessity": a.necessity, "sku": None, "unit": a.unit, "message_id": a.message_id, "price": a.amount}
            for a in group.lines
        ]
    return orjson.dumps(
        {
            "v": 1,
            "supplier_id": supplier_id,
            "outlet_id": group.outlet_id,
            "reported_at": group.reported_at,
            "received_at": received_at,
            "kind": kind,
            "lines": lines,
        }
    )


def _typed_dict(model: type[BaseModel], **annotations: Any) -> Any:
    """The model's fields and constraints as a TypedDict (pydantic-core validates into plain dicts, ~3x faster
    than into model instances); `annotations` replace some fields' types, keeping their constraints."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = annotations.get(name, info.annotation)
        annotated = Annotated[(annotation, *info.metadata)] if info.metadata else annotation
        fields[name] = annotated if info.is_required() else NotRequired[annotated]  # type: ignore[valid-type]
    typed = TypedDict(f"{model.__name__}Dict", fields)  # type: ignore[misc]
    typed.__pydantic_config__ = model.model_config  # type: ignore[attr-defined]
    return typed


#: The report models as TypedDicts, lines included: `validate_report`'s fast path. Built from the models,
#: so they accept exactly the same JSON (the models' one field validator, `_aware`, is applied after).
_REPORT_DICTS: dict[Kind, TypeAdapter[Any]] = {
    kind: TypeAdapter(_typed_dict(model, lines=list[_typed_dict(LINE_MODELS[kind])]))  # type: ignore[misc]
    for kind, model in REPORT_MODELS.items()
}


def validate_report(kind: Kind, raw: bytes, ctx: Context) -> tuple[_Report | None, list[Accepted], list[Rejection]]:
    """Validate one message from a supply topic, as the stream worker sees it.

    A message that is not a report at all gives (None, [], [rejection with
    index -1]); a report with some bad lines gives the good lines and a
    rejection per bad one (index = position in `lines`), whether a line breaks
    the line model (a negative quantity) or the rules (an unknown unit): a bad
    line never costs the good lines beside it. The report's `supplier_id` must
    own the outlet, exactly as on the HTTP path. The report comes back as its
    envelope (`_Report`: supplier, outlet, times), never with its lines.

    A report whose every line is usual (own outlet, a catalogue necessity, a
    unit spelling accepted before, in the time window, plausible numbers) is
    accepted by a fast path (`_fast_report`, ~4x faster); any other goes
    through the models and `_accept`, which have the last word and the
    reasons. A test holds the two to the same verdicts.
    """
    fast = _fast_report(kind, raw, ctx)
    if fast is not None:
        return fast
    return _full_report(kind, raw, ctx)


def _fast_report(kind: Kind, raw: bytes, ctx: Context) -> tuple[_Report, list[Accepted], list[Rejection]] | None:
    """Every line of a usual report accepted, or None: something is unusual, ask `_full_report`."""
    try:
        body = _REPORT_DICTS[kind].validate_json(raw)
    except ValidationError:
        return None
    supplier_id, outlet_id = body["supplier_id"], body["outlet_id"]
    reported_at = body["reported_at"]
    if reported_at.tzinfo is None:
        reported_at = reported_at.replace(tzinfo=SHANGHAI)
    at = reported_at.timestamp()
    window = _Window.of(ctx)
    if ctx.outlet_owner.get(outlet_id) != supplier_id or not window.earliest <= at <= window.latest:
        return None
    inventory = kind == "inventory"
    ceilings = _ceilings_of(ctx, outlet_id) if inventory else ctx.price_ceiling
    units, factors, sold_multiple, no_ceiling = ctx.units, _FACTORS, SOLD_24H_MULTIPLE, -math.inf
    floor = -1.0 if inventory else 0.0  # as validate_records' fast path
    good: list[Accepted] = []
    for index, ln in enumerate(body["lines"]):
        get = ln.get
        necessity = get("necessity")
        if not (
            necessity is not None
            and (canonical := units.get(necessity)) is not None
            and (per := factors.get((ln["unit"], canonical))) is not None
            and floor
            < (value := ln["quantity"] * per if inventory else ln["price"] / per)
            <= (ceiling := ceilings.get(necessity, no_ceiling))
            and (not inventory or (sold := get("sold_24h")) is None or (sold := sold * per) <= ceiling * sold_multiple)
        ):
            return None
        message_id = get("message_id")
        good.append(
            Accepted(
                index,
                outlet_id,
                necessity,
                value,
                canonical,
                reported_at,
                sold if inventory else None,
                message_id,
                at,
                message_id or get("sku") or "",
            )
        )
    received_at = body.get("received_at")
    if received_at is not None and received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=SHANGHAI)
    envelope = _Report.model_construct(
        v=1, supplier_id=supplier_id, outlet_id=outlet_id, reported_at=reported_at, received_at=received_at
    )
    return envelope, good, []


def _full_report(kind: Kind, raw: bytes, ctx: Context) -> tuple[_Report | None, list[Accepted], list[Rejection]]:
    """`validate_report` through the report models and `_accept`, line by line: the last word and the reasons."""
    bad: list[Rejection] = []
    try:
        report = REPORT_MODELS[kind].model_validate_json(raw)
        lines: list[tuple[int, Any]] = list(enumerate(report.lines))  # type: ignore[attr-defined]
    except ValidationError as exc:
        salvaged = _salvage_lines(kind, raw, exc)
        if salvaged is None:
            name, reason = _field_error(exc)
            return None, [], [Rejection(-1, name, reason)]
        report, lines, bad = salvaged
    good: list[Accepted] = []
    window = _Window.of(ctx)
    for index, ln in lines:
        result = _accept(
            kind,
            index,
            report.supplier_id,
            report.outlet_id,
            ln.necessity,
            ln.sku,
            ln.unit,
            ln.quantity if kind == "inventory" else ln.price,
            getattr(ln, "sold_24h", None),
            ln.message_id,
            report.reported_at,
            ctx,
            window,
            ln.message_id or ln.sku or "",
        )
        if isinstance(result, Accepted):
            good.append(result)
        else:
            bad.append(result)
    if bad:
        bad.sort(key=lambda r: r.index)
    return report, good, bad


def _salvage_lines(
    kind: Kind, raw: bytes, exc: ValidationError
) -> tuple[_Report, list[tuple[int, Any]], list[Rejection]] | None:
    """When only some lines broke the report model: the envelope, the good lines, a rejection per bad line.

    None when anything outside `lines[i]` is wrong (the envelope, the JSON, the
    number of lines): then the whole message is rejected.
    """
    if any(len(e["loc"]) < 2 or e["loc"][0] != "lines" or not isinstance(e["loc"][1], int) for e in exc.errors()):
        return None
    body = orjson.loads(raw)
    envelope = _Report.model_validate(body)  # every error was inside a line, so the envelope is valid
    line_model = LINE_MODELS[kind]
    good: list[tuple[int, Any]] = []
    bad: list[Rejection] = []
    for index, line in enumerate(body["lines"]):
        try:
            good.append((index, line_model.model_validate(line)))
        except ValidationError as line_exc:
            name, reason = _field_error(line_exc)
            outlet = envelope.outlet_id
            bad.append(Rejection(index, name, reason, outlet_id=outlet))
    return envelope, good, bad
