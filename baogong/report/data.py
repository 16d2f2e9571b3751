"""The report's data: named queries (schema/report.sql) in, tidy tables out.

`fetch` is the only function here that talks to the database; every other one is pure (DataFrames in,
DataFrames or plain values out) so the shaping is tested without one.

The day is an Asia/Shanghai calendar day: [D 00:00 +08, D+1 00:00 +08), cut at `now` when D is today.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg

from schema.db import SCHEMA_DIR, Row, load_queries

SHANGHAI = ZoneInfo("Asia/Shanghai")
QUERIES = load_queries(SCHEMA_DIR / "report.sql")

#: Worst first, the rollups' order.
STATUS_ORDER = ("CRITICAL", "SHORTAGE", "STALE", "WATCH", "OK")
STATUS_ZH = {"CRITICAL": "严重短缺", "SHORTAGE": "短缺", "STALE": "数据不足", "WATCH": "关注", "OK": "正常"}
SEVERITY_ZH = {"critical": "严重", "high": "紧张", "warning": "警告", "info": "提示"}
RULE_ZH = {"shortage": "短缺", "feed_quality": "数据质量", "pipeline": "数据管道", "price": "价格"}
DEMAND_ZH = {"observed": "按实际销量", "population": "按人口测算"}
#: A supplier whose last accepted record is older than this at the window's end reports late.
LATE_AFTER = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class Window:
    day: date
    start: datetime
    end: datetime
    prev_start: datetime
    partial: bool  # the day is today: the window ends now

    def params(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "prev_start": self.prev_start}


def window(day: date, now: datetime) -> Window:
    """The Shanghai day `day`, ending at `now` if it has not ended yet."""
    start = datetime.combine(day, time(), SHANGHAI)
    end = start + timedelta(days=1)
    partial = now < end
    return Window(day, start, min(end, max(now, start)), start - timedelta(days=1), partial)


@dataclass(frozen=True)
class Raw:
    """What the queries answered, one DataFrame each (columns as in schema/report.sql)."""

    circles: pd.DataFrame
    necessities: pd.DataFrame
    status_days: pd.DataFrame
    hourly: pd.DataFrame
    last_levels: pd.DataFrame
    alerts: pd.DataFrame
    feed: pd.DataFrame


def _frame(rows: list[Row], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def fetch(conn: psycopg.Connection[Row], w: Window) -> Raw:
    """Run every report query for the window (the I/O)."""
    frames = {}
    for key, name in (
        ("circles", "report_circles"),
        ("necessities", "report_necessities"),
        ("status_days", "report_status_days"),
        ("hourly", "report_days_hourly"),
        ("last_levels", "report_last_levels"),
        ("alerts", "report_alerts"),
        ("feed", "report_feed"),
    ):
        cur = conn.execute(QUERIES[name], w.params())
        columns = [d.name for d in cur.description or ()]
        frames[key] = _frame(cur.fetchall(), columns)
    return Raw(**frames)


# ---------------------------------------------------------------- pure shaping


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def rank(status: str | None) -> int:
    """0 for CRITICAL … 4 for OK; 5 for no status."""
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)


def names(raw: Raw) -> tuple[dict[str, str], dict[str, str]]:
    """Circle id -> name, necessity code -> Chinese name."""
    circles = dict(zip(raw.circles["circle_id"], raw.circles["name"], strict=True))
    necessities = dict(zip(raw.necessities["necessity"], raw.necessities["name_zh"], strict=True))
    return circles, necessities


def status_matrix(raw: Raw) -> pd.DataFrame:
    """Circles (rows, by id) x necessities (columns, by code): the day's worst status; NaN where no level."""
    today = raw.status_days[raw.status_days["today"]] if len(raw.status_days) else raw.status_days
    grid = pd.DataFrame(index=list(raw.circles["circle_id"]), columns=list(raw.necessities["necessity"]), dtype=object)
    for r in today.itertuples(index=False):
        if r.circle_id in grid.index and r.necessity in grid.columns:
            grid.loc[r.circle_id, r.necessity] = r.status_worst
    return grid


def days_matrix(raw: Raw) -> pd.DataFrame:
    """Circles x necessities: the day's lowest days of supply (NaN where none)."""
    today = raw.status_days[raw.status_days["today"]] if len(raw.status_days) else raw.status_days
    grid = pd.DataFrame(index=list(raw.circles["circle_id"]), columns=list(raw.necessities["necessity"]), dtype=float)
    for r in today.itertuples(index=False):
        if r.circle_id in grid.index and r.necessity in grid.columns:
            v = _num(r.days_min)
            grid.loc[r.circle_id, r.necessity] = math.nan if v is None else v
    return grid


def status_counts(raw: Raw) -> dict[str, int]:
    """How many circle x necessity pairs had each worst status in the day (every status, zero included)."""
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for value in status_matrix(raw).to_numpy().ravel():
        if value in counts:
            counts[value] += 1
    return counts


def _levels(raw: Raw, today: bool) -> dict[tuple[str, str], dict[str, Any]]:
    if not len(raw.last_levels):
        return {}
    rows = raw.last_levels[raw.last_levels["today"] == today]
    return {(r["circle_id"], r["necessity"]): r for r in rows.to_dict("records")}


def _worst(raw: Raw, today: bool) -> dict[tuple[str, str], str]:
    if not len(raw.status_days):
        return {}
    rows = raw.status_days[raw.status_days["today"] == today]
    return {(r.circle_id, r.necessity): r.status_worst for r in rows.itertuples(index=False)}


def _fmt_days(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} 天"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.0%}"


def reasons(level: dict[str, Any] | None, worst: str | None, before: dict[str, Any] | None, nec: dict[str, Any]) -> str:
    """Why a circle's necessity is at risk, in Chinese, from its numbers."""
    out: list[str] = []
    status = level["status"] if level else None
    days = _num(level["days_of_supply"]) if level else None
    if level is None:
        out.append("今日无库存水平数据")
    elif status in ("CRITICAL", "SHORTAGE", "WATCH") and days is not None:
        line, what = (
            (nec["critical_days"], "严重短缺线")
            if status == "CRITICAL"
            else (nec["shortage_days"], "短缺线")
            if status == "SHORTAGE"
            else (nec["watch_days"], "关注线")
        )
        out.append(f"可供 {days:.1f} 天，低于{what} {float(line):g} 天")
    elif status == "STALE":
        cov, cov_stock, floor = _num(level["coverage"]), _num(level["coverage_stock"]), float(nec["min_coverage"])
        if cov is not None and cov < floor:
            out.append(
                f"按时报送门店仅 {cov:.0%}（{level['outlets_fresh']}/{level['outlets_expected']}），低于 {floor:.0%}"
            )
        if cov_stock is not None and cov_stock < floor:
            out.append(f"可确认库存占比 {cov_stock:.0%}，低于 {floor:.0%}")
        if len(out) == 0:
            out.append("库存状况未知")
    if worst is not None and status is not None and rank(worst) < rank(status):
        out.append(f"今日最差曾为{STATUS_ZH[worst]}，现已{STATUS_ZH.get(status, status)}")
    if level is not None and (_num(level["stock_unconfirmed"]) or 0) > 0:
        age = _num(level["unconfirmed_age_s"])
        when = f"，最早 {age / 3600:.0f} 小时前" if age is not None else ""
        out.append(f"另有未确认库存 {float(level['stock_unconfirmed']):,.0f} {nec['unit']}（不计入{when}）")
    if before is not None and level is not None and before["status"] != status:
        out.append(f"昨日末为{STATUS_ZH.get(before['status'], before['status'])}")
    return "；".join(out)


def at_risk(raw: Raw) -> pd.DataFrame:
    """Every circle x necessity not OK in the day (worst or last status), worst first, with why."""
    circles, necessity_names = names(raw)
    nec = {r["necessity"]: r for r in raw.necessities.to_dict("records")}
    now, before, worst = _levels(raw, True), _levels(raw, False), _worst(raw, True)
    rows = []
    for key in sorted(set(now) | set(worst)):
        level, w = now.get(key), worst.get(key)
        status = level["status"] if level else None
        if (w in (None, "OK")) and status in (None, "OK"):
            continue
        circle, necessity = key
        if necessity not in nec:
            continue
        rows.append(
            {
                "circle_id": circle,
                "circle": circles.get(circle, circle),
                "necessity": necessity,
                "necessity_zh": necessity_names.get(necessity, necessity),
                "status_worst": w,
                "status": status,
                "days": _num(level["days_of_supply"]) if level else None,
                "coverage": _num(level["coverage"]) if level else None,
                "coverage_stock": _num(level["coverage_stock"]) if level else None,
                "demand_source": DEMAND_ZH.get(level["demand_source"], "") if level else "",
                "daily_demand": _num(level["daily_demand"]) if level else None,
                "unit": nec[necessity]["unit"],
                "why": reasons(level, w, before.get(key), nec[necessity]),
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "circle_id",
            "circle",
            "necessity",
            "necessity_zh",
            "status_worst",
            "status",
            "days",
            "coverage",
            "coverage_stock",
            "demand_source",
            "daily_demand",
            "unit",
            "why",
        ],
    )
    if len(frame):
        frame["_r"] = [min(rank(a), rank(b)) for a, b in zip(frame["status_worst"], frame["status"], strict=True)]
        frame = frame.sort_values(["_r", "days", "circle_id", "necessity"], na_position="last").drop(columns="_r")
    return frame.reset_index(drop=True)


def _minutes(a: Any, b: Any) -> float | None:
    if a is None or b is None or pd.isna(a) or pd.isna(b):
        return None
    return (pd.Timestamp(b) - pd.Timestamp(a)).total_seconds() / 60.0


def handling(raw: Raw) -> pd.DataFrame:
    """The day's alerts with their handling times in minutes: page -> ack, page -> resolved, ack -> resolved."""
    circles, necessity_names = names(raw)
    rows = []
    for a in raw.alerts.to_dict("records"):
        rows.append(
            {
                **a,
                "circle": circles.get(a["circle_id"], a["circle_id"] or "全市"),
                "necessity_zh": necessity_names.get(a["necessity"], a["necessity"] or "—"),
                "rule_zh": RULE_ZH.get(a["rule"], a["rule"]),
                "severity_zh": SEVERITY_ZH.get(a["severity"], a["severity"]),
                "ack_min": _minutes(a["paged_at"], a["acknowledged_at"]),
                "resolve_min": _minutes(a["paged_at"], a["resolved_at"]),
                "ack_to_resolve_min": _minutes(a["acknowledged_at"], a["resolved_at"]),
                "dispatch_min": _minutes(a["acknowledged_at"], a["dispatched_at"]),
            }
        )
    return pd.DataFrame(rows)


def handling_summary(h: pd.DataFrame) -> dict[str, Any]:
    """Counts and medians over the day's alerts (minutes; None where nothing to measure)."""
    if not len(h):
        return {
            "alerts": 0,
            "acknowledged": 0,
            "resolved": 0,
            "escalated": 0,
            "open": 0,
            "ack_median": None,
            "resolve_median": None,
            "tasks": 0,
        }

    def median(col: str) -> float | None:
        values = [v for v in h[col] if v is not None and not pd.isna(v)]
        return float(pd.Series(values).median()) if values else None

    return {
        "alerts": len(h),
        "acknowledged": int(h["ack_min"].notna().sum()),
        "resolved": int(h["resolve_min"].notna().sum()),
        "escalated": int((h["escalations"] > 0).sum()),
        "open": int((h["state"] != "resolved").sum()),
        "ack_median": median("ack_min"),
        "resolve_median": median("resolve_min"),
        "tasks": int(h["task_id"].notna().sum()),
    }


def feed(raw: Raw, w: Window, late_after: timedelta = LATE_AFTER) -> pd.DataFrame:
    """Per supplier: counts, rejected share, and a verdict: 正常, 迟报 (late), 静默 (silent all day)."""
    rows = []
    for r in raw.feed.to_dict("records"):
        total = int(r["accepted"]) + int(r["rejected"])
        last = r["last_accepted"]
        last = None if last is None or pd.isna(last) else pd.Timestamp(last).to_pydatetime()
        if int(r["accepted"]) == 0:
            verdict = "静默"
        elif last is not None and w.end - last > late_after:
            verdict = "迟报"
        else:
            verdict = "正常"
        rows.append(
            {
                **r,
                "rejected_share": (int(r["rejected"]) / total) if total else None,
                "last_accepted": last,
                "silent_for_h": (w.end - last).total_seconds() / 3600 if last is not None else None,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


def changes(raw: Raw) -> pd.DataFrame:
    """Circle x necessity whose status differs from the day before (last level of each day), worst first."""
    circles, necessity_names = names(raw)
    now, before = _levels(raw, True), _levels(raw, False)
    rows = []
    for key in sorted(set(now) | set(before)):
        a, b = before.get(key), now.get(key)
        was, is_ = (a["status"] if a else None), (b["status"] if b else None)
        if was == is_:
            continue
        d0, d1 = (_num(a["days_of_supply"]) if a else None), (_num(b["days_of_supply"]) if b else None)
        rows.append(
            {
                "circle_id": key[0],
                "circle": circles.get(key[0], key[0]),
                "necessity_zh": necessity_names.get(key[1], key[1]),
                "was": was,
                "is": is_,
                "days_was": d0,
                "days_is": d1,
                "worse": rank(is_) < rank(was),
            }
        )
    frame = pd.DataFrame(
        rows, columns=["circle_id", "circle", "necessity_zh", "was", "is", "days_was", "days_is", "worse"]
    )
    if len(frame):
        frame = frame.assign(_r=[rank(s) for s in frame["is"]]).sort_values(["_r", "circle_id"]).drop(columns="_r")
    return frame.reset_index(drop=True)
