"""Write a generated city (`schema.city_gen`) into the database, and read any stored city back.

`seed_city(url, outlets=N, circles=M)` upserts the catalogue, then COPYs the
city's suppliers, circles, communities, outlets and outlet circles straight
into their tables, issues one deterministic demo key per reporting supplier
(`schema.keys.demo_key(supplier, seed)`, hash only in `api_keys`) and
ANALYZEs the tables, all in one transaction: on any error nothing is written.
75,000 outlets take a few seconds, 300,000 about fifteen.

A database holds one city. `seed_city` refuses with `CityExists` when circles
or outlets are already there, unless `replace=True`, which first empties the
city and everything recorded about it (`schema/city.sql`, `empty_city`).

`read_city(url)` builds a `DemoCity` from whatever city the database holds
(the demo city, a generated one, a registry import), so the simulator and the
benchmarks can feed it. Statements live in `schema/city.sql`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from schema.catalogue import BUSINESS_TYPES, NECESSITIES
from schema.city_gen import GeneratedCity, build_city
from schema.db import SCHEMA_DIR, DatabaseError, connect, load_queries
from schema.demo_city import Circle, Community, DemoCity, Outlet, Supplier
from schema.keys import demo_key
from schema.seed import SEED_QUERIES, DemoKey, seed_reference

CITY_QUERIES = load_queries(SCHEMA_DIR / "city.sql")


class CityExists(DatabaseError):
    """The database already holds a city. Seed into another database, or pass `replace=True` (`--replace`)."""


@dataclass(frozen=True, slots=True)
class CitySeed:
    """What `seed_city` left in the database."""

    city: GeneratedCity
    counts: dict[str, int]  # table -> rows
    keys: tuple[DemoKey, ...]  # one per supplier that reports
    elapsed_s: float


def seed_city(
    url: str,
    *,
    outlets: int,
    circles: int,
    seed: int = 1,
    population: int | None = None,
    replace: bool = False,
    progress: Callable[[str], None] = print,
) -> CitySeed:
    """Generate the city for these arguments and write it into the migrated database at `url`.

    Raises ValueError for sizes `schema.city_gen.build_city` refuses, `CityExists` when the
    database holds a city and `replace` is false (nothing written), and `schema.db.DatabaseError`
    for database failures (nothing written). `progress` gets one line per step, never a key.
    """
    started = time.perf_counter()

    def generating(done: int, total: int) -> None:
        progress(f"  generating outlets: {done:,} / {total:,}")

    city = build_city(outlets, circles, seed=seed, population=population, progress=generating)
    progress(
        f"synthetic city (seed {seed}): {len(city.districts)} districts, {len(city.circles)} circles, "
        f"{len(city.communities):,} communities, {city.population:,} residents, {len(city.outlets):,} outlets "
        f"({time.perf_counter() - started:.1f} s)"
    )
    with connect(url) as conn:
        row = conn.execute(CITY_QUERIES["city_rows"]).fetchone() or {}
        if row.get("circles") or row.get("outlets"):
            if not replace:
                raise CityExists(
                    f"the database already holds a city ({row['circles']:,} circles, {row['outlets']:,} outlets); "
                    "pass --replace to delete it and everything recorded about it, or seed another database"
                )
            conn.execute(CITY_QUERIES["empty_city"])
            progress(f"replaced: deleted {row['circles']:,} circles, {row['outlets']:,} outlets and their history")
        seed_reference(conn)
        with conn.cursor() as cur:
            _copy(cur, "copy_suppliers", ((s.id, s.name, s.kind) for s in city.suppliers))
            _copy(
                cur,
                "copy_circles",
                (
                    (c.id, c.name, c.center_lat, c.center_lon, c.owner, c.team, city.district_of[c.id])
                    for c in city.circles
                ),
            )
            _copy(
                cur,
                "copy_communities",
                ((m.id, m.name, m.street_office, m.population, m.circle_id) for m in city.communities),
            )
            _copy(
                cur,
                "copy_outlets",
                (
                    (o.id, o.name, o.business_type, o.chain, o.supplier_id, o.community_id, o.lat, o.lon)
                    for o in city.outlets
                ),
            )
            progress(f"  outlets written: {len(city.outlets):,}")
            _copy(cur, "copy_outlet_circles", city.outlet_circles())
            keys = []
            for supplier in city.suppliers:
                if supplier.has_key:
                    issued = demo_key(supplier.id, seed)
                    keys.append(DemoKey(supplier.id, supplier.name, issued.key))
                    cur.execute(
                        SEED_QUERIES["insert_api_key"],
                        {"prefix": issued.prefix, "supplier_id": supplier.id, "key_hash": issued.key_hash},
                    )
            cur.execute(CITY_QUERIES["analyze_city"])
        counts = {
            "business_types": len(BUSINESS_TYPES),
            "necessities": len(NECESSITIES),
            "suppliers": len(city.suppliers),
            "api_keys": len(keys),
            "circles": len(city.circles),
            "communities": len(city.communities),
            "outlets": len(city.outlets),
            "outlet_circles": sum(len(o.circle_ids) for o in city.outlets),
        }
    elapsed = time.perf_counter() - started
    progress(f"seeded in {elapsed:.1f} s")
    return CitySeed(city=city, counts=counts, keys=tuple(keys), elapsed_s=elapsed)


def _copy(cur: Any, query: str, rows: Any) -> None:
    with cur.copy(CITY_QUERIES[query]) as copy:
        for row in rows:
            copy.write_row(row)


def read_city(url: str) -> DemoCity:
    """The city the database at `url` holds, as a `DemoCity` (active outlets only; seed 0).

    Communities carry their circle's centre as coordinates (the database keeps none of their own);
    a supplier `has_key` when it holds an unrevoked API key. Raises `schema.db.DatabaseError`.
    """
    with connect(url) as conn:
        circles = tuple(
            Circle(r["id"], r["name"], r["center_lat"], r["center_lon"], r["owner"], r["team"])
            for r in conn.execute(CITY_QUERIES["read_circles"])
        )
        communities = tuple(
            Community(r["id"], r["name"], r["street_office"], int(r["population"]), r["circle_id"], r["lat"], r["lon"])
            for r in conn.execute(CITY_QUERIES["read_communities"])
        )
        suppliers = tuple(
            Supplier(r["id"], r["name"], r["kind"], bool(r["has_key"]))
            for r in conn.execute(CITY_QUERIES["read_suppliers"])
        )
        outlets = []
        for r in conn.execute(CITY_QUERIES["read_outlets"]):
            others = [c for c in cast(list[str], r["circle_ids"] or []) if c != r["home"]]
            outlets.append(
                Outlet(
                    r["id"],
                    r["name"],
                    r["business_type"],
                    r["chain"],
                    r["supplier_id"],
                    r["community_id"],
                    r["lat"],
                    r["lon"],
                    (r["home"], *others),
                )
            )
    return DemoCity(seed=0, circles=circles, communities=communities, suppliers=suppliers, outlets=tuple(outlets))
