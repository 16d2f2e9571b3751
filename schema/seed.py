"""Write the catalogue and the synthetic demo city into the database.

`seed_reference(conn)` upserts business types, necessities and which types
carry which necessity from `schema.catalogue`; `seed_demo(url)` does that and
then writes the demo city of `schema.demo_city` (suppliers, circles,
communities, 6,668 outlets, their circles) and one demo API key per supplier
that reports, and the demo responder teams (`schema/demo_teams.yaml`). Both
are idempotent: every write is an upsert, so running them twice leaves the
same rows. Re-seeding resets catalogue thresholds and demo
rows to their defaults, but leaves an outlet's `active` flag and existing
API keys (revoked or not) alone. The database must be migrated first
(`schema.migrate.migrate`).

Statements live in `schema/seed.sql`. The whole demo seed is one transaction
(nothing is written if any step fails) and takes well under a second on a
local PostgreSQL; the outlets go through COPY into temporary tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import psycopg

from schema.catalogue import BUSINESS_TYPES, CARRIES, NECESSITIES
from schema.db import SCHEMA_DIR, connect, load_queries
from schema.demo_city import DISTRICT, DemoCity, build_demo_city
from schema.keys import demo_key
from schema.teams_store import seed_demo_teams, team_counts

SEED_QUERIES = load_queries(SCHEMA_DIR / "seed.sql")


class DemoKey(NamedTuple):
    """A demo supplier's API key, to print once for the person running the demo."""

    supplier_id: str
    name: str
    key: str

    def __repr__(self) -> str:  # keys stay out of logs and tracebacks
        return f"DemoKey(supplier_id={self.supplier_id!r}, name={self.name!r}, key='**********')"


@dataclass(frozen=True, slots=True)
class DemoSeed:
    """What `seed_demo` left in the database."""

    seed: int
    counts: dict[str, int]  # table -> rows in it after seeding (whole table, not just demo rows)
    keys: tuple[DemoKey, ...]  # one per supplier that reports, in supplier order
    elapsed_s: float


def seed_reference(conn: psycopg.Connection[Any]) -> None:
    """Upsert the catalogue (business types, necessities, who carries what) in `conn`'s transaction.

    Does not commit; the caller's transaction decides. Raises psycopg errors as they come.
    """
    with conn.cursor() as cur:
        cur.executemany(
            SEED_QUERIES["upsert_business_type"],
            [
                {"code": b.code, "name_zh": b.name_zh, "name_en": b.name_en, "category": b.category}
                for b in BUSINESS_TYPES
            ],
        )
        cur.executemany(
            SEED_QUERIES["upsert_necessity"],
            [
                {
                    "code": n.code,
                    "name_zh": n.name_zh,
                    "name_en": n.name_en,
                    "unit": n.unit,
                    "per_capita_daily": n.per_capita_daily,
                    "watch_days": n.watch_days,
                    "shortage_days": n.shortage_days,
                    "critical_days": n.critical_days,
                    "freshness_minutes": n.freshness_minutes,
                    "min_coverage": n.min_coverage,
                }
                for n in NECESSITIES
            ],
        )
        cur.executemany(
            SEED_QUERIES["upsert_business_type_necessity"],
            [{"business_type": bt, "necessity": n} for bt, carried in CARRIES.items() for n in carried],
        )


def _write_city(conn: psycopg.Connection[Any], city: DemoCity) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            SEED_QUERIES["upsert_supplier"],
            [{"id": s.id, "name": s.name, "kind": s.kind} for s in city.suppliers],
        )
        cur.executemany(
            SEED_QUERIES["upsert_circle"],
            [
                {
                    "id": c.id,
                    "name": c.name,
                    "center_lat": c.center_lat,
                    "center_lon": c.center_lon,
                    "owner": c.owner,
                    "team": c.team,
                    "district": DISTRICT,
                }
                for c in city.circles
            ],
        )
        cur.executemany(
            SEED_QUERIES["upsert_community"],
            [
                {
                    "id": c.id,
                    "name": c.name,
                    "street_office": c.street_office,
                    "population": c.population,
                    "circle_id": c.circle_id,
                }
                for c in city.communities
            ],
        )
        cur.execute(SEED_QUERIES["create_outlet_staging"])
        with cur.copy(SEED_QUERIES["copy_outlet_staging"]) as copy:
            for o in city.outlets:
                copy.write_row((o.id, o.name, o.business_type, o.chain, o.supplier_id, o.community_id, o.lat, o.lon))
        cur.execute(SEED_QUERIES["upsert_outlets_from_staging"])
        cur.execute(SEED_QUERIES["create_outlet_circle_staging"])
        with cur.copy(SEED_QUERIES["copy_outlet_circle_staging"]) as copy:
            for pair in city.outlet_circles():
                copy.write_row(pair)
        cur.execute(SEED_QUERIES["delete_stale_outlet_circles"])
        cur.execute(SEED_QUERIES["insert_outlet_circles_from_staging"])


def _write_keys(conn: psycopg.Connection[Any], city: DemoCity, seed: int) -> tuple[DemoKey, ...]:
    keys = []
    rows = []
    for supplier in city.suppliers:
        if not supplier.has_key:
            continue
        issued = demo_key(supplier.id, seed)
        keys.append(DemoKey(supplier.id, supplier.name, issued.key))
        rows.append({"prefix": issued.prefix, "supplier_id": supplier.id, "key_hash": issued.key_hash})
    with conn.cursor() as cur:
        cur.executemany(SEED_QUERIES["insert_api_key"], rows)
    return tuple(keys)


def seed_demo(url: str, seed: int = 2024, progress: Callable[[str], None] = print) -> DemoSeed:
    """Seed the catalogue and the demo city for `seed` into the migrated database at `url`.

    One transaction: on any error nothing is written and a `schema.db.DatabaseError`
    is raised (DatabaseUnavailable: retry later; ConstraintViolation: the database
    holds conflicting rows, e.g. an outlet id used by a real outlet). `progress`
    receives one line per step; it never receives a key.
    """
    started = time.perf_counter()
    city = build_demo_city(seed)
    progress(
        f"demo city (seed {seed}, synthetic): {len(city.circles)} circles, {len(city.communities)} communities, "
        f"{city.population:,} residents, {len(city.outlets):,} outlets"
    )
    with connect(url) as conn:
        seed_reference(conn)
        progress(f"catalogue: {len(BUSINESS_TYPES)} business types, {len(NECESSITIES)} necessities")
        _write_city(conn, city)
        progress(f"demo city written: {len(city.suppliers)} suppliers, {len(city.outlets):,} outlets")
        keys = _write_keys(conn, city, seed)
        progress(f"demo API keys: {len(keys)} (hash only in api_keys)")
        teams = seed_demo_teams(conn)
        progress(f"demo teams: {len(teams.created)} new, {len(teams.updated)} reset, {len(teams.unchanged)} unchanged")
        row = conn.execute(SEED_QUERIES["count_reference_rows"]).fetchone()
        counts = {table: cast(int, n) for table, n in (row or {}).items()} | team_counts(conn)
    elapsed = time.perf_counter() - started
    progress(f"seeded in {elapsed:.2f} s")
    return DemoSeed(seed=seed, counts=counts, keys=keys, elapsed_s=elapsed)
