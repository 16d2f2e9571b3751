"""`baogong simulate`: feed the city in the database to the supplier API at a steady pace, as its suppliers would.

For SYNTHETIC cities only (`baogong seed demo` or `baogong seed city`): the suppliers' keys are the deterministic
demo keys of the seed the city was made with (`--seed`, default 2024, as `baogong seed`), and a city whose
keys the database does not know (another seed, or a real city) is refused before anything is sent. Every
`TICK_S` it posts the records due to keep `rate` records/s (`baogong.demo.simulator.Pace`), round-robin over the
outlets (`Simulator.next_records`: every necessity an outlet carries, quantities of a normal day), in requests of
at most `BATCH` records per supplier. A line of progress every `PROGRESS_S`; totals at the end (`--duration`
seconds, or Ctrl-C). Returns 0, or 1 when the API refused records or requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from baogong.demo.simulator import Pace, Scenario, Simulator
from schema.city_seed import CITY_QUERIES, read_city
from schema.db import connect
from schema.keys import demo_key

TICK_S = 0.2
PROGRESS_S = 5.0
BATCH = 500


class UnknownKeys(Exception):
    """None of the city's demo keys is in the database: wrong seed, or not a synthetic city."""


@dataclass
class Totals:
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    failed_requests: int = 0


def simulate(
    url: str,
    api_url: str,
    *,
    rate: float,
    duration_s: float | None,
    seed: int = 2024,
    progress: Callable[[str], None] = print,
    stop: Callable[[], bool] = lambda: False,
) -> Totals:
    """Post the city's reports to `api_url` at `rate` records/s until `duration_s` (or `stop()`). Raises UnknownKeys."""
    city = read_city(url)
    keys = {s.id: demo_key(s.id, seed) for s in city.suppliers}
    with connect(url) as conn:
        rows = conn.execute(CITY_QUERIES["known_key_prefixes"], {"prefixes": [k.prefix for k in keys.values()]})
        known = {r["prefix"] for r in rows}
    keys = {supplier: k for supplier, k in keys.items() if k.prefix in known}
    if not keys:
        raise UnknownKeys(
            f"none of the demo keys for seed {seed} is known to this database: give the --seed the city was seeded "
            "with (`baogong seed demo|city --seed S`); `baogong simulate` feeds synthetic cities only"
        )
    sim = Simulator(city, Scenario(short_until_s=0.0))
    pace = Pace(rate)
    totals = Totals()
    progress(f"simulating {len(sim.outlets):,} outlets of {len(keys)} suppliers at {rate:,.0f} records/s to {api_url}")
    started = last = time.monotonic()
    with httpx.Client(base_url=api_url, timeout=30) as client:
        while not stop():
            elapsed = time.monotonic() - started
            if duration_s is not None and elapsed >= duration_s:
                break
            due = pace.due(elapsed)
            if due:
                for supplier, records in sim.next_records(elapsed, datetime.now(UTC), due).items():
                    key = keys.get(supplier)
                    if key is None:
                        continue
                    for i in range(0, len(records), BATCH):
                        _post(client, key.key, records[i : i + BATCH], totals)
            if time.monotonic() - last >= PROGRESS_S:
                last = time.monotonic()
                progress(_line(totals, last - started))
            time.sleep(TICK_S)
    progress("done: " + _line(totals, time.monotonic() - started))
    return totals


def _post(client: httpx.Client, key: str, records: list[dict[str, object]], totals: Totals) -> None:
    totals.records += len(records)
    try:
        answer = client.post("/v1/inventory", json=records, headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError:
        totals.failed_requests += 1
        return
    if answer.status_code != 200:
        totals.failed_requests += 1
        return
    body = answer.json()
    rejected = body.get("rejected", [])
    totals.accepted += int(body.get("accepted", 0))
    totals.rejected += rejected if isinstance(rejected, int) else len(rejected)


def _line(t: Totals, elapsed_s: float) -> str:
    rate = t.accepted / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"{elapsed_s:6.1f} s: {t.records:,} records sent, {t.accepted:,} accepted ({rate:,.0f}/s), "
        f"{t.rejected:,} rejected, {t.failed_requests:,} requests failed"
    )
