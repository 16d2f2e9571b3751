"""The daily situation report on the real PostgreSQL: a day built here, every figure worked out by hand.

Day D = 2024-06-03 (Asia/Shanghai). Rice: watch 7 / shortage 3 / critical 1 days; milk: 4 / 2 / 1;
both min coverage 0.5. A level every hour of D-1 and D for each circle and necessity:

    circle                      rice                                        milk
    A 北林区·东升社区生活圈      OK, 8 days all along                       OK 6 days; D from 20:00 STALE
                                                                            (coverage 1/4 = 25%, no days)
    B 北林区·西林社区生活圈      OK 8 days; D 09:00-12:00 SHORTAGE 2 days,   OK 6 days all along
                                 D from 13:00 WATCH 5 days (restocked)

B's rice shortage alert: paged 09:05, escalated 09:15, acknowledged 09:17 by 张三 (12 minutes), task
dispatched 09:40 (23 minutes after), delivered 12:50, resolved by recovery 13:35 (page -> resolved
4 h 30 min). Feed health on D: 东方连锁 100 accepted every hour at :30 (2,400), 3 rejected, 5 duplicates;
王记菜场 nothing on D (one record on D-1: silent); 李记粮油 50 an hour 00:30-15:30 only (800; last 15:30,
more than 2 h before midnight: late).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import warnings
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from matplotlib import image as mpimg

from baogong.report import write_report
from schema.db import connect
from schema.maintain import engine, maintain

SH = ZoneInfo("Asia/Shanghai")
D = date(2024, 6, 3)
START = datetime(2024, 6, 3, tzinfo=SH)
A_NAME, B_NAME = "北林区·东升社区生活圈", "北林区·西林社区生活圈"


def at(hh: int, mm: int = 0, day: int = 0) -> datetime:
    return START + timedelta(days=day, hours=hh, minutes=mm)


def level(circle: str, necessity: str, t: datetime) -> tuple[str, float | None, float, int]:
    """(status, days, coverage, outlets_fresh of 4) at t."""
    today = t >= START
    if circle == "B" and necessity == "rice" and today and 9 <= t.hour <= 12:
        return "SHORTAGE", 2.0, 1.0, 4
    if circle == "B" and necessity == "rice" and today and t.hour >= 13:
        return "WATCH", 5.0, 1.0, 4
    if circle == "A" and necessity == "milk" and today and t.hour >= 20:
        return "STALE", None, 0.25, 1
    return "OK", 8.0 if necessity == "rice" else 6.0, 1.0, 4


def build_day(url: str) -> None:
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO necessities (code, name_zh, name_en, unit, per_capita_daily, watch_days, shortage_days, "
            "critical_days, freshness_minutes, min_coverage) VALUES "
            "('rice', '大米', 'rice', 'kg', 0.25, 7, 3, 1, 1440, 0.5), "
            "('milk', '牛奶', 'milk', 'L', 0.10, 4, 2, 1, 720, 0.5)"
        )
        conn.execute(
            "INSERT INTO suppliers (id, name, kind) VALUES ('s1', '东方连锁', 'chain'), "
            "('s2', '王记菜场', 'market'), ('s3', '李记粮油', 'independent')"
        )
        for cid, name, population in (("A", A_NAME, 1000), ("B", B_NAME, 2000)):
            conn.execute(
                "INSERT INTO circles (id, name, center_lat, center_lon, district) "
                "VALUES (%s, %s, 46.65, 126.97, '北林区')",
                (cid, name),
            )
            conn.execute(
                "INSERT INTO communities (id, name, street_office, population, circle_id) "
                "VALUES (%s, %s, 'st', %s, %s)",
                (f"{cid}-1", f"{cid}社区", population, cid),
            )
        rows = []
        for day in (-1, 0):
            for hh in range(24):
                t = at(hh, 10, day)
                for cid, population in (("A", 1000), ("B", 2000)):
                    for nec, per_capita in (("rice", 0.25), ("milk", 0.10)):
                        status, days, coverage, fresh = level(cid, nec, t)
                        demand = population * per_capita
                        stock = (days or 0.0) * demand
                        rows.append((t, cid, nec, stock, demand, days, coverage, 4, fresh, status, coverage))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO circle_levels (computed_at, circle_id, necessity, stock, daily_demand, days_of_supply, "
                "coverage, outlets_expected, outlets_fresh, status, coverage_stock) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
        alert_id = conn.execute(
            "INSERT INTO alerts (fingerprint, rule, circle_id, necessity, severity, state, labels, annotations, "
            "pending_since, starts_at, ends_at, acknowledged_at, acknowledged_by, escalation_level, teams) "
            "VALUES ('fp-B-rice', 'shortage', 'B', 'rice', 'high', 'resolved', '{}', '{}', %s, %s, %s, %s, '张三', 1, "
            "'{b-team,district}') RETURNING id",
            (at(9, 0), at(9, 5), at(13, 35), at(9, 17)),
        ).fetchone()["id"]  # type: ignore[index]
        for t, kind, actor in (
            (at(9, 5), "fired", "dispatcher"),
            (at(9, 15), "escalated", "dispatcher"),
            (at(9, 17), "acknowledged", "张三"),
            (at(9, 17), "task_opened", "张三"),
            (at(9, 40), "task_dispatched", "张三"),
            (at(12, 50), "task_delivered", "李四"),
            (at(13, 35), "resolved", "dispatcher"),
            (at(13, 35), "task_closed", "dispatcher"),
        ):
            conn.execute(
                "INSERT INTO alert_events (alert_id, at, kind, actor) VALUES (%s, %s, %s, %s)",
                (alert_id, t, kind, actor),
            )
        conn.execute(
            "INSERT INTO supply_tasks (alert_id, circle_id, necessity, target_days, target_quantity, state, paged_at, "
            "acknowledged_at, opened_at, opened_by, dispatched_at, dispatched_by, delivered_at, delivered_by, "
            "closed_at, recovered_at) VALUES (%s, 'B', 'rice', 7, 2500, 'closed', %s, %s, %s, '张三', %s, '张三', "
            "%s, '李四', %s, %s)",
            (alert_id, at(9, 5), at(9, 17), at(9, 17), at(9, 40), at(12, 50), at(13, 35), at(13, 35)),
        )
        feed = [("s2", at(11, 30, -1), "http", 7, 0, 0)]
        for hh in range(24):
            feed.append(("s1", at(hh, 30), "http", 100, 3 if hh == 10 else 0, 5 if hh == 11 else 0))
            if hh <= 15:
                feed.append(("s3", at(hh, 30), "kafka", 50, 0, 0))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO feed_health (supplier_id, minute, source, accepted, rejected, duplicates) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                feed,
            )


class GlyphWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def check_png(path: Path) -> None:
    """A real chart: a PNG of printable size whose pixels are not all alike, with some ink on white."""
    assert path.stat().st_size > 5_000, path
    img = mpimg.imread(path)
    height, width = img.shape[:2]
    assert width >= 900 and height >= 250, (path, img.shape)
    grey = np.asarray(img[..., :3]).mean(axis=2)
    assert float(grey.var()) > 0.005, f"{path} is nearly blank"
    assert 0.005 < float((grey < 0.6).mean()) < 0.6, f"{path}: no plausible amount of ink"


def test_report_day(database_url: str, tmp_path: Path) -> None:
    build_day(database_url)
    lines: list[str] = []
    catch = GlyphWarnings()
    logging.getLogger("matplotlib").addHandler(catch)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            page = write_report(database_url, D, tmp_path, now=at(9, 0, 2), progress=lines.append)
    finally:
        logging.getLogger("matplotlib").removeHandler(catch)
    missing = [m for m in catch.messages + [str(w.message) for w in caught] if "missing from" in m or "Glyph" in m]
    assert missing == [], f"the charts lack glyphs (tofu): {missing[:3]}"
    assert any("Chinese font" in line for line in lines) and any("wrote" in line for line in lines), lines

    text = page.read_text(encoding="utf-8")
    assert page.name == "report-2024-06-03.html"
    assert "2024年06月03日（星期一）" in text and "@media print" in text and "size: A4" in text
    assert A_NAME in text and B_NAME in text
    assert "3,000 人" in text  # two circles, 1,000 + 2,000 residents

    # Circles at risk and why: B's rice (worst SHORTAGE, now WATCH at 5 days), A's milk (STALE, 1 of 4 fresh).
    risk = text.split("二、风险生活圈及原因")[1].split("三、告警与处置")[0]
    assert risk.index(B_NAME) < risk.index(A_NAME)  # the worse first
    assert "可供 5.0 天，低于关注线 7 天；今日最差曾为短缺，现已关注；昨日末为正常" in risk
    assert "按时报送门店仅 25%（1/4），低于 50%" in risk
    assert "按人口测算" in risk
    assert "东升社区生活圈</td><td>大米" not in risk  # A's rice was OK all day

    # Alerts and how fast: page 09:05 -> ack 09:17 (12 min) -> resolved 13:35 (4 h 30 min), escalated once.
    alerts = text.split("三、告警与处置")[1].split("四、数据报送情况")[0]
    assert "当日告警 1 条：已确认 1，已解除 1，升级 1，未关闭 0；调货任务 1 个" in alerts
    assert "发出→确认中位数 12 分钟，发出→解除中位数 4 小时 30 分" in alerts
    assert "09:05" in alerts and "09:17（12 分钟） 张三" in alerts and "13:35（4 小时 30 分） 自动恢复" in alerts
    assert "1 次" in alerts and "已关闭，确认后 23 分钟 派出" in alerts

    # Feed health: totals of the day, the silent and the late supplier.
    feed = text.split("四、数据报送情况")[1].split("五、与昨日相比")[0]
    cells = ["2,400", "3", "0%", "5", "0", "24"]
    assert "东方连锁</td>" + "".join(f'<td class="n">{c}</td>' for c in cells) + "<td>23:30</td><td>正常" in feed
    assert re.search(r"王记菜场</td><td class=\"n\">0</td>.*?静默", feed)
    assert re.search(
        r"李记粮油</td><td class=\"n\">800</td>.*?<td class=\"n\">16</td><td>15:30</td><td><b[^>]*>迟报", feed
    )

    # What changed since yesterday: B rice OK -> WATCH (8.0 -> 5.0), A milk OK -> STALE; nothing else.
    changed = text.split("五、与昨日相比")[1]
    assert "8.0 → 5.0" in changed and "6.0 → —" in changed
    assert changed.count("恶化") == 2 and "好转" not in changed

    pngs = re.findall(r'<img src="([^"]+)"', text)
    assert sorted(pngs) == [f"report-2024-06-03-{k}.png" for k in ("feed", "handling", "status", "trend")]
    for name in pngs:
        check_png(tmp_path / name)

    # After `baogong maintain` the hours come from the rollups (all but the newest hour): the same page. (Not on
    # TimescaleDB: its retention, counting from the server's clock, drops a day from 2024.)
    with connect(database_url) as conn:
        if engine(conn).timescaledb:
            return
    done = maintain(database_url, now=at(9, 0, 2), retention_days=35, hourly_days=180, daily_days=1095)
    assert done.ok
    with connect(database_url) as conn:
        rolled = conn.execute("SELECT count(*) AS n FROM circle_levels_hourly").fetchone()
        fed = conn.execute("SELECT count(*) AS n FROM feed_health_hourly").fetchone()
    assert rolled is not None and rolled["n"] == 2 * 2 * 48 and fed is not None and fed["n"] > 0
    again = write_report(database_url, D, tmp_path / "rolled", now=at(9, 0, 2), progress=lambda _: None)
    assert again.read_text(encoding="utf-8") == text


def test_report_cli(database_url: str, tmp_path: Path) -> None:
    build_day(database_url)
    env = {**os.environ, "BAOGONG_DATABASE_URL": database_url}
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "baogong.cli", "report", "--date", "2024-06-03", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    page = out / "report-2024-06-03.html"
    assert f"report: {page.resolve()}" in done.stdout
    assert "chart report-2024-06-03-status.png" in done.stdout  # progress lines while it renders
    assert B_NAME in page.read_text(encoding="utf-8")
    check_png(out / "report-2024-06-03-status.png")

    bad = subprocess.run(
        [sys.executable, "-m", "baogong.cli", "report", "--date", "3 June", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "not a date (YYYY-MM-DD)" in bad.stderr


@pytest.mark.parametrize("hh", [14])
def test_report_today_is_cut_at_now(database_url: str, tmp_path: Path, hh: int) -> None:
    """A report for the day still running reads up to now: at 14:00 B's rice is WATCH, A's milk still OK."""
    build_day(database_url)
    text = write_report(database_url, D, tmp_path, now=at(hh), progress=lambda _: None).read_text(encoding="utf-8")
    assert "数据截至 06月03日 14:00（当日尚未结束）" in text
    risk = text.split("二、风险生活圈及原因")[1].split("三、告警与处置")[0]
    assert B_NAME in risk and A_NAME not in risk
