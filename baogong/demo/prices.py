"""The demo's price spike: rice prices in C05 jump while the circle is under grade III, and turn into PanicBuying.

What the demo does with prices, on its own clock (`act` each tick, via the real `POST /v1/prices`):

* at the start, one price from every outlet for each necessity it carries: its usual price (the median of its
  own weekday prices of the last 28 days, with `baogong seed history`'s weekly and seasonal shape; the typical
  price with a markup for an outlet without history), so every circle has a current, calm price level beside
  its baseline;
* at `spike_at_s` (40 s, when the demo declares grade III over C05), C05's outlets report `necessity` up by
  `rise` (45 %), one of them (`gouger`) at `gouge` (2.5x) its usual price. The worker grades it both ways:
  ALPS CRISIS (about 9 sd above the baseline) and plan grade IV (a rise of more than 30 % in a day and 40 % in
  a week); `PriceSpike` pages the market supervision bureau and the gouging outlet is a lead. Under grade III
  C05's rice falls below its (raised) watch line, so the same circle and necessity also fire the combined
  signal `PanicBuying` to the circle's team and the district commerce bureau;
* once each of the two alerts has escalated a first time, its responder acknowledges it (`RESPONDERS`).

C05's outlets report once before the spike and once at it, not on every tick: the day's median (which is
tomorrow's "yesterday") then stays between the two, so a demo run tomorrow still sees its spike as a rise.

`price_history(url, ...)` writes 60 days of synthetic past prices (`schema.history_seed`) when the database
has too few days of them for a baseline, before the worker starts.
"""

from __future__ import annotations

import contextlib
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from alerts import actions
from alerts.rules.price import PANIC_RULE, SPIKE_RULE
from schema.catalogue import CARRIES, NECESSITY_BY_CODE
from schema.db import SCHEMA_DIR, connect, load_queries
from schema.demo_city import DemoCity, Outlet
from schema.history_seed import TYPICAL_PRICE, price_on, seed_history
from schema.price_store import QUERIES as PRICE_QUERIES

QUERIES = load_queries(SCHEMA_DIR / "demo.sql")
TZ = ZoneInfo("Asia/Shanghai")
BATCH = 500
HISTORY_DAYS = 60
WINDOW_DAYS = 28
#: Who acknowledges each price alert in the demo (synthetic, as schema/demo_teams.yaml), and what they say.
RESPONDERS: dict[str, tuple[str, str]] = {
    SPIKE_RULE: ("绥化市市场监管局 价格执法值班（示例）", "已派员核查涨价门店，约谈哄抬价格线索所列门店"),
    PANIC_RULE: ("松江社区保供队 值班员（示例）", "已申请投放储备大米，通知门店加密补货、限量销售"),
}


def price_history(
    url: str, now: datetime, min_days: int = 7, days: int = HISTORY_DAYS, progress: Callable[[str], None] = print
) -> str:
    """Make sure a baseline can exist: with fewer than `min_days` days of prices in the last 28, write up to
    `days` (60) days of synthetic history before today, only the days after the newest one held (nothing is
    written twice). Returns one line saying what it found or did; `progress` hears before a long write (COPY,
    then the rollups: about 10 s for 60 days of the demo city). Raises schema.db.DatabaseError."""
    today = now.astimezone(TZ).date()
    with connect(url) as conn:
        held: list[date] = [
            r["day"]
            for r in conn.execute(
                QUERIES["demo_price_days"], {"from": _midnight(today - timedelta(days=days)), "today": _midnight(today)}
            )
        ]
    recent = [d for d in held if d >= today - timedelta(days=WINDOW_DAYS)]
    if len(recent) >= min_days:
        return f"price history: {len(recent)} of the last {WINDOW_DAYS} days hold prices (baselines exist)"
    gap = days if not held else (today - held[-1]).days - 1
    if gap < 1:
        return f"price history: only {len(recent)} days; no baseline until {min_days} (baogong seed history)"
    progress(f"  writing {min(gap, days)} days of SYNTHETIC past prices and stock levels, so baselines exist…")
    done = seed_history(url, min(gap, days), now)
    return f"price history: {done.days} days, {done.prices:,} SYNTHETIC past prices written, rollups refreshed"


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=TZ)


class DemoPrices:
    """Posts the demo's prices (module doc) and says what the price watch made of them (`lines`).

    Outlets whose supplier has no key in `keys` are left out (as the stock simulator leaves them out)."""

    def __init__(
        self,
        url: str,
        city: DemoCity,
        keys: dict[str, str],
        circle_id: str = "C05",
        necessity: str = "rice",
        spike_at_s: float = 40.0,
        rise: float = 0.45,
        gouge: float = 2.5,
        seed: int = 11,
    ) -> None:
        self.url, self.keys = url, keys
        self.circle_id, self.necessity = circle_id, necessity
        self.spike_at_s, self.rise, self.gouge = spike_at_s, rise, gouge
        self.posted = self.rejected = self.round_no = 0
        self.started_at: datetime | None = None
        self._rng = random.Random(seed)
        self.outlets = [o for o in city.outlets if o.business_type in CARRIES and o.supplier_id in keys]
        self.markup = {(o.id, n): self._rng.uniform(0.92, 1.08) for o in self.outlets for n in CARRIES[o.business_type]}
        self.usual = self._usual(datetime.now(TZ).date())
        self.acknowledged: set[str] = set()
        self.spiked = [o for o in self.outlets if circle_id in o.circle_ids and necessity in CARRIES[o.business_type]]
        home = sorted(
            (o for o in self.spiked if o.circle_ids[0] == circle_id),
            key=lambda o: (o.business_type != "supermarket", o.id),
        )
        self.gouger: Outlet | None = home[0] if home else None

    def act(self, client: httpx.Client, api: str, elapsed_s: float, now: datetime) -> None:
        """Post the start round on the first call and the spike once `spike_at_s` has passed; never raises
        for a refused post (counted in `rejected`), only for a failed connection (httpx.HTTPError)."""
        if self.round_no == 0:
            self.started_at = now
            self._post(client, api, self.prices(self.outlets, now, spiking=False))
            self.round_no = 1
        elif self.round_no == 1 and elapsed_s >= self.spike_at_s:
            self._post(client, api, self.prices(self.spiked, now, spiking=True, only=self.necessity))
            self.round_no = 2
        elif self.round_no == 2 and len(self.acknowledged) < len(RESPONDERS):
            self._acknowledge(now)

    def _acknowledge(self, now: datetime) -> None:
        """Each price alert is acknowledged by its responder once it has escalated a first time (as the
        shortage team does), through the same function as `baogong alerts ack`."""
        with connect(self.url) as conn:
            for rule, (actor, note) in RESPONDERS.items():
                row = conn.execute(
                    QUERIES["demo_alert_of"],
                    {"rule": rule, "circle_id": self.circle_id, "necessity": self.necessity, "since": self.started_at},
                ).fetchone()
                if rule in self.acknowledged or row is None or row["state"] != "firing":
                    continue
                if int(row["escalation_level"] or 0) >= 1:
                    with contextlib.suppress(actions.ActionRefused):  # resolved or acknowledged meanwhile
                        actions.acknowledge(conn, int(row["id"]), actor, now, note, via="demo")
                    self.acknowledged.add(rule)

    def _usual(self, today: date) -> dict[tuple[str, str], float]:
        """Each outlet's usual price without shape: the median of its weekday prices of the last 28 days, taken as
        the price of the window's middle weekday (the seed's seasonal shape moves a fraction of a percent a week)."""
        with connect(self.url) as conn:
            rows = conn.execute(
                QUERIES["demo_usual_prices"],
                {"from": _midnight(today - timedelta(days=WINDOW_DAYS)), "today": _midnight(today)},
            ).fetchall()
        ref = today - timedelta(days=WINDOW_DAYS // 2)
        while ref.weekday() >= 5:
            ref -= timedelta(days=1)
        return {(r["outlet_id"], r["necessity"]): float(r["price"]) / _shape(ref) for r in rows}

    def prices(
        self, outlets: list[Outlet], now: datetime, *, spiking: bool, only: str | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Price records at `now` grouped by supplier: each outlet's usual price (seed history's shape), or in
        a spike `1 + rise` times it (`gouge` times for the gouger). Pure but for the noise."""
        day = now.astimezone(TZ).date()
        stamp = now.isoformat(timespec="seconds")
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for o in outlets:
            for n in CARRIES[o.business_type]:
                if only is not None and n != only:
                    continue
                noise = self._rng.uniform(0.98, 1.02)
                held = self.usual.get((o.id, n))
                usual = (
                    round(held * _shape(day) * noise, 2)
                    if held is not None
                    else price_on(TYPICAL_PRICE.get(n, 10.0), self.markup[(o.id, n)], day, noise)
                )
                factor = (self.gouge if o is self.gouger else 1 + self.rise) if spiking else 1.0
                out[o.supplier_id].append(
                    {
                        "outlet_id": o.id,
                        "necessity": n,
                        "price": round(usual * factor, 2),
                        "unit": _unit(n),
                        "reported_at": stamp,
                    }
                )
        return out

    def _post(self, client: httpx.Client, api: str, by_supplier: dict[str, list[dict[str, Any]]]) -> None:
        for supplier, records in by_supplier.items():
            for i in range(0, len(records), BATCH):
                r = client.post(
                    f"{api}/v1/prices", json=records[i : i + BATCH], headers={"X-API-Key": self.keys[supplier]}
                )
                if r.status_code == 200:
                    self.posted += int(r.json()["accepted"])
                else:
                    self.rejected += len(records[i : i + BATCH])

    def lines(self) -> list[str]:
        """What the terminal shows: the circle's price level graded both ways, its leads and PanicBuying."""
        when = "done" if self.round_no >= 2 else f"at t={self.spike_at_s:.0f}s"
        head = (
            f"price watch: {self.posted:,} prices posted"
            + (f" ({self.rejected:,} refused)" if self.rejected else "")
            + f"; {self.necessity} in {self.circle_id} +{self.rise:.0%} with one outlet at {self.gouge:g}x: {when}"
        )
        with connect(self.url) as conn:
            level = conn.execute(
                QUERIES["demo_price_level"], {"circle_id": self.circle_id, "necessity": self.necessity}
            ).fetchone()
            leads = conn.execute(
                PRICE_QUERIES["price_leads"],
                {"since": datetime.now(TZ).date(), "circle": self.circle_id, "necessity": self.necessity},
            ).fetchall()
            alerts = (
                {
                    rule: conn.execute(
                        QUERIES["demo_alert_of"],
                        {
                            "rule": rule,
                            "circle_id": self.circle_id,
                            "necessity": self.necessity,
                            "since": self.started_at,
                        },
                    ).fetchone()
                    for rule in (SPIKE_RULE, PANIC_RULE)
                }
                if self.started_at
                else {}
            )
        out = [head, f"  {self.circle_id} {self.necessity}: {_graded(level)}", f"  {_alerts(alerts)}"]
        out.extend(
            f"  gouging lead for the market supervision bureau: {r['outlet_name'] or r['outlet_id']} "
            f"{r['price']:.2f} CNY/{r['unit']} against the circle's {r['circle_price']:.2f}"
            for r in leads[:2]
        )
        return out


def _shape(day: date) -> float:
    """The weekly and seasonal shape of `baogong seed history`'s prices on `day` (1.0 = no shape)."""
    return price_on(10_000.0, 1.0, day, 1.0) / 10_000.0


def _unit(necessity: str) -> str:
    return NECESSITY_BY_CODE[necessity].unit


def _graded(level: dict[str, Any] | None) -> str:
    if level is None:
        return "no price level yet (the worker grades prices every few seconds)"
    if level["stale"]:
        return "no fresh prices: UNKNOWN"

    def pct(x: float | None) -> str:
        return "?" if x is None else f"{x:+.0%}"

    base = "?" if level["baseline"] is None else f"{level['baseline']:.2f}"
    dev = "?" if level["deviation"] is None else f"{level['deviation']:+.1f} sd"
    return (
        f"{level['price']:.2f} CNY against a baseline of {base} — ALPS {level['phase']} ({dev}), "
        f"plan grade {level['plan_grade']} (day {pct(level['rise_day'])}, week {pct(level['rise_week'])}); "
        f"{level['outlets']} outlets"
    )


def _alerts(alerts: dict[str, dict[str, Any] | None]) -> str:
    def one(row: dict[str, Any] | None) -> str:
        return "none" if row is None else f"{row['state']} ({row['severity']})"

    spike, panic = one(alerts.get(SPIKE_RULE)), one(alerts.get(PANIC_RULE))
    return f"PriceSpike {spike}; PanicBuying (price spike + stock below the watch line) {panic}"
