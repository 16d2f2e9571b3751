"""What people read: Chinese titles and facts rendered from the payload, for every channel (pure)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

from alerts.model import Alert, Event
from alerts.notify import alertmanager, dingtalk, email, templates, wecom
from alerts.notify.webhook import alertmanager_payload
from alerts.rules import feed, shortage

T0 = datetime(2026, 11, 25, 8, tzinfo=UTC)  # 16:00 in Beijing
LINK = "https://baogong.example.org/alerts/7"


def level(necessity: str = "rice", name: str = "大米", days: float | None = 2.4, **kw: Any) -> shortage.LevelView:
    base = shortage.LevelView(
        "C03", "北林区·长安社区生活圈", necessity, name, "kg", days, 600.0, 250.0, 0.83, "SHORTAGE", 3.0, 1.0, 0.91, 3.2
    )
    return replace(base, **kw)


def shortage_alert(lv: shortage.LevelView, ended: bool = False) -> Alert:
    verdict = shortage.evaluate(lv, 0.2)
    return Alert(
        fingerprint=verdict.fingerprint,
        rule=shortage.RULE,
        severity=verdict.severity,
        state="resolved" if ended else "firing",
        labels=verdict.labels,
        annotations=verdict.annotations,
        pending_since=T0,
        starts_at=T0,
        ends_at=T0.replace(hour=10) if ended else None,
    )


def payload(*alerts: Alert, resolved: bool = False, link: str = LINK) -> dict[str, Any]:
    """One message listing several alerts (as grouping will make them)."""
    event = Event.RESOLVED if resolved else Event.FIRED
    bodies = [alertmanager_payload(a, event, "r", link) for a in alerts]
    out = bodies[0]
    out["alerts"] = [b["alerts"][0] for b in bodies]
    return out


def test_a_shortage_reads_in_chinese_with_every_fact() -> None:
    msg = templates.message(payload(shortage_alert(level())))
    assert msg.title == "【保供告警】北林区·长安社区生活圈 大米 供应紧张"
    facts = dict(msg.items[0].facts)
    assert facts["级别"] == "紧张"
    assert facts["可供天数"] == "2.4 天（紧张线 3 天）"
    assert facts["库存"] == "600 公斤，日需求 250 公斤"
    assert facts["数据覆盖"] == "网点 83%，库存 91%"
    assert facts["趋势"] == "近 60 分钟 ↓0.8 天（3.2 → 2.4）"
    assert facts["开始"] == "11-25 16:00"
    assert msg.link == LINK
    text = templates.plain_text(msg)
    assert text.startswith("【保供告警】北林区·长安社区生活圈 大米 供应紧张\n")
    assert f"处置：{LINK}" in text


def test_critical_and_resolved_titles() -> None:
    critical = shortage_alert(level(days=0.5))
    assert templates.message(payload(critical)).title == "【保供告警】北林区·长安社区生活圈 大米 供应严重紧张"
    resolved = templates.message(payload(shortage_alert(level(days=4.0), ended=True), resolved=True))
    assert resolved.title == "【已恢复】北林区·长安社区生活圈 大米 供应紧张"
    assert dict(resolved.items[0].facts)["恢复"] == "11-25 18:00"


def test_one_message_lists_every_alert_of_a_circle() -> None:
    alerts = [
        shortage_alert(level("rice", "大米")),
        shortage_alert(level("oil", "食用油", days=1.2)),
        shortage_alert(level("eggs", "鸡蛋", days=0.8)),
        shortage_alert(level("pork", "猪肉", days=2.0)),
    ]
    msg = templates.message(payload(*alerts))
    assert msg.title == "【保供告警】北林区·长安社区生活圈 大米、食用油、鸡蛋等4项 供应严重紧张"
    text = templates.plain_text(msg)
    for n, name in enumerate(("大米", "食用油", "鸡蛋", "猪肉"), 1):
        assert f"{n}. {name} 供应" in text
    md = wecom.body(payload(*alerts))["markdown"]["content"]
    assert all(name in md for name in ("大米", "食用油", "鸡蛋", "猪肉"))


def test_no_link_no_link_line_and_no_trend_without_history() -> None:
    msg = templates.message(payload(shortage_alert(level(days_before=None, coverage_stock=None)), link=""))
    assert msg.link == ""
    assert "处置" not in templates.plain_text(msg)
    assert "](" not in templates.markdown(msg, "wecom")
    facts = dict(msg.items[0].facts)
    assert "趋势" not in facts and facts["数据覆盖"] == "网点 83%"


def test_operator_alerts_show_summary_and_description() -> None:
    verdict = feed.evaluate("S01", "惠民超市", 10, 90, 90, 0.5, 50, 10)
    alert = Alert("f", feed.RULE, "warning", "firing", verdict.labels, verdict.annotations, T0, starts_at=T0)
    msg = templates.message(payload(alert))
    assert msg.title == "【保供告警】供应商数据异常 S01"
    assert dict(msg.items[0].facts)["摘要"].startswith("惠民超市")


def test_robot_messages_fit_their_byte_limit_and_count_what_was_left_out() -> None:
    many = [shortage_alert(level(f"n{i}", f"必需品{i}")) for i in range(60)]
    content = wecom.body(payload(*many))["markdown"]["content"]
    assert len(content.encode()) <= wecom.MAX_BYTES
    assert "另有" in content and content.endswith(f"[打开处置页面]({LINK})")
    ding = dingtalk.body(payload(*many), at_mobiles=("13800000001",))
    assert len(ding["markdown"]["text"].encode()) <= dingtalk.MAX_BYTES
    assert ding["markdown"]["text"].endswith("@13800000001")
    assert ding["at"] == {"atMobiles": ["13800000001"], "isAtAll": False}
    assert "保供" in ding["markdown"]["title"]


def test_sms_is_short_and_keeps_the_link_only_when_it_fits() -> None:
    msg = templates.message(payload(shortage_alert(level()), shortage_alert(level("oil", "食用油", days=1.2))))
    text = templates.sms_text(msg, 70)
    assert len(text) <= 70 and text.startswith("【保供告警】北林区·长安社区生活圈") and "大米2.4天" in text
    assert LINK not in text  # did not fit in one segment
    assert templates.sms_text(msg, 200).endswith(" " + LINK)


def test_email_has_text_and_html_parts_and_an_encoded_subject() -> None:
    mail = email.compose(payload(shortage_alert(level())), "保供平台 <alerts@example.org>", ("team@example.org",))
    raw = mail.as_bytes(policy=policy.SMTP)
    subject_line = next(line for line in raw.split(b"\r\n") if line.startswith(b"Subject:"))
    assert subject_line.isascii() and b"=?utf-8?" in subject_line
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "【保供告警】北林区·长安社区生活圈 大米 供应紧张"
    assert parsed.get_content_type() == "multipart/alternative"
    plain = parsed.get_body(("plain",))
    rich = parsed.get_body(("html",))
    assert plain is not None and "可供天数：2.4 天" in plain.get_content()
    assert rich is not None and "<th align=left>可供天数</th><td>2.4 天（紧张线 3 天）</td>" in rich.get_content()


def test_alertmanager_body_fires_with_a_hold_and_resolves_in_the_past() -> None:
    now = datetime(2026, 11, 25, 9, tzinfo=UTC)
    firing = alertmanager.postable_alerts(payload(shortage_alert(level())), now, 3600)
    (item,) = firing
    assert item["labels"]["circle"] == "C03" and item["annotations"]["title"].startswith("【保供告警】")
    assert item["startsAt"] == T0.isoformat() and item["endsAt"] == "2026-11-25T10:00:00+00:00"
    assert item["generatorURL"] == LINK
    resolved = alertmanager.postable_alerts(payload(shortage_alert(level(), ended=True), resolved=True), now, 3600)
    assert resolved[0]["endsAt"] == T0.replace(hour=10).isoformat()
    assert resolved[0]["labels"] == item["labels"]
    blank = alertmanager.postable_alerts(payload(shortage_alert(level()), link=""), now, 3600)
    assert "generatorURL" not in blank[0] and "link" not in blank[0]["annotations"]
    json.dumps(firing)  # serialisable as is


def test_shortage_annotations_are_strings_with_the_facts() -> None:
    notes = shortage.evaluate(level(), 0.2).annotations
    assert all(isinstance(v, str) for v in notes.values())
    assert notes["days_of_supply"] == "2.4" and notes["shortage_days"] == "3"
    assert notes["coverage"] == "0.83" and notes["coverage_stock"] == "0.91"
    assert notes["trend"] == "-0.8" and notes["days_before"] == "3.2" and notes["trend_window_min"] == "60"
    unknown = shortage.evaluate(level(days=None), 0.2).annotations
    assert unknown["days_of_supply"] == "unknown" and "trend" not in unknown
