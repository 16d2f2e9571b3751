"""How long from the API's 200 to the circle level reflecting it: `python -m tests.bench.latency` (issue 11, 5(d)).

The demo city in a scratch database, `baogong api` and `baogong worker` as child processes on a fresh topic
prefix, default settings (live levels on). A probe is one record for outlet P1, the only outlet of circle PROBE,
with a quantity no other probe has: the latency is the time from the probe's 200 to the moment
`circle_levels_latest` shows that quantity as PROBE's rice stock (polled every 5 ms, as a panel or the alert
dispatcher reads it). Probes go every `--every` seconds, first on an idle pipeline (the baseline), then while a
background load of `--rate` records/s (default 2,000, in requests of 100 demo-city records) goes to the same API.
Prints one table: p50, p99 and max of each phase, the loaded phase's ratio to the baseline, and the goal
(p99 under 1 s at 2,000 records/s).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from baogong.settings import Settings
from schema.demo_city import build_demo_city
from schema.seed import seed_demo
from tests.bench.run import JSON_TYPE, Progress, bench_database, delete_topics, percentile, wait_for_api
from tests.bench.workload import json_body, make_batches
from tests.support import baogong_process, free_port

PROBE_CIRCLE, PROBE_OUTLET = "PROBE", "P1"


def add_probe_circle(url: str, supplier_id: str) -> None:
    """Circle PROBE with one community of 1,000 residents and one supermarket, P1, of `supplier_id`."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO circles (id, name, district, center_lat, center_lon) "
            "VALUES (%s, 'Probe', 'Probe', 46.6, 126.9)",
            (PROBE_CIRCLE,),
        )
        conn.execute(
            "INSERT INTO communities (id, name, street_office, population, circle_id) "
            "VALUES ('PROBE-1', 'Probe', 'Probe', 1000, %s)",
            (PROBE_CIRCLE,),
        )
        conn.execute(
            "INSERT INTO outlets (id, name, business_type, supplier_id, community_id, lat, lon) "
            "VALUES (%s, 'Probe', 'supermarket', %s, 'PROBE-1', 46.6, 126.9)",
            (PROBE_OUTLET, supplier_id),
        )
        conn.execute("INSERT INTO outlet_circles (outlet_id, circle_id) VALUES (%s, %s)", (PROBE_OUTLET, PROBE_CIRCLE))


def probe(
    client: httpx.Client, key: str, conn: psycopg.Connection[Any], quantity: float, timeout_s: float
) -> float | None:
    """Seconds from the probe's 200 to its level; None when not seen within `timeout_s`."""
    record = {
        "outlet_id": PROBE_OUTLET,
        "necessity": "rice",
        "quantity": quantity,
        "unit": "kg",
        "reported_at": datetime.now(UTC).isoformat(),
        "message_id": f"probe-{quantity}",
    }
    answer = client.post("/v1/inventory", json=[record], headers={"Authorization": f"Bearer {key}"})
    answered = time.monotonic()
    answer.raise_for_status()
    while time.monotonic() - answered < timeout_s:
        row = conn.execute(
            "SELECT stock FROM circle_levels_latest WHERE circle_id = %s AND necessity = 'rice'", (PROBE_CIRCLE,)
        ).fetchone()
        if row is not None and row[0] == quantity:
            return time.monotonic() - answered
        time.sleep(0.005)
    return None


def background(
    url: str, requests: list[tuple[str, bytes]], rate: float, per_request: int, stop: threading.Event
) -> None:
    """Send `requests` paced to `rate` records/s until they run out or `stop` is set."""
    every = per_request / rate
    start = time.monotonic()
    with httpx.Client(base_url=url, timeout=30) as client:
        for i, (key, body) in enumerate(requests):
            if stop.is_set():
                return
            wait = start + i * every - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            client.post(
                "/v1/inventory", content=body, headers={"Authorization": f"Bearer {key}", "Content-Type": JSON_TYPE}
            ).raise_for_status()


def phase(
    client: httpx.Client, key: str, conn: psycopg.Connection[Any], count: int, every: float, first: float
) -> tuple[list[float], int]:
    """`count` probes `every` seconds apart, quantities from `first`: the latencies seen and the probes missed."""
    seen, missed = [], 0
    for i in range(count):
        started = time.monotonic()
        latency = probe(client, key, conn, first + i, timeout_s=30)
        if latency is None:
            missed += 1
        else:
            seen.append(latency)
        time.sleep(max(0.0, every - (time.monotonic() - started)))
    return seen, missed


@dataclass
class Latency:
    """Seconds from API 200 to level of each probe seen, and the probes never seen, per phase."""

    rate: float
    idle: list[float] = field(default_factory=list)
    idle_missed: int = 0
    loaded: list[float] = field(default_factory=list)
    loaded_missed: int = 0


def measure(settings: Settings, rate: float, probes: int, every: float, progress: Progress) -> Latency:
    """Both phases on a scratch database and topic prefix of `settings`' servers (module docstring)."""
    run = uuid.uuid4().hex[:8]
    prefix = f"latency{run}."
    per_request = 100
    result = Latency(rate)
    with (
        tempfile.TemporaryDirectory(prefix="baogong-latency-") as tmp,
        bench_database(settings.database_url.get_secret_value(), f"baogong_bench_latency_{run}", progress) as url,
    ):
        workdir = Path(tmp)
        seeded = seed_demo(url, progress=lambda _: None)
        keys = {k.supplier_id: k.key for k in seeded.keys}
        supplier = sorted(keys)[0]
        add_probe_circle(url, supplier)
        city = build_demo_city(seeded.seed)
        batches = make_batches(
            city,
            phase=0,
            run_id=run,
            base=datetime.now(UTC) - timedelta(minutes=1),
            records=int(rate * (probes * every + 30)),
            batch_size=per_request,
        )
        requests = [(keys[b.supplier_id], json_body(b)) for b in batches]
        progress(f"(d) demo city and probe circle; {len(requests)} background requests of {per_request} records")
        local = Settings.from_env(
            kafka_bootstrap=settings.kafka_bootstrap,
            database_url=url,
            topic_prefix=prefix,
            api_port=free_port(),
            worker_port=free_port(),
            worker_id=f"baogong-latency-{run}",
            rate_limit_per_s=1e9,
            rate_limit_burst=1e9,
        )
        api_url = f"http://127.0.0.1:{local.api_port}"
        try:
            with (
                baogong_process(["api"], local.env(), workdir / "api.log") as api,
                baogong_process(["worker"], local.env(), workdir / "worker.log"),
                httpx.Client(base_url=api_url, timeout=30) as client,
                psycopg.connect(url, autocommit=True) as conn,
            ):
                wait_for_api(api_url, api, workdir / "api.log")
                if probe(client, keys[supplier], conn, 1.0, timeout_s=120) is None:
                    raise RuntimeError("the probe circle's level never came: read " + str(workdir / "worker.log"))
                result.idle, result.idle_missed = phase(client, keys[supplier], conn, probes, every, 1000)
                progress(f"(d) idle: {len(result.idle)} probes seen")
                stop = threading.Event()
                sender = threading.Thread(target=background, args=(api_url, requests, rate, per_request, stop))
                sender.start()
                time.sleep(5)  # the load reaches its pace
                try:
                    result.loaded, result.loaded_missed = phase(client, keys[supplier], conn, probes, every, 5000)
                finally:
                    stop.set()
                    sender.join()
                progress(f"(d) at {rate:,.0f} records/s: {len(result.loaded)} probes seen")
        finally:
            progress(delete_topics(settings.kafka_bootstrap, prefix))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.latency", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="background records/s during the loaded phase")
    parser.add_argument("--probes", type=int, default=100, help="probes per phase")
    parser.add_argument("--every", type=float, default=0.25, help="seconds between probes")
    args = parser.parse_args(argv)
    got = measure(Settings.from_env(), args.rate, args.probes, args.every, Progress())
    base_p99 = percentile(got.idle, 0.99)
    print()
    head = ("probes", "missed", "p50 ms", "p99 ms", "max ms")
    print(f"{'API 200 -> circle level':34} " + " ".join(f"{h:>7}" for h in head) + f" {'p99 ratio':>10}")
    for name, seen, missed in (
        ("idle pipeline (baseline)", got.idle, got.idle_missed),
        (f"{args.rate:,.0f} records/s", got.loaded, got.loaded_missed),
    ):
        p50, p99 = percentile(seen, 0.5), percentile(seen, 0.99)
        ratio = "—" if not base_p99 or p99 is None else f"{p99 / base_p99:.2f}"
        cells = (len(seen), missed, _ms(p50), _ms(p99), _ms(max(seen, default=None)))
        print(f"{name:34} " + " ".join(f"{c:>7}" for c in cells) + f" {ratio:>10}")
    loaded_p99 = percentile(got.loaded, 0.99)
    ok = loaded_p99 is not None and loaded_p99 < 1.0 and not got.loaded_missed
    print(f"goal: p99 under 1 s at {args.rate:,.0f} records/s: {'met' if ok else 'NOT met'}")
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


if __name__ == "__main__":
    raise SystemExit(main())
