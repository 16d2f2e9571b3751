"""`baogong prices …`: grade prices now, list price levels, and gouging leads for the market supervision bureau.

    baogong prices refresh            one price pass now (what the worker's leader does every price_every_s)
    baogong prices show [--circle C] [--necessity N] [--all]   the newest levels (default: the ones not normal)
    baogong prices leads [--circle C] [--necessity N] [--days D]   outlets far above their circle's median
                                      during a spike, each with its daily prices (市场监管局 线索)

Exit status: 0 done; 2 a bad argument; the database's own errors as `baogong` reports them.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from baogong.settings import Settings
from schema.db import connect
from schema.price_store import latest_levels, leads, outlet_history, refresh, rules_from, shanghai_day
from schema.prices import CITY

PHASE_ZH = {"NORMAL": "正常", "STRESS": "关注", "ALERT": "预警", "CRISIS": "危机", "UNKNOWN": "未知"}


def _pct(x: float | None) -> str:
    return "   —  " if x is None else f"{x:+6.0%}"


def _money(x: float | None) -> str:
    return "    —" if x is None else f"{x:7.2f}"


def _refresh(settings: Settings, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    with connect(settings.database_url.get_secret_value()) as conn:
        done = refresh(conn, now, rules_from(settings), settings.price_fresh_h)
    spiking = [lv for lv in done.levels if lv.grade.spiking]
    stale = [lv for lv in done.levels if lv.grade.stale]
    print(
        f"graded {len(done.levels)} price levels for {shanghai_day(now)}: {len(spiking)} spiking, "
        f"{len(stale)} stale (unknown), {len(done.leads)} gouging leads"
    )
    for lv in spiking:
        g = lv.grade
        print(
            f"  {lv.circle_id:6} {lv.necessity:14} {_money(g.price)} vs {_money(g.baseline)}  "
            f"{g.phase.value:8} plan {g.plan_grade:7} day {_pct(g.rise_day)} week {_pct(g.rise_week)}"
        )
    return 0


def _show(settings: Settings, args: argparse.Namespace) -> int:
    with connect(settings.database_url.get_secret_value()) as conn:
        rows = latest_levels(conn)
    rows = [
        r
        for r in rows
        if (args.circle is None or r["circle_id"] == args.circle)
        and (args.necessity is None or r["necessity"] == args.necessity)
        and (args.all or r["phase"] != "NORMAL" or r["plan_grade"] != "NONE")
    ]
    if not rows:
        print("no price levels" + ("" if args.all else " that are not normal (--all shows every one)"))
        return 0
    head = f"{'circle':6} {'necessity':14} {'price':>7} {'base':>7} {'dev':>6} {'ALPS':8} {'plan':7}"
    print(f"{head} {'day':>6} {'week':>6}")
    for r in rows:
        dev = "     —" if r["deviation"] is None else f"{r['deviation']:6.1f}"
        print(
            f"{r['circle_id']:6} {r['necessity']:14} {_money(r['price'])} {_money(r['baseline'])} {dev} "
            f"{r['phase']:8} {r['plan_grade']:7} {_pct(r['rise_day'])} {_pct(r['rise_week'])}"
            + ("  (stale)" if r["stale"] else "")
        )
    return 0


def _leads(settings: Settings, args: argparse.Namespace) -> int:
    if args.days < 1:
        print("baogong: --days must be at least 1")
        return 2
    now = datetime.now(UTC)
    since = shanghai_day(now) - timedelta(days=args.days - 1)
    with connect(settings.database_url.get_secret_value()) as conn:
        found = leads(conn, since, args.circle, args.necessity)
        histories: dict[tuple[str, str, str], list[Any]] = {
            (r["outlet_id"], r["necessity"], r["circle_id"]): outlet_history(
                conn, r["outlet_id"], r["necessity"], r["circle_id"], now - timedelta(days=14)
            )
            for r in found
        }
    if not found:
        print(f"no gouging leads since {since}")
        return 0
    above = f"{settings.price_gouging_ratio:.0%}"
    print(f"gouging leads since {since} (price above the circle's median by more than {above}):")
    for r in found:
        print(
            f"\n{r['day']}  {r['circle_id']}  {r['outlet_name']} ({r['outlet_id']}, "
            f"{r['supplier_name'] or r['supplier_id']})"
            f"  {r['necessity_name']} {r['price']:.2f} 元/{r['unit']} vs circle median {r['circle_price']:.2f}"
            f"  (x{r['ratio_max']:.2f} at worst; ALPS {r['phase']}, plan {r['plan_grade']};"
            f" seen {r['first_at']:%H:%M}–{r['last_at']:%H:%M} UTC)"
        )
        for h in histories[(r["outlet_id"], r["necessity"], r["circle_id"])]:
            circle = "" if h["circle_price"] is None else f"   circle {h['circle_price']:.2f}"
            print(f"    {h['day']}  low {h['low']:.2f}  high {h['high']:.2f}  last {h['last']:.2f}{circle}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("prices", help="price watch: grade prices, levels, gouging leads")
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("refresh", help="one price pass now").set_defaults(func=_refresh)
    q = actions.add_parser("show", help="the newest price levels")
    q.add_argument("--circle", help=f"one circle ('{CITY}' for the city)")
    q.add_argument("--necessity")
    q.add_argument("--all", action="store_true", help="normal ones too")
    q.set_defaults(func=_show)
    q = actions.add_parser("leads", help="gouging leads for the market supervision bureau")
    q.add_argument("--circle")
    q.add_argument("--necessity")
    q.add_argument("--days", type=int, default=7, help="leads of the last D days (default 7)")
    q.set_defaults(func=_leads)
