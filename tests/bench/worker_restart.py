"""How long a stream worker killed with -9 takes to consume again: `python -m tests.bench.worker_restart`.

Starts `baogong worker` on the configured Kafka and a fresh database (the tiny
test city), stores one report, then `rounds` times: kill -9, start again,
produce a report, and time from the restart to that report being stored.
That time is the process's own start-up plus the consumer group's wait for
the killed member: with static membership (the default, `--instance ''`)
the restarted worker takes its old membership over at once; without it
(`--instance none`) the group waits until the killed member's session
(`--session`, seconds) times out.

    python -m tests.bench.worker_restart                       # today's settings
    python -m tests.bench.worker_restart --session 60 --instance none   # Faust's defaults, as before issue 8

Needs Kafka and PostgreSQL at BAOGONG_KAFKA_BOOTSTRAP / BAOGONG_DATABASE_URL (the
role needs CREATEDB); the database it creates is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaProducer
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from baogong.settings import Settings
from schema.db import connect
from schema.migrate import migrate
from tests.support import free_port, seed_tiny_city


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--session", type=float, default=None, help="worker_session_timeout_s (default: settings)")
    parser.add_argument("--instance", default=None, help="worker_instance_id ('' = host and port, 'none' = off)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    base = Settings.from_env()
    admin = base.database_url.get_secret_value()
    name = f"baogong_restart_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(admin)
    params["dbname"] = name
    url = make_conninfo(**params)  # type: ignore[arg-type]
    prefix = f"restart{uuid.uuid4().hex[:6]}."
    more: dict[str, Any] = {}
    if args.session is not None:
        more["worker_session_timeout_s"] = args.session
    if args.instance is not None:
        more["worker_instance_id"] = args.instance
    settings = Settings.from_env(
        database_url=url,
        topic_prefix=prefix,
        worker_id=f"baogong-{prefix.strip('.')}",
        worker_port=free_port(),
        sink_max_wait_s=0.2,
        **more,
    )
    log = Path(tempfile.mkdtemp(prefix="worker-restart-")) / "worker.log"
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    topic = settings.topic("supply.inventory.v1")
    sent = 0

    def produce() -> int:
        nonlocal sent
        sent += 1
        at = datetime.now(UTC) - timedelta(minutes=10) + timedelta(seconds=sent)
        lines = [{"necessity": "rice", "quantity": sent, "unit": "kg"}]
        body = {"kind": "inventory", "v": 1, "supplier_id": "s1", "outlet_id": "O1", "reported_at": at.isoformat()}
        producer.send(topic, key=b"O1", value=json.dumps({**body, "lines": lines}).encode()).get(timeout=30)
        return sent

    def stored_after(quantity: int, started: float, limit_s: float = 180.0) -> float:
        while True:
            with connect(url) as conn:
                found = conn.execute("SELECT 1 FROM outlet_reports WHERE quantity = %s", (float(quantity),)).fetchone()
            if found:
                return time.monotonic() - started
            if time.monotonic() - started > limit_s:
                raise SystemExit(f"report not stored after {limit_s:.0f}s; see {log}")
            time.sleep(0.1)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "baogong.cli", "worker"],
            env={**os.environ, **settings.env()},
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    proc: subprocess.Popen[bytes] | None = None
    try:
        migrate(url)
        seed_tiny_city(url)
        started = time.monotonic()
        proc = start()
        first = stored_after(produce(), started)
        instance = settings.worker_instance_id or "host-port"
        print(f"session {settings.worker_session_timeout_s:g}s, instance {instance!r}")
        print(f"  first start: consuming after {first:.1f}s")
        took = []
        for r in range(args.rounds):
            time.sleep(3)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            started = time.monotonic()
            proc = start()
            took.append(stored_after(produce(), started))
            print(f"  kill -9 + restart #{r + 1}: consuming again after {took[-1]:.1f}s", flush=True)
        print(f"restarts: {', '.join(f'{t:.1f}' for t in took)} s (log: {log})")
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        producer.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    sys.exit(main())
