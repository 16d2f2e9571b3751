"""Messages people read, rendered from the channel-neutral payload (pure).

Every notifier renders its channel's message from the Alertmanager webhook
body (`alerts.notify.webhook.alertmanager_payload`): `message(payload)` reads
it once into a `Message` (a title and one `Item` per alert, with the facts a
responder needs), and the renderers below turn that into plain text, HTML,
WeCom or DingTalk markdown, or an SMS. One payload may list several alerts
(grouping: one message per circle and team); every alert is listed.

Chinese by default. A shortage reads:

    【保供告警】北林区·长安社区生活圈 大米 供应紧张

    1. 大米 供应紧张
       级别：紧张
       可供天数：2.4 天（紧张线 3 天）
       库存：600 公斤，日需求 250 公斤
       数据覆盖：网点 83%，库存 91%
       趋势：近 60 分钟 ↓0.8 天（3.2 → 2.4）
       开始：11-25 16:00

    处置：https://…

The facts come from the shortage rule's annotations (`alerts.rules.shortage`);
a missing one is left out, never shown as blank. Other alerts (feed quality,
pipeline stalled: the operators') show their summary and description. The
link to act is the payload's `externalURL`, else an alert's `generatorURL`;
without one, no link line is written. Times are China Standard Time (UTC+8).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

CHINA = timezone(timedelta(hours=8), "CST")
FIRING_PREFIX = "【保供告警】"
RESOLVED_PREFIX = "【已恢复】"

SEVERITY = {"critical": "严重", "high": "紧张", "warning": "警告", "info": "提示"}
UNITS = {"kg": "公斤", "L": "升", "piece": "件"}
HEADLINES = {
    "SupplierFeedQuality": "供应商数据异常",
    "PipelineStalled": "生活圈数据未更新",
}


@dataclass(frozen=True, slots=True)
class Item:
    """One alert as people read it."""

    status: str  # firing | resolved
    headline: str  # 北林区·长安社区生活圈 大米 供应紧张
    facts: tuple[tuple[str, str], ...]  # (label, value), in reading order
    link: str
    circle: str = ""  # circle name, when the alert is about a circle
    necessity: str = ""  # necessity name, when it is about a necessity

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"


@dataclass(frozen=True, slots=True)
class Message:
    status: str  # firing when any alert is firing
    title: str
    items: tuple[Item, ...]
    link: str


def message(payload: Mapping[str, Any]) -> Message:
    """Read an Alertmanager webhook body into a `Message` (never raises on missing fields)."""
    external = str(payload.get("externalURL") or "")
    items = tuple(_item(a, external) for a in payload.get("alerts") or ())
    status = str(payload.get("status") or ("firing" if any(not i.resolved for i in items) else "resolved"))
    link = external or next((i.link for i in items if i.link), "")
    return Message(status=status, title=_title(status, items), items=items, link=link)


# ---------------------------------------------------------------- reading the payload


def _item(alert: Mapping[str, Any], external: str) -> Item:
    labels: Mapping[str, str] = alert.get("labels") or {}
    notes: Mapping[str, str] = alert.get("annotations") or {}
    status = str(alert.get("status") or "firing")
    link = str(alert.get("generatorURL") or "") or external
    name = labels.get("alertname", "")
    severity = labels.get("severity", "")
    facts: list[tuple[str, str]] = []
    if severity:
        facts.append(("级别", SEVERITY.get(severity, severity)))
    if name == "SupplyShortage" or "necessity_name" in notes:
        circle = notes.get("circle_name") or labels.get("circle", "")
        necessity = notes.get("necessity_name") or labels.get("necessity", "")
        what = "供应严重紧张" if severity == "critical" else "供应紧张"
        headline = f"{circle} {necessity} {what}"
        facts.extend(_shortage_facts(notes))
    else:
        circle = notes.get("circle_name") or labels.get("circle", "")
        necessity = ""
        subject = labels.get("supplier") or circle
        headline = " ".join(p for p in (HEADLINES.get(name, name or "告警"), subject) if p)
        for label, key in (("摘要", "summary"), ("详情", "description")):
            if notes.get(key):
                facts.append((label, notes[key]))
    if notes.get("notice"):  # why this page came: reopened, escalated, data missing… (alerts.evaluate.note)
        facts.insert(0, ("提示", notes["notice"]))
    if notes.get("suggestions"):  # restock suggestions (alerts.restock)
        facts.append(("建议调货", notes["suggestions"]))
    started = _when(alert.get("startsAt"))
    if started:
        facts.append(("开始", started))
    if status == "resolved":
        ended = _when(alert.get("endsAt"))
        if ended:
            facts.append(("恢复", ended))
    return Item(status, headline, tuple(facts), link, circle, necessity)


def _shortage_facts(notes: Mapping[str, str]) -> list[tuple[str, str]]:
    unit = UNITS.get(notes.get("unit", ""), notes.get("unit", ""))
    facts: list[tuple[str, str]] = []
    days = notes.get("days_of_supply")
    if days:
        shown = "未知（数据不新鲜）" if days == "unknown" else f"{days} 天"
        line = notes.get("shortage_days")
        facts.append(("可供天数", f"{shown}（紧张线 {line} 天）" if line else shown))
    stock, demand = notes.get("stock"), notes.get("daily_demand")
    if stock and demand:
        facts.append(("库存", f"{stock} {unit}，日需求 {demand} {unit}"))
    coverage = [
        f"{label} {_percent(notes[key])}"
        for label, key in (("网点", "coverage"), ("库存", "coverage_stock"))
        if notes.get(key)
    ]
    if coverage:
        facts.append(("数据覆盖", "，".join(coverage)))
    trend = _trend(notes)
    if trend:
        facts.append(("趋势", trend))
    return facts


def _trend(notes: Mapping[str, str]) -> str:
    try:
        delta = float(notes["trend"])
    except (KeyError, ValueError):
        return ""
    window = notes.get("trend_window_min", "")
    span = f"近 {window} 分钟" if window else "近期"
    arrow = "持平" if abs(delta) < 0.05 else f"{'↓' if delta < 0 else '↑'}{abs(delta):.1f} 天"
    before, now = notes.get("days_before"), notes.get("days_of_supply")
    return f"{span} {arrow}（{before} → {now}）" if before and now else f"{span} {arrow}"


def _percent(value: str) -> str:
    try:
        return f"{float(value):.0%}"
    except ValueError:
        return value


def _when(value: Any) -> str:
    if not value or str(value).startswith("0001-"):
        return ""
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(CHINA).strftime("%m-%d %H:%M")


def _title(status: str, items: Sequence[Item]) -> str:
    prefix = RESOLVED_PREFIX if status == "resolved" else FIRING_PREFIX
    if not items:
        return prefix.rstrip()
    if len(items) == 1:
        return prefix + items[0].headline
    circles = {i.circle for i in items}
    if len(circles) == 1 and all(i.necessity for i in items):
        names = list(dict.fromkeys(i.necessity for i in items))
        listed = "、".join(names) if len(names) <= 3 else "、".join(names[:3]) + f"等{len(names)}项"
        what = "供应严重紧张" if any("严重" in i.headline for i in items) else "供应紧张"
        return f"{prefix}{items[0].circle} {listed} {what}"
    return f"{prefix}{items[0].headline} 等{len(items)}条"


# ---------------------------------------------------------------- renderers


def heading(msg: Message, item: Item) -> str:
    """An item's line in the list: without the circle when every item is about the same circle."""
    circle = item.circle
    if circle and all(i.circle == circle for i in msg.items) and item.headline.startswith(circle + " "):
        return item.headline[len(circle) + 1 :]
    return item.headline


def plain_text(msg: Message) -> str:
    lines = [msg.title, ""]
    for n, item in enumerate(msg.items, 1):
        lines.append(f"{n}. {heading(msg, item)}{'（已恢复）' if item.resolved and len(msg.items) > 1 else ''}")
        lines.extend(f"   {label}：{value}" for label, value in item.facts)
        if item.link and item.link != msg.link:
            lines.append(f"   处置：{item.link}")
    if msg.link:
        lines += ["", f"处置：{msg.link}"]
    return "\n".join(lines) + "\n"


def html_text(msg: Message) -> str:
    e = html.escape
    color = "#2e7d32" if msg.status == "resolved" else "#c62828"
    parts = [
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"></head>',
        '<body style="font-family: sans-serif">',
        f'<h2 style="color:{color}">{e(msg.title)}</h2>',
    ]
    for n, item in enumerate(msg.items, 1):
        mark = "（已恢复）" if item.resolved and len(msg.items) > 1 else ""
        parts.append(f"<h3>{n}. {e(heading(msg, item))}{mark}</h3><table>")
        parts.extend(f"<tr><th align=left>{e(label)}</th><td>{e(value)}</td></tr>" for label, value in item.facts)
        parts.append("</table>")
        if item.link and item.link != msg.link:
            parts.append(f'<p><a href="{e(item.link)}">处置</a></p>')
    if msg.link:
        parts.append(f'<p><a href="{e(msg.link)}">打开处置页面</a></p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


Flavor = Literal["wecom", "dingtalk"]


def markdown(msg: Message, flavor: Flavor = "wecom", items: Sequence[Item] | None = None, more: int = 0) -> str:
    """Markdown for a chat robot: WeCom's subset (font colours, `>` quotes) or DingTalk's (lists).

    `items`/`more` render only some items and say how many were left out (see `fit`).
    """
    shown = msg.items if items is None else items
    if flavor == "wecom":
        color = "info" if msg.status == "resolved" else "warning"
        lines = [f'## <font color="{color}">{msg.title}</font>']
        for n, item in enumerate(shown, 1):
            mark = ' <font color="info">已恢复</font>' if item.resolved and len(msg.items) > 1 else ""
            lines.append(f"**{n}. {heading(msg, item)}**{mark}")
            lines.extend(f"> {label}：{value}" for label, value in item.facts)
            if item.link and item.link != msg.link:
                lines.append(f"> [处置]({item.link})")
        sep = "\n"
    else:
        lines = [f"### {msg.title}"]
        for n, item in enumerate(shown, 1):
            mark = "（已恢复）" if item.resolved and len(msg.items) > 1 else ""
            lines.append(f"**{n}. {heading(msg, item)}**{mark}")
            lines.append("\n".join(f"- {label}：{value}" for label, value in item.facts))
            if item.link and item.link != msg.link:
                lines.append(f"[处置]({item.link})")
        sep = "\n\n"
    if more:
        lines.append(f"……另有 {more} 条，详见处置页面")
    if msg.link:
        lines.append(f"[打开处置页面]({msg.link})")
    return sep.join(lines)


def fit(msg: Message, render: Callable[[Sequence[Item], int], str], max_bytes: int) -> str:
    """The longest rendering of the first k items (all, if they fit) within `max_bytes` of UTF-8.

    `render(items, more)` renders `items` and says `more` were left out. A
    message too long even with one item is cut at a character boundary.
    """
    for k in range(len(msg.items), 0, -1):
        text = render(msg.items[:k], len(msg.items) - k)
        if len(text.encode()) <= max_bytes:
            return text
    text = render(msg.items[:1], len(msg.items) - 1)
    return text.encode()[: max_bytes - 3].decode(errors="ignore") + "……"


def sms_text(msg: Message, max_chars: int = 70, with_link: bool = True) -> str:
    """A short text for SMS: the title and each shortage's days of supply, at most `max_chars` characters.

    One SMS segment holds 70 Chinese characters (67 per part of a long one).
    The link is added only when it fits whole; the rest is cut with "…".
    """
    body = msg.title
    figures = []
    for item in msg.items:
        days = next((v.split("（")[0] for k, v in item.facts if k == "可供天数"), "")
        if days and item.necessity:
            figures.append(f"{item.necessity}{days.replace(' ', '')}")
    if figures:
        body += "，可供" + "、".join(figures)
    if with_link and msg.link and len(body) + 1 + len(msg.link) <= max_chars:
        return f"{body} {msg.link}"
    return body if len(body) <= max_chars else body[: max_chars - 1] + "…"
