"""The daily situation report for the bureaus' joint meeting (issue 10 point 8).

    path = write_report(url, date(2024, 6, 1), Path("reports"))   # -> reports/report-2024-06-01.html

`write_report` reads the day (an Asia/Shanghai calendar day, cut at now for today) with the named queries
of schema/report.sql, shapes it (`data`), draws the PNG charts (`charts`, a Chinese font from Debian's
packages via `fonts`) and writes one printable HTML page (`html`) with its charts beside it:
`DIR/report-D.html`, `DIR/report-D-{status,trend,handling,feed}.png`. Files of an earlier run for the same
day are overwritten. One progress line per step goes to `progress`. Raises `fonts.FontMissing` when no
Chinese font can be found or installed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

__all__ = ["write_report"]


def write_report(
    url: str, day: date, out_dir: Path, *, now: datetime | None = None, progress: Callable[[str], None] = print
) -> Path:
    from baogong.report import charts, data, fonts, html
    from schema.db import connect

    now = now or datetime.now(UTC)
    w = data.window(day, now)
    font = fonts.ensure_installed(progress=progress)
    progress(f"report {day}: Chinese font {fonts.use(font)} ({font})")
    with connect(url) as conn:
        raw = data.fetch(conn, w)
        price_rows, lead_rows = _prices(conn, day)
    progress(
        f"report {day}: read {len(raw.circles)} circles, {len(raw.last_levels)} last levels, "
        f"{len(raw.hourly)} hourly points, {len(raw.alerts)} alerts, {len(raw.feed)} suppliers"
    )
    circle_names, necessity_names = data.names(raw)
    risk = data.at_risk(raw)
    handled = data.handling(raw)
    feed = data.feed(raw, w)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"report-{day:%Y-%m-%d}"
    files: dict[str, str] = {}

    def chart(key: str, draw: Callable[[Path], Path]) -> None:
        path = draw(out_dir / f"{stem}-{key}.png")
        files[key] = path.name
        progress(f"report {day}: chart {path.name}")

    chart(
        "status",
        lambda p: charts.status_grid(data.status_matrix(raw), data.days_matrix(raw), circle_names, necessity_names, p),
    )
    highlight = sorted({(r.circle_id, r.necessity) for r in risk.itertuples(index=False)})
    chart("trend", lambda p: charts.days_trend(raw.hourly, raw.necessities, circle_names, highlight, p))
    if len(handled):
        chart("handling", lambda p: charts.alert_handling(handled, p))
    if len(feed):
        chart("feed", lambda p: charts.feed_health(feed, p))
    page = html.Page(
        window=w,
        generated_at=now,
        circles=len(raw.circles),
        population=int(raw.circles["population"].sum()) if len(raw.circles) else 0,
        counts=data.status_counts(raw),
        at_risk=risk,
        handling=handled,
        summary=data.handling_summary(handled),
        feed=feed,
        changes=data.changes(raw),
        charts=files,
        prices=price_rows,
        leads=lead_rows,
    )
    target = out_dir / f"{stem}.html"
    target.write_text(html.render(page), encoding="utf-8")
    progress(f"report {day}: wrote {target} ({len(risk)} at risk, {len(handled)} alerts, {len(files)} charts)")
    return target


def _prices(conn: Any, day: date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The day's price levels that were not calm and its gouging leads (issue 12; schema/price_store.py)."""
    from schema.price_store import leads, levels_of_day

    return levels_of_day(conn, day), [r for r in leads(conn, day) if r["day"] == day]
