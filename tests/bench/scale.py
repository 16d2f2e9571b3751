"""Scale benchmark: `python -m tests.bench.scale` — what a whole city and a province cost (issue 11, point 5).

One run, one table, each figure with its ratio to a baseline measured in the same run:

(b) baseline of throughput: a plain aiokafka consumer (no group, partitions
    assigned) + COPY into a table shaped like `outlet_reports` (same columns,
    same primary key), one transaction per fetched batch, of report messages
    of `--lines` (30) lines for the Suihua-size city;
(a) a no-op Faust agent on the same messages, one event at a time and in
    batches of 500 (`stream.take`, as the report agents read);
(c) our worker, raw topic -> stored lines and updated levels, and (d) the
    latency from the API's 200 to the level: hooks (`our_worker`,
    `api_to_level`) that print "not measured here" until filled;
(e) the full level pass (`streams.circles.refresh_levels`) on the demo city
    (6,668 outlets, the baseline), a Suihua-size city (75,000 outlets, 120
    circles; goal < 200 ms) and a province (300,000 outlets, 500 circles;
    goal < 1 s), each seeded with `schema.city_seed.seed_city` into a
    scratch database and every carrying outlet's stock filled with COPY
    (10 % of it older than a day, so stale); median of `--passes` after one warm-up;
(f) the resident memory (VmRSS, and the peak VmHWM) of a real `baogong
    worker` on the province's database after it stored some reports and ran
    at least three level passes (goal < 500 MB).

    python -m tests.bench.scale [--messages 40000] [--lines 30] [--passes 5] [--skip-province]

Needs Kafka and PostgreSQL at BAOGONG_KAFKA_BOOTSTRAP / BAOGONG_DATABASE_URL
(the role needs CREATEDB). Databases `baogong_scale_<run>_*` and topics
`scale<run>.*` are dropped at the end (topics best effort). The machine's
other load shows in every figure: compare the ratios, which share it.

`publish_city_reports` is the reusable producer side: K report messages of
~30 lines for a city's outlets, published to a topic, returning when the
broker has them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg

from baogong.settings import Settings
from schema import topics
from schema.catalogue import CARRIES, NECESSITY_BY_CODE
from schema.city_seed import seed_city
from schema.contract import Accepted, ReportGroup, encode_report
from schema.db import connect, load_queries, make_pool
from schema.demo_city import DemoCity
from schema.seed import seed_demo
from streams.circles import refresh_levels
from streams.level_state import LevelState
from tests.bench import latency
from tests.bench.run import REPO_ROOT, Progress, bench_database, delete_topics, percentile
from tests.support import baogong_process, free_port

QUERIES = load_queries(Path(__file__).with_name("scale.sql"))
SUIHUA = (75_000, 120)
RAW_STAGE = "(b) aiokafka consume + COPY into outlet_reports shape"  # the baseline of (a) and (c)
PROVINCE = (300_000, 500)


# ---------------------------------------------------------------- the producer side (reusable)


def report_messages(
    city: DemoCity, count: int, *, lines: int = 30, tag: str = "", base: datetime | None = None
) -> Iterator[tuple[bytes, bytes, int]]:
    """`count` inventory report messages (outlet key, report JSON, lines) of `lines` lines each, as the API
    publishes them: round-robin over the city's carrying outlets, round r reported at `base` + r seconds
    (default ten minutes ago), each line a distinct pack (its own message_id), quantities plausible."""
    carriers = [o for o in city.outlets if o.business_type in CARRIES]
    if not carriers:
        raise ValueError("the city has no outlet that carries a necessity")
    rng = random.Random(f"scale:{tag}")
    start = base or datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    received_at = datetime.now(UTC)
    for i in range(count):
        outlet = carriers[i % len(carriers)]
        reported = start + timedelta(seconds=i // len(carriers))
        carried = CARRIES[outlet.business_type]
        group = ReportGroup(
            outlet.id,
            reported,
            [
                Accepted(
                    j,
                    outlet.id,
                    carried[j % len(carried)],
                    round(rng.uniform(1.0, 60.0), 1),
                    NECESSITY_BY_CODE[carried[j % len(carried)]].unit,
                    reported,
                    round(rng.uniform(0.5, 20.0), 1),
                    f"{tag}{i}-{j}",
                    reported.timestamp(),
                    f"{tag}{i}-{j}",
                )
                for j in range(lines)
            ],
        )
        yield outlet.id.encode(), encode_report("inventory", outlet.supplier_id, received_at, group), lines


@dataclass(frozen=True, slots=True)
class Published:
    messages: int
    lines: int
    bytes: int
    elapsed_s: float


def publish_city_reports(
    bootstrap: str, topic: str, city: DemoCity, count: int, *, lines: int = 30, tag: str = ""
) -> Published:
    """Publish `count` report messages of `lines` lines for `city` to `topic` (keyed by outlet, acks=all,
    idempotent, as `ingest.publisher`); return when the broker acknowledged every one. Raises RuntimeError
    when it does not within 120 s."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "batch.size": 1 << 20,
            "compression.type": "none",
        }
    )
    producer.list_topics(topic, timeout=10)
    started = time.perf_counter()
    sent = total_lines = size = 0
    for key, value, n in report_messages(city, count, lines=lines, tag=tag):
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        total_lines += n
        size += len(value)
    if producer.flush(120):
        raise RuntimeError(f"the broker did not acknowledge every report on {topic} within 120 s")
    return Published(sent, total_lines, size, time.perf_counter() - started)


# ---------------------------------------------------------------- the table


@dataclass
class Row:
    stage: str
    value: float | None  # None: not measured
    unit: str
    goal: str = ""
    baseline: str | None = None  # the row this one's ratio is to
    note: str = ""


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def render(self) -> str:
        """The table: each figure with its ratio to the row it names as baseline ("base" on baselines)."""
        by_stage = {r.stage: r for r in self.rows}
        bases = {r.baseline for r in self.rows}
        out = [f"{'stage':<60} {'figure':>13} {'unit':<8} {'ratio':>6}  goal; note"]
        for r in self.rows:
            base = by_stage.get(r.baseline or "")
            if r.value is not None and base is not None and base.value:
                ratio = f"{r.value / base.value:.2f}"
            else:
                ratio = "base" if r.stage in bases and r.value is not None else "—"
            value = "not measured" if r.value is None else f"{r.value:,.0f}"
            note = "; ".join(x for x in (r.goal, r.note) if x)
            out.append(f"{r.stage:<60} {value:>13} {r.unit:<8} {ratio:>6}  {note}")
        return "\n".join(out)


# ---------------------------------------------------------------- (b) and (a)


async def raw_consume_copy(bootstrap: str, topic: str, partitions: int, count: int, url: str) -> tuple[int, int, float]:
    """(messages, lines, seconds from the first fetch to the last commit): aiokafka + COPY, one commit per fetch."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_bytes=64 << 20
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await conn.execute(QUERIES["create_raw_reports"])
            await conn.commit()
            messages = lines = 0
            started: float | None = None
            while messages < count:
                fetched = await consumer.getmany(timeout_ms=1000, max_records=2000)
                if not fetched:
                    continue
                if started is None:
                    started = time.perf_counter()
                async with conn.transaction(), conn.cursor() as cur, cur.copy(QUERIES["copy_raw_reports"]) as copy:
                    for records in fetched.values():
                        for record in records:
                            report = orjson.loads(record.value)
                            for ln in report["lines"]:
                                await copy.write_row(
                                    (
                                        report["reported_at"],
                                        report["outlet_id"],
                                        ln["necessity"],
                                        ln["quantity"],
                                        ln["sold_24h"],
                                        report["supplier_id"],
                                        ln["message_id"],
                                        report["received_at"],
                                        ln["message_id"] or "",
                                    )
                                )
                                lines += 1
                            messages += 1
            elapsed = time.perf_counter() - (started or time.perf_counter())
            stored = await (await conn.execute(QUERIES["count_raw_reports"])).fetchone()
            if stored is None or stored[0] != lines:
                raise RuntimeError(f"raw consumer: {lines} lines read but {stored} stored")
        return messages, lines, elapsed
    finally:
        await consumer.stop()


def noop_faust(bootstrap: str, topic: str, partitions: int, count: int, mode: str, workdir: Path) -> float:
    """Messages/s of a no-op Faust agent (tests/bench/noop_agent.py) reading `count` messages of `topic`."""
    spec = workdir / f"noop-{mode}.json"
    spec.write_text(
        json.dumps({"bootstrap": bootstrap, "topic": topic, "partitions": partitions, "count": count, "mode": mode})
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tests.bench.noop_agent", str(spec)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
    )
    # Faust sends the agent's print to its log (stderr), prefixed.
    found = re.search(r'\{"messages".*?\}', proc.stdout + proc.stderr)
    result = json.loads(found.group(0)) if found else None
    if result is None:
        raise RuntimeError(f"the no-op Faust agent ({mode}) gave no result: {proc.stderr[-2000:]}")
    return float(result["messages"]) / float(result["elapsed_s"])


# ---------------------------------------------------------------- (e) and (f)


def fill_stock(url: str, city: DemoCity, now: datetime) -> int:
    """Every carrying outlet's stock of every necessity it carries, by COPY; 10 % older than a day. Rows written."""
    rng = random.Random("scale-stock")
    rows = 0
    with connect(url) as conn, conn.cursor() as cur:
        with cur.copy(QUERIES["copy_outlet_stock"]) as copy:
            for outlet in city.outlets:
                for necessity in CARRIES.get(outlet.business_type, ()):
                    age = (
                        timedelta(hours=rng.uniform(26, 48))
                        if rng.random() < 0.1
                        else timedelta(minutes=rng.uniform(0, 120))
                    )
                    copy.write_row((outlet.id, necessity, rng.uniform(5, 500), rng.uniform(1, 40), now - age))
                    rows += 1
        cur.execute(QUERIES["analyze_stock"])
    return rows


def time_level_pass(url: str, passes: int) -> tuple[float, float, int]:
    """(median ms, max ms, levels per pass) of `passes` full level passes after one warm-up."""

    async def run() -> tuple[float, float, int]:
        pool = make_pool(url)
        await pool.open(wait=True, timeout=30)
        try:
            now = datetime.now(UTC)
            state = LevelState()  # the leader's, kept between passes
            levels = await refresh_levels(pool, now, state=state)  # warm-up: the state is read, first history rows
            times = []
            for i in range(passes):
                started = time.perf_counter()
                await refresh_levels(pool, now + timedelta(seconds=i + 1), state=state)
                times.append((time.perf_counter() - started) * 1000)
            return statistics.median(times), max(times), len(levels)
        finally:
            await pool.close()

    return asyncio.run(run())


def worker_memory(
    url: str, city: DemoCity, prefix: str, reports: int, workdir: Path, progress: Progress
) -> tuple[float, float, int]:
    """(VmRSS MB, VmHWM MB, passes seen) of `baogong worker` on `url` after it stored `reports` reports of the
    city and ran at least three level passes. Raises RuntimeError if it does not within 180 s."""
    settings = Settings.from_env(
        database_url=url,
        topic_prefix=prefix,
        worker_id=f"bench-scale-{uuid.uuid4().hex[:6]}",
        worker_port=free_port(),
        level_interval_s=1.0,
    )
    log = workdir / "worker.log"
    with baogong_process(["worker", "--loglevel", "warning"], settings.env(), log) as proc:
        topic = settings.topic(topics.INVENTORY.name)
        topics.ensure_topics(settings.kafka_bootstrap, [topic], settings.partitions)
        published = publish_city_reports(settings.kafka_bootstrap, topic, city, reports, tag="rss")
        progress(f"(f) published {published.messages:,} reports to the worker; waiting for them and 3 level passes")
        seen: set[datetime] = set()
        deadline = time.monotonic() + 180
        stored = 0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {proc.returncode}: {log.read_text()[-3000:]}")
            with connect(url) as conn:
                beat = conn.execute(QUERIES["levels_heartbeat"]).fetchone()
                stored = int((conn.execute(QUERIES["stored_lines"]).fetchone() or {"n": 0})["n"])
            if beat and stored >= published.lines:
                seen.add(beat["levels_at"])
            if len(seen) >= 3:
                status = dict(
                    line.split(":", 1)
                    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                    if ":" in line
                )
                kb = {k: float(status[k].split()[0]) for k in ("VmRSS", "VmHWM")}
                return kb["VmRSS"] / 1024, kb["VmHWM"] / 1024, len(seen)
            time.sleep(0.5)
        raise RuntimeError(
            f"the worker did not store {published.lines:,} lines ({stored:,}) and run 3 level passes in 180 s; "
            f"log: {log}"
        )


# ---------------------------------------------------------------- hooks the worker's owner fills


@dataclass
class BenchRun:
    """What the hooks get: the broker, the filled topic and its messages, the Suihua-size city and its database."""

    settings: Settings
    topic: str
    published: Published
    city: DemoCity
    database_url: str
    workdir: Path


def our_worker(bench: BenchRun) -> Row:
    """(c) our worker, raw topic -> stored lines and updated levels. Goal: >= 100,000 lines/s and >= half of (b).

    A real `baogong worker` (its own consumer group, so it reads `bench.topic` from the start) on the Suihua-size
    city's database; `stream_offsets` is polled every 50 ms. The rate counts the lines committed between the
    first commit seen and the last one (the worker's start-up and its first batch are not in it: the steady
    state, as (b) counts from its first fetch); the run ends when every message is written, `outlet_reports`
    holds every line, and a level pass has run after the last write. Raises RuntimeError if that does not
    happen within 300 s."""
    prefix = bench.topic.removesuffix(topics.INVENTORY.name)
    settings = Settings.from_env(
        database_url=bench.database_url,
        topic_prefix=prefix,
        worker_id=f"bench-scale-c-{uuid.uuid4().hex[:6]}",
        worker_port=free_port(),
    )
    if settings.topic(topics.INVENTORY.name) != bench.topic:
        raise ValueError(f"the worker reads {settings.topic(topics.INVENTORY.name)}, not {bench.topic}")
    log = bench.workdir / "worker-c.log"
    want = bench.published.messages
    per_line = bench.published.lines / want
    first: tuple[float, int] | None = None
    last: tuple[float, int] = (0.0, 0)
    with (
        baogong_process(["worker", "--loglevel", "warning"], settings.env(), log) as proc,
        connect(bench.database_url) as conn,
    ):
        conn.autocommit = True
        deadline = time.monotonic() + 300
        while last[1] < want:
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {proc.returncode}: {log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker wrote {last[1]:,} of {want:,} messages in 300 s; log: {log}")
            n = int((conn.execute(QUERIES["written_messages"], {"topic": bench.topic}).fetchone() or {"n": 0})["n"])
            now = time.perf_counter()
            if n and first is None:
                first = (now, n)
            if n != last[1]:
                last = (now, n)
            time.sleep(0.05)
        written_at = datetime.now(UTC)
        stored = int((conn.execute(QUERIES["stored_lines"]).fetchone() or {"n": 0})["n"])
        if stored != bench.published.lines:
            raise RuntimeError(f"the worker wrote every message but outlet_reports holds {stored:,} lines")
        while True:  # the levels: a pass after the last write
            beat = conn.execute(QUERIES["levels_heartbeat"]).fetchone()
            if beat and beat["levels_at"] and beat["levels_at"] > written_at:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("no level pass after the last write")
            time.sleep(0.2)
    assert first is not None
    lines = (last[1] - first[1]) * per_line
    rate = lines / (last[0] - first[0]) if last[0] > first[0] else None
    return Row(
        "(c) our worker: topic -> stored lines + updated levels",
        rate,
        "lines/s",
        ">=100,000 and >=0.5x(b)",
        RAW_STAGE,
        f"{(rate or 0) / per_line:,.0f} messages/s; {lines:,.0f} lines in {last[0] - first[0]:.1f} s "
        "after the first commit",
    )


def api_to_level(bench: BenchRun) -> list[Row]:
    """(d) API 200 -> circle level reflecting it, p99, idle and at 2,000 records/s (tests/bench/latency.py: the
    demo city with a probe circle, a real API and worker). Goal: p99 < 1 s."""
    got = latency.measure(bench.settings, 2000.0, 60, 0.25, Progress())
    idle = Row(
        "(d) API 200 -> level, p99, idle pipeline",
        None if not got.idle else 1000 * (percentile(got.idle, 0.99) or 0),
        "ms",
        "",
        None,
        f"p50 {1000 * (percentile(got.idle, 0.5) or 0):.0f} ms, {got.idle_missed} missed",
    )
    loaded = Row(
        "(d) API 200 -> level, p99 at 2,000 records/s",
        None if not got.loaded else 1000 * (percentile(got.loaded, 0.99) or 0),
        "ms",
        "p99 < 1,000 ms",
        idle.stage,
        f"p50 {1000 * (percentile(got.loaded, 0.5) or 0):.0f} ms, {got.loaded_missed} missed",
    )
    return [idle, loaded]


HOOKS: list[Callable[[BenchRun], Row | list[Row]]] = [our_worker, api_to_level]


# ---------------------------------------------------------------- the run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40_000, help="report messages for (a), (b), (c)")
    parser.add_argument("--lines", type=int, default=30, help="lines per report message")
    parser.add_argument("--passes", type=int, default=5, help="timed level passes per city (after one warm-up)")
    parser.add_argument("--worker-reports", type=int, default=5_000, help="(f): reports the worker stores first")
    parser.add_argument("--skip-province", action="store_true", help="no 300,000-outlet city: no (e) province, no (f)")
    args = parser.parse_args(argv)

    progress = Progress()
    base = Settings.from_env()
    admin = base.database_url.get_secret_value()
    run_id = uuid.uuid4().hex[:8]
    prefix = f"scale{run_id}."
    table = Table()
    progress(f"run {run_id}: Kafka {base.kafka_bootstrap}, topic prefix {prefix}")
    with tempfile.TemporaryDirectory(prefix="baogong-scale-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        try:
            # (e) baseline: the demo city's full pass.
            demo_url = stack.enter_context(bench_database(admin, f"baogong_scale_{run_id}_demo", progress))
            seed_demo(demo_url, progress=lambda _: None)
            from schema.demo_city import build_demo_city

            now = datetime.now(UTC)
            fill_stock(demo_url, build_demo_city(), now)
            med, worst, n = time_level_pass(demo_url, args.passes)
            progress(f"(e) demo city: full pass median {med:.0f} ms, max {worst:.0f} ms, {n} levels")
            demo_row = table.add(
                Row(
                    "(e) full level pass, demo city 6,668 outlets, 10 circles",
                    med,
                    "ms",
                    "",
                    None,
                    f"max {worst:.0f} ms, {n} levels",
                )
            )

            # The Suihua-size city: (e), then the messages for (a), (b) and the hooks.
            suihua_url = stack.enter_context(bench_database(admin, f"baogong_scale_{run_id}_suihua", progress))
            seeded = seed_city(suihua_url, outlets=SUIHUA[0], circles=SUIHUA[1], progress=lambda _: None)
            stock = fill_stock(suihua_url, seeded.city, now)
            progress(f"Suihua-size city seeded in {seeded.elapsed_s:.1f} s, {stock:,} stock rows")
            med, worst, n = time_level_pass(suihua_url, args.passes)
            progress(f"(e) 75,000 outlets: median {med:.0f} ms, max {worst:.0f} ms, {n} levels")
            table.add(
                Row(
                    "(e) full level pass, 75,000 outlets, 120 circles",
                    med,
                    "ms",
                    "< 200 ms",
                    demo_row.stage,
                    f"max {worst:.0f} ms, {n} levels",
                )
            )

            topic = f"{prefix}{topics.INVENTORY.name}"  # the topic a worker with this prefix reads
            topics.ensure_topics(base.kafka_bootstrap, [topic], base.partitions)
            published = publish_city_reports(base.kafka_bootstrap, topic, seeded.city, args.messages, lines=args.lines)
            progress(
                f"published {published.messages:,} reports ({published.lines:,} lines, "
                f"{published.bytes / published.messages:,.0f} B each) in {published.elapsed_s:.1f} s "
                f"to {base.partitions} partitions"
            )
            messages, lines, elapsed = asyncio.run(
                raw_consume_copy(base.kafka_bootstrap, topic, base.partitions, published.messages, suihua_url)
            )
            progress(f"(b) aiokafka + COPY: {messages:,} messages, {lines:,} lines in {elapsed:.1f} s")
            raw = table.add(
                Row(
                    RAW_STAGE,
                    lines / elapsed,
                    "lines/s",
                    "",
                    None,
                    f"{messages / elapsed:,.0f} messages/s",
                )
            )
            for mode, what in (("each", "one event at a time"), ("take", "take(500)")):
                rate = noop_faust(base.kafka_bootstrap, topic, base.partitions, published.messages, mode, workdir)
                progress(f"(a) no-op Faust agent, {what}: {rate:,.0f} messages/s")
                table.add(
                    Row(
                        f"(a) no-op Faust agent, {what}",
                        rate * args.lines,
                        "lines/s",
                        "",
                        raw.stage,
                        f"{rate:,.0f} messages/s",
                    )
                )
            bench = BenchRun(base, topic, published, seeded.city, suihua_url, workdir)
            for hook in HOOKS:
                made = hook(bench)
                table.rows.extend(made if isinstance(made, list) else [made])

            if not args.skip_province:
                province_url = stack.enter_context(bench_database(admin, f"baogong_scale_{run_id}_province", progress))
                seeded = seed_city(province_url, outlets=PROVINCE[0], circles=PROVINCE[1], progress=lambda _: None)
                stock = fill_stock(province_url, seeded.city, now)
                progress(f"province seeded in {seeded.elapsed_s:.1f} s, {stock:,} stock rows")
                med, worst, n = time_level_pass(province_url, args.passes)
                progress(f"(e) 300,000 outlets: median {med:.0f} ms, max {worst:.0f} ms, {n} levels")
                table.add(
                    Row(
                        "(e) full level pass, 300,000 outlets, 500 circles",
                        med,
                        "ms",
                        "< 1,000 ms",
                        demo_row.stage,
                        f"max {worst:.0f} ms, {n} levels",
                    )
                )
                rss, hwm, passes = worker_memory(
                    province_url, seeded.city, prefix + "w.", args.worker_reports, workdir, progress
                )
                progress(f"(f) worker on 300,000 outlets: VmRSS {rss:.0f} MB, peak {hwm:.0f} MB after {passes} passes")
                table.add(
                    Row(
                        "(f) worker resident memory, 300,000 outlets",
                        rss,
                        "MB",
                        "< 500 MB",
                        None,
                        f"peak (VmHWM) {hwm:.0f} MB",
                    )
                )
        finally:
            progress(delete_topics(base.kafka_bootstrap, prefix))
    print()
    print(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
