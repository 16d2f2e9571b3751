"""The worker's batch contract (streams/batch.py) and the sink's row keying, with fake write functions."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import pytest

from schema.contract import Accepted
from streams.batch import EXIT_CANCELLED, EXIT_UNEXPECTED, PoisonFlood, PoisonLimit, describe, isolate, settle
from streams.sink import RECREATED_AFTER, MessageWrite, Position, Written, _sort_rows, keyed_rows, row_key


class Outage(Exception):
    pass


class FakeStore:
    """A write function that refuses any part holding a poison item, all or nothing, like a savepoint."""

    def __init__(self, poison: set[int], outage_after: int | None = None) -> None:
        self.poison = poison
        self.stored: list[int] = []
        self.attempts: list[list[int]] = []
        self.outage_after = outage_after

    async def write(self, part: Sequence[int]) -> int:
        self.attempts.append(list(part))
        if self.outage_after is not None and len(self.attempts) > self.outage_after:
            raise Outage("database away")
        bad = self.poison.intersection(part)
        if bad:
            raise ValueError(f"refused {sorted(bad)}")
        self.stored.extend(part)
        return len(part)


def test_nothing_refused_is_one_attempt() -> None:
    store = FakeStore(poison=set())
    out = asyncio.run(isolate(list(range(500)), store.write))
    assert store.attempts == [list(range(500))]
    assert out.refused == [] and out.attempts == 1
    assert store.stored == list(range(500))


@pytest.mark.parametrize("poison", [{0}, {499}, {17}, {3, 4}, {0, 250, 499}, set(range(0, 500, 7))])
def test_each_refused_item_is_alone_and_everything_else_is_written_in_order(poison: set[int]) -> None:
    store = FakeStore(poison=poison)
    out = asyncio.run(isolate(list(range(500)), store.write))
    assert [item for item, _ in out.refused] == sorted(poison)
    assert all(isinstance(exc, ValueError) for _, exc in out.refused)
    assert store.stored == [i for i in range(500) if i not in poison]  # in order: offsets only move forward
    assert sum(result for _, result in out.written) == 500 - len(poison)


def test_one_poison_in_500_costs_about_two_log2_attempts() -> None:
    store = FakeStore(poison={321})
    asyncio.run(isolate(list(range(500)), store.write))
    assert len(store.attempts) <= 2 * 9 + 1


def test_an_outage_is_not_a_refusal_it_propagates() -> None:
    store = FakeStore(poison={5}, outage_after=2)
    with pytest.raises(Outage):
        asyncio.run(isolate(list(range(10)), store.write, is_refusal=lambda exc: not isinstance(exc, Outage)))


def test_empty_batch_attempts_nothing() -> None:
    store = FakeStore(poison=set())
    nothing: list[int] = []
    out = asyncio.run(isolate(nothing, store.write))
    assert store.attempts == [] and out.written == [] and out.refused == []


def test_poison_limit_stops_a_flood_and_a_write_resets_it() -> None:
    limit = PoisonLimit(3)
    limit.refused(2)
    limit.written()
    limit.refused(3)
    with pytest.raises(PoisonFlood):
        limit.refused(1)
    PoisonLimit(0).refused(10_000)  # 0: never stops


def test_isolate_stops_before_dead_lettering_a_flood() -> None:
    store = FakeStore(poison=set(range(10)))  # a sink bug: every row refused
    with pytest.raises(PoisonFlood):
        asyncio.run(isolate(list(range(10)), store.write, limit=PoisonLimit(4)))
    store = FakeStore(poison={1, 3, 5, 7, 9})  # refusals between written rows never add up
    out = asyncio.run(isolate(list(range(10)), store.write, limit=PoisonLimit(1)))
    assert len(out.refused) == 5


class Exited(Exception):
    pass


def fake_exit(codes: list[int]) -> object:
    def exit_(code: int) -> NoReturn:
        codes.append(code)
        raise Exited

    return exit_


def test_settle_exits_before_anything_else_runs_when_the_batch_fails() -> None:
    codes: list[int] = []

    async def failing() -> None:
        raise RuntimeError("a bug outside per-message code")

    with pytest.raises(Exited):  # the real exit (os._exit) leaves no chance to take()'s finally
        asyncio.run(settle(failing, what="test", exit=fake_exit(codes)))  # type: ignore[arg-type]
    assert codes == [EXIT_UNEXPECTED]


def test_settle_exits_on_a_cancellation_mid_batch() -> None:
    codes: list[int] = []

    async def writing() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.create_task(settle(writing, what="test", exit=fake_exit(codes)))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(Exited):
            await task

    asyncio.run(main())
    assert codes == [EXIT_CANCELLED]


def test_settle_returns_quietly_when_the_batch_is_handled() -> None:
    codes: list[int] = []

    async def fine() -> None:
        return None

    asyncio.run(settle(fine, what="test", exit=fake_exit(codes)))  # type: ignore[arg-type]
    assert codes == []


def test_describe_names_the_type_and_first_line() -> None:
    assert describe(ValueError("bad\nmore")) == "ValueError: bad"
    assert describe(ZeroDivisionError()) == "ZeroDivisionError"
    assert len(describe(ValueError("x" * 2000))) == 500


AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def line(index: int, necessity: str, amount: float, key: str = "", sold: float | None = None) -> Accepted:
    return Accepted(index, "O1", necessity, amount, "kg", AT, sold, None, AT.timestamp(), key)


def test_inventory_lines_sharing_a_key_are_summed_in_order() -> None:
    lines = [
        line(0, "rice", 50.0, "RICE-5KG", 5.0),
        line(1, "rice", 100.0, "RICE-10KG"),
        line(2, "oil", 3.0),
        line(3, "rice", 25.0, "RICE-5KG", 2.0),
        line(4, "oil", 2.0, sold=1.0),
    ]
    rows, summed = keyed_rows("inventory", lines)
    got = [(r.necessity, r.line_key, r.amount, r.sold_24h, summed.get(id(r), 1), r.index) for r in rows]
    assert got == [
        ("rice", "RICE-5KG", 75.0, 7.0, 2, 0),
        ("rice", "RICE-10KG", 100.0, None, 1, 1),
        ("oil", "", 5.0, 1.0, 2, 2),
    ]


def test_price_lines_are_never_summed() -> None:
    rows, summed = keyed_rows("price", [line(0, "rice", 3.0), line(1, "rice", 3.5)])
    assert [r.amount for r in rows] == [3.0, 3.5] and summed == {}


def test_written_covers_redeliveries_but_not_a_recreated_log() -> None:
    last = AT
    w = Written(next_offset=10, message_at=last)
    assert w.covers(Position("t", 0, 9, last))  # a redelivery
    assert w.covers(Position("t", 0, 3, last - timedelta(hours=1)))
    assert w.covers(Position("t", 0, 3, last + RECREATED_AFTER))  # clock skew between producers: still old
    assert w.covers(Position("t", 0, 3, None))  # no timestamp: the offset decides
    assert not w.covers(Position("t", 0, 10, last))  # not written yet
    assert not w.covers(Position("t", 0, 3, last + RECREATED_AFTER + timedelta(seconds=1)))  # a new log
    assert not Written().covers(Position("t", 0, 0, last))


def _report(offset: int, outlet: str, at: datetime, keys: Sequence[str]) -> MessageWrite:
    lines = [Accepted(i, outlet, "rice", 1.0 + i, "kg", at, None, k, at.timestamp(), k) for i, k in enumerate(keys)]
    rows, summed = keyed_rows("inventory", lines)
    return MessageWrite(Position("t", 0, offset), "s1", rows, received_at=AT, summed=summed)


def _first_wins(messages: Sequence[MessageWrite]) -> tuple[list[int], list[int]]:
    """Offsets of the rows to write and of the repeats, by each row's key, the first of a key winning."""
    seen: set[tuple[object, ...]] = set()
    pending, repeats = [], []
    for m in messages:
        for row in m.rows:
            key = row_key("inventory", row)
            (repeats if key in seen else pending).append(m.position.offset)
            seen.add(key)
    return pending, repeats


def test_the_usual_batchs_shortcut_sorts_rows_as_the_check_of_every_key_does() -> None:
    later = AT + timedelta(seconds=1)
    batches = {
        "one report each, no two alike (the shortcut)": [_report(0, "O1", AT, "ab"), _report(1, "O2", AT, "ab")],
        "a report continued in a second message": [_report(0, "O1", AT, "ab"), _report(1, "O1", AT, "bc")],
        "the same outlet at two times": [_report(0, "O1", AT, "ab"), _report(1, "O1", later, "ab")],
    }
    mixed = _report(2, "O3", AT, "a")
    mixed.rows.append(_report(2, "O1", AT, "a").rows[0])  # one message, two reports; its second row a repeat
    batches["a message of two reports"] = [_report(0, "O1", AT, "ab"), mixed]
    for name, messages in batches.items():
        pending, repeats, refused = _sort_rows("inventory", messages, {})
        got = ([m.position.offset for m, _ in pending], [m.position.offset for m, _ in repeats])
        assert got == _first_wins(messages) and refused == [], name
    messages = batches["one report each, no two alike (the shortcut)"]
    refusal = ValueError("refused before")
    pending, repeats, refused = _sort_rows("inventory", messages, {id(messages[1].rows[0]): refusal})
    assert [r.line_key for _, r in pending] == ["a", "b", "b"] and repeats == []
    assert [(m.position.offset, r.line_key, e) for (m, r), e in refused] == [(1, "a", refusal)]
