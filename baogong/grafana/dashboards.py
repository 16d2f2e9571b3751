"""Baogong's Grafana dashboards as code (grafana-foundation-sdk), written to deploy/grafana/dashboards/*.json.

`baogong grafana build` regenerates the JSON; tests/unit/test_dashboards.py fails when the committed JSON and
this module disagree; tests/integration/test_panels.py runs every panel's SQL (Grafana's macros and template
variables expanded by baogong/grafana/macros.py) against a seeded database.

Panels read rollups and latest tables only, never a scan of the raw time series (outlet_reports,
circle_levels, prices). The relations the panels (and their template variables) read, which is exactly what
the read-only role `baogong_grafana` needs SELECT on:

    circles, necessities, suppliers, business_types, business_type_necessities, outlets, outlet_circles,
    outlet_stock, circle_levels_latest, circle_levels_hourly, circle_levels_daily, prices_daily,
    feed_health_hourly, feed_health, alerts, pipeline_status, stream_offsets

(`feed_health` only through its primary key, per supplier, for the last hour.) Nothing else: no api_keys,
responder_keys, teams or notifications.

Rollups (PLAN10 interface): circle_levels_hourly / circle_levels_daily (bucket, circle_id, necessity,
days_min, days_avg, days_max, days_last, stock_avg, stock_unconfirmed_avg, coverage_min, coverage_stock_min,
status_worst, samples), prices_daily (bucket, circle_id, necessity, price_median, price_min, price_max,
outlets, reports), feed_health_hourly (bucket, supplier_id, accepted, rejected, duplicates, dead_lettered).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import geomap, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from baogong.grafana.sqlquery import POSTGRES_TYPE, SqlQuery

#: The provisioned data source's fixed uid (deploy/grafana/provisioning/datasources/baogong.yaml).
DATASOURCE_UID = "baogong-pg"
DATASOURCE = dm.DataSourceRef(type_val=POSTGRES_TYPE, uid=DATASOURCE_UID)
FOLDER_UID = "baogong"
FOLDER_TITLE = "保供 Baogong"
#: Where the committed JSON lives (repository checkout).
OUT_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"

#: Relations the panels read (see the module docstring): helper R's read-only role grants SELECT on these.
READS: tuple[str, ...] = (
    "circles", "necessities", "suppliers", "business_types", "business_type_necessities", "outlets",
    "outlet_circles", "outlet_stock", "circle_levels_latest", "circle_levels_hourly", "circle_levels_daily",
    "prices_daily", "feed_health_hourly", "feed_health", "alerts", "pipeline_status", "stream_offsets",
    "price_levels", "price_leads", "feed_requests",
)  # fmt: skip

STATUSES = ("OK", "WATCH", "STALE", "SHORTAGE", "CRITICAL")  # worst last (PLAN10 order)
STATUS_ZH = {"OK": "正常", "WATCH": "关注", "STALE": "数据过期", "SHORTAGE": "短缺", "CRITICAL": "危急"}
STATUS_COLOUR = {"OK": "green", "WATCH": "yellow", "STALE": "purple", "SHORTAGE": "orange", "CRITICAL": "red"}


def rank(expr: str) -> str:
    """0 (OK) .. 4 (CRITICAL): the worst-status order as a number."""
    return f"array_position(ARRAY['OK','WATCH','STALE','SHORTAGE','CRITICAL'], {expr}) - 1"


def status_zh(expr: str) -> str:
    whens = " ".join(f"WHEN '{s}' THEN '{z}'" for s, z in STATUS_ZH.items())
    return f"CASE {expr} {whens} ELSE {expr} END"


Kind = Literal["timeseries", "table", "stat", "geomap"]


@dataclass(frozen=True)
class Panel:
    """One panel: its SQL (Grafana macros and variables unexpanded) and the columns it must return."""

    title: str
    kind: Kind
    sql: str
    columns: tuple[str, ...]
    fmt: Literal["table", "time_series"] = "table"
    unit: str | None = None
    width: int = 12
    height: int = 8
    repeat: str | None = None
    description: str = ""
    #: columns that must hold at least one non-NULL value in a seeded city (default: all)
    non_null: tuple[str, ...] | None = None
    style: Callable[[Any], Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class VariableDef:
    name: str
    label: str
    query: str
    multi: bool = True
    include_all: bool = True


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    variables: tuple[VariableDef, ...]
    panels: tuple[Panel, ...]
    time_from: str = "now-24h"


# ---------------------------------------------------------------- template variables

DISTRICT = VariableDef("district", "城区", "SELECT DISTINCT district FROM circles ORDER BY 1")
#: The circle detail shows one circle (all of them over 30 days would be 240 series of 720 points a panel).
CIRCLE = VariableDef(
    "circle",
    "生活圈",
    "SELECT id AS __value, name AS __text FROM circles WHERE district IN ($district) ORDER BY id",
    multi=False,
    include_all=False,
)
NECESSITY = VariableDef("necessity", "品类", "SELECT code AS __value, name_zh AS __text FROM necessities ORDER BY code")
ONE_NECESSITY = VariableDef(
    "necessity",
    "品类",
    "SELECT code AS __value, name_zh AS __text FROM necessities ORDER BY code",
    multi=False,
    include_all=False,
)

# ---------------------------------------------------------------- shared SQL

WORST_BY_CIRCLE = f"""SELECT c.id, c.name, c.center_lat, c.center_lon,
       coalesce(max({rank("l.status")}), 0) AS status_rank,
       count(*) FILTER (WHERE l.status IN ('SHORTAGE', 'CRITICAL')) AS short_necessities
FROM circles c
LEFT JOIN circle_levels_latest l ON l.circle_id = c.id
WHERE c.district IN ($district)
GROUP BY c.id, c.name, c.center_lat, c.center_lon"""

OPEN_ALERTS = """SELECT a.id AS "编号", a.severity AS "级别", a.rule AS "规则", c.name AS "生活圈",
       n.name_zh AS "品类", a.state AS "状态", coalesce(a.starts_at, a.pending_since) AS "开始",
       round((extract(epoch FROM now() - coalesce(a.starts_at, a.pending_since)) / 60)::numeric) AS "持续分钟",
       a.acknowledged_by AS "确认人"
FROM alerts a
LEFT JOIN circles c ON c.id = a.circle_id
LEFT JOIN necessities n ON n.code = a.necessity
WHERE a.state <> 'resolved' AND (a.circle_id IS NULL OR c.district IN ($district))
ORDER BY array_position(ARRAY['critical', 'high', 'warning'], a.severity), 7
LIMIT 200"""
OPEN_ALERT_COLUMNS = ("编号", "级别", "规则", "生活圈", "品类", "状态", "开始", "持续分钟", "确认人")


def thresholds_sql(necessity_filter: str) -> str:
    """Each necessity's watch / shortage / critical days as flat lines across the time range."""
    return f"""SELECT r.t AS "time", n.name_zh || ' ' || v.label AS metric, v.days AS value
FROM necessities n
CROSS JOIN (VALUES ($__timeFrom()::timestamptz), ($__timeTo()::timestamptz)) AS r(t)
CROSS JOIN LATERAL (VALUES ('关注线', n.watch_days), ('短缺线', n.shortage_days), ('危急线', n.critical_days))
    AS v(label, days)
WHERE {necessity_filter}"""


def _status_thresholds(builder: Any) -> Any:
    steps = [dm.Threshold(value=None if i == 0 else float(i), color=STATUS_COLOUR[s]) for i, s in enumerate(STATUSES)]
    mappings: list[dm.ValueMapping] = [
        dm.ValueMap(options={str(i): dm.ValueMappingResult(text=STATUS_ZH[s], color=STATUS_COLOUR[s], index=i)})
        for i, s in enumerate(STATUSES)
    ]
    return (
        builder.thresholds(db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps))
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .mappings(mappings)
    )


def _circle_map(builder: geomap.Panel) -> geomap.Panel:
    layer = (
        cb.MapLayerOptions()
        .type("markers")
        .name("生活圈")
        .tooltip(True)
        .location(
            cb.FrameGeometrySource().mode(cm.FrameGeometrySourceMode.COORDS).latitude("latitude").longitude("longitude")
        )
        .config(
            {
                "showLegend": True,
                "style": {
                    "color": {"field": "status_rank", "fixed": "dark-green"},
                    "opacity": 0.8,
                    "size": {"fixed": 14},
                    "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
                    "text": {"field": "circle", "mode": "field"},
                    "textConfig": {"fontSize": 12, "offsetY": -16, "textAlign": "center", "textBaseline": "bottom"},
                },
            }
        )
    )
    view = geomap.MapViewConfig().id("fit").zoom(13)
    return _status_thresholds(
        builder.basemap(cb.MapLayerOptions().type("default").name("底图")).layers([layer]).view(view)
    )


STATUS_COUNTS = ", ".join(
    f'count(*) FILTER (WHERE w.status_rank = {i}) AS "{STATUS_ZH[s]}"' for i, s in reversed(list(enumerate(STATUSES)))
)

# ---------------------------------------------------------------- dashboards

CITY = Dashboard(
    uid="baogong-city",
    title="城市总览",
    description="各生活圈最差状态、各状态生活圈数、未关闭告警（City overview）",
    variables=(DISTRICT,),
    panels=(
        Panel(
            "生活圈状态地图",
            "geomap",
            f"""SELECT w.id AS circle_id, w.name AS circle, w.center_lat AS latitude, w.center_lon AS longitude,
       w.status_rank, w.short_necessities
FROM ({WORST_BY_CIRCLE}) w
ORDER BY w.id""",
            ("circle_id", "circle", "latitude", "longitude", "status_rank", "short_necessities"),
            width=14,
            height=14,
            description="每个生活圈按其最差品类状态着色（危急 > 短缺 > 数据过期 > 关注 > 正常）",
            style=_circle_map,
        ),
        Panel(
            "各状态生活圈数",
            "stat",
            f"SELECT {STATUS_COUNTS}\nFROM ({WORST_BY_CIRCLE}) w",
            tuple(STATUS_ZH[s] for s in reversed(STATUSES)),
            width=10,
            height=6,
            description="按最差状态统计的生活圈数",
        ),
        Panel(
            "状态历史（生活圈×品类，小时）",
            "timeseries",
            f"""SELECT h.bucket AS "time", {status_zh("h.status_worst")} AS metric, count(*) AS value
FROM circle_levels_hourly h
JOIN circles c ON c.id = h.circle_id
WHERE $__timeFilter(h.bucket) AND c.district IN ($district)
GROUP BY 1, 2
ORDER BY 1""",
            ("time", "metric", "value"),
            fmt="time_series",
            width=10,
            height=8,
        ),
        Panel("未关闭告警", "table", OPEN_ALERTS, OPEN_ALERT_COLUMNS, width=24, height=8, non_null=("编号", "级别")),
    ),
)

CIRCLE_DETAIL = Dashboard(
    uid="baogong-circle",
    title="生活圈详情",
    description="可供天数、已确认与未确认库存、两种覆盖率、沉默门店（Circle detail）",
    variables=(DISTRICT, CIRCLE, NECESSITY),
    time_from="now-7d",
    panels=(
        Panel(
            "可供天数 · $necessity",
            "timeseries",
            f"""SELECT h.bucket AS "time", c.name || ' ' || v.label AS metric, v.value
FROM circle_levels_hourly h
JOIN circles c ON c.id = h.circle_id
CROSS JOIN LATERAL (VALUES ('平均', h.days_avg), ('最低', h.days_min)) AS v(label, value)
WHERE $__timeFilter(h.bucket) AND h.circle_id = '$circle' AND h.necessity IN ($necessity)
UNION ALL
{thresholds_sql("n.code IN ($necessity)")}
ORDER BY 1""",
            ("time", "metric", "value"),
            fmt="time_series",
            unit="d",
            repeat="necessity",
            width=8,
            description="每小时平均与最低可供天数；虚线为该品类的关注、短缺、危急线",
        ),
        Panel(
            "已确认与未确认库存",
            "timeseries",
            """SELECT h.bucket AS "time", c.name || ' ' || n.name_zh || ' ' || v.label AS metric, v.value
FROM circle_levels_hourly h
JOIN circles c ON c.id = h.circle_id
JOIN necessities n ON n.code = h.necessity
CROSS JOIN LATERAL (VALUES ('已确认', h.stock_avg), ('未确认', h.stock_unconfirmed_avg)) AS v(label, value)
WHERE $__timeFilter(h.bucket) AND h.circle_id = '$circle' AND h.necessity IN ($necessity)
ORDER BY 1""",
            ("time", "metric", "value"),
            fmt="time_series",
            description="已确认：新鲜期内上报的库存；未确认：更早上报、不计入可供天数的库存",
        ),
        Panel(
            "覆盖率（门店 / 库存）",
            "timeseries",
            """SELECT h.bucket AS "time", c.name || ' ' || n.name_zh || ' ' || v.label AS metric, v.value
FROM circle_levels_hourly h
JOIN circles c ON c.id = h.circle_id
JOIN necessities n ON n.code = h.necessity
CROSS JOIN LATERAL (VALUES ('门店覆盖', h.coverage_min), ('库存覆盖', h.coverage_stock_min)) AS v(label, value)
WHERE $__timeFilter(h.bucket) AND h.circle_id = '$circle' AND h.necessity IN ($necessity)
ORDER BY 1""",
            ("time", "metric", "value"),
            fmt="time_series",
            unit="percentunit",
            description="门店覆盖：应上报门店中按时上报的比例；库存覆盖：已知库存中新鲜部分的比例（每小时最低）",
        ),
        Panel(
            "当前水平",
            "table",
            f"""SELECT c.name AS "生活圈", n.name_zh AS "品类", l.days_of_supply AS "可供天数",
       l.stock AS "已确认库存", l.stock_unconfirmed AS "未确认库存", n.unit AS "单位",
       l.coverage AS "门店覆盖", l.coverage_stock AS "库存覆盖", {status_zh("l.status")} AS "状态",
       l.computed_at AS "计算时间"
FROM circle_levels_latest l
JOIN circles c ON c.id = l.circle_id
JOIN necessities n ON n.code = l.necessity
WHERE l.circle_id = '$circle' AND l.necessity IN ($necessity)
ORDER BY {rank("l.status")} DESC, l.days_of_supply NULLS FIRST""",
            (
                "生活圈",
                "品类",
                "可供天数",
                "已确认库存",
                "未确认库存",
                "单位",
                "门店覆盖",
                "库存覆盖",
                "状态",
                "计算时间",
            ),
        ),
        Panel(
            "沉默门店",
            "table",
            """SELECT c.name AS "生活圈", o.id AS "门店编号", o.name AS "门店", s.name AS "供应商",
       bt.name_zh AS "业态", max(st.reported_at) AS "最近上报",
       round((extract(epoch FROM now() - max(st.reported_at)) / 3600)::numeric, 1) AS "沉默小时"
FROM outlet_circles oc
JOIN circles c ON c.id = oc.circle_id
JOIN outlets o ON o.id = oc.outlet_id AND o.active
JOIN suppliers s ON s.id = o.supplier_id
JOIN business_types bt ON bt.code = o.business_type
LEFT JOIN outlet_stock st ON st.outlet_id = o.id
LEFT JOIN necessities n ON n.code = st.necessity
WHERE oc.circle_id = '$circle'
  AND EXISTS (SELECT 1 FROM business_type_necessities btn WHERE btn.business_type = o.business_type)
GROUP BY c.name, o.id, o.name, s.name, bt.name_zh
HAVING NOT coalesce(bool_or(st.reported_at >= now() - make_interval(mins => n.freshness_minutes)), false)
ORDER BY 6 NULLS FIRST, 2
LIMIT 500""",
            ("生活圈", "门店编号", "门店", "供应商", "业态", "最近上报", "沉默小时"),
            description="应上报但没有任何新鲜期内库存的在营门店（从未上报的排在最前）",
        ),
    ),
)

NECESSITY_VIEW = Dashboard(
    uid="baogong-necessity",
    title="品类视图",
    description="一个品类在所有生活圈的可供天数、当前水平与价格（Necessity view）",
    variables=(DISTRICT, ONE_NECESSITY),
    time_from="now-7d",
    panels=(
        Panel(
            "各生活圈可供天数（小时平均）",
            "timeseries",
            f"""SELECT h.bucket AS "time", c.name AS metric, h.days_avg AS value
FROM circle_levels_hourly h
JOIN circles c ON c.id = h.circle_id
WHERE $__timeFilter(h.bucket) AND h.necessity = '$necessity' AND c.district IN ($district)
UNION ALL
{thresholds_sql("n.code = '$necessity'")}
ORDER BY 1""",
            ("time", "metric", "value"),
            fmt="time_series",
            unit="d",
            width=16,
        ),
        Panel(
            "各生活圈当前",
            "table",
            f"""SELECT c.name AS "生活圈", l.days_of_supply AS "可供天数", l.stock AS "已确认库存",
       l.stock_unconfirmed AS "未确认库存", l.coverage AS "门店覆盖", {status_zh("l.status")} AS "状态"
FROM circle_levels_latest l
JOIN circles c ON c.id = l.circle_id
WHERE l.necessity = '$necessity' AND c.district IN ($district)
ORDER BY {rank("l.status")} DESC, l.days_of_supply NULLS FIRST""",
            ("生活圈", "可供天数", "已确认库存", "未确认库存", "门店覆盖", "状态"),
            width=8,
        ),
        Panel(
            "各生活圈每日最低可供天数",
            "timeseries",
            """SELECT d.bucket AS "time", c.name AS metric, d.days_min AS value
FROM circle_levels_daily d
JOIN circles c ON c.id = d.circle_id
WHERE d.bucket > $__timeFrom()::timestamptz - interval '1 day' AND d.bucket <= $__timeTo()
  AND d.necessity = '$necessity' AND c.district IN ($district)
ORDER BY 1""",
            ("time", "metric", "value"),
            fmt="time_series",
            unit="d",
        ),
        Panel(
            "价格中位数（每日）",
            "timeseries",
            """SELECT p.bucket AS "time", c.name AS metric, p.price_median AS value
FROM prices_daily p
JOIN circles c ON c.id = p.circle_id
WHERE p.bucket > $__timeFrom()::timestamptz - interval '1 day' AND p.bucket <= $__timeTo()
  AND p.necessity = '$necessity' AND c.district IN ($district)
ORDER BY 1""",
            ("time", "metric", "value"),
            fmt="time_series",
            unit="currencyCNY",
        ),
    ),
)

ALERTS = Dashboard(
    uid="baogong-alerts",
    title="告警",
    description="未关闭告警与确认用时（Alerts）",
    variables=(DISTRICT,),
    time_from="now-7d",
    panels=(
        Panel(
            "未关闭告警数",
            "stat",
            """SELECT count(*) FILTER (WHERE a.state = 'firing') AS "告警中",
       count(*) FILTER (WHERE a.state = 'acknowledged') AS "已确认",
       count(*) FILTER (WHERE a.state = 'pending') AS "待定"
FROM alerts a
LEFT JOIN circles c ON c.id = a.circle_id
WHERE a.state <> 'resolved' AND (a.circle_id IS NULL OR c.district IN ($district))""",
            ("告警中", "已确认", "待定"),
            width=8,
            height=6,
        ),
        Panel(
            "每日告警数（按级别）",
            "timeseries",
            """SELECT $__timeGroupAlias(a.starts_at, '1d'), a.severity AS metric, count(*) AS value
FROM alerts a
LEFT JOIN circles c ON c.id = a.circle_id
WHERE $__timeFilter(a.starts_at) AND (a.circle_id IS NULL OR c.district IN ($district))
GROUP BY 1, 2
ORDER BY 1""",
            ("time", "metric", "value"),
            fmt="time_series",
            width=16,
            height=6,
        ),
        Panel("未关闭告警", "table", OPEN_ALERTS, OPEN_ALERT_COLUMNS, width=24, non_null=("编号", "级别")),
        Panel(
            "确认用时（分钟，每日）",
            "timeseries",
            """SELECT $__timeGroupAlias(a.starts_at, '1d'),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.acknowledged_at - a.starts_at) / 60)
           AS "确认用时中位数",
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM a.acknowledged_at - a.starts_at) / 60)
           AS "确认用时90分位"
FROM alerts a
LEFT JOIN circles c ON c.id = a.circle_id
WHERE $__timeFilter(a.starts_at) AND a.acknowledged_at IS NOT NULL
  AND (a.circle_id IS NULL OR c.district IN ($district))
GROUP BY 1
ORDER BY 1""",
            ("time", "确认用时中位数", "确认用时90分位"),
            fmt="time_series",
            unit="m",
        ),
        Panel(
            "已确认告警",
            "table",
            """SELECT a.id AS "编号", a.severity AS "级别", c.name AS "生活圈", n.name_zh AS "品类",
       a.starts_at AS "开始", a.acknowledged_by AS "确认人",
       round((extract(epoch FROM a.acknowledged_at - a.starts_at) / 60)::numeric, 1) AS "确认用时（分钟）",
       round((extract(epoch FROM a.ends_at - a.starts_at) / 60)::numeric, 1) AS "恢复用时（分钟）"
FROM alerts a
LEFT JOIN circles c ON c.id = a.circle_id
LEFT JOIN necessities n ON n.code = a.necessity
WHERE $__timeFilter(a.starts_at) AND a.acknowledged_at IS NOT NULL
  AND (a.circle_id IS NULL OR c.district IN ($district))
ORDER BY a.starts_at DESC
LIMIT 500""",
            ("编号", "级别", "生活圈", "品类", "开始", "确认人", "确认用时（分钟）", "恢复用时（分钟）"),
            non_null=("编号", "级别", "开始", "确认用时（分钟）"),
        ),
    ),
)

FEEDS = Dashboard(
    uid="baogong-feeds",
    title="数据源健康",
    description="各供应商的上报率与及时性、接收与拒收（Feed health）",
    variables=(),
    panels=(
        Panel(
            "各供应商上报率与及时性",
            "table",
            """WITH outlet_state AS (
    SELECT o.supplier_id, o.id,
           coalesce(bool_or(st.reported_at >= now() - make_interval(mins => n.freshness_minutes)), false) AS fresh,
           max(st.reported_at) AS last_report,
           avg(extract(epoch FROM st.updated_at - st.reported_at)) AS delay_s
    FROM outlets o
    LEFT JOIN outlet_stock st ON st.outlet_id = o.id
    LEFT JOIN necessities n ON n.code = st.necessity
    WHERE o.active AND EXISTS (SELECT 1 FROM business_type_necessities btn WHERE btn.business_type = o.business_type)
    GROUP BY o.supplier_id, o.id
)
SELECT s.id AS "供应商编号", s.name AS "供应商", count(*) AS "门店数",
       count(*) FILTER (WHERE os.fresh) AS "按时上报门店",
       round(count(*) FILTER (WHERE os.fresh)::numeric / count(*), 3) AS "上报率",
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM now() - os.last_report)) / 60)::numeric, 1)
           AS "最近上报距今中位数（分钟）",
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY os.delay_s)::numeric, 1) AS "上报延迟中位数（秒）"
FROM outlet_state os
JOIN suppliers s ON s.id = os.supplier_id
GROUP BY s.id, s.name
ORDER BY 5, 1""",
            (
                "供应商编号",
                "供应商",
                "门店数",
                "按时上报门店",
                "上报率",
                "最近上报距今中位数（分钟）",
                "上报延迟中位数（秒）",
            ),
            width=24,
            description="上报率：在营门店中有新鲜期内库存的比例；延迟：从门店上报到写入数据库",
        ),
        Panel(
            "每小时接收记录（按供应商）",
            "timeseries",
            """SELECT f.bucket AS "time", s.name AS metric, f.accepted AS value
FROM feed_health_hourly f
JOIN suppliers s ON s.id = f.supplier_id
WHERE $__timeFilter(f.bucket)
ORDER BY 1""",
            ("time", "metric", "value"),
            fmt="time_series",
        ),
        Panel(
            "拒收率（按供应商，小时）",
            "timeseries",
            """SELECT f.bucket AS "time", s.name AS metric,
       f.rejected::double precision / nullif(f.accepted + f.rejected, 0) AS value
FROM feed_health_hourly f
JOIN suppliers s ON s.id = f.supplier_id
WHERE $__timeFilter(f.bucket)
ORDER BY 1""",
            ("time", "metric", "value"),
            fmt="time_series",
            unit="percentunit",
        ),
        Panel(
            "时段内合计（按供应商）",
            "table",
            """SELECT s.name AS "供应商", sum(f.accepted) AS "接收", sum(f.rejected) AS "拒收",
       sum(f.duplicates) AS "重复", sum(f.dead_lettered) AS "死信",
       round(sum(f.rejected)::numeric / nullif(sum(f.accepted + f.rejected), 0), 4) AS "拒收率"
FROM feed_health_hourly f
JOIN suppliers s ON s.id = f.supplier_id
WHERE $__timeFilter(f.bucket)
GROUP BY s.name
ORDER BY 6 DESC NULLS LAST, 1""",
            ("供应商", "接收", "拒收", "重复", "死信", "拒收率"),
            width=24,
        ),
        Panel(
            "被拒请求（按供应商与密钥）",
            "table",
            """SELECT s.name AS "供应商", r.key_prefix AS "密钥前缀",
       coalesce(sum(r.requests) FILTER (WHERE r.outcome = 'ok'), 0) AS "正常",
       coalesce(sum(r.requests) FILTER (WHERE r.outcome = 'rejected'), 0) AS "全部拒收",
       coalesce(sum(r.requests) FILTER (WHERE r.outcome = 'bad_request'), 0) AS "无法解析",
       coalesce(sum(r.requests) FILTER (WHERE r.outcome = 'oversize'), 0) AS "超限",
       coalesce(sum(r.requests) FILTER (WHERE r.outcome = 'throttled'), 0) AS "限流",
       coalesce(sum(r.requests) FILTER (WHERE r.outcome = 'timeout'), 0) AS "超时"
FROM feed_requests r
JOIN suppliers s ON s.id = r.supplier_id
WHERE $__timeFilter(r.minute)
GROUP BY s.name, r.key_prefix
ORDER BY sum(r.requests) FILTER (WHERE r.outcome <> 'ok') DESC NULLS LAST, 1, 2""",
            ("供应商", "密钥前缀", "正常", "全部拒收", "无法解析", "超限", "限流", "超时"),
            width=24,
            description="API 对每个密钥的应答（保留一天）：持续被拒的密钥会触发 SupplierRequestsRefused 告警",
        ),
    ),
)

PIPELINE = Dashboard(
    uid="baogong-pipeline",
    title="管道",
    description="积压、处理速度、死信、心跳（Pipeline）",
    variables=(),
    time_from="now-24h",
    panels=(
        Panel(
            "积压与心跳",
            "stat",
            """SELECT p.lag_reports AS "积压消息", round(p.lag_s::numeric, 1) AS "积压秒数",
       round(extract(epoch FROM now() - p.levels_at)::numeric, 1) AS "水平计算距今（秒）",
       round(extract(epoch FROM now() - p.updated_at)::numeric, 1) AS "心跳距今（秒）"
FROM pipeline_status p
WHERE p.id = 'levels'""",
            ("积压消息", "积压秒数", "水平计算距今（秒）", "心跳距今（秒）"),
            width=14,
            height=5,
        ),
        Panel(
            "当前速度与死信",
            "stat",
            """SELECT round(coalesce(sum(r.accepted), 0) / 300.0, 2) AS "记录/秒（近5分钟）",
       coalesce(sum(r.dead), 0) AS "死信（近1小时）"
FROM suppliers s
CROSS JOIN LATERAL (
    SELECT sum(f.accepted) FILTER (WHERE f.minute >= now() - interval '5 minutes') AS accepted,
           sum(f.dead_lettered) AS dead
    FROM feed_health f
    WHERE f.supplier_id = s.id AND f.minute >= now() - interval '1 hour'
) r""",
            ("记录/秒（近5分钟）", "死信（近1小时）"),
            width=10,
            height=5,
            description="每个供应商按主键读取最近一小时的分钟计数",
        ),
        Panel(
            "每秒记录（小时平均）",
            "timeseries",
            """SELECT f.bucket AS "time", sum(f.accepted) / 3600.0 AS "接收/秒", sum(f.rejected) / 3600.0 AS "拒收/秒"
FROM feed_health_hourly f
WHERE $__timeFilter(f.bucket)
GROUP BY 1
ORDER BY 1""",
            ("time", "接收/秒", "拒收/秒"),
            fmt="time_series",
            unit="reqps",
        ),
        Panel(
            "死信（每小时）",
            "timeseries",
            """SELECT f.bucket AS "time", sum(f.dead_lettered) AS "死信", sum(f.duplicates) AS "重复"
FROM feed_health_hourly f
WHERE $__timeFilter(f.bucket)
GROUP BY 1
ORDER BY 1""",
            ("time", "死信", "重复"),
            fmt="time_series",
        ),
        Panel(
            "各分区写入位置",
            "table",
            """SELECT o.topic AS "主题", o.partition AS "分区", o.next_offset AS "下一偏移",
       round(extract(epoch FROM now() - o.message_at)::numeric, 1) AS "最新消息距今（秒）",
       round(extract(epoch FROM now() - o.written_at)::numeric, 1) AS "最近写入距今（秒）"
FROM stream_offsets o
ORDER BY 1, 2""",
            ("主题", "分区", "下一偏移", "最新消息距今（秒）", "最近写入距今（秒）"),
            width=14,
        ),
        Panel(
            "工作进程心跳",
            "table",
            """SELECT p.id AS "阶段", p.worker AS "进程", p.levels_at AS "水平计算时间", p.updated_at AS "心跳时间",
       p.lag_reports AS "积压消息", p.lag_s AS "积压秒数"
FROM pipeline_status p
ORDER BY 1""",
            ("阶段", "进程", "水平计算时间", "心跳时间", "积压消息", "积压秒数"),
            width=10,
        ),
    ),
)

# ---------------------------------------------------------------- prices (issue 12; price_levels, price_leads)

PHASE_ZH = {"CRISIS": "危机", "ALERT": "预警", "STRESS": "关注", "NORMAL": "正常", "UNKNOWN": "未知"}


def phase_zh(expr: str) -> str:
    whens = " ".join(f"WHEN '{s}' THEN '{z}'" for s, z in PHASE_ZH.items())
    return f"CASE {expr} {whens} ELSE {expr} END"


def signed_pct(expr: str) -> str:
    """A rise as text ('+35%'; '—' when unknown): a fall stays readable without a negative number in a cell."""
    return f"coalesce(to_char(round(({expr} * 100)::numeric), 'FMSG990') || '%', '—')"


PRICE_SCOPE = "(pl.circle_id = '*' OR c.district IN ($district))"
PRICES = Dashboard(
    uid="baogong-prices",
    title="价格监测",
    description="价格与基准、ALPS 预警阶段与预案涨幅等级、哄抬价格线索"
    "（Prices: baselines, spike grades, gouging leads）",
    variables=(DISTRICT, NECESSITY),
    time_from="now-30d",
    panels=(
        Panel(
            "价格与基准（生活圈×品类，每日）",
            "timeseries",
            f"""SELECT pl.computed_at AS "time", coalesce(c.name, '全市') || ' ' || n.name_zh || v.what AS metric,
       v.value
FROM price_levels pl
JOIN necessities n ON n.code = pl.necessity
LEFT JOIN circles c ON c.id = pl.circle_id
CROSS JOIN LATERAL (VALUES (' 价格', pl.price), (' 基准', pl.baseline)) AS v (what, value)
WHERE $__timeFilter(pl.computed_at) AND pl.necessity IN ($necessity) AND {PRICE_SCOPE} AND v.value IS NOT NULL
ORDER BY 1""",
            ("time", "metric", "value"),
            fmt="time_series",
            unit="currencyCNY",
            width=24,
            description="每个生活圈（及全市）每天最后一次计算的价格中位数与基准"
            "（近 28 天日中位数的中位数；有一年历史后按去年同期季节调整）",
        ),
        Panel(
            "当前价格等级",
            "table",
            f"""SELECT "生活圈", "品类", "价格", "基准", "偏离(σ)", "ALPS阶段", "预案等级", "日涨幅", "周涨幅",
       "门店数", "更新"
FROM (
    SELECT DISTINCT ON (pl.circle_id, pl.necessity)
           coalesce(c.name, '全市') AS "生活圈", n.name_zh AS "品类", pl.price AS "价格", pl.baseline AS "基准",
           coalesce(to_char(pl.deviation, 'FMSG990.0'), '—') AS "偏离(σ)", {phase_zh("pl.phase")} AS "ALPS阶段",
           CASE pl.plan_grade WHEN 'NONE' THEN '未达' WHEN 'UNKNOWN' THEN '未知' ELSE pl.plan_grade || '级' END
               AS "预案等级",
           {signed_pct("pl.rise_day")} AS "日涨幅", {signed_pct("pl.rise_week")} AS "周涨幅",
           pl.outlets AS "门店数", pl.computed_at AS "更新", pl.spiking, pl.deviation AS dev
    FROM price_levels pl
    JOIN necessities n ON n.code = pl.necessity
    LEFT JOIN circles c ON c.id = pl.circle_id
    WHERE pl.day >= (SELECT max(day) FROM price_levels) - 7 AND pl.necessity IN ($necessity) AND {PRICE_SCOPE}
    ORDER BY pl.circle_id, pl.necessity, pl.day DESC
) t
ORDER BY t.spiking DESC, t.dev DESC NULLS LAST""",
            ("生活圈", "品类", "价格", "基准", "偏离(σ)", "ALPS阶段", "预案等级", "日涨幅", "周涨幅", "门店数", "更新"),
            width=16,
            height=10,
            description="ALPS：偏离基准的标准差数，<0.25 正常、0.25–1 关注、1–2 预警、≥2 危机；"
            "预案等级：日涨幅或周涨幅超过本市预案阈值（README「Price watch」）。无新鲜价格为「未知」",
        ),
        Panel(
            "各品类价格分级（生活圈数）",
            "table",
            """SELECT n.name_zh AS "品类",
       count(*) FILTER (WHERE t.phase = 'CRISIS') AS "危机", count(*) FILTER (WHERE t.phase = 'ALERT') AS "预警",
       count(*) FILTER (WHERE t.phase = 'STRESS') AS "关注", count(*) FILTER (WHERE t.phase = 'NORMAL') AS "正常",
       count(*) FILTER (WHERE t.phase = 'UNKNOWN') AS "未知",
       count(*) FILTER (WHERE t.plan_grade NOT IN ('NONE', 'UNKNOWN')) AS "达预案等级"
FROM (
    SELECT DISTINCT ON (pl.circle_id, pl.necessity) pl.necessity, pl.phase, pl.plan_grade
    FROM price_levels pl
    JOIN circles c ON c.id = pl.circle_id
    WHERE pl.day >= (SELECT max(day) FROM price_levels) - 7 AND pl.necessity IN ($necessity)
      AND c.district IN ($district)
    ORDER BY pl.circle_id, pl.necessity, pl.day DESC
) t
JOIN necessities n ON n.code = t.necessity
GROUP BY n.code, n.name_zh
ORDER BY 2 DESC, 3 DESC, n.code""",
            ("品类", "危机", "预警", "关注", "正常", "未知", "达预案等级"),
            width=8,
            height=10,
        ),
        Panel(
            "哄抬价格线索（市场监管局）",
            "table",
            f"""SELECT l.day AS "日期", c.name AS "生活圈", o.name AS "门店", s.name AS "经营者", n.name_zh AS "品类",
       l.price AS "门店价格", l.circle_price AS "圈中位价", round(l.ratio_max::numeric, 2) AS "最高倍数",
       {phase_zh("l.phase")} AS "ALPS阶段", l.plan_grade AS "预案等级", l.first_at AS "首次", l.last_at AS "最近"
FROM price_leads l
JOIN circles c ON c.id = l.circle_id
JOIN outlets o ON o.id = l.outlet_id
JOIN necessities n ON n.code = l.necessity
LEFT JOIN suppliers s ON s.id = o.supplier_id
WHERE l.last_at >= $__timeFrom()::timestamptz AND l.necessity IN ($necessity) AND c.district IN ($district)
ORDER BY l.day DESC, l.ratio_max DESC""",
            (
                "日期",
                "生活圈",
                "门店",
                "经营者",
                "品类",
                "门店价格",
                "圈中位价",
                "最高倍数",
                "ALPS阶段",
                "预案等级",
                "首次",
                "最近",
            ),
            width=24,
            description="价格异常期间，门店价格高于所在生活圈中位价超过设定比例（默认 50%）；"
            "每条线索的逐日价格见 `baogong prices leads`",
        ),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (CITY, CIRCLE_DETAIL, NECESSITY_VIEW, PRICES, ALERTS, FEEDS, PIPELINE)


# ---------------------------------------------------------------- building


def _variable(v: VariableDef) -> db.QueryVariable:
    var = (
        db.QueryVariable(v.name)
        .label(v.label)
        .query(v.query)
        .datasource(DATASOURCE)
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .multi(v.multi)
        .include_all(v.include_all)
    )
    if v.include_all:
        var = var.current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    return var


def _panel(p: Panel, panel_id: int) -> Any:
    kinds: dict[str, Any] = {
        "timeseries": timeseries.Panel,
        "table": table.Panel,
        "stat": stat.Panel,
        "geomap": geomap.Panel,
    }
    b = kinds[p.kind]().id(panel_id).title(p.title).datasource(DATASOURCE).span(p.width).height(p.height)
    b = b.with_target(SqlQuery(p.sql).ref_id("A").format(p.fmt).datasource(DATASOURCE))
    if p.description:
        b = b.description(p.description)
    if p.unit:
        b = b.unit(p.unit)
    if p.repeat:
        b = b.repeat(p.repeat).repeat_direction("h").max_per_row(3)
    if p.kind == "timeseries":
        b = b.legend(
            cb.VizLegendOptions()
            .show_legend(True)
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
        )
        if p.title.startswith("可供天数") or p.title.startswith("各生活圈可供天数"):
            b = b.override_by_regexp(
                ".*(关注线|短缺线|危急线)$",
                [
                    dm.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
                    dm.DynamicConfigValue(id_val="custom.lineWidth", value=1),
                ],
            )
    if p.style is not None:
        b = p.style(b)
    return b


def build(d: Dashboard) -> dict[str, Any]:
    """The dashboard's JSON model, as Grafana stores it."""
    b = (
        db.Dashboard(d.title)
        .uid(d.uid)
        .description(d.description)
        .tags(["baogong", "保供"])
        .timezone("Asia/Shanghai")
        .time(d.time_from, "now")
        .refresh("1m")
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
    )
    for v in d.variables:
        b = b.with_variable(_variable(v))
    for i, p in enumerate(d.panels, start=1):
        b = b.with_panel(_panel(p, i))
    model: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(b.build()))
    return model


def render(d: Dashboard) -> str:
    return json.dumps(build(d), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_all(out_dir: Path = OUT_DIR) -> list[tuple[Path, bool]]:
    """Write every dashboard's JSON; answers (path, changed) for each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for d in DASHBOARDS:
        path = out_dir / f"{d.uid}.json"
        text = render(d)
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        if changed:
            path.write_text(text, encoding="utf-8")
        written.append((path, changed))
    return written


def panels(dashboards: Sequence[Dashboard] = DASHBOARDS) -> list[tuple[Dashboard, Panel]]:
    return [(d, p) for d in dashboards for p in d.panels]
