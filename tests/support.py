"""Test support: a tiny real city, real child processes, a real webhook receiver.

Nothing here fakes a service: the receiver is an HTTP server on a socket, the
processes are the same `baogong` commands a person runs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from schema.db import connect
from schema.keys import IssuedKey, new_key
from schema.seed import seed_reference

TINY_POPULATION = 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_tiny_city(url: str) -> dict[str, IssuedKey]:
    """One circle of 1,000 residents; supplier s1 owns supermarkets O1, O2; s2 owns O3.

    Rice demand there is 250 kg/day, so 1,000 kg in each of O1 and O2 is 8 days
    (OK) and 200 kg each is 1.6 days (SHORTAGE, threshold 3).
    """
    keys = {"s1": new_key(), "s2": new_key()}
    with connect(url) as conn:
        seed_reference(conn)
        conn.execute(
            "INSERT INTO suppliers (id, name, kind) VALUES ('s1', 'Test chain', 'chain'), "
            "('s2', 'Test market', 'market')"
        )
        for supplier, key in keys.items():
            conn.execute(
                "INSERT INTO api_keys (prefix, supplier_id, key_hash) VALUES (%s, %s, %s)",
                (key.prefix, supplier, key.key_hash),
            )
        conn.execute(
            "INSERT INTO circles (id, name, center_lat, center_lon) VALUES ('T1', 'Test circle', 46.65, 126.97)"
        )
        conn.execute(
            "INSERT INTO communities (id, name, street_office, population, circle_id) VALUES "
            "('T1-1', 'Test community', 'Test street', %s, 'T1')",
            (TINY_POPULATION,),
        )
        for outlet, supplier in (("O1", "s1"), ("O2", "s1"), ("O3", "s2")):
            conn.execute(
                "INSERT INTO outlets (id, name, business_type, supplier_id, community_id, lat, lon) "
                "VALUES (%s, %s, 'supermarket', %s, 'T1-1', 46.65, 126.97)",
                (outlet, outlet, supplier),
            )
            conn.execute("INSERT INTO outlet_circles (outlet_id, circle_id) VALUES (%s, 'T1')", (outlet,))
    return keys


class Receiver:
    """A real HTTP webhook receiver on 127.0.0.1; records every JSON body it gets."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(every_s)


@contextmanager
def baogong_process(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run `baogong ARGS` as a child process; stop it (SIGTERM, then SIGKILL) on exit."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "baogong.cli", *args],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def read_topic(bootstrap: str, topic: str, timeout_s: float = 10.0) -> list[tuple[bytes | None, bytes]]:
    """Every message on `topic` from the beginning, read by partition assignment (no consumer group)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        end = consumer.end_offsets(assigned)
        out: list[tuple[bytes | None, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(consumer.position(tp) < end[tp] for tp in assigned):
            for records in consumer.poll(timeout_ms=500).values():
                out.extend((r.key, r.value) for r in records)
        return out
    finally:
        consumer.close()
