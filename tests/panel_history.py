"""History of the demo city written straight into the database, for the panel tests and the panel benchmark.

`write_history(url, now, days)` seeds the demo city (schema.seed.seed_demo) and writes, ending at `now`:
circle levels every `level_step` (raw `circle_levels`, then `circle_levels_latest`), each outlet's latest
stock (`outlet_stock`, some outlets silent or never reporting), daily prices from a quarter of the outlets,
per-minute feed health per supplier and path, alerts (resolved ones with their acknowledgement times, a few
still open), the pipeline heartbeat and stream offsets. Then `baogong maintain`'s function fills the rollups
from the raw rows, as the worker's schedule does. Deterministic for a seed; COPY throughout.

The days of supply of each circle and necessity follow a slow wave around 1.5x the necessity's watch line;
circle C03 drains in the last hours so that shortage and critical levels (and their alerts) appear.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schema.db import connect
from schema.seed import seed_demo

STATUS_ORDER = ("OK", "WATCH", "STALE", "SHORTAGE", "CRITICAL")


@dataclass(frozen=True)
class History:
    now: datetime
    start: datetime
    circles: tuple[str, ...]
    necessities: tuple[str, ...]
    districts: tuple[str, ...]
    levels: int
    feed_rows: int
    alerts: int


def _status(days: float | None, watch: float, shortage: float, critical: float) -> str:
    if days is None:
        return "STALE"
    if days < critical:
        return "CRITICAL"
    if days < shortage:
        return "SHORTAGE"
    if days < watch:
        return "WATCH"
    return "OK"


def write_history(
    url: str, now: datetime, days: float = 1.0, seed: int = 7, level_step: timedelta = timedelta(minutes=15)
) -> History:
    rng = random.Random(seed)
    seed_demo(url, progress=lambda _line: None)
    start = now - timedelta(days=days)
    with connect(url) as conn:
        circles = [r["id"] for r in conn.execute("SELECT id FROM circles ORDER BY id").fetchall()]
        districts = tuple(r["district"] for r in conn.execute("SELECT DISTINCT district FROM circles ORDER BY 1"))
        necs = conn.execute(
            "SELECT code, per_capita_daily, watch_days, shortage_days, critical_days, freshness_minutes "
            "FROM necessities ORDER BY code"
        ).fetchall()
        population = {
            r["circle_id"]: r["p"]
            for r in conn.execute("SELECT circle_id, sum(population) AS p FROM communities GROUP BY circle_id")
        }
        carries: dict[str, list[str]] = {}
        for r in conn.execute("SELECT business_type, necessity FROM business_type_necessities"):
            carries.setdefault(r["business_type"], []).append(r["necessity"])
        outlets = conn.execute("SELECT id, supplier_id, business_type FROM outlets WHERE active ORDER BY id").fetchall()
        suppliers = [r["id"] for r in conn.execute("SELECT id FROM suppliers ORDER BY id")]

        # ---- circle levels (raw) and the latest one per series
        steps = int(timedelta(days=days) / level_step)
        phase = {(c, n["code"]): rng.uniform(0, 2 * math.pi) for c in circles for n in necs}
        latest: dict[tuple[str, str], tuple[Any, ...]] = {}
        levels = 0
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY circle_levels (computed_at, circle_id, necessity, stock, stock_unconfirmed, unconfirmed_age_s, "
                "daily_demand, days_of_supply, coverage, coverage_stock, outlets_expected, outlets_fresh, status, "
                "lag_reports, lag_s) FROM STDIN"
            ) as copy,
        ):
            for i in range(steps + 1):
                at = start + i * level_step
                hours_left = (now - at).total_seconds() / 3600
                for c in circles:
                    for n in necs:
                        demand = population[c] * n["per_capita_daily"]
                        days_ = n["watch_days"] * (1.5 + 0.6 * math.sin(phase[c, n["code"]] + i * 0.02))
                        if c == "C03" and hours_left < 6:  # the drain the alerts are about
                            days_ = n["critical_days"] * (0.5 + hours_left / 4)
                        coverage = 0.75 + 0.2 * math.sin(phase[c, n["code"]] + i * 0.05)
                        stale = rng.random() < 0.002
                        value = None if stale else round(days_, 3)
                        row = (
                            at, c, n["code"], demand * (days_ or 0), demand * 0.3 * rng.random(),
                            rng.uniform(3600, 7200), demand, value, coverage, min(1.0, coverage + 0.1), 40,
                            int(40 * coverage),
                            _status(value, n["watch_days"], n["shortage_days"], n["critical_days"]),
                            rng.randint(0, 50), rng.uniform(0, 3),
                        )  # fmt: skip
                        copy.write_row(row)
                        latest[c, n["code"]] = row
                        levels += 1
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY circle_levels_latest (computed_at, circle_id, necessity, stock, stock_unconfirmed, "
                "unconfirmed_age_s, daily_demand, days_of_supply, coverage, coverage_stock, outlets_expected, "
                "outlets_fresh, status, lag_reports, lag_s) FROM STDIN"
            ) as copy,
        ):
            for row in latest.values():
                copy.write_row(row)

        # ---- each outlet's latest stock: most fresh, 6 % silent for 1-3 days, 2 % never reported
        fresh_min = {n["code"]: n["freshness_minutes"] for n in necs}
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY outlet_stock (outlet_id, necessity, quantity, sold_24h, reported_at, updated_at) FROM STDIN"
            ) as copy,
        ):
            for o in outlets:
                carried = carries.get(o["business_type"], [])
                roll = rng.random()
                if not carried or roll < 0.02:
                    continue
                for nec in carried:
                    if roll < 0.08:
                        age = timedelta(hours=rng.uniform(26, 72))
                    else:
                        age = timedelta(minutes=rng.uniform(1, min(fresh_min[nec], 240)))
                    reported = now - age
                    delay = timedelta(seconds=rng.uniform(0.5, 30))
                    copy.write_row((o["id"], nec, rng.uniform(5, 500), rng.uniform(1, 50), reported, reported + delay))

        # ---- prices: a quarter of the outlets, once a day
        priced = [o for o in outlets if carries.get(o["business_type"]) and rng.random() < 0.25]
        base = {n["code"]: rng.uniform(3, 30) for n in necs}
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY prices (reported_at, outlet_id, necessity, price, supplier_id, received_at) FROM STDIN"
            ) as copy,
        ):
            for d in range(math.ceil(days)):
                day_at = now - timedelta(days=d, hours=rng.uniform(0, 2))
                if day_at < start:
                    continue
                for o in priced:
                    for nec in carries[o["business_type"]]:
                        copy.write_row((day_at, o["id"], nec, base[nec] * rng.uniform(0.9, 1.2), o["supplier_id"],
                                        day_at + timedelta(seconds=5)))  # fmt: skip

        # ---- feed health: every supplier, every minute, both paths
        feed_rows = 0
        first_minute = start.replace(second=0, microsecond=0)
        minutes = int((now - first_minute).total_seconds() // 60) + 1
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY feed_health (supplier_id, minute, source, accepted, rejected, duplicates, dead_lettered) "
                "FROM STDIN"
            ) as copy,
        ):
            for s_i, s in enumerate(suppliers):
                for m in range(minutes):
                    minute = first_minute + timedelta(minutes=m)
                    for source in ("http", "kafka"):
                        accepted = rng.randint(20, 120) * (s_i + 1)
                        rejected = rng.randint(0, 3) if rng.random() < 0.3 else 0
                        copy.write_row((s, minute, source, accepted, rejected, int(rng.random() < 0.1),
                                        int(rng.random() < 0.01)))  # fmt: skip
                        feed_rows += 1

        # ---- requests the API answered, per key and outcome, over the last hour (the API keeps one day)
        with (
            conn.cursor() as cur,
            cur.copy("COPY feed_requests (supplier_id, key_prefix, minute, outcome, requests) FROM STDIN") as copy,
        ):
            outcomes = ("ok", "rejected", "bad_request", "oversize", "throttled", "timeout")
            for s_i, s in enumerate(suppliers):
                for m in range(60):
                    minute = now.replace(second=0, microsecond=0) - timedelta(minutes=m)
                    for outcome in outcomes:
                        if outcome == "ok" or (s_i == 0 and rng.random() < 0.5):  # the first supplier misbehaves
                            copy.write_row((s, f"k{s_i:07d}", minute, outcome, rng.randint(1, 30)))

        # ---- alerts: one every ~2 h somewhere, acknowledged within minutes, resolved within hours; some open
        alerts = 0
        t = start + timedelta(minutes=30)
        with conn.cursor() as cur:
            while t < now - timedelta(hours=3):
                c, nec = rng.choice(circles), rng.choice(necs)["code"]
                ack = t + timedelta(minutes=rng.uniform(2, 45))
                ends = ack + timedelta(hours=rng.uniform(0.5, 2.5))
                cur.execute(
                    "INSERT INTO alerts (fingerprint, rule, circle_id, necessity, severity, state, labels, annotations,"
                    " pending_since, starts_at, ends_at, acknowledged_at, acknowledged_by) VALUES (%s, 'shortage', "
                    "%s, %s, %s, 'resolved', '{}', '{}', %s, %s, %s, %s, 'demo-responder')",
                    (f"shortage:{c}:{nec}:{alerts}", c, nec, rng.choice(["critical", "high"]), t, t, ends, ack),
                )
                alerts += 1
                t += timedelta(hours=rng.uniform(1, 3))
            for i, (nec, state) in enumerate(
                (("rice", "firing"), ("flour", "acknowledged"), ("cooking_oil", "pending"))
            ):
                started = now - timedelta(hours=2 - i * 0.5)
                cur.execute(
                    "INSERT INTO alerts (fingerprint, rule, circle_id, necessity, severity, state, labels, annotations,"
                    " pending_since, starts_at, acknowledged_at, acknowledged_by) VALUES (%s, 'shortage', 'C03', %s,"
                    " %s, %s, '{}', '{}', %s, %s, %s, %s)",
                    (
                        f"shortage:C03:{nec}", nec, "critical" if i == 0 else "high", state, started,
                        None if state == "pending" else started,
                        started + timedelta(minutes=7) if state == "acknowledged" else None,
                        "demo-responder" if state == "acknowledged" else None,
                    ),
                )  # fmt: skip
                alerts += 1
            cur.execute(
                "INSERT INTO pipeline_status (id, levels_at, lag_reports, lag_s, worker, updated_at) "
                "VALUES ('levels', %s, 12, 0.8, 'worker-1 host pid 4242', %s)",
                (now - timedelta(seconds=5), now - timedelta(seconds=2)),
            )
            for p in range(4):
                cur.execute(
                    "INSERT INTO stream_offsets (topic, partition, next_offset, message_at, written_at) "
                    "VALUES ('supply.inventory.v1', %s, %s, %s, %s)",
                    (p, 1000 * (p + 1), now - timedelta(seconds=3), now - timedelta(seconds=2)),
                )
        _price_levels(conn, rng, now, circles, [n["code"] for n in necs], base)
    return History(now, start, tuple(circles), tuple(n["code"] for n in necs), districts, levels, feed_rows, alerts)


def _price_levels(
    conn: Any, rng: random.Random, now: datetime, circles: list[str], necessities: list[str], base: dict[str, float]
) -> None:
    """Graded price levels (issue 12) for yesterday and today, every circle and the city: calm, but rice in
    C03 spikes today (ALPS CRISIS, plan grade III) with one of C03's outlets far above the median (a lead)."""
    rows = []
    for days_ago in (1, 0):
        at = now - timedelta(days=days_ago)
        day = (at + timedelta(hours=8)).date()  # Asia/Shanghai
        for c in [*circles, "*"]:
            for nec in necessities:
                b = base[nec]
                spike = c == "C03" and nec == "rice" and days_ago == 0
                price = b * (1.55 if spike else rng.uniform(0.97, 1.08))
                dev = (price - b) / (0.05 * b)
                phase = "CRISIS" if dev >= 2 else "ALERT" if dev >= 1 else "STRESS" if dev >= 0.25 else "NORMAL"
                grade = "III" if spike else "NONE"
                rise = price / b - 1
                rows.append((c, nec, day, at, price, rng.randint(3, 40), b, "rolling", 28, 0.05 * b, dev, phase, rise,
                             rise, grade, False, spike or phase in ("ALERT", "CRISIS")))  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO price_levels (circle_id, necessity, day, computed_at, price, outlets, baseline, baseline_kind,"
            " history_days, sd, deviation, phase, rise_day, rise_week, plan_grade, stale, spiking)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        outlet = conn.execute(
            "SELECT outlet_id FROM outlet_circles WHERE circle_id = 'C03' ORDER BY 1 LIMIT 1"
        ).fetchone()
        median = base["rice"] * 1.55
        cur.execute(
            "INSERT INTO price_leads (outlet_id, necessity, circle_id, day, first_at, last_at, price, circle_price,"
            " ratio_max, phase, plan_grade) VALUES (%s, 'rice', 'C03', %s, %s, %s, %s, %s, %s, 'CRISIS', 'III')",
            (outlet["outlet_id"], (now + timedelta(hours=8)).date(), now - timedelta(hours=2),
             now - timedelta(minutes=5), median * 1.8, median, 1.8),
        )  # fmt: skip


def fill_rollups(url: str, now: datetime) -> Any:
    """The rollups from the raw rows, by `baogong maintain`'s own function (helper R's schema/maintain.py)."""
    from schema.maintain import maintain

    return maintain(url, now=now, retention_days=35, hourly_days=180, daily_days=1095, full=True)
