"""The ingest benchmark: `python -m tests.bench.run` (`make bench` runs it after `baogong services up`).

One run, one workload (the demo city's eight reporting suppliers, every
necessity their outlets carry, `tests.bench.workload`), four figures:

1. API, JSON arrays of 500 records: one `baogong api` process (a real
   uvicorn child on the configured Kafka and a fresh bench database), driven
   by `tests.bench.load` in another process over 24 keep-alive
   connections, each request keyed by the supplier owning its outlets,
   after a warm-up that is not measured;
2. API, the same shape as CSV (text/csv) bodies;
3. baseline A: `schema.contract.validate_records` alone, in-process, over
   the records of (1);
4. baseline B: kafka-python producing the report messages of (1), as
   `ingest.intake` builds them, acks=all and idempotent, one flush; and, for
   reference, confluent-kafka (the API's own producer) on the same messages.

It prints a table, whether the goal (50,000 records/s per API process) is
met, and where the time goes: the CPU per record of the API process, the
Kafka broker and PostgreSQL, the in-process cost of each ingest stage, and
Kafka's round trip per request.
`--profile json|csv` adds a cProfile of requests through the app in-process.

Needs Kafka and PostgreSQL at BAOGONG_KAFKA_BOOTSTRAP / BAOGONG_DATABASE_URL
(the role needs CREATEDB). Creates `baogong_bench_<run>` and drops it at the
end; the run's topics (prefix `bench<run>.`) are deleted best effort.
Exit status: 0 when every figure was measured, 1 when anything was
rejected or failed (the goal itself does not decide the exit status).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import math
import os
import pickle
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from baogong.settings import Settings
from ingest import claims
from ingest.formats import parse
from schema import topics
from schema.catalogue import NECESSITIES
from schema.contract import Accepted, Context, encode_report, validate_records
from schema.demo_city import DemoCity, build_demo_city
from schema.migrate import migrate
from schema.seed import seed_demo
from tests.bench.workload import Batch, csv_body, json_body, make_batches
from tests.support import baogong_process, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
GOAL = 50_000  # records/s per API process
JSON_TYPE, CSV_TYPE = "application/json", "text/csv"


class Progress:
    """Prints one line per step with the time since the run started."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self._t0:6.1f}s] {message}", flush=True)


@dataclass
class Figure:
    stage: str
    records_per_s: float
    p50_ms: float | None = None
    p99_ms: float | None = None


@dataclass
class ApiPhase:
    stage: str
    sent_records: int
    accepted: int
    rejected: int
    duplicates: int
    requests: int
    planned_requests: int
    elapsed_s: float
    latencies_ms: list[float]
    errors: list[str]
    reject_samples: list[Any]
    api_cpu_s: float
    load_cpu_s: float
    machine_busy_s: float
    service_cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def figure(self) -> Figure:
        return Figure(
            self.stage,
            self.accepted / self.elapsed_s,
            percentile(self.latencies_ms, 0.50),
            percentile(self.latencies_ms, 0.99),
        )


@dataclass
class Produce:
    figure: Figure
    messages: int
    records: int
    elapsed_s: float
    mean_message_bytes: float
    per_request_ms: list[float] = field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    after_comm = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(after_comm[11]) + int(after_comm[12])) / os.sysconf("SC_CLK_TCK")


def service_cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of the local Kafka broker and of all PostgreSQL processes (0 when not found)."""
    out = {"kafka": 0.0, "postgres": 0.0}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            comm = (proc / "comm").read_text().strip()
            seconds = cpu_seconds(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
        if b"kafka.Kafka" in cmdline or comm == "tansu":
            out["kafka"] += seconds
        elif comm == "postgres" or cmdline.startswith(b"postgres"):
            out["postgres"] += seconds
    return out


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle, summed over cores (Linux /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _with_db(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)  # type: ignore[arg-type]


@contextmanager
def bench_database(admin_url: str, name: str, progress: Progress) -> Iterator[str]:
    """A fresh, migrated database `name`, dropped on exit whatever happened."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = _with_db(admin_url, name)
        migrate(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        progress(f"dropped database {name}")


def delete_topics(bootstrap: str, prefix: str) -> str:
    """Delete the run's topics; best effort, returns what happened."""
    from kafka.admin import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="baogong-bench")
        try:
            names = [t for t in admin.list_topics() if t.startswith(prefix)]
            if names:
                admin.delete_topics(names)
            return f"deleted {len(names)} topics {prefix}*"
        finally:
            admin.close()
    except Exception as exc:  # the broker may refuse deletion; the topics then stay
        return f"topics {prefix}* remain ({type(exc).__name__}: {exc})"


def split_warmup(batches: list[Batch], warmup_records: int) -> int:
    """How many leading batches make up the warm-up."""
    total = 0
    for i, batch in enumerate(batches):
        if total >= warmup_records:
            return i
        total += len(batch.records)
    return len(batches)


def wait_for_api(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}; its log:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API did not answer within {timeout_s:.0f} s; its log:\n{log.read_text()[-3000:]}")


def api_phase(
    stage: str,
    api_pid: int,
    url: str,
    requests: list[tuple[str, str, bytes, int]],
    warmup: int,
    concurrency: int,
    max_s: float,
    workdir: Path,
    progress: Progress,
) -> ApiPhase:
    """Drive the API from a `tests.bench.load` child process; CPU is sampled around the measured part."""
    tag = stage.split()[1].lower()
    bodies = workdir / f"{tag}.pickle"
    with open(bodies, "wb") as f:
        pickle.dump(requests, f)
    spec = workdir / f"{tag}.json"
    spec.write_text(
        json.dumps({"url": url, "requests": str(bodies), "warmup": warmup, "concurrency": concurrency, "max_s": max_s})
    )
    measured = sum(n for *_, n in requests[warmup:])
    progress(f"{stage}: warm-up {sum(n for *_, n in requests[:warmup]):,} records, {concurrency} connections")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.load", str(spec)], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT
    )
    assert proc.stdout is not None
    result: dict[str, Any] = {}
    api0 = busy0 = api1 = busy1 = 0.0
    services0: dict[str, float] = {}
    services1: dict[str, float] = {}
    for line in proc.stdout:
        if line.strip() == "measuring":
            progress(f"{stage}: measuring {measured:,} records in {len(requests) - warmup} requests")
            api0, busy0, services0 = cpu_seconds(api_pid), machine_busy_seconds(), service_cpu_seconds()
        elif line.startswith("{"):
            api1, busy1, services1 = cpu_seconds(api_pid), machine_busy_seconds(), service_cpu_seconds()
            result = json.loads(line)
    if proc.wait() != 0 or "elapsed_s" not in result:
        raise RuntimeError(f"{stage}: the load generator failed: {result or 'no result'}")
    phase = ApiPhase(
        stage=stage,
        sent_records=result["sent_records"],
        accepted=result["accepted"],
        rejected=result["rejected"],
        duplicates=result["duplicates"],
        requests=result["requests"],
        planned_requests=result["planned_requests"],
        elapsed_s=result["elapsed_s"],
        latencies_ms=result["latencies_ms"],
        errors=result["errors"],
        reject_samples=result["reject_samples"],
        api_cpu_s=api1 - api0,
        load_cpu_s=result["cpu_s"],
        machine_busy_s=busy1 - busy0,
        service_cpu_s={name: services1.get(name, 0.0) - services0.get(name, 0.0) for name in services1},
    )
    fig = phase.figure
    capped = phase.requests < phase.planned_requests
    progress(
        f"{stage}: {phase.accepted:,} accepted in {phase.elapsed_s:.1f} s = {fig.records_per_s:,.0f} records/s, "
        f"p50 {fmt_ms(fig.p50_ms)} ms, p99 {fmt_ms(fig.p99_ms)} ms"
        + (f" (stopped after {max_s:.0f} s: {phase.requests} of {phase.planned_requests} requests)" if capped else "")
    )
    return phase


def validation_context(city: DemoCity) -> Context:
    return Context(
        units={n.code: n.unit for n in NECESSITIES},
        outlet_owner={o.id: o.supplier_id for o in city.outlets},
    )


def bench_validation(batches: list[Batch], ctx: Context) -> tuple[Figure, list[list[Accepted]]]:
    goods: list[list[Accepted]] = []
    rejected = 0
    started = time.perf_counter()
    for batch in batches:
        good, bad = validate_records("inventory", batch.records, ctx, batch.supplier_id)
        goods.append(good)
        rejected += len(bad)
    elapsed = time.perf_counter() - started
    if rejected:
        raise RuntimeError(f"validation alone rejected {rejected} records of the workload")
    return Figure("validation alone", sum(len(g) for g in goods) / elapsed), goods


def report_messages(batches: list[Batch], goods: list[list[Accepted]]) -> list[list[tuple[bytes, bytes, int]]]:
    """Per request: (outlet key, report JSON, lines carried) exactly as Intake.accept builds them."""
    received_at = datetime.now(UTC)
    out = []
    for batch, good in zip(batches, goods, strict=True):
        groups = claims.plan("inventory", batch.supplier_id, good).groups()
        out.append(
            [
                (g.outlet_id.encode(), encode_report("inventory", batch.supplier_id, received_at, g), len(g.lines))
                for g in groups
            ]
        )
    return out


def confluent_produce_rate(bootstrap: str, topic: str, per_request: list[list[tuple[bytes, bytes, int]]]) -> float:
    """Messages/s of confluent-kafka (the API's producer, configured like ingest.publisher) on the same reports."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 1,
            "batch.size": 1 << 20,
        }
    )
    producer.list_topics(topic, timeout=10)  # metadata before the clock starts
    messages = [m for request in per_request for m in request]
    started = time.perf_counter()
    for key, value, _ in messages:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.01)
    if producer.flush(60):
        raise RuntimeError("confluent-kafka did not deliver every message in 60 s")
    return len(messages) / (time.perf_counter() - started)


def bench_raw_produce(bootstrap: str, topic: str, per_request: list[list[tuple[bytes, bytes, int]]]) -> Produce:
    """All reports in one go (send all, flush once); then a sample sent request by request, flushing each."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="baogong-bench",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        max_request_size=8 * 1024 * 1024,
    )
    try:
        producer.partitions_for(topic)  # metadata before the clock starts
        messages = [m for request in per_request for m in request]
        started = time.perf_counter()
        futures = [producer.send(topic, key=key, value=value) for key, value, _ in messages]
        producer.flush(60)
        elapsed = time.perf_counter() - started
        for f in futures:
            f.get(timeout=1)
        records = sum(n for *_, n in messages)
        per_request_ms = []
        for request in per_request[:40]:
            t0 = time.perf_counter()
            sample = [producer.send(topic, key=key, value=value) for key, value, _ in request]
            producer.flush(60)
            per_request_ms.append((time.perf_counter() - t0) * 1000)
            for f in sample:
                f.get(timeout=1)
    finally:
        producer.close(timeout=5)
    return Produce(
        Figure("kafka-python raw produce", records / elapsed),
        len(messages),
        records,
        elapsed,
        sum(len(v) for _, v, _ in messages) / len(messages),
        per_request_ms,
    )


def stage_costs(batches: list[Batch], goods: list[list[Accepted]], ctx: Context) -> dict[str, float]:
    """In-process time of each ingest stage on a sample of the workload, in µs per record (one thread)."""
    records = sum(len(b.records) for b in batches)
    json_bodies = [json_body(b) for b in batches]
    csv_bodies = [csv_body(b) for b in batches]
    received_at = datetime.now(UTC)
    plans = [claims.plan("inventory", b.supplier_id, g) for b, g in zip(batches, goods, strict=True)]

    def timed(work: Callable[[], object]) -> float:
        """Best of three runs after one warm-up run (the first CSV parse imports pandas)."""
        work()
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            work()
            runs.append(time.perf_counter() - started)
        return min(runs) * 1e6 / records

    return {
        "parse JSON body (orjson)": timed(lambda: [parse(b, "json") for b in json_bodies]),
        "parse CSV body (plain export)": timed(lambda: [parse(b, "csv") for b in csv_bodies]),
        "validate_records": timed(
            lambda: [validate_records("inventory", b.records, ctx, b.supplier_id) for b in batches]
        ),
        "idempotency claims (plan)": timed(
            lambda: [claims.plan("inventory", b.supplier_id, g).rows() for b, g in zip(batches, goods, strict=True)]
        ),
        "plan.groups + encode_report": timed(
            lambda: [
                [encode_report("inventory", b.supplier_id, received_at, r) for r in p.groups()]
                for b, p in zip(batches, plans, strict=True)
            ]
        ),
    }


def profile_in_process(settings: Settings, requests: list[tuple[str, str, bytes, int]], top: int = 30) -> str:
    """cProfile (event-loop thread only) of `requests` through the app in-process, one at a time."""
    from ingest.http import create_app

    app = create_app(settings)
    profiler = cProfile.Profile()

    async def drive() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as client:
                for i, (key, content_type, body, _) in enumerate(requests):
                    if i == 3:
                        profiler.enable()
                    answer = await client.post(
                        "/v1/inventory", content=body, headers={"X-API-Key": key, "Content-Type": content_type}
                    )
                    if answer.status_code != 200:
                        raise RuntimeError(f"profile request failed: {answer.status_code} {answer.text[:300]}")
                profiler.disable()

    asyncio.run(drive())
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def print_table(figures: list[Figure], validation: Figure, raw: Figure) -> None:
    print()
    print(f"{'stage':<30} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'vs validation':>15} {'vs raw produce':>16}")
    for f in figures:
        print(
            f"{f.stage:<30} {fmt_rate(f.records_per_s):>10} {fmt_ms(f.p50_ms):>8} {fmt_ms(f.p99_ms):>8} "
            f"{f.records_per_s / validation.records_per_s:>15.2f} {f.records_per_s / raw.records_per_s:>16.2f}"
        )


def print_results(phases: list[ApiPhase], validation: Figure, produce: Produce, costs: dict[str, float]) -> bool:
    """The table, the goal line and where the time goes; True when an API phase saw rejects or errors."""
    failed = False
    for phase in phases:
        if phase.rejected or phase.errors or phase.duplicates or phase.accepted < phase.sent_records:
            failed = True
            print(
                f"\n{phase.stage}: {phase.accepted} of {phase.sent_records} accepted, {phase.rejected} rejected, "
                f"{phase.duplicates} duplicates, errors: {phase.errors}; "
                f"rejected e.g. {phase.reject_samples}"
            )

    print_table([*(p.figure for p in phases), validation, produce.figure], validation, produce.figure)
    print(
        f"\nkafka-python raw produce: {produce.messages / produce.elapsed_s:,.0f} messages/s "
        f"({produce.records / produce.messages:.1f} records and {produce.mean_message_bytes:,.0f} bytes per message)"
    )
    json_rate, csv_rate = phases[0].figure.records_per_s, phases[1].figure.records_per_s
    verdict = "MET" if json_rate >= GOAL else "NOT MET"
    print(
        f"goal: >= {GOAL:,} records/s per API process: {verdict} "
        f"(JSON {json_rate:,.0f} records/s; CSV {csv_rate:,.0f} records/s: {'MET' if csv_rate >= GOAL else 'NOT MET'})"
    )

    print("\nwhere the time goes")
    for phase in phases:
        per_record = phase.api_cpu_s * 1e6 / max(phase.accepted, 1)
        api_busy, load_busy, machine = (
            100 * seconds / phase.elapsed_s for seconds in (phase.api_cpu_s, phase.load_cpu_s, phase.machine_busy_s)
        )
        services = "; ".join(
            f"{name} {100 * seconds / phase.elapsed_s:.0f}% ({seconds * 1e6 / max(phase.accepted, 1):.1f} µs/record)"
            for name, seconds in phase.service_cpu_s.items()
        )
        print(
            f"  {phase.stage}: API process {per_record:.1f} µs CPU/record "
            f"(ceiling {1e6 / per_record:,.0f} records/s on one core), busy {api_busy:.0f}% of a core; "
            f"load generator {load_busy:.0f}%; {services}; machine {machine:.0f}% of {100 * (os.cpu_count() or 1)}%"
        )
    print("  in-process CPU per record by stage (same records, one thread):")
    for stage, micros in costs.items():
        print(f"    {stage:<34} {micros:6.2f} µs")
    json_path = sum(v for k, v in costs.items() if not k.startswith("parse CSV"))
    print(
        f"    {'sum on the JSON path':<34} {json_path:6.2f} µs  (+ Kafka send "
        f"{produce.elapsed_s * 1e6 / produce.records:.2f} µs/record in raw produce)"
    )
    one_request = produce.per_request_ms
    print(
        f"  Kafka publish + flush of one request's reports, sequential: p50 {fmt_ms(percentile(one_request, 0.5))}"
        f" ms, p99 {fmt_ms(percentile(one_request, 0.99))} ms"
    )
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=240_000, help="measured records per API phase")
    parser.add_argument(
        "--warmup",
        type=int,
        default=60_000,
        help="warm-up records per API phase, not measured: a cold broker's JVM took 30-44%% of a core, warm 11-15%%",
    )
    parser.add_argument("--batch", type=int, default=500, help="records per request")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=24,
        help="connections of the load generator; 24 keep the API, not round trips, setting the pace",
    )
    parser.add_argument("--max-phase-s", type=float, default=60.0, help="stop an API phase's measurement after this")
    parser.add_argument("--profile", choices=("json", "csv"), help="also cProfile requests through the app in-process")
    args = parser.parse_args(argv)

    progress = Progress()
    base_settings = Settings.from_env()
    run_id = uuid.uuid4().hex[:8]
    dbname, prefix = f"baogong_bench_{run_id}", f"bench{run_id}."
    bootstrap = base_settings.kafka_bootstrap
    progress(f"run {run_id}: database {dbname}, topic prefix {prefix}, Kafka {bootstrap}")
    with (
        tempfile.TemporaryDirectory(prefix="baogong-bench-") as tmp,
        bench_database(base_settings.database_url.get_secret_value(), dbname, progress) as url,
    ):
        workdir = Path(tmp)
        seed = seed_demo(url, progress=lambda _: None)
        keys = {k.supplier_id: k.key for k in seed.keys}
        city = build_demo_city(seed.seed)
        progress(f"database migrated and seeded: {seed.counts.get('outlets', 0):,} outlets, {len(keys)} supplier keys")

        base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
        total = args.warmup + args.records
        json_batches = make_batches(city, phase=0, run_id=run_id, base=base, records=total, batch_size=args.batch)
        csv_batches = make_batches(
            city, phase=1, run_id=run_id, base=base + timedelta(minutes=2), records=total, batch_size=args.batch
        )
        json_requests = [(keys[b.supplier_id], JSON_TYPE, json_body(b), len(b.records)) for b in json_batches]
        csv_requests = [(keys[b.supplier_id], CSV_TYPE, csv_body(b), len(b.records)) for b in csv_batches]
        json_warm, csv_warm = split_warmup(json_batches, args.warmup), split_warmup(csv_batches, args.warmup)
        progress(
            f"workload: {sum(len(b.records) for b in json_batches):,} JSON + "
            f"{sum(len(b.records) for b in csv_batches):,} CSV records in requests of {args.batch}, "
            f"{sum(len(r[2]) for r in json_requests) / len(json_requests) / 1024:.0f} KiB JSON / "
            f"{sum(len(r[2]) for r in csv_requests) / len(csv_requests) / 1024:.0f} KiB CSV per request"
        )

        api_settings = Settings.from_env(
            database_url=url,
            topic_prefix=prefix,
            api_port=free_port(),
            rate_limit_per_s=1e9,
            rate_limit_burst=1e9,
            max_request_bytes=50_000_000,
        )
        api_url = f"http://127.0.0.1:{api_settings.api_port}"
        log = workdir / "api.log"
        try:
            with baogong_process(["api"], api_settings.env(), log) as proc:
                wait_for_api(api_url, proc, log)
                progress(f"API up at {api_url} (pid {proc.pid})")
                phases = [
                    api_phase(
                        f"API JSON ({args.batch}/request)",
                        proc.pid,
                        api_url,
                        json_requests,
                        json_warm,
                        args.concurrency,
                        args.max_phase_s,
                        workdir,
                        progress,
                    ),
                    api_phase(
                        f"API CSV ({args.batch}/request)",
                        proc.pid,
                        api_url,
                        csv_requests,
                        csv_warm,
                        args.concurrency,
                        args.max_phase_s,
                        workdir,
                        progress,
                    ),
                ]
            progress("API stopped")

            measured = json_batches[json_warm:]
            ctx = validation_context(city)
            validation, goods = bench_validation(measured, ctx)
            progress(f"validation alone: {validation.records_per_s:,.0f} records/s")

            raw_topic = prefix + "bench.raw-produce.v1"
            topics.ensure_topics(bootstrap, [raw_topic], base_settings.partitions)
            per_request = report_messages(measured, goods)
            produce = bench_raw_produce(bootstrap, raw_topic, per_request)
            progress(
                f"kafka-python raw produce: {produce.messages:,} messages ({produce.records:,} records) in "
                f"{produce.elapsed_s:.2f} s = {produce.messages / produce.elapsed_s:,.0f} messages/s"
            )
            confluent_rate = confluent_produce_rate(bootstrap, raw_topic, per_request)
            progress(f"confluent-kafka raw produce (the API's producer): {confluent_rate:,.0f} messages/s")
            sample = min(40, len(measured))
            costs = stage_costs(measured[:sample], goods[:sample], ctx)
            progress(f"stage costs measured in-process on {sample} requests")

            profile = None
            if args.profile:
                extra = make_batches(
                    city,
                    phase=2,
                    run_id=run_id,
                    base=base + timedelta(minutes=4),
                    records=60 * args.batch,
                    batch_size=args.batch,
                )
                encode = json_body if args.profile == "json" else csv_body
                content_type = JSON_TYPE if args.profile == "json" else CSV_TYPE
                progress(f"profiling {len(extra)} {args.profile.upper()} requests in-process (cProfile)")
                profile = profile_in_process(
                    api_settings, [(keys[b.supplier_id], content_type, encode(b), len(b.records)) for b in extra]
                )
        finally:
            progress(delete_topics(bootstrap, prefix))

    failed = print_results(phases, validation, produce, costs)
    print(f"  confluent-kafka raw produce, the API's producer, same reports: {confluent_rate:,.0f} messages/s")
    if profile:
        print(f"\ncProfile, {args.profile.upper()} requests in-process (event-loop thread only):\n{profile}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
