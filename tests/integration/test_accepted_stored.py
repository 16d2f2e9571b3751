"""Whatever the API answers "accepted", the worker stores; nothing it rejects is (issue 8, point 1).

A property test on the real processes: hypothesis writes batches of records,
valid ones and ones with one mistake each (a NUL byte, a zero-size pack, a
pasted barcode, another supplier's outlet, a time outside the window…), in
kg, 斤, g, t, L, ml, packs like 5kg and 12x550ml, or by SKU through the tiny
city's SKU map, with message ids, repeats inside a batch, and some batches
sent twice (a retry). Each batch goes through a real `baogong api` process;
one real `baogong worker` consumes the same topics into the same database.
After every batch, once the worker has written every message the API
published (`stream_offsets`), `outlet_reports` must hold exactly the records
the API accepted, one row per (outlet, necessity, reported_at, line_key) with
the quantity in the canonical unit, and nothing else.

An independent oracle in this file (units, SKU packs, ceilings, window,
ownership, duplicates as the README states them) says for each record what
the answer must be: accepted, a duplicate, or rejected naming which field.
Every run of an example writes instants of its own (their microsecond is the
run's number), so runs do not see each other's claims or rows and a replay
during shrinking starts clean. Examples are derandomized and no example
database is kept: the same 26 batches every time (the first has every mistake).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from baogong.settings import Settings
from schema.catalogue import SOLD_24H_MULTIPLE, STOCK_CEILINGS
from schema.db import connect
from tests.integration.conftest import Api
from tests.support import baogong_process, free_port, wait_for

SH = ZoneInfo("Asia/Shanghai")
NUL = "\x00"

# ---------------------------------------------------------------- the oracle: the contract as the README states it

NECESSITY_UNIT = {"rice": "kg", "flour": "kg", "eggs": "kg", "milk": "L", "bottled_water": "L"}
#: unit as written -> (dimension, factor to the canonical unit)
UNITS: dict[str, tuple[str, float]] = {
    "kg": ("kg", 1.0),
    "斤": ("kg", 0.5),
    "g": ("kg", 0.001),
    "t": ("kg", 1000.0),
    "5kg": ("kg", 5.0),
    "5 kg bag": ("kg", 5.0),
    "L": ("L", 1.0),
    "ml": ("L", 0.001),
    "12x550ml": ("L", 12 * 0.55),
}
PACK_WORDS = {"bag", "case", "piece"}
#: the tiny city's SKU map for s1 (uploaded by the test): sku -> (necessity, pack content in canonical units)
SKU_MAP_CSV = "sku,necessity,pack_quantity,pack_unit\nR5,rice,5,kg\nW12,bottled_water,1,12x550ml\n"
SKUS = {"R5": ("rice", 5.0), "W12": ("bottled_water", 12 * 0.55)}
OWN_OUTLETS = ("O1", "O2")  # s1's supermarkets; O3 is s2's
CEILING = STOCK_CEILINGS["supermarket"]
FUTURE = timedelta(hours=2)  # beyond the 5 min clock skew
TOO_OLD = timedelta(days=40)  # beyond the 35-day retention


@dataclass(frozen=True)
class Verdict:
    """What the API must answer for one record: rejected naming `field`, or (valid) stored under `key`."""

    field: str | None = None  # the rejected field, None when valid
    claim: tuple[Any, ...] | None = None  # what makes a repeat a duplicate (README: Duplicates)
    key: tuple[str, str, datetime, str] | None = None  # outlet_reports' key
    quantity: float = 0.0
    sold_24h: float | None = None


def judge(record: dict[str, Any], now: datetime) -> Verdict:
    """The answer the contract gives `record` (only the cases this file generates: at most one mistake each)."""
    outlet, necessity, sku = record["outlet_id"], record.get("necessity"), record.get("sku")
    unit, quantity, sold, mid = record["unit"], record["quantity"], record.get("sold_24h"), record.get("message_id")
    # what the record model refuses
    if mid is not None and NUL in mid:
        return Verdict("message_id")
    if sku is not None and NUL in sku:
        return Verdict("sku")
    if quantity < 0:
        return Verdict("quantity")
    try:
        at = datetime.fromisoformat(record["reported_at"])
    except ValueError:
        return Verdict("reported_at")
    at = (at if at.tzinfo else at.replace(tzinfo=SH)).astimezone(UTC)
    # what validation refuses, in its order
    for name in ("outlet_id", "necessity", "unit"):
        if NUL in (record.get(name) or ""):
            return Verdict(name)
    if outlet not in OWN_OUTLETS:
        return Verdict("outlet_id")
    pack = None
    if necessity is None:
        if sku not in SKUS:
            return Verdict("necessity" if sku is None else "sku")
        necessity, pack = SKUS[sku]
    if necessity not in NECESSITY_UNIT:
        return Verdict("necessity")
    if not now - timedelta(days=35) < at < now + timedelta(minutes=5):
        return Verdict("reported_at")
    if pack is not None and unit in PACK_WORDS:
        per = pack
    elif unit in UNITS and UNITS[unit][0] == NECESSITY_UNIT[necessity]:
        per = UNITS[unit][1]
    else:
        return Verdict("unit")  # unknown, of another dimension, or a pack of nothing
    amount = quantity * per
    if not amount <= CEILING[necessity]:
        return Verdict("quantity")
    if sold is not None and not sold * per <= CEILING[necessity] * SOLD_24H_MULTIPLE:
        return Verdict("sold_24h")
    claim = (outlet, at, ("m", mid) if mid is not None else ("k", necessity))
    key = (outlet, necessity, at, mid or "")
    return Verdict(None, claim, key, amount, None if sold is None else sold * per)


# ---------------------------------------------------------------- what hypothesis writes


@dataclass(frozen=True)
class Ago:
    """A `reported_at` to be written when the batch is sent: `delta` before the batch's instant, spelled `how`."""

    delta: timedelta
    how: int  # 0: ISO 8601 with +08:00, 1: naive (Asia/Shanghai), 2: UTC with Z

    def spell(self, base: datetime) -> str:
        at = (base - self.delta).astimezone(SH)
        if self.how == 0:
            return at.isoformat()
        if self.how == 1:
            return at.replace(tzinfo=None).isoformat(sep=" ")
        return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


#: A few instants inside the window, so that records of a batch share reports and repeat each other.
TIMES = st.builds(
    Ago,
    st.sampled_from([timedelta(minutes=1), timedelta(minutes=90), timedelta(days=3), timedelta(days=30)]),
    st.integers(0, 2),
)


@st.composite
def valid_record(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {"outlet_id": draw(st.sampled_from(OWN_OUTLETS)), "reported_at": draw(TIMES)}
    if draw(st.integers(0, 3)) == 0:
        sku = draw(st.sampled_from(sorted(SKUS)))
        record["sku"] = sku
        dimension = NECESSITY_UNIT[SKUS[sku][0]]
        record["unit"] = draw(st.sampled_from(["bag", "case", "piece", "kg" if dimension == "kg" else "L"]))
    else:
        necessity = draw(st.sampled_from(sorted(NECESSITY_UNIT)))
        record["necessity"] = necessity
        record["unit"] = draw(st.sampled_from([u for u, (d, _) in UNITS.items() if d == NECESSITY_UNIT[necessity]]))
    record["quantity"] = draw(
        st.one_of(st.sampled_from([0, 0.5, 12, 320, 1999.9, 150_000]), st.floats(0, 5000).map(lambda q: round(q, 2)))
    )
    if draw(st.booleans()):
        record["sold_24h"] = draw(st.sampled_from([0, 3.5, 48, 400]))
    if draw(st.booleans()):
        record["message_id"] = draw(st.sampled_from(["erp-1", "erp-2", "erp-3", "pos-7/2026"]))
    return record


#: One mistake a supplier makes: (field, value).
MISTAKES: list[tuple[str, Any]] = [
    ("outlet_id", "O3"),  # s2's outlet
    ("outlet_id", "O9"),  # not registered
    ("outlet_id", f"O{NUL}1"),
    ("message_id", f"erp{NUL}1"),
    ("sku", f"R{NUL}5"),
    ("unit", f"k{NUL}g"),
    ("unit", "barrel"),
    ("unit", "0kg"),
    ("unit", "0ml"),
    ("unit", "piece"),  # no necessity here is counted in pieces
    ("quantity", -1),
    ("quantity", 6901234567890),  # a barcode in the quantity column
    ("quantity", 1e308),  # overflows to inf in the canonical unit with most units
    ("sold_24h", 1e9),
    ("necessity", "caviar"),
    ("reported_at", Ago(-FUTURE, 0)),
    ("reported_at", Ago(TOO_OLD, 2)),
    ("reported_at", "yesterday"),
]


@st.composite
def batch(draw: st.DrawFn) -> list[dict[str, Any]]:
    records = draw(st.lists(valid_record(), min_size=1, max_size=12))
    out = []
    for record in records:
        if draw(st.integers(0, 2)) == 0:
            name, value = draw(st.sampled_from(MISTAKES))
            record = {**record, name: value}
            if name == "sku":
                record.pop("necessity", None)
        out.append(record)
    if draw(st.booleans()):  # a record sent twice in one batch
        out.append(dict(draw(st.sampled_from(out))))
    return out


# ---------------------------------------------------------------- the test


def stored(database_url: str, microsecond: int) -> dict[tuple[str, str, datetime, str], tuple[float, float | None]]:
    """outlet_reports' rows of one example: every instant an example writes has its own microsecond."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT outlet_id, necessity, reported_at, line_key, quantity, sold_24h FROM outlet_reports "
            "WHERE extract(microseconds FROM reported_at)::bigint %% 1000000 = %s",
            (microsecond,),
        ).fetchall()
    return {
        (r["outlet_id"], r["necessity"], r["reported_at"].astimezone(UTC), r["line_key"]): (
            r["quantity"],
            r["sold_24h"],
        )
        for r in rows
    }


def written_messages(database_url: str, topic: str) -> int:
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(next_offset), 0) AS n FROM stream_offsets WHERE topic = %s", (topic,)
        ).fetchone()
    return int(row["n"]) if row else 0


def every_mistake() -> list[dict[str, Any]]:
    """The first example: one valid record of each kind, then one record per mistake, then a repeat."""
    plain: dict[str, Any] = {
        "outlet_id": "O1",
        "necessity": "rice",
        "quantity": 320,
        "unit": "斤",
        "reported_at": Ago(timedelta(minutes=1), 0),
    }
    records = [
        plain,
        {**plain, "necessity": "milk", "unit": "12x550ml", "quantity": 4, "message_id": "erp-1", "sold_24h": 2},
        {"outlet_id": "O2", "sku": "R5", "quantity": 8, "unit": "bag", "reported_at": Ago(timedelta(days=3), 1)},
        {
            "outlet_id": "O2",
            "sku": "R5",
            "quantity": 2,
            "unit": "kg",
            "reported_at": Ago(timedelta(days=3), 1),
            "message_id": "erp-2",
        },
    ]
    for name, value in MISTAKES:
        record = {**plain, "necessity": "flour", name: value}
        if name == "sku":
            record.pop("necessity")
        records.append(record)
    return [*records, dict(plain)]


@dataclass
class Published:
    messages: int = 0  # report messages the API put on the inventory topic, over all examples
    accepted: int = 0  # records the API answered accepted, over all examples
    duplicates: int = 0  # records the API answered as duplicates


def test_every_record_the_api_accepts_is_stored_and_no_other(api: Api, tmp_path: Path) -> None:
    up = httpx.put(
        api.url + "/v1/skus",
        content=SKU_MAP_CSV,
        headers={"Content-Type": "text/csv", "X-API-Key": api.keys["s1"].key},
        timeout=30,
    )
    assert up.status_code == 200 and up.json()["upserted"] == 2, up.text
    worker_settings = Settings.from_env(
        kafka_bootstrap=api.bootstrap,
        database_url=api.database_url,
        topic_prefix=api.prefix,
        worker_id=f"baogong-test-{api.prefix.strip('.')}",
        worker_port=free_port(),
        state_dir=tmp_path / "state",
        sink_max_wait_s=0.2,
    )
    topic = api.prefix + "supply.inventory.v1"
    now = datetime.now(UTC).replace(microsecond=0)
    published = Published()
    examples = itertools.count(1)
    stored_any: list[int] = []

    def send(records: list[dict[str, Any]], claims: set[tuple[Any, ...]], rows: dict[Any, Any]) -> None:
        """Post `records`, check each answer against the oracle, and add what was accepted to `rows`."""
        verdicts = [judge(r, now) for r in records]
        r = api.post("/v1/inventory", json=records)
        assert r.status_code in (200, 403, 422), r.text
        answer = r.json()
        rejected = {x["index"]: x for x in answer["rejected"]}
        duplicates = {x["index"] for x in answer["duplicates"]}
        for index, verdict in enumerate(verdicts):
            seen = f"record {index} {records[index]!r}: answered {rejected.get(index) or index in duplicates}"
            if verdict.field is not None:
                assert index in rejected and rejected[index]["field"] == verdict.field, seen
                continue
            assert index not in rejected, seen
            assert verdict.claim is not None and verdict.key is not None
            assert (index in duplicates) == (verdict.claim in claims), seen
            if index in duplicates:
                continue
            claims.add(verdict.claim)
            assert verdict.key not in rows, f"{seen}: accepted twice"
            rows[verdict.key] = (verdict.quantity, verdict.sold_24h)
        assert answer.get("accepted", 0) == len(records) - len(rejected) - len(duplicates)
        published.messages += answer.get("reports", 0)
        published.accepted += answer.get("accepted", 0)
        published.duplicates += len(duplicates)

    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(batch(), st.booleans())
    @example(every_mistake(), True)
    def push(drawn: list[dict[str, Any]], resend: bool) -> None:
        # Each run of an example writes instants of its own (microsecond = run number), so that a run,
        # and a replay of a failing one, starts from nothing stored and nothing claimed.
        run = next(examples)
        base = now + timedelta(microseconds=run)
        records = [
            {**r, "reported_at": r["reported_at"].spell(base)} if isinstance(r["reported_at"], Ago) else r
            for r in drawn
        ]
        claims: set[tuple[Any, ...]] = set()
        rows: dict[tuple[str, str, datetime, str], tuple[float, float | None]] = {}
        send(records, claims, rows)
        if resend:  # a retry after a timeout: every valid record is a duplicate now
            send(records, claims, rows)
        wait_for(
            lambda: written_messages(api.database_url, topic) >= published.messages,
            120,
            f"the worker to write all {published.messages} report messages",
            every_s=0.2,
        )
        have = stored(api.database_url, run)
        assert set(have) == set(rows), (
            f"stored but not accepted: {sorted(set(have) - set(rows))}; "
            f"accepted but not stored: {sorted(set(rows) - set(have))}"
        )
        for key, (quantity, sold) in rows.items():
            assert have[key] == (pytest.approx(quantity, rel=1e-9), None if sold is None else pytest.approx(sold)), key
        stored_any.append(len(rows))

    with baogong_process(["worker"], worker_settings.env(), tmp_path / "worker.log") as worker:
        push()
        assert worker.poll() is None, "the worker stopped"
    assert sum(stored_any) >= 25, f"examples stored only {stored_any} rows: the generator is broken"
    # Feed health counts each record once over both paths: the API counts what it answered (once a
    # second), the worker leaves the messages the API published to it and counts only what it refuses.
    expected = (published.accepted, published.duplicates, 0)
    assert wait_for(lambda: feed_totals(api.database_url) == expected, 30, f"feed health totals {expected}")


def feed_totals(url: str) -> tuple[int, int, int] | None:
    """Accepted and duplicate records over every supplier and path, and what the worker rejected."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(accepted), 0) AS a, coalesce(sum(duplicates), 0) AS d, "
            "coalesce(sum(rejected) FILTER (WHERE source = 'kafka'), 0) AS r FROM feed_health"
        ).fetchone()
    return None if row is None else (int(row["a"]), int(row["d"]), int(row["r"]))
