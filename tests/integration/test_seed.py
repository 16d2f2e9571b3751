"""Seeding the catalogue and the demo city into a real PostgreSQL."""

from __future__ import annotations

from typing import Any

from schema.catalogue import BUSINESS_TYPES, CARRIES, NECESSITIES
from schema.db import connect
from schema.demo_city import build_demo_city
from schema.keys import parse_prefix, verify
from schema.seed import seed_demo, seed_reference

EXPECTED = {
    "business_types": len(BUSINESS_TYPES),
    "necessities": len(NECESSITIES),
    "business_type_necessities": sum(len(v) for v in CARRIES.values()),
    "suppliers": 9,
    "api_keys": 8,
    "circles": 10,
    "communities": 40,
    "outlets": 6_668,
}


def _quiet(line: str) -> None:
    pass


def _snapshot(url: str) -> dict[str, list[Any]]:
    tables = {
        "business_types": "SELECT * FROM business_types ORDER BY code",
        "necessities": "SELECT * FROM necessities ORDER BY code",
        "business_type_necessities": "SELECT * FROM business_type_necessities ORDER BY 1, 2",
        "suppliers": "SELECT id, name, kind FROM suppliers ORDER BY id",
        "api_keys": "SELECT prefix, supplier_id, key_hash, revoked_at FROM api_keys ORDER BY prefix",
        "circles": "SELECT * FROM circles ORDER BY id",
        "communities": "SELECT * FROM communities ORDER BY id",
        "outlets": "SELECT * FROM outlets ORDER BY id",
        "outlet_circles": "SELECT * FROM outlet_circles ORDER BY 1, 2",
    }
    with connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in tables.items()}


def test_seed_demo_writes_the_city(database_url: str) -> None:
    lines: list[str] = []
    result = seed_demo(database_url, progress=lines.append)
    assert {k: result.counts[k] for k in EXPECTED} == EXPECTED
    assert result.counts["outlet_circles"] >= 6_668
    assert lines and not any(key.key in line for key in result.keys for line in lines), "progress never shows a key"
    with connect(database_url) as conn:
        population = conn.execute("SELECT sum(population) AS n FROM communities").fetchone()
        assert population is not None and population["n"] == 316_000
        lonely = conn.execute(
            "SELECT count(*) AS n FROM outlets o"
            " WHERE NOT EXISTS (SELECT 1 FROM outlet_circles oc WHERE oc.outlet_id = o.id)"
        ).fetchone()
        assert lonely is not None and lonely["n"] == 0
    pairs = {(r["outlet_id"], r["circle_id"]) for r in _snapshot(database_url)["outlet_circles"]}
    assert pairs == set(build_demo_city().outlet_circles())


def test_seeding_twice_leaves_the_same_rows(database_url: str) -> None:
    first = seed_demo(database_url, progress=_quiet)
    before = _snapshot(database_url)
    second = seed_demo(database_url, progress=_quiet)
    assert second.counts == first.counts
    assert second.keys == first.keys
    assert _snapshot(database_url) == before


def test_reseeding_with_another_seed_moves_outlets_between_circles(database_url: str) -> None:
    seed_demo(database_url, seed=1, progress=_quiet)
    seed_demo(database_url, seed=2, progress=_quiet)
    pairs = {(r["outlet_id"], r["circle_id"]) for r in _snapshot(database_url)["outlet_circles"]}
    assert pairs == set(build_demo_city(2).outlet_circles())


def test_demo_keys_are_stored_hash_only_and_verify(database_url: str) -> None:
    result = seed_demo(database_url, progress=_quiet)
    suppliers = {s.id for s in build_demo_city().suppliers if s.has_key}
    assert {k.supplier_id for k in result.keys} == suppliers
    assert "unaffiliated" not in suppliers
    assert all(k.key not in repr(k) for k in result.keys), "a DemoKey's repr hides the key"
    with connect(database_url) as conn:
        rows = {r["prefix"]: r for r in conn.execute("SELECT * FROM api_keys").fetchall()}
    assert len(rows) == len(result.keys)
    stored_text = repr(sorted(rows.items()))
    for demo in result.keys:
        prefix = parse_prefix(demo.key)
        assert prefix is not None
        row = rows[prefix]
        assert row["supplier_id"] == demo.supplier_id
        assert isinstance(row["key_hash"], str) and verify(demo.key, row["key_hash"])
        assert not verify(demo.key + "x", row["key_hash"])
        assert demo.key not in stored_text and demo.key.split("_")[-1] not in stored_text


def test_reseeding_keeps_a_revoked_key_revoked(database_url: str) -> None:
    result = seed_demo(database_url, progress=_quiet)
    prefix = parse_prefix(result.keys[0].key)
    with connect(database_url) as conn:
        conn.execute("UPDATE api_keys SET revoked_at = now() WHERE prefix = %s", (prefix,))
    seed_demo(database_url, progress=_quiet)
    with connect(database_url) as conn:
        row = conn.execute("SELECT revoked_at FROM api_keys WHERE prefix = %s", (prefix,)).fetchone()
    assert row is not None and row["revoked_at"] is not None


def test_seed_reference_is_idempotent_and_restores_defaults(database_url: str) -> None:
    with connect(database_url) as conn:
        seed_reference(conn)
        conn.execute("UPDATE necessities SET watch_days = 99 WHERE code = 'rice'")
        seed_reference(conn)
        rice = conn.execute("SELECT watch_days FROM necessities WHERE code = 'rice'").fetchone()
        pairs = conn.execute("SELECT count(*) AS n FROM business_type_necessities").fetchone()
    assert rice is not None and rice["watch_days"] == 7
    assert pairs is not None and pairs["n"] == EXPECTED["business_type_necessities"]


def test_seed_is_fast(database_url: str) -> None:
    assert seed_demo(database_url, progress=_quiet).elapsed_s < 3.0
