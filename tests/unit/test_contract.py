from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from ingest import claims
from schema.contract import (
    REPORT_MODELS,
    Accepted,
    Context,
    Kind,
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
