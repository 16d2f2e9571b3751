"""Realistic stock reports for the demo city, and one scripted rice shortage (pure).

Each outlet of a business type that carries necessities reports all of them
at once. Stock is sized so every circle holds `normal_days` of supply of each
necessity (varying a little by circle and outlet; a supermarket holds about
ten times a convenience store, `SIZE`), and drifts a few percent
between reports. Vegetable markets report mass in 斤 (jin), as stall keepers
do; everyone else in kg/L/pieces.

Every line carries `sold_24h`: the outlet's share of its home circle's daily
demand (population x per-capita consumption), varying a few percent between
reports. People keep buying at that rate when a delivery fails, so the
workers' observed demand (streams/levels.py) stays put while stock falls, and
days of supply fall with it.

The scenario: from `short_from_s` to `short_until_s` after the start, every
outlet serving `circle_id` holds only `short_fraction` of its usual
`necessity`, which takes the circle well below its shortage threshold; then
deliveries arrive and stock returns to normal.

Any city. The simulator takes a `DemoCity`: the demo city, a generated one
(`schema.city_gen.build_city`) or whatever city a database holds
(`schema.city_seed.read_city(url)`). `records` is one full round of every
outlet; `next_records(count=...)` continues round-robin over the outlets, so a
caller feeding a city at a fixed rate asks `Pace(records_per_s).due(elapsed)`
how many records are due and sends that many.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schema.catalogue import CARRIES, NECESSITY_BY_CODE
from schema.demo_city import DemoCity, Outlet

MASS_IN_JIN = {"vegetable_market"}
#: How much an outlet holds relative to a convenience store: a supermarket's back room holds
#: ten times a kiosk's shelf, so a circle's silent supermarkets leave most of its stock unconfirmed.
SIZE = {"supermarket": 10.0, "vegetable_market": 6.0, "fresh_food_store": 2.0}


@dataclass(frozen=True, slots=True)
class Scenario:
    circle_id: str = "C03"
    necessity: str = "rice"
    short_fraction: float = 0.15
    short_from_s: float = 15.0
    short_until_s: float = 60.0

    def factor(self, elapsed_s: float, outlet_circles: tuple[str, ...], necessity: str) -> float:
        hit = necessity == self.necessity and self.circle_id in outlet_circles
        return self.short_fraction if hit and self.short_from_s <= elapsed_s < self.short_until_s else 1.0


class Simulator:
    def __init__(self, city: DemoCity, scenario: Scenario, seed: int = 7, normal_days: float = 10.0) -> None:
        self.city = city
        self.scenario = scenario
        self._rng = random.Random(seed)
        population = {c.id: 0 for c in city.circles}
        for community in city.communities:
            population[community.circle_id] += community.population
        carriers: dict[tuple[str, str], float] = defaultdict(float)
        self.outlets = [o for o in city.outlets if o.business_type in CARRIES]
        self._cursor = 0
        for o in self.outlets:
            for n in CARRIES[o.business_type]:
                carriers[(o.circle_ids[0], n)] += SIZE.get(o.business_type, 1.0)
        circle_days = {c.id: normal_days * (0.85 + 0.3 * self._rng.random()) for c in city.circles}
        # Each outlet's usual stock: its home circle's days of supply shared among the circle's carriers
        # by their size.
        self.base: dict[tuple[str, str], float] = {}
        self.daily: dict[tuple[str, str], float] = {}
        for o in self.outlets:
            home = o.circle_ids[0]
            for n in CARRIES[o.business_type]:
                spec = NECESSITY_BY_CODE[n]
                days = max(circle_days[home], spec.watch_days * 1.3)  # a normal day is comfortably OK
                need = population[home] * spec.per_capita_daily * days
                share = SIZE.get(o.business_type, 1.0) / carriers[(home, n)]
                self.base[(o.id, n)] = need * share * (0.7 + 0.6 * self._rng.random())
                self.daily[(o.id, n)] = self.base[(o.id, n)] / days  # what its customers buy in a day

    def records(self, elapsed_s: float, now: datetime) -> dict[str, list[dict[str, Any]]]:
        """One full round of reports at `now`, as API records grouped by supplier."""
        return self._records_of(self.outlets, elapsed_s, now)

    def next_records(self, elapsed_s: float, now: datetime, count: int) -> dict[str, list[dict[str, Any]]]:
        """At least `count` records (whole outlets) at `now`, continuing where the last call stopped and
        wrapping around the city; grouped by supplier. Each outlet reports every necessity it carries."""
        chosen = []
        made = 0
        while made < count and self.outlets:
            outlet = self.outlets[self._cursor]
            self._cursor = (self._cursor + 1) % len(self.outlets)
            chosen.append(outlet)
            made += len(CARRIES[outlet.business_type])
        return self._records_of(chosen, elapsed_s, now)

    def _records_of(self, outlets: list[Outlet], elapsed_s: float, now: datetime) -> dict[str, list[dict[str, Any]]]:
        stamp = now.isoformat(timespec="seconds")
        drift = 1.0 + 0.03 * math.sin(elapsed_s / 60.0)
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for o in outlets:
            for n in CARRIES[o.business_type]:
                unit = NECESSITY_BY_CODE[n].unit
                qty = self.base[(o.id, n)] * drift * self.scenario.factor(elapsed_s, o.circle_ids, n)
                qty *= 0.98 + 0.04 * self._rng.random()
                sold = self.daily[(o.id, n)] * (0.97 + 0.06 * self._rng.random())
                if unit == "kg" and o.business_type in MASS_IN_JIN:
                    unit, qty, sold = "斤", qty * 2, sold * 2
                out[o.supplier_id].append(
                    {
                        "outlet_id": o.id,
                        "necessity": n,
                        "quantity": round(qty, 1),
                        "unit": unit,
                        "reported_at": stamp,
                        "sold_24h": round(sold, 1),
                    }
                )
        return out


@dataclass
class Pace:
    """How many records are due to keep `records_per_s` since the start: `due(elapsed_s)` minus what was
    already asked for. Pure; the caller owns the clock."""

    records_per_s: float
    asked: int = 0

    def due(self, elapsed_s: float) -> int:
        """Records to send now so that `asked` reaches `records_per_s * elapsed_s`; 0 when ahead."""
        wanted = int(self.records_per_s * elapsed_s)
        due = max(0, wanted - self.asked)
        self.asked += due
        return due
