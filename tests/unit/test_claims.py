"""Which records repeat earlier ones: keys, repeats inside a request, and comparing with claimed reports."""

from __future__ import annotations

from ingest import claims
from schema.contract import Accepted, validate_records
from tests.unit.test_contract import CTX, rec


def accepted(*rows: dict[str, object]) -> list[Accepted]:
    good, bad = validate_records("inventory", list(rows), CTX, "s1")
    assert bad == []
    return good


def test_a_record_is_named_by_message_id_else_necessity_within_its_report() -> None:
    a, b, c, d, e = accepted(
        rec(message_id="m1"),
        rec(message_id="m1", quantity=99),
        rec(),
        rec(quantity=5, reported_at="2026-11-25T03:00:00Z"),  # the same instant as 11:00 in Shanghai
        rec(reported_at="2026-11-25T11:05:00+08:00"),
    )
    assert claims.record_key(a) == claims.record_key(b) != claims.record_key(c) == claims.record_key(d)
    same_report = claims.report_key("inventory", "s1", a.outlet_id, a.at)
    assert same_report == claims.report_key("inventory", "s1", d.outlet_id, d.at)
    assert same_report != claims.report_key("price", "s1", a.outlet_id, a.at)
    assert same_report != claims.report_key("inventory", "s2", a.outlet_id, a.at)
    assert same_report != claims.report_key("inventory", "s1", e.outlet_id, e.at)


def test_plan_groups_by_report_and_finds_repeats_inside_the_request() -> None:
    good = accepted(rec(), rec(necessity="milk", unit="L"), rec(outlet_id="O2"), rec(quantity=3), rec())
    plan = claims.plan("inventory", "s1", good)
    assert [len(members) for members in plan.reports.values()] == [2, 1]
    assert [r.index for r in plan.repeats] == [3, 4]
    keys, records = plan.rows()
    assert len(keys) == 2 and [len(r) for r in records] == [16, 8]
    assert [[r.index for r in g.lines] for g in plan.groups()] == [[0, 1], [2]]


def test_sort_out_against_claimed_reports() -> None:
    good = accepted(rec(), rec(necessity="milk", unit="L"), rec(outlet_id="O2"), rec(necessity="milk", unit="L"))
    plan = claims.plan("inventory", "s1", good)
    o1, o2 = list(plan.reports)
    claimed = {o1: claims.record_key(good[0])}  # rice at O1 was accepted before
    found = claims.sort_out(plan, claimed)
    assert [r.index for r in found.repeats] == [0, 3]
    assert [[r.index for r in g.lines] for g in plan.groups(leaving_out=found.repeats)] == [[1], [2]]
    assert found.additions == ([o1], [claims.record_key(good[1])])
    assert o2 not in found.additions[0]


def test_nothing_claimed_before_means_everything_is_fresh() -> None:
    good = accepted(rec(), rec(outlet_id="O2"))
    plan = claims.plan("inventory", "s1", good)
    found = claims.sort_out(plan, {})
    assert found.repeats == [] and found.additions == ([], [])
    assert [g.lines for g in plan.groups(leaving_out=found.repeats)] == [[good[0]], [good[1]]]


def test_a_report_of_more_than_1000_lines_is_several_messages() -> None:
    good = accepted(*(rec(message_id=f"m{i}") for i in range(2500)))
    groups = claims.plan("inventory", "s1", good).groups()
    assert [len(g.lines) for g in groups] == [1000, 1000, 500]
    assert {g.outlet_id for g in groups} == {"O1"}
