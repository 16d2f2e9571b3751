"""Restock suggestions for a short circle: where the stock it needs can come from, and how much (pure + one read).

The rule, for circle C short of necessity n (`plan`):

- **Target**: C's days of supply back at n's `watch_days` (the line above
  which a circle is OK, not merely out of shortage). The quantity needed is
  `watch_days x daily_demand - stock` (C's confirmed stock and daily demand
  as `circle_levels_latest` holds them; never below 0).
- **Sources**: active outlets with *confirmed* (fresh) stock of n — the same
  stock the levels count (`counted_stock`, migration 0010) — that serve a
  neighbouring circle: one whose centre lies within `radius_km` of C's
  centre (`NEIGHBOUR_KM`). Outlets that serve C itself are never sources:
  their stock already counts in C's days of supply (moving it within C
  raises nothing) and C needs all of it.
- **Spare**: an outlet's stock counts in every circle it serves, so taking q
  from it lowers each of those circles by q. Each such circle may give only
  its *surplus*: confirmed stock above what it needs for its own target,
  `stock - watch_days x daily_demand`; a circle whose level is unknown
  (STALE, no days of supply, no level) gives nothing. An outlet's spare is
  the least of its own fresh stock and the remaining surplus of every
  circle it serves. Surplus is shared: what one suggestion takes from a
  circle is no longer available to the next outlet serving that circle. No
  suggestion ever takes stock a source circle needs to stay at its target.
- **Ranking**: by distance from C's centre (`schema.circles.haversine_km`),
  nearest first (ties by outlet id); each source gives
  `min(spare, still needed)`, accumulated until the need is covered or
  `limit` sources are listed. `Plan.shortfall` is what the listed sources
  leave uncovered.

`plan` is pure; `suggestions_for` / `suggestions_for_async` read the short
circle's level and the candidates (schema/tasks.sql `restock_need`,
`restock_candidates`) and call it. Measured once on the 6,668-outlet demo
city with every carrying outlet reporting (2,650 outlets, 14,550 stock rows):
477 candidates for C03's rice, the candidate query 6 ms, `suggestions_for`
9 ms in all. Quantities are in n's canonical unit (kg, L or piece).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from schema.circles import haversine_km
from schema.db import SCHEMA_DIR, Row, load_queries

QUERIES = load_queries(SCHEMA_DIR / "tasks.sql")

#: Neighbouring circles: centres within this distance (km) of the short circle's centre. Circles reach
#: about 1 km (`schema.circles.WALK_KM`), so their centres lie about 2 km apart: 3 km is the ring around.
NEIGHBOUR_KM = 3.0
#: Suggestions listed at most, by default.
DEFAULT_LIMIT = 10
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class CircleSupply:
    """A circle's confirmed stock and demand of the necessity, and its target in days.

    `known` is False when its level cannot be trusted (STALE, no days of supply): it then has no surplus.
    """

    circle_id: str
    stock: float
    daily_demand: float
    target_days: float
    known: bool = True

    @property
    def target_stock(self) -> float:
        return self.target_days * self.daily_demand

    @property
    def surplus(self) -> float:
        """Confirmed stock above its own target, never below 0; 0 when its level is unknown."""
        return max(0.0, self.stock - self.target_stock) if self.known else 0.0

    @property
    def need(self) -> float:
        """What brings it back to its target days, never below 0."""
        return max(0.0, self.target_stock - self.stock)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An outlet that might give: its fresh stock and every circle it serves (`home_circle` its own community's)."""

    outlet_id: str
    name: str
    lat: float
    lon: float
    home_circle: str
    stock: float
    circles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Take `quantity` from this outlet (`spare` is the most it could give when it was chosen)."""

    outlet_id: str
    outlet_name: str
    circle_id: str  # the outlet's home circle
    distance_km: float
    quantity: float
    spare: float

    def as_json(self) -> dict[str, Any]:
        return {
            "outlet_id": self.outlet_id,
            "outlet_name": self.outlet_name,
            "circle_id": self.circle_id,
            "distance_km": round(self.distance_km, 3),
            "quantity": self.quantity,
            "spare": self.spare,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """What circle `circle_id` needs of `necessity` to reach its target, and where it can come from."""

    circle_id: str
    necessity: str
    target_days: float
    stock: float
    daily_demand: float
    need: float
    suggestions: tuple[Suggestion, ...] = field(default=())
    unit: str = ""

    @property
    def covered(self) -> float:
        return sum(s.quantity for s in self.suggestions)

    @property
    def shortfall(self) -> float:
        """What the listed sources leave uncovered (0 when the need is met)."""
        return max(0.0, self.need - self.covered)


def plan(
    short: CircleSupply,
    centre: tuple[float, float],
    candidates: Iterable[Candidate],
    circles: Mapping[str, CircleSupply],
    *,
    necessity: str = "",
    unit: str = "",
    limit: int | None = DEFAULT_LIMIT,
) -> Plan:
    """Suggested sources for `short`, whose centre is `centre` (lat, lon): the rule in the module docstring.

    `circles` holds the level of every circle a candidate serves (a circle missing from it gives nothing).
    Candidates serving `short.circle_id` are skipped. Deterministic: same inputs, same plan.
    """
    need = short.need
    left = need
    remaining = {cid: c.surplus for cid, c in circles.items()}
    ranked = sorted(
        (haversine_km(centre[0], centre[1], c.lat, c.lon), c.outlet_id, c)
        for c in candidates
        if short.circle_id not in c.circles and c.stock > 0
    )
    chosen: list[Suggestion] = []
    for distance, _, c in ranked:
        if left <= _EPS or (limit is not None and len(chosen) >= limit):
            break
        spare = min([c.stock, *(remaining.get(cid, 0.0) for cid in c.circles)])
        if spare <= _EPS:
            continue
        take = min(spare, left)
        for cid in c.circles:
            remaining[cid] -= take
        left -= take
        chosen.append(Suggestion(c.outlet_id, c.name, c.home_circle, distance, take, spare))
    return Plan(
        short.circle_id, necessity, short.target_days, short.stock, short.daily_demand, need, tuple(chosen), unit
    )


def annotation(p: Plan, shown: int = 3) -> str:
    """A short Chinese line for a page: the first `shown` sources and what is still missing ('' when none needed)."""
    if p.need <= _EPS:
        return ""
    unit = f" {p.unit}" if p.unit else ""
    if not p.suggestions:
        return f"建议调货：附近无富余库存（需补 {p.need:,.0f}{unit}）"
    parts = [
        f"{s.outlet_name}（{s.circle_id}，{s.distance_km:.1f} km）{s.quantity:,.0f}{unit}"
        for s in p.suggestions[:shown]
    ]
    more = len(p.suggestions) - shown
    text = "建议调货：" + "；".join(parts) + (f"；另 {more} 处" if more > 0 else "")
    if p.shortfall > _EPS:
        text += f"；仍缺 {p.shortfall:,.0f}{unit}"
    return text


# ---------------------------------------------------------------- reading


def _supply(r: Row, prefix: str = "") -> CircleSupply:
    known = r[f"{prefix}status"] not in (None, "STALE") and r[f"{prefix}days_of_supply"] is not None
    return CircleSupply(
        r[f"{prefix}circle_id"],
        float(r[f"{prefix}stock"] or 0.0),
        float(r[f"{prefix}daily_demand"] or 0.0),
        float(r["target_days"]),
        known,
    )


def plan_from_rows(need_row: Row | None, candidate_rows: Sequence[Row], limit: int | None) -> Plan | None:
    """The plan from `restock_need`'s row and `restock_candidates`' rows; None when the circle has no level."""
    if need_row is None or need_row["stock"] is None:
        return None
    candidates: dict[str, Candidate] = {}
    circles: dict[str, CircleSupply] = {}
    for r in candidate_rows:
        circles[r["circle_id"]] = _supply(r)
        c = candidates.get(r["outlet_id"])
        if c is None:
            candidates[r["outlet_id"]] = Candidate(
                r["outlet_id"], r["outlet_name"], r["lat"], r["lon"], r["home_circle"], r["quantity"], (r["circle_id"],)
            )
        else:
            candidates[r["outlet_id"]] = Candidate(
                c.outlet_id, c.name, c.lat, c.lon, c.home_circle, c.stock, (*c.circles, r["circle_id"])
            )
    return plan(
        _supply(need_row),
        (need_row["center_lat"], need_row["center_lon"]),
        candidates.values(),
        circles,
        necessity=need_row["necessity"],
        unit=need_row["unit"],
        limit=limit,
    )


def _params(circle_id: str, necessity: str, now: datetime, radius_km: float) -> dict[str, Any]:
    return {"circle_id": circle_id, "necessity": necessity, "now": now, "radius_km": radius_km}


def suggestions_for(
    conn: psycopg.Connection[Row],
    circle_id: str,
    necessity: str,
    now: datetime,
    limit: int | None = DEFAULT_LIMIT,
    *,
    radius_km: float = NEIGHBOUR_KM,
) -> Plan | None:
    """Where circle `circle_id` can get `necessity` from, as of `now` (stock fresh at `now`).

    Two reads in the caller's transaction; writes nothing. None when the circle
    has no level of the necessity (never computed). Raises psycopg errors as
    they come (the caller translates, e.g. `schema.db.connect`).
    """
    params = _params(circle_id, necessity, now, radius_km)
    need = conn.execute(QUERIES["restock_need"], params).fetchone()
    if need is None:
        return None
    rows = conn.execute(QUERIES["restock_candidates"], params).fetchall()
    return plan_from_rows(need, rows, limit)


async def suggestions_for_async(
    conn: psycopg.AsyncConnection[Row],
    circle_id: str,
    necessity: str,
    now: datetime,
    limit: int | None = DEFAULT_LIMIT,
    *,
    radius_km: float = NEIGHBOUR_KM,
) -> Plan | None:
    """`suggestions_for` on an async connection (the dispatcher's evaluation transaction)."""
    params = _params(circle_id, necessity, now, radius_km)
    need = await (await conn.execute(QUERIES["restock_need"], params)).fetchone()
    if need is None:
        return None
    rows = await (await conn.execute(QUERIES["restock_candidates"], params)).fetchall()
    return plan_from_rows(need, rows, limit)
