from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import claims
from schema.contract import (
    REPORT_MODELS,
    Accepted,
    Context,
    Kind,
    Rejection,
    Sku,
    chunk_report,
    encode_report,
    validate_records,
    validate_report,
)
from schema.keys import demo_key, hash_key, new_key, parse_prefix, verify
from schema.units import UnitError, to_canonical

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
CTX = Context(
    units={"rice": "kg", "milk": "L", "instant_noodles": "piece"},
    outlet_owner={"O1": "s1", "O2": "s1", "O3": "s2"},
    now=NOW,
)


def rec(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "outlet_id": "O1",
        "necessity": "rice",
        "quantity": 10,
        "unit": "kg",
        "reported_at": "2026-11-25T11:00:00+08:00",
    }
    return {**base, **over}


def test_good_record_is_canonicalised() -> None:
    good, bad = validate_records("inventory", [rec(quantity=20, unit="斤", sold_24h=4)], CTX, "s1")
    assert bad == []
    assert good[0].amount == 10 and good[0].sold_24h == 2 and good[0].unit == "kg"


def test_naive_time_means_shanghai() -> None:
    good, _ = validate_records("inventory", [rec(reported_at="2026-11-25 11:00:00")], CTX, "s1")
    assert good[0].reported_at == datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("record", "field", "code", "fragment"),
    [
        (rec(quantity=-1), "quantity", "invalid", "greater than or equal"),
        (rec(quantity="lots"), "quantity", "invalid", "number"),
        ({"necessity": "rice"}, "outlet_id", "invalid", "required"),
        (rec(necessity="caviar"), "necessity", "invalid", "unknown necessity 'caviar'"),
        (rec(unit="barrel"), "unit", "invalid", "unknown unit 'barrel'"),
        (rec(unit="L"), "unit", "invalid", "measures L"),
        (rec(outlet_id="O3"), "outlet_id", "forbidden", "belongs to another supplier"),
        (rec(outlet_id="O9"), "outlet_id", "unknown_outlet", "unknown outlet 'O9'"),
        (rec(reported_at="2026-11-25T13:00:00+08:00"), "reported_at", "invalid", "in the future"),
        (rec(reported_at="2026-09-01T12:00:00+08:00"), "reported_at", "invalid", "retention"),
        (rec(reported_at="yesterday"), "reported_at", "invalid", "datetime"),
    ],
)
def test_each_rejection_names_index_field_and_reason(
    record: dict[str, object], field: str, code: str, fragment: str
) -> None:
    good, bad = validate_records("inventory", [rec(), record, rec(outlet_id="O2")], CTX, "s1")
    assert [g.outlet_id for g in good] == ["O1", "O2"]  # neighbours survive
    assert len(bad) == 1
    assert (bad[0].index, bad[0].field, bad[0].code) == (1, field, code)
    assert fragment in bad[0].reason


def test_non_object_record_is_rejected() -> None:
    _, bad = validate_records("inventory", [rec(), 42], CTX, "s1")  # type: ignore[list-item]
    assert bad[0].index == 1 and bad[0].field == "record"


def test_one_message_per_outlet_and_time() -> None:
    good, _ = validate_records(
        "inventory",
        [
            rec(),
            rec(necessity="milk", unit="ml", quantity=500),
            rec(outlet_id="O2"),
            rec(reported_at="2026-11-25T11:30:00+08:00"),
        ],
        CTX,
        "s1",
    )
    groups = claims.plan("inventory", "s1", good).groups()
    assert [(g.outlet_id, len(g.lines)) for g in groups] == [("O1", 2), ("O2", 1), ("O1", 1)]
    report = REPORT_MODELS["inventory"].model_validate_json(encode_report("inventory", "s1", NOW, groups[0]))
    assert report.lines[1].quantity == 0.5  # type: ignore[attr-defined]
    assert (report.supplier_id, report.outlet_id, report.received_at) == ("s1", "O1", NOW)
    assert report.reported_at == groups[0].reported_at


def test_worker_validates_report_messages_with_the_same_rules() -> None:
    good, _ = validate_records("inventory", [rec(), rec(necessity="milk", unit="L")], CTX, "s1")
    raw = encode_report("inventory", "s1", NOW, claims.plan("inventory", "s1", good).groups()[0])
    report, lines, bad = validate_report("inventory", raw, CTX)
    assert report is not None and len(lines) == 2 and bad == []
    forged = raw.replace(b'"s1"', b'"s2"')
    _, lines, bad = validate_report("inventory", forged, CTX)
    assert lines == [] and {b.code for b in bad} == {"forbidden"}
    _, _, bad = validate_report("inventory", b"not json", CTX)
    assert bad[0].index == -1


def test_a_line_that_breaks_the_line_model_costs_only_that_line() -> None:
    report = {
        "kind": "inventory",
        "v": 1,
        "supplier_id": "s1",
        "outlet_id": "O1",
        "reported_at": "2026-11-25T11:00:00+08:00",
        "lines": [
            {"necessity": "rice", "quantity": 10, "unit": "kg"},
            {"necessity": "milk", "quantity": -1, "unit": "L"},
            {"necessity": "rice", "quantity": 3, "unit": "kg", "message_id": "a\x00b"},
            {"necessity": "instant_noodles", "quantity": 24, "unit": "piece"},
        ],
    }
    envelope, lines, bad = validate_report("inventory", orjson.dumps(report), CTX)
    assert envelope is not None and envelope.supplier_id == "s1"
    assert [(a.index, a.necessity, a.amount) for a in lines] == [(0, "rice", 10.0), (3, "instant_noodles", 24.0)]
    assert [(b.index, b.field) for b in bad] == [(1, "quantity"), (2, "message_id")]
    assert all(b.outlet_id == "O1" for b in bad)
    broken_envelope = {**report, "reported_at": "yesterday"}
    envelope, lines, bad = validate_report("inventory", orjson.dumps(broken_envelope), CTX)
    assert envelope is None and lines == [] and [b.index for b in bad] == [-1]


def test_units() -> None:
    assert to_canonical(3, "jin", "kg") == 1.5
    assert to_canonical(250, "ml", "L") == 0.25
    with pytest.raises(UnitError):
        to_canonical(1, "kg", "piece")


def test_keys_are_hashed_and_verified() -> None:
    key = new_key()
    assert parse_prefix(key.key) == key.prefix
    assert verify(key.key, key.key_hash) and not verify(key.key + "x", key.key_hash)
    assert key.key not in key.key_hash and key.key_hash == hash_key(key.key)
    assert demo_key("s1", 1) == demo_key("s1", 1) != demo_key("s2", 1)
    assert parse_prefix("nope") is None


def test_context_limits_are_configurable() -> None:
    ctx = Context(units=CTX.units, outlet_owner=CTX.outlet_owner, now=NOW, clock_skew=timedelta(hours=2))
    good, _ = validate_records("inventory", [rec(reported_at="2026-11-25T13:00:00+08:00")], ctx, "s1")
    assert len(good) == 1


SKU_CTX = Context(
    units=CTX.units,
    outlet_owner=CTX.outlet_owner,
    skus={("s1", "RICE-5KG"): Sku("rice", 5, "kg"), ("s1", "WATER-12"): Sku("milk", 12, "250ml")},
    now=NOW,
)


def test_packs_of_known_net_content() -> None:
    good, bad = validate_records(
        "inventory", [rec(quantity=10, unit="5kg bag"), rec(necessity="milk", quantity=2, unit="12x550ml")], CTX, "s1"
    )
    assert bad == []
    assert good[0].amount == 50 and good[1].amount == pytest.approx(13.2)


def test_sku_maps_to_necessity_and_pack_size() -> None:
    rows = [
        {"outlet_id": "O1", "sku": "RICE-5KG", "quantity": 8, "unit": "bag", "reported_at": "2026-11-25 11:00"},
        {"outlet_id": "O1", "sku": "RICE-5KG", "quantity": 3, "unit": "kg", "reported_at": "2026-11-25 11:00"},
        {"outlet_id": "O1", "sku": "WATER-12", "quantity": 2, "unit": "case", "reported_at": "2026-11-25 11:00"},
        {"outlet_id": "O1", "sku": "NOPE", "quantity": 2, "unit": "bag", "reported_at": "2026-11-25 11:00"},
    ]
    good, bad = validate_records("inventory", rows, SKU_CTX, "s1")
    assert [(g.necessity, g.amount) for g in good] == [("rice", 40), ("rice", 3), ("milk", 6)]
    assert [(b.index, b.field) for b in bad] == [(3, "sku")] and "'NOPE'" in bad[0].reason
    _, bad = validate_records("inventory", rows[:1], SKU_CTX, "s2")  # s2 has no such SKU (and not O1)
    assert bad[0].code == "forbidden"


def test_prices_are_per_canonical_unit() -> None:
    rows = [
        {"outlet_id": "O1", "necessity": "rice", "price": 3.0, "unit": "斤", "reported_at": "2026-11-25 11:00"},
        {"outlet_id": "O1", "necessity": "rice", "price": 0, "unit": "kg", "reported_at": "2026-11-25 11:00"},
    ]
    good, bad = validate_records("price", rows, CTX, "s1")
    assert good[0].amount == 6.0 and good[0].unit == "kg"
    assert bad[0].field == "price"


@pytest.mark.parametrize("kind", ["inventory", "price"])
def test_encoded_report_is_the_report_model_field_for_field(kind: Kind) -> None:
    """encode_report writes dicts with orjson for speed; it must say exactly what the pydantic report says."""
    utc_time = datetime(2026, 11, 25, 2, 0, 0, 123456, tzinfo=UTC)
    at = utc_time.timestamp()
    lines = [
        Accepted(0, "O1", "rice", 12.5, "kg", utc_time, 3.0 if kind == "inventory" else None, "m-1", at),
        Accepted(1, "O1", "milk", 0.25, "L", utc_time, None, None, at),
    ]
    group = chunk_report(lines)[0]
    encoded = REPORT_MODELS[kind].model_validate_json(encode_report(kind, "s1", NOW, group))
    line_model = REPORT_MODELS[kind].model_fields["lines"].annotation.__args__[0]  # type: ignore[union-attr]
    amount = "quantity" if kind == "inventory" else "price"
    expected = REPORT_MODELS[kind](  # type: ignore[call-arg]
        supplier_id="s1",
        outlet_id="O1",
        reported_at=utc_time,
        received_at=NOW,
        lines=[
            line_model(
                necessity=a.necessity,
                unit=a.unit,
                message_id=a.message_id,
                **{amount: a.amount},
                **({"sold_24h": a.sold_24h} if kind == "inventory" else {}),
            )
            for a in lines
        ],
    )
    assert encoded.model_dump() == expected.model_dump()
    assert orjson.loads(encode_report(kind, "s1", NOW, group)).keys() == orjson.loads(expected.model_dump_json()).keys()


ROWS_BOTH_WAYS: list[dict[str, object]] = [
    {"outlet_id": "O1", "necessity": "rice", "quantity": 5, "unit": "kg", "reported_at": "2026-11-25T10:00:00+08:00"},
    {"outlet_id": " O1 ", "sku": "R5", "quantity": "7.5", "unit": "bag", "reported_at": "2026-11-25T10:00:00"},
    {"outlet_id": "O1", "necessity": "rice", "quantity": 1, "unit": "kg", "reported_at": 1764036000, "extra": 1},
    {"outlet_id": "O1", "necessity": "rice", "quantity": 1, "unit": "kg", "reported_at": "x"},
    {"outlet_id": "", "necessity": "rice", "quantity": 1, "unit": "kg", "reported_at": "2026-11-25T10:00:00Z"},
    {"outlet_id": "O1", "necessity": "", "quantity": 1, "unit": "kg", "reported_at": "2026-11-25T10:00:00Z"},
    {"outlet_id": "O1", "necessity": "rice", "quantity": -1, "unit": "kg", "reported_at": "2026-11-25T10:00:00Z"},
    {"outlet_id": "O1", "necessity": "rice", "quantity": "nan", "unit": "kg", "reported_at": "2026-11-25T10:00:00Z"},
    {"outlet_id": "O1", "necessity": "rice", "quantity": 1, "sold_24h": -2, "unit": "kg", "reported_at": "2026"},
    {"outlet_id": "O1", "necessity": "rice", "unit": "kg", "reported_at": "2026-11-25T10:00:00Z"},
    {"outlet_id": "O1" * 40, "necessity": "rice", "quantity": 1, "unit": "kg", "reported_at": "2026-11-25T10:00Z"},
    {"outlet_id": "O1", "necessity": "rice", "quantity": 1, "unit": "g", "reported_at": "2026-11-25", "message_id": ""},
    {"outlet_id": 7, "necessity": "rice", "quantity": 1, "unit": "kg", "reported_at": "2026-11-25T10:00:00Z"},
]


@pytest.mark.parametrize("row", ROWS_BOTH_WAYS)
def test_the_fast_path_reads_and_rejects_rows_as_the_contract_model_does(row: dict[str, object]) -> None:
    """validate_records checks a batch with a TypedDict built from the record model and parses times
    on the side; it must accept, read and reject every row exactly as the model itself."""
    from pydantic import ValidationError

    from schema.contract import RECORD_MODELS, SHANGHAI, _parse_records

    for batch in ([row], [row, rec()]):  # alone, and beside a good row (the batch's fast path)
        good, bad = _parse_records("inventory", batch)
        try:
            model = RECORD_MODELS["inventory"].model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            assert [(b.index, b.field, b.reason) for b in bad] == [(0, ".".join(map(str, first["loc"])), first["msg"])]
            continue
        assert bad == [] and good[0][0] == 0
        _, fields, reported_at, at = good[0]
        expected = model.model_dump()
        want = expected.pop("reported_at")
        want = want.replace(tzinfo=SHANGHAI) if want.tzinfo is None else want
        assert {k: v for k, v in fields.items() if k != "reported_at"} == {
            k: v for k, v in expected.items() if k in fields
        }
        assert all(v is None for k, v in expected.items() if k not in fields)
        assert reported_at == want and at == want.timestamp()


def test_line_key_is_the_message_id_else_the_sku_else_empty() -> None:
    """The sink keys report lines by (outlet, necessity, reported_at, line_key); both paths fill it alike."""
    good, _ = validate_records("inventory", [rec(message_id="m-1"), rec(necessity="milk", unit="L")], CTX, "s1")
    assert [g.line_key for g in good] == ["m-1", ""]
    good, _ = validate_records("inventory", [rec(necessity=None, sku="RICE-5KG", unit="bag")], SKU_CTX, "s1")
    assert good[0].line_key == ""  # a record's key: message_id or "" (the claims make it unique)
    raw = orjson.dumps(
        {
            "supplier_id": "s1",
            "outlet_id": "O1",
            "reported_at": "2026-11-25T11:00:00+08:00",
            "lines": [
                {"sku": "RICE-5KG", "unit": "bag", "quantity": 2},
                {"sku": "RICE-5KG", "unit": "bag", "quantity": 1, "message_id": "m-2"},
                {"necessity": "rice", "unit": "kg", "quantity": 3},
            ],
        }
    )
    _, lines, bad = validate_report("inventory", raw, SKU_CTX)
    assert bad == [] and [ln.line_key for ln in lines] == ["RICE-5KG", "m-2", ""]


# ---------------------------------------------------------------- plausible numbers only (issue 8, point 6)

TYPED = Context(
    units={"rice": "kg", "milk": "L", "fever_medicine": "piece", "candles": "piece"},  # candles: no ceiling
    outlet_owner={"O1": "s1", "C1": "s1", "P1": "s1", "U1": "s1", "W1": "s1", "O3": "s2"},
    outlet_type={"O1": "supermarket", "C1": "convenience_store", "P1": "pharmacy", "W1": "wholesale_hall"},
    skus={("s1", "RICE-5KG"): Sku("rice", 5, "kg"), ("s1", "BROKEN"): Sku("rice", 0, "kg")},
    now=NOW,
)
AT = "2026-11-25T11:00:00+08:00"


def through_both_paths(
    kind: Kind, line: dict[str, object], outlet: str = "O1", ctx: Context = TYPED
) -> list[tuple[str, str] | None]:
    """The line's (field, reason) of rejection as a record over HTTP and as a report line on Kafka (None: accepted).

    A report's field is named by its place in the message (`lines.0.sku`); only the last part is compared.
    """
    out: list[tuple[str, str] | None] = []
    good, bad = validate_records(kind, [{"outlet_id": outlet, "reported_at": AT, **line}], ctx, "s1")
    assert len(good) + len(bad) == 1
    out.append((bad[0].field, bad[0].reason) if bad else None)
    raw = orjson.dumps({"supplier_id": "s1", "outlet_id": outlet, "reported_at": AT, "lines": [line]})
    _, lines, bad = validate_report(kind, raw, ctx)
    assert len(lines) + len(bad) == 1
    out.append((bad[0].field.rsplit(".", 1)[-1], bad[0].reason) if bad else None)
    return out


def stock(quantity: float, unit: str = "kg", necessity: str = "rice", **over: object) -> dict[str, object]:
    return {"necessity": necessity, "quantity": quantity, "unit": unit, **over}


@pytest.mark.parametrize(
    ("line", "outlet", "field"),
    [
        (stock(5), "O\x001", "outlet_id"),
        (stock(5, necessity="ri\x00ce"), "O1", "necessity"),
        (stock(5, unit="k\x00g"), "O1", "unit"),
        (stock(5, message_id="m\x00-1"), "O1", "message_id"),
        ({"sku": "RICE\x00-5KG", "quantity": 5, "unit": "bag"}, "O1", "sku"),
        (stock(5, sku="RICE\x00"), "O1", "sku"),  # beside a necessity too: on Kafka it would be the line's key
    ],
)
def test_text_with_a_nul_is_rejected_naming_the_field(line: dict[str, object], outlet: str, field: str) -> None:
    """PostgreSQL text cannot hold \\x00: a NUL anywhere a line's text is stored is that field's error."""
    for rejection in through_both_paths("inventory", line, outlet):
        assert rejection is not None
        assert rejection[0] == field and "NUL character" in rejection[1] and "remove it" in rejection[1]


def test_a_report_whose_supplier_id_holds_a_nul_is_refused_whole() -> None:
    """The worker counts feed health per supplier_id, so it must be storable before anything else is read."""
    raw = orjson.dumps({"supplier_id": "s\x001", "outlet_id": "O1", "reported_at": AT, "lines": [stock(5)]})
    report, lines, bad = validate_report("inventory", raw, TYPED)
    assert report is None and lines == []
    assert [(b.index, b.field) for b in bad] == [(-1, "supplier_id")] and "NUL" in bad[0].reason


@pytest.mark.parametrize("unit", ["0kg", "0 kg bag", "0x550ml", "12x0ml", "0.0斤"])
@pytest.mark.parametrize("kind", ["inventory", "price"])
def test_a_pack_of_no_content_is_a_unit_error(unit: str, kind: Kind) -> None:
    line = stock(5, unit) if kind == "inventory" else {"necessity": "rice", "price": 5, "unit": unit}
    if "ml" in unit:
        line["necessity"] = "milk"
    for rejection in through_both_paths(kind, line):
        assert rejection is not None and rejection[0] == "unit"
        assert "pack size must be positive" in rejection[1] and repr(unit) in rejection[1]


def test_a_sku_mapped_to_an_empty_pack_is_the_sku_maps_error() -> None:
    for rejection in through_both_paths("inventory", {"sku": "BROKEN", "quantity": 5, "unit": "bag"}):
        assert rejection is not None and rejection[0] == "sku" and "fix the SKU map" in rejection[1]


def test_a_pack_size_beyond_a_float_is_a_unit_error() -> None:
    _, bad = validate_records("inventory", [rec(unit="9" * 30 + "t")], CTX, "s1")  # finite: 1e33 t
    assert bad[0].field == "quantity"  # ... but no outlet holds 1e34 kg
    from schema.units import factor

    with pytest.raises(UnitError, match="pack size must be a number of sensible size"):
        factor("9" * 400 + "kg", "kg")


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (stock(1e308, "t"), "quantity"),  # overflows to inf in kg
        (stock(6901234567890), "quantity"),  # a barcode pasted into the quantity column
        (stock(50_000, "5kg bag"), "quantity"),  # 250 t of rice in one supermarket
        (stock(100, sold_24h=1e308, unit="t"), "sold_24h"),
        (stock(100, sold_24h=700_000), "sold_24h"),  # more than 3 x the ceiling in a day
    ],
)
def test_a_number_no_outlet_can_hold_is_rejected_saying_what_to_check(line: dict[str, object], field: str) -> None:
    for rejection in through_both_paths("inventory", line):
        assert rejection is not None and rejection[0] == field
        assert "supermarket" in rejection[1] and f"check the unit and the {field} column" in rejection[1]


@pytest.mark.parametrize(
    ("outlet", "line", "accepted"),
    [
        ("O1", stock(150_000), True),  # 150 t of rice: a hypermarket stockpiling, far-fetched but possible
        ("O1", stock(300_000, "斤"), True),  # the same in jin: the ceiling is in the canonical unit
        ("O1", stock(200_001), False),
        ("C1", stock(5_000), True),
        ("C1", stock(15_000), False),  # 15 t of rice in a convenience store
        ("P1", stock(15_000, "piece", "fever_medicine"), True),  # a pharmacy's own trade
        ("P1", stock(25_000, "盒", "fever_medicine"), False),
        ("C1", stock(1_500, "piece", "fever_medicine"), False),  # a convenience store is no pharmacy
        ("U1", stock(150_000), True),  # business type unknown: the largest format's ceiling
        ("W1", stock(150_000), True),  # a type the ceilings do not name: likewise
        ("W1", stock(200_001), False),
        ("O1", stock(900_000, "piece", "candles"), True),  # no ceiling for candles: the one for anything
        ("O1", stock(1_000_001, "piece", "candles"), False),
        ("O1", stock(0), True),  # sold out is a stock
    ],
)
def test_stock_ceilings_are_per_business_type_and_necessity(
    outlet: str, line: dict[str, object], accepted: bool
) -> None:
    for rejection in through_both_paths("inventory", line, outlet):
        assert (rejection is None) == accepted, rejection
        if rejection is not None:
            assert rejection[0] == "quantity" and "check the unit and the quantity column" in rejection[1]
    if outlet == "C1" and not accepted:
        assert "convenience store" in (through_both_paths("inventory", line, outlet)[0] or ("", ""))[1]


@pytest.mark.parametrize(
    ("line", "accepted"),
    [
        ({"necessity": "rice", "price": 6.5, "unit": "kg"}, True),
        ({"necessity": "rice", "price": 3, "unit": "斤"}, True),
        ({"necessity": "rice", "price": 3, "unit": "g"}, False),  # 3,000 CNY/kg: the price of a kg, per g
        ({"necessity": "rice", "price": 6500, "unit": "t"}, True),  # a price per tonne, said so, is 6.5/kg
        ({"necessity": "fever_medicine", "price": 2_500, "unit": "piece"}, False),
        ({"necessity": "rice", "price": 1e308, "unit": "g"}, False),  # overflows to inf per kg
        ({"necessity": "rice", "price": 1e-320, "unit": "999999999t"}, False),  # underflows to 0 per kg
        ({"necessity": "candles", "price": 99_999, "unit": "piece"}, True),
        ({"necessity": "candles", "price": 100_001, "unit": "piece"}, False),
    ],
)
def test_price_ceilings_are_per_necessity(line: dict[str, object], accepted: bool) -> None:
    for rejection in through_both_paths("price", line):
        assert (rejection is None) == accepted, rejection
        if rejection is not None:
            assert rejection[0] == "price" and "check the unit and the price column" in rejection[1]


def test_ceilings_come_from_the_context() -> None:
    tight = Context(
        units=TYPED.units,
        outlet_owner=TYPED.outlet_owner,
        outlet_type=TYPED.outlet_type,
        now=NOW,
        stock_ceiling={"supermarket": {"rice": 10.0}, None: {"rice": 20.0}},
        price_ceiling={"rice": 1.0},
    )
    assert through_both_paths("inventory", stock(15), "O1", tight)[0] is not None
    assert through_both_paths("inventory", stock(15), "U1", tight) == [None, None]
    assert through_both_paths("price", {"necessity": "rice", "price": 2, "unit": "kg"}, "O1", tight)[0] is not None


def test_the_catalogue_names_a_ceiling_for_every_necessity_and_business_type() -> None:
    from schema.catalogue import BUSINESS_TYPES, NECESSITIES, PRICE_CEILING, STOCK_CEILINGS

    codes = {n.code for n in NECESSITIES}
    assert set(PRICE_CEILING) == codes
    assert set(STOCK_CEILINGS) == {None, *(bt.code for bt in BUSINESS_TYPES)}
    assert all(set(table) == codes for table in STOCK_CEILINGS.values())
    assert all(0 < c <= STOCK_CEILINGS[None][n] for table in STOCK_CEILINGS.values() for n, c in table.items())


_AGREE_UNITS = ["kg", "kg", "斤", "g", "t", "5kg", "5 kg bag", "0kg", "L", "12x550ml", "piece", "盒", "bag", "barrel"]


@st.composite
def _rows(draw: st.DrawFn) -> dict[str, object]:
    row: dict[str, object] = {
        "outlet_id": draw(st.sampled_from(["O1", "O1", "C1", "P1", "U1", "W1", "O3", "O9"])),
        "unit": draw(st.sampled_from(_AGREE_UNITS)),
        "quantity": draw(
            st.one_of(
                st.sampled_from([0, 1, 5_000, 10_000, 10_000.000001, 200_000, 200_001, 1e6, 6901234567890, 1e308]),
                st.floats(0, 1000),
                st.floats(0, 1e7),
            )
        ),
        "reported_at": draw(
            st.sampled_from([AT, AT, AT, "2026-11-25T12:04:00+08:00", "2026-11-25T12:06:00+08:00", "2026-10-01T00:00Z"])
        ),
    }
    if draw(st.integers(0, 4)):  # mostly a necessity, so that many lines are accepted
        row["necessity"] = draw(st.sampled_from(["rice", "rice", "milk", "fever_medicine", "candles", "caviar"]))
    if draw(st.integers(0, 4)) == 0:
        row["sku"] = draw(st.sampled_from(["RICE-5KG", "BROKEN", "NOPE"]))
    if draw(st.booleans()):
        row["sold_24h"] = draw(st.sampled_from([0, 10, 599_999, 600_001, 1e308]))
    if draw(st.booleans()):
        row["message_id"] = draw(st.sampled_from(["m-1", "m-2", "x" * 20]))
    return row


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(_rows(), min_size=1, max_size=12))
def test_the_fast_path_agrees_with_accept(rows: list[dict[str, object]]) -> None:
    """validate_records accepts the usual line without calling _accept; what it says must be _accept's word."""
    from schema.contract import _accept, _parse_records, _Window

    for kind in ("inventory", "price"):
        batch = rows if kind == "inventory" else [{**r, "price": r["quantity"]} for r in rows]
        parsed, _ = _parse_records(kind, batch)
        window = _Window.of(TYPED)
        expected = [
            _accept(
                kind,
                index,
                "s1",
                fields["outlet_id"],
                fields.get("necessity"),
                fields.get("sku"),
                fields["unit"],
                fields["quantity" if kind == "inventory" else "price"],
                fields.get("sold_24h"),
                fields.get("message_id"),
                reported_at,
                TYPED,
                window,
                fields.get("message_id") or "",
            )
            for index, fields, reported_at, _ in parsed
        ]
        for _ in range(2):  # the second time every unit spelling is in the factor cache: the fast path
            good, bad = validate_records(kind, batch, TYPED, "s1")
            got: dict[int, Accepted | Rejection] = {a.index: a for a in good}
            got.update((r.index, r) for r in bad)
            assert [got[e.index] for e in expected] == expected


@st.composite
def _usual_lines(draw: st.DrawFn) -> dict[str, object]:
    """A line the fast path takes (with TYPED and outlet O1), unless `_reports` breaks something."""
    necessity, unit = draw(
        st.sampled_from([("rice", "kg"), ("rice", "斤"), ("rice", "g"), ("rice", "5kg"), ("milk", "L"), ("milk", "ml")])
    )
    line: dict[str, object] = {
        "necessity": necessity,
        "unit": unit,
        "quantity": draw(st.one_of(st.floats(0, 1000), st.integers(0, 100))),
    }
    if draw(st.booleans()):
        line["sold_24h"] = draw(st.floats(0, 50))
    if draw(st.booleans()):
        line["message_id"] = draw(st.sampled_from(["m-1", "m-2", "t\tab"]))
    if draw(st.integers(0, 3)) == 0:
        line["sku"] = draw(st.sampled_from(["RICE-5KG", "NOPE"]))
    return line


@st.composite
def _reports(draw: st.DrawFn) -> bytes:
    """A report message as a supplier's producer might write it: mostly usual, sometimes wrong anywhere."""
    lines = []
    usual = draw(st.booleans())  # every line usual, then perhaps one thing wrong: the fast path's edges
    for row in draw(st.lists(_usual_lines() if usual else _rows(), min_size=0 if not usual else 1, max_size=8)):
        line = {k: v for k, v in row.items() if k not in ("outlet_id", "reported_at")}
        if draw(st.integers(0, 29 if usual else 9)) == 0:  # a line the line model refuses, or stray fields
            line[draw(st.sampled_from(["quantity", "unit", "necessity", "message_id", "extra"]))] = draw(
                st.sampled_from([-1, "", None, "lots", "a\x00b", "x" * 200, 3])
            )
        if draw(st.integers(0, 29 if usual else 4)) == 0:
            line["price"] = draw(st.sampled_from([0, 3, 2.5, 1e308, -1]))
        lines.append(line)
    body: dict[str, object] = {
        "v": 1,
        "supplier_id": "s1" if usual and draw(st.integers(0, 5)) else draw(st.sampled_from(["s1", "s2", "", "s\x001"])),
        "outlet_id": draw(st.sampled_from(["O1", "O1", "C1", "P1", "U1", "W1", "O3", "O9"])),
        "reported_at": AT
        if usual and draw(st.integers(0, 5))
        else draw(
            st.sampled_from([AT, "2026-11-25 11:00:00", "2026-11-25T12:06:00+08:00", "2026-10-01T00:00Z", "soon"])
        ),
        "lines": lines,
    }
    if draw(st.booleans()):
        body["received_at"] = draw(st.sampled_from([AT, "2026-11-25 11:30:00", None]))
    if draw(st.integers(0, 19)) == 0:
        body[draw(st.sampled_from(["v", "kind", "supplier_id", "lines"]))] = draw(st.sampled_from([2, "price", 7, []]))
    return orjson.dumps(body)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(_reports())
def test_the_reports_fast_path_agrees_with_the_models(raw: bytes) -> None:
    """validate_report's fast path says of every report exactly what the models and _accept say."""
    from schema.contract import _fast_report, _full_report

    for kind in ("inventory", "price"):
        message = raw if kind == "inventory" else raw.replace(b'"quantity"', b'"price"')
        for ctx in (TYPED, SKU_CTX):
            for _ in range(2):  # the second time every unit spelling is in the factor cache
                expected = _full_report(kind, message, ctx)
                fast = _fast_report(kind, message, ctx)
                got = validate_report(kind, message, ctx)
                if fast is not None:
                    assert fast[1:] == expected[1:] and fast[2] == []
                assert got[1:] == expected[1:]
                if expected[0] is None:
                    assert got[0] is None
                else:
                    fields = ("v", "supplier_id", "outlet_id", "reported_at", "received_at")
                    assert got[0] is not None
                    assert [getattr(got[0], f) for f in fields] == [getattr(expected[0], f) for f in fields]


def test_a_usual_report_takes_the_fast_path() -> None:
    from schema.contract import _fast_report

    good, _ = validate_records("inventory", [rec(), rec(necessity="milk", unit="L", sold_24h=3)], CTX, "s1")
    raw = encode_report("inventory", "s1", NOW, claims.plan("inventory", "s1", good).groups()[0])
    fast = _fast_report("inventory", raw, CTX)
    assert fast is not None and fast[1:] == validate_report("inventory", raw, CTX)[1:] and len(fast[1]) == 2
