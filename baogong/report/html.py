"""The report page: pure HTML from the shaped tables (no I/O). Chinese, A4 portrait, prints cleanly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any

import pandas as pd

from baogong.report.data import STATUS_ZH, Window

WEEKDAYS = "一二三四五六日"
CSS = """
@page { size: A4 portrait; margin: 14mm 12mm; }
body { font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei",
       "PingFang SC", sans-serif; color: #222; max-width: 186mm; margin: 0 auto; font-size: 10.5pt; line-height: 1.45; }
h1 { font-size: 18pt; margin: 0 0 2mm; } h2 { font-size: 13pt; border-bottom: 2px solid #a50f15;
     padding-bottom: 1mm; margin: 7mm 0 3mm; }
.meta { color: #666; font-size: 9pt; } .note { color: #666; font-size: 8.5pt; }
.cards { display: flex; flex-wrap: wrap; gap: 3mm; margin: 4mm 0; }
.card { border: 1px solid #ccc; border-radius: 2mm; padding: 2mm 3mm; min-width: 34mm; }
.card b { display: block; font-size: 15pt; } .card span { font-size: 8.5pt; color: #555; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; margin: 2mm 0 3mm; }
th, td { border: 1px solid #ccc; padding: 1mm 1.5mm; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.n { text-align: right; white-space: nowrap; }
.s { white-space: nowrap; font-weight: bold; padding: 0 1mm; border-radius: 1mm; }
.s-CRITICAL { background: #a50f15; color: #fff; } .s-SHORTAGE { background: #e6550d; color: #fff; }
.s-STALE { background: #9e9e9e; color: #fff; } .s-WATCH { background: #f2c14e; }
.s-OK { background: #41a45b; color: #fff; }
.worse { color: #a50f15; } .better { color: #2b7a3d; }
img { width: 100%; height: auto; display: block; margin: 2mm 0; }
figure { margin: 0; break-inside: avoid; page-break-inside: avoid; }
@media print {
  body { max-width: none; font-size: 10pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  tr, .card { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
}
"""


@dataclass
class Page:
    window: Window
    generated_at: datetime
    circles: int
    population: int
    counts: Mapping[str, int]
    at_risk: pd.DataFrame
    handling: pd.DataFrame
    summary: Mapping[str, Any]
    feed: pd.DataFrame
    changes: pd.DataFrame
    charts: Mapping[str, str] = field(default_factory=dict)  # key -> PNG file name beside the page
    prices: Sequence[Mapping[str, Any]] = ()  # price levels of the day that were not calm (price_levels rows)
    leads: Sequence[Mapping[str, Any]] = ()  # gouging leads of the day (price_leads rows)


def _e(x: Any) -> str:
    return escape("" if x is None else str(x))


def status_tag(status: str | None) -> str:
    if status is None or (isinstance(status, float) and pd.isna(status)):
        return "—"
    return f'<span class="s s-{_e(status)}">{_e(STATUS_ZH.get(status, status))}</span>'


def minutes(v: Any) -> str:
    """12 -> "12 分钟", 90 -> "1 小时 30 分"; None -> "—"."""
    if v is None or pd.isna(v):
        return "—"
    m = round(float(v))
    return f"{m} 分钟" if m < 60 else f"{m // 60} 小时 {m % 60} 分"


def _days(v: Any) -> str:
    return "—" if v is None or pd.isna(v) else f"{float(v):.1f}"


def _pct(v: Any) -> str:
    return "—" if v is None or pd.isna(v) else f"{float(v):.0%}"


def _time(v: Any) -> str:
    if v is None or pd.isna(v):
        return "—"
    return pd.Timestamp(v).tz_convert("Asia/Shanghai").strftime("%H:%M")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    if not rows:
        return '<p class="note">（无）</p>'
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _figure(charts: Mapping[str, str], key: str, alt: str) -> str:
    name = charts.get(key)
    return f'<figure><img src="{_e(name)}" alt="{_e(alt)}"></figure>' if name else ""


def render(p: Page) -> str:
    w = p.window
    day = f"{w.day:%Y年%m月%d日}（星期{WEEKDAYS[w.day.weekday()]}）"
    until = f"数据截至 {w.end.astimezone(w.start.tzinfo):%m月%d日 %H:%M}" + ("（当日尚未结束）" if w.partial else "")
    s = p.summary
    not_ok = sum(v for k, v in p.counts.items() if k != "OK")
    silent = int((p.feed["verdict"] == "静默").sum()) if len(p.feed) else 0
    late = int((p.feed["verdict"] == "迟报").sum()) if len(p.feed) else 0
    cards = [
        (f"{p.circles}", f"生活圈（{p.population:,} 人）"),
        (f"{not_ok}", "非正常的圈×品类"),
        (f"{p.counts.get('SHORTAGE', 0) + p.counts.get('CRITICAL', 0)}", "曾短缺/严重短缺"),
        (f"{s['alerts']}", f"告警（未关闭 {s['open']}）"),
        (minutes(s["ack_median"]), "告警确认用时中位数"),
        (f"{silent} / {late}", "静默 / 迟报供应商"),
    ]
    out = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>保供日报 {w.day:%Y-%m-%d}</title><style>{CSS}</style></head><body>",
        f"<h1>一刻钟便民生活圈应急保供日报</h1><p class='meta'>{day}　{until}　"
        f"生成于 {p.generated_at.astimezone(w.start.tzinfo):%Y-%m-%d %H:%M}　供各部门联席会议使用</p>",
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for v, k in cards)
        + "</div>",
        "<h2>一、全市态势</h2>",
        "<p>状态计数（圈×品类，按当日最差）："
        + "，".join(f"{status_tag(k)} {v}" for k, v in p.counts.items())
        + "</p>",
        _figure(p.charts, "status", "各生活圈当日最差状态"),
        _figure(p.charts, "trend", "可供天数走势"),
        "<h2>二、风险生活圈及原因</h2>",
        _table(
            ["生活圈", "品类", "当日最差", "当前", "可供天数", "门店覆盖", "库存覆盖", "需求口径", "原因"],
            [
                [
                    _e(r["circle"]),
                    _e(r["necessity_zh"]),
                    status_tag(r["status_worst"]),
                    status_tag(r["status"]),
                    _days(r["days"]),
                    _pct(r["coverage"]),
                    _pct(r["coverage_stock"]),
                    _e(r["demand_source"]),
                    _e(r["why"]),
                ]
                for r in p.at_risk.to_dict("records")
            ],
            numeric=(4, 5, 6),
        ),
        "<h2>三、告警与处置</h2>",
        f"<p>当日告警 {s['alerts']} 条：已确认 {s['acknowledged']}，已解除 {s['resolved']}，升级 {s['escalated']}，"
        f"未关闭 {s['open']}；调货任务 {s['tasks']} 个。发出→确认中位数 {minutes(s['ack_median'])}，"
        f"发出→解除中位数 {minutes(s['resolve_median'])}。</p>",
        _table(
            ["生活圈", "品类", "类型/级别", "发出", "确认（用时）", "解除（用时）", "升级", "调货任务", "状态"],
            [
                [
                    _e(a["circle"]),
                    _e(a["necessity_zh"]),
                    f"{_e(a['rule_zh'])}/{_e(a['severity_zh'])}",
                    _time(a["paged_at"]),
                    f"{_time(a['acknowledged_at'])}（{minutes(a['ack_min'])}）"
                    + (f" {_e(a['acknowledged_by'])}" if a["acknowledged_by"] else ""),
                    f"{_time(a['resolved_at'])}（{minutes(a['resolve_min'])}）"
                    + (f" {_e(a['resolved_by'])}" if a["resolved_by"] else (" 自动恢复" if a["resolved_at"] else "")),
                    f"{a['escalations']} 次" if a["escalations"] else "—",
                    _task(a),
                    {"resolved": "已解除", "acknowledged": "已确认", "firing": "告警中"}.get(
                        a["state"], _e(a["state"])
                    ),
                ]
                for a in p.handling.to_dict("records")
            ],
        )
        if len(p.handling)
        else '<p class="note">（当日无告警）</p>',
        _figure(p.charts, "handling", "告警处置时长"),
        "<h2>四、数据报送情况</h2>",
        _table(
            ["供应商", "接收", "拒收", "拒收率", "重复", "死信", "报送小时数", "最后接收", "判定"],
            [
                [
                    _e(f["name"]),
                    f"{int(f['accepted']):,}",
                    f"{int(f['rejected']):,}",
                    _pct(f["rejected_share"]),
                    f"{int(f['duplicates']):,}",
                    f"{int(f['dead_lettered']):,}",
                    str(f["hours_reporting"]),
                    _time(f["last_accepted"]) if f["last_accepted"] is not None else "—",
                    _e(f["verdict"]) if f["verdict"] == "正常" else f'<b class="worse">{_e(f["verdict"])}</b>',
                ]
                for f in p.feed.to_dict("records")
            ],
            numeric=(1, 2, 3, 4, 5, 6),
        ),
        _figure(p.charts, "feed", "供应商数据报送"),
        '<p class="note">静默：当日无任何被接收的记录；迟报：最后一条被接收的记录早于截止时间 2 小时以上。</p>',
        "<h2>五、与昨日相比</h2>",
        _table(
            ["生活圈", "品类", "昨日末", "今日末", "可供天数（昨→今）", "变化"],
            [
                [
                    _e(c["circle"]),
                    _e(c["necessity_zh"]),
                    status_tag(c["was"]),
                    status_tag(c["is"]),
                    f"{_days(c['days_was'])} → {_days(c['days_is'])}",
                    '<span class="worse">恶化</span>' if c["worse"] else '<span class="better">好转</span>',
                ]
                for c in p.changes.to_dict("records")
            ],
        ),
        _price_section(p),
        '<p class="note">状态：严重短缺＞短缺＞数据不足＞关注＞正常。可供天数＝可确认库存÷日需求；'
        "覆盖率低于下限时为“数据不足”，既不报正常也不报短缺。时间为北京时间。</p>",
        "</body></html>",
    ]
    return "\n".join(x for x in out if x)


def _task(a: Mapping[str, Any]) -> str:
    if a.get("task_id") is None or pd.isna(a["task_id"]):
        return "—"
    state = {"open": "待调度", "dispatched": "已派出", "delivered": "已送达", "closed": "已关闭"}.get(
        a["task_state"], a["task_state"]
    )
    extra = (
        f"，确认后 {minutes(a['dispatch_min'])} 派出"
        if a.get("dispatch_min") is not None and not pd.isna(a["dispatch_min"])
        else ""
    )
    return f"#{int(a['task_id'])} {_e(state)}{extra}"


PHASE_ZH = {"CRISIS": "危机", "ALERT": "预警", "STRESS": "关注", "NORMAL": "正常", "UNKNOWN": "未知"}


def _money(v: Any) -> str:
    return "—" if v is None else f"{float(v):.2f}"


def _rise(v: Any) -> str:
    return "—" if v is None else f"{float(v):+.0%}"


def _price_section(p: Page) -> str:
    """六、价格监测: the day's price levels that were not calm, both grades, and the gouging leads."""
    head = "<h2>六、价格监测</h2>"
    if not p.prices and not p.leads:
        return head + '<p class="note">（当日各生活圈价格均在基准附近，无价格预警）</p>'
    spiking = sum(1 for r in p.prices if r["spiking"])
    out = [
        head,
        f"<p>价格异常（ALPS 预警及以上或达到预案涨幅等级）{spiking} 项，哄抬价格线索 {len(p.leads)} 条。</p>",
        _table(
            ["范围", "品类", "价格", "基准", "偏离(σ)", "ALPS", "预案等级", "日涨幅", "周涨幅"],
            [
                [
                    _e(r["circle_name"] or r["circle_id"]),
                    _e(r["necessity_name"]),
                    _money(r["price"]),
                    _money(r["baseline"]),
                    "—" if r["deviation"] is None else f"{float(r['deviation']):.1f}",
                    _e(PHASE_ZH.get(r["phase"], r["phase"])) + ("（无新鲜价格）" if r["stale"] else ""),
                    {"NONE": "未达", "UNKNOWN": "未知"}.get(r["plan_grade"], f"{_e(r['plan_grade'])}级"),
                    _rise(r["rise_day"]),
                    _rise(r["rise_week"]),
                ]
                for r in p.prices
            ],
            numeric=(2, 3, 4, 7, 8),
        ),
    ]
    if p.leads:
        out.append(
            _table(
                ["生活圈", "门店", "品类", "门店价格", "圈中位价", "倍数"],
                [
                    [
                        _e(r["circle_id"]),
                        _e(r["outlet_name"]),
                        _e(r["necessity_name"]),
                        _money(r["price"]),
                        _money(r["circle_price"]),
                        f"{float(r['ratio_max']):.2f}",
                    ]
                    for r in p.leads
                ],
                numeric=(3, 4, 5),
            )
        )
    out.append(
        '<p class="note">ALPS：偏离基准（近 28 日日中位数的中位数）的标准差数，≥1 预警、≥2 危机；预案等级：'
        "日涨幅或周涨幅超过本市预案阈值。哄抬线索供市场监管局核查（baogong prices leads）。</p>"
    )
    return "".join(out)
