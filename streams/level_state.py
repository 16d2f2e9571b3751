"""What circle levels are computed from, held in memory and brought up to date from the database.

The full pass used to ask the database for every circle's sums (`circle_inputs` in schema/queries.sql): 45 ms for
the demo city, but 0.5 s for a city of 75,000 outlets and 1.5-2.5 s for 300,000, most of it joining every stock
row to its circles. `LevelState` keeps every outlet's latest stock per necessity in NumPy arrays and computes the
same sums itself, for all circles or for the few a batch of reports touched.

`sync(conn)` brings it up to date in one REPEATABLE READ transaction (migration 0021):

* when `level_inputs_version` moved (outlets, their circles, business types' necessities, necessities,
  communities, circles, emergencies or deleted stock changed) or on first use, it reloads everything;
* otherwise it reads only the stock rows written by transactions that the snapshot of its previous read did not
  see (`outlet_stock.written_xid`), so a transaction that committed late is never missed and nothing is read
  twice, and says which circles they touch.

`inputs(now, grades, circles)` then gives the `CircleInputs` of those circles (all when None) with exactly the
rules of `circle_inputs` and `counted_stock(at)`: stock of active outlets reported since they were last
activated counts; it is fresh while inside its necessity's freshness window (shortened under the circle's
emergency grade, `schema.emergency`), else unconfirmed; outlets are expected by business type.
tests/integration/test_level_state.py checks the two agree on random cities. Times are integer microseconds, as
PostgreSQL keeps them, so a report exactly at a window's edge is judged the same.

Memory: four arrays of outlets x necessities (about 90 MB for 300,000 outlets and 12 necessities) and the
circle memberships; the work of one pass is done in chunks of `CHUNK` memberships.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.rows import tuple_row

from schema.db import SCHEMA_DIR, load_queries
from schema.emergency import rules as grade_rules
from streams.levels import CircleInputs, Thresholds

QUERIES = load_queries(SCHEMA_DIR / "level_state.sql")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Stand-in for "no time" (no report, never deactivated) in the microsecond arrays.
NEVER = np.iinfo(np.int64).min
_NO_TIME = np.iinfo(np.int64).max  # the minimum of no times
#: Memberships (outlet in circle) computed at once; bounds the pass's temporary arrays (~16 B x necessities each).
CHUNK = 16_384
#: Rows fetched at a time from the server-side cursor of a reload.
READ_BLOCK = 20_000

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def micros(at: datetime) -> int:
    """`at` as integer microseconds since the epoch (exact, as PostgreSQL stores timestamptz)."""
    return (at - EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class NecessityRule:
    code: str
    per_capita_daily: float
    thresholds: Thresholds
    freshness_minutes: int


@dataclass
class Touched:
    """What a `sync` changed: everything (a reload), or the stock of these circles (indices into `circles`)."""

    everything: bool = False
    circles: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return self.everything or bool(self.circles)


class LevelState:
    """Every outlet's stock and the city's reference data, for computing circle levels (module docstring)."""

    def __init__(self) -> None:
        self.version: int | None = None
        self.snapshot: str | None = None
        self.necessities: list[NecessityRule] = []
        self.circles: list[str] = []
        self.districts: list[str | None] = []
        self.population: IntArray = np.zeros(0, np.int64)
        self._outlet: dict[str, int] = {}
        self._necessity: dict[str, int] = {}
        self._circle: dict[str, int] = {}
        self._active = np.zeros(0, np.bool_)
        self._active_since: IntArray = np.zeros(0, np.int64)
        self._carries = np.zeros((0, 0), np.bool_)  # outlet x necessity: expected by its business type
        self._expected: IntArray = np.zeros((0, 0), np.int64)  # circle x necessity: outlets expected
        self._members: npt.NDArray[np.int32] = np.zeros(0, np.int32)  # outlets by circle (CSR with _starts)
        self._starts: IntArray = np.zeros(1, np.int64)
        self._circles_of: list[tuple[int, ...]] = []  # each outlet's circles
        self._present = np.zeros((0, 0), np.bool_)
        self._quantity: FloatArray = np.zeros((0, 0))
        self._sold: FloatArray = np.zeros((0, 0))  # NaN: not sent
        self._reported: IntArray = np.zeros((0, 0), np.int64)

    def circle_index(self, circle_id: str) -> int | None:
        return self._circle.get(circle_id)

    # ------------------------------------------------------------------------------------------------ reading

    async def sync(self, conn: psycopg.AsyncConnection[Any]) -> Touched:
        """Bring the state up to date (module docstring). Runs its own transaction on `conn` (not in one).

        Raises psycopg errors; the state is then as before the call (a later sync reads the same changes again),
        or, when the failure came in the middle of a reload, empty and due for a reload at the next sync.
        """
        async with conn.transaction():
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(QUERIES["repeatable_read"])
            await cur.execute(QUERIES["version_and_snapshot"])
            head = await cur.fetchone()
            assert head is not None
            version, snapshot = int(head[0]), str(head[1])
            if self.version != version or self.snapshot is None:
                self.__dict__.update(LevelState().__dict__)  # let go of the old arrays before reading new ones
                await self._reload(conn, cur)
                self.version, self.snapshot = version, snapshot
                return Touched(everything=True)
            await cur.execute(QUERIES["stock_since"], {"since": self.snapshot})
            rows = await cur.fetchall()
        touched = self._apply(rows)
        self.snapshot = snapshot
        return touched

    async def _reload(self, conn: psycopg.AsyncConnection[Any], cur: psycopg.AsyncCursor[Any]) -> None:
        """Read everything again into this (empty) state; the big tables through a server-side cursor, in
        blocks of `READ_BLOCK` rows, so a reload of a province does not hold every row as Python objects."""
        await cur.execute(QUERIES["necessities"])
        for code, per_capita, watch, shortage, critical, min_coverage, fresh_min in await cur.fetchall():
            self.necessities.append(
                NecessityRule(code, float(per_capita), Thresholds(watch, shortage, critical, min_coverage), fresh_min)
            )
        self._necessity = {n.code: i for i, n in enumerate(self.necessities)}
        await cur.execute(QUERIES["circles"])
        circle_rows = await cur.fetchall()
        self.circles = [r[0] for r in circle_rows]
        self.districts = [r[1] for r in circle_rows]
        self.population = np.array([int(r[2]) for r in circle_rows], np.int64)
        self._circle = {c: i for i, c in enumerate(self.circles)}
        await cur.execute(QUERIES["carries"])
        carries: dict[str, list[int]] = {}
        for business_type, code in await cur.fetchall():
            if code in self._necessity:
                carries.setdefault(business_type, []).append(self._necessity[code])
        active: list[bool] = []
        since: list[int] = []
        carried: list[list[int]] = []
        async for outlet_id, is_active, active_since, business_type in _stream(conn, "outlets"):
            self._outlet[outlet_id] = len(active)
            active.append(bool(is_active))
            since.append(NEVER if active_since is None else int(active_since))
            carried.append(carries.get(business_type, []))
        n_out, n_nec = len(active), len(self.necessities)
        self._active = np.array(active, np.bool_)
        self._active_since = np.array(since, np.int64)
        self._carries = np.zeros((n_out, n_nec), np.bool_)
        for i, necs in enumerate(carried):
            if necs:
                self._carries[i, necs] = True
        del active, since, carried
        of: list[list[int]] = [[] for _ in range(n_out)]
        by_circle: list[list[int]] = [[] for _ in self.circles]
        async for outlet_id, circle_id in _stream(conn, "outlet_circles"):
            o, c = self._outlet.get(outlet_id), self._circle.get(circle_id)
            if o is not None and c is not None:
                of[o].append(c)
                by_circle[c].append(o)
        self._circles_of = [tuple(sorted(cs)) for cs in of]
        counts = np.array([len(m) for m in by_circle], np.int64)
        self._starts = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self._members = np.array([o for m in by_circle for o in sorted(m)], np.int32)
        expected = (self._carries & self._active[:, None]).astype(np.int64)
        self._expected = np.zeros((len(self.circles), n_nec), np.int64)
        if len(self._members):
            self._expected = _segment_sum(expected[self._members], counts)
        self._present = np.zeros((n_out, n_nec), np.bool_)
        self._quantity = np.zeros((n_out, n_nec))
        self._sold = np.full((n_out, n_nec), np.nan)
        self._reported = np.full((n_out, n_nec), NEVER, np.int64)
        block: list[tuple[Any, ...]] = []
        async for row in _stream(conn, "stock_all"):
            block.append(row)
            if len(block) >= READ_BLOCK:
                self._apply(block, track=False)
                block.clear()
        self._apply(block, track=False)

    def _apply(self, rows: Iterable[Sequence[Any]], *, track: bool = True) -> Touched:
        """Set each (outlet, necessity) row; the circles of the outlets whose stock changed (when `track`)."""
        touched = Touched()
        for outlet_id, code, quantity, sold, reported in rows:
            o, n = self._outlet.get(outlet_id), self._necessity.get(code)
            if o is None or n is None:  # not an outlet or necessity the levels know: counted nowhere
                continue
            self._present[o, n] = True
            self._quantity[o, n] = quantity
            self._sold[o, n] = np.nan if sold is None else sold
            self._reported[o, n] = reported
            if track:
                touched.circles.update(self._circles_of[o])
        return touched

    # ---------------------------------------------------------------------------------------------- computing

    def inputs(
        self,
        now: datetime,
        grades: Mapping[str, int],
        circles: Iterable[int] | None = None,
        previous: Mapping[tuple[str, str], tuple[tuple[float, ...], datetime | None]] | None = None,
    ) -> list[CircleInputs]:
        """The inputs of `circles` (indices; all when None) for every necessity as of `now`, ordered by circle and
        necessity. `grades`: circle id -> emergency grade in force; `previous`: (circle, necessity) -> the
        previous level's raw observed rates and time."""
        chosen = np.arange(len(self.circles)) if circles is None else np.array(sorted(set(circles)), np.int64)
        now_us = micros(now)
        out: list[CircleInputs] = []
        for chunk in self._chunks(chosen):
            out.extend(self._chunk_inputs(chunk, now, now_us, grades, previous or {}))
        return out

    def _chunks(self, chosen: IntArray) -> Iterable[IntArray]:
        """`chosen` split into runs whose memberships add up to at most CHUNK (a bigger circle alone)."""
        start, total = 0, 0
        for i, c in enumerate(chosen):
            size = int(self._starts[c + 1] - self._starts[c])
            if i > start and total + size > CHUNK:
                yield chosen[start:i]
                start, total = i, 0
            total += size
        if start < len(chosen):
            yield chosen[start:]

    def _windows_us(self, chunk: IntArray, grades: Mapping[str, int]) -> IntArray:
        """Freshness window of each circle in `chunk` and necessity, in microseconds."""
        normal = [n.freshness_minutes for n in self.necessities]
        rows = []
        for c in chunk:
            rule = grade_rules(grades.get(self.circles[c]))
            if rule is None:
                rows.append(normal)
            else:
                rows.append([rule.freshness_minutes(n.code, m) for n, m in zip(self.necessities, normal, strict=True)])
        return np.array(rows, np.int64).reshape(len(chunk), len(self.necessities)) * 60_000_000

    def _chunk_inputs(
        self,
        chunk: IntArray,
        now: datetime,
        now_us: int,
        grades: Mapping[str, int],
        previous: Mapping[tuple[str, str], tuple[tuple[float, ...], datetime | None]],
    ) -> list[CircleInputs]:
        counts = self._starts[chunk + 1] - self._starts[chunk]
        members = (
            np.concatenate([self._members[self._starts[c] : self._starts[c + 1]] for c in chunk])
            if len(chunk)
            else np.zeros(0, np.int32)
        )
        n_nec = len(self.necessities)
        reported = self._reported[members]
        counted = self._present[members] & self._active[members][:, None]
        counted &= reported >= self._active_since[members][:, None]
        windows = np.repeat(self._windows_us(chunk, grades), counts, axis=0)
        fresh = counted & (reported >= now_us - windows)
        stale = counted & ~fresh
        quantity = self._quantity[members]
        sold = self._sold[members]
        with_sold = fresh & ~np.isnan(sold)
        stock = _segment_sum(np.where(fresh, quantity, 0.0), counts)
        unconfirmed = _segment_sum(np.where(stale, quantity, 0.0), counts)
        oldest = _segment_min(np.where(stale, reported, _NO_TIME), counts)
        reports_fresh = _segment_sum(fresh.astype(np.int64), counts)
        outlets_fresh = _segment_sum((fresh & self._carries[members]).astype(np.int64), counts)
        sold_sum = _segment_sum(np.where(with_sold, sold, 0.0), counts)
        sold_seen = _segment_sum(with_sold.astype(np.int64), counts)
        stock_with_sold = _segment_sum(np.where(with_sold, quantity, 0.0), counts)
        out = []
        for row, c in enumerate(chunk):
            circle_id = self.circles[c]
            grade = grades.get(circle_id)
            for n in range(n_nec):
                rule = self.necessities[n]
                prev_rates, prev_at = previous.get((circle_id, rule.code), ((), None))
                old = int(oldest[row, n])
                out.append(
                    CircleInputs(
                        circle_id=circle_id,
                        necessity=rule.code,
                        population=int(self.population[c]),
                        per_capita_daily=rule.per_capita_daily,
                        thresholds=rule.thresholds,
                        stock=float(stock[row, n]),
                        outlets_expected=int(self._expected[c, n]),
                        outlets_fresh=int(outlets_fresh[row, n]),
                        stock_unconfirmed=float(unconfirmed[row, n]),
                        oldest_unconfirmed=None if old == _NO_TIME else EPOCH + timedelta(microseconds=old),
                        reports_fresh=int(reports_fresh[row, n]),
                        sold_24h=float(sold_sum[row, n]) if sold_seen[row, n] else None,
                        stock_with_sold=float(stock_with_sold[row, n]),
                        prev_observed_raw=prev_rates,
                        prev_computed_at=prev_at,
                        grade=grade,
                    )
                )
        return out


async def _stream(conn: psycopg.AsyncConnection[Any], query: str) -> AsyncIterator[tuple[Any, ...]]:
    """The rows of the named statement through a server-side cursor (in the caller's transaction)."""
    async with conn.cursor(name=f"level_state_{query}", row_factory=tuple_row) as cur:
        cur.itersize = READ_BLOCK
        await cur.execute(QUERIES[query])
        async for row in cur:
            yield row


def _segment_sum(values: npt.NDArray[Any], counts: IntArray) -> npt.NDArray[Any]:
    """Sums over consecutive segments of `counts` rows (a segment of 0 rows sums to 0)."""
    out = np.zeros((len(counts), *values.shape[1:]), values.dtype)
    nonempty = counts > 0
    if nonempty.any():
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[nonempty]
        out[nonempty] = np.add.reduceat(values, starts, axis=0)
    return out


def _segment_min(values: IntArray, counts: IntArray) -> IntArray:
    """Minimums over consecutive segments of `counts` rows (a segment of 0 rows gives the dtype's maximum)."""
    out = np.full((len(counts), *values.shape[1:]), _NO_TIME, np.int64)
    nonempty = counts > 0
    if nonempty.any():
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[nonempty]
        out[nonempty] = np.minimum.reduceat(values, starts, axis=0)
    return out
