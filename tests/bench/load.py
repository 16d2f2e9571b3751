"""The benchmark's load generator, run as its own process: `python -m tests.bench.load SPEC.json`.

SPEC names the API's URL, a pickle of pre-encoded requests (api key,
content type, body, record count), how many of them are warm-up, how many
connections to keep busy and the longest the measured part may run. It
sends the warm-up requests, prints `measuring`, sends the rest over
`concurrency` keep-alive connections, and prints one JSON line with what the
API answered: accepted, rejected and duplicate records, request latencies,
errors (any answer other than 200), the measured wall time and this
process's CPU time.

The generator shares this machine's cores with the API, Kafka and
PostgreSQL, so it spends as little CPU as it can: every request is encoded
as HTTP/1.1 bytes before the clock starts and sent over plain asyncio
streams (one event loop), reading back only the status line, the headers
and a Content-Length body. (An httpx client per thread cost it ~1.3 µs of
CPU per record, a third of a core at 25k records/s.)
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

#: api key, content type, body, records in the body
Request = tuple[str, str, bytes, int]


@dataclass
class Tally:
    sent_records: int = 0
    requests: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reject_samples: list[Any] = field(default_factory=list)


def encode(host: str, request: Request, path: str = "/v1/inventory") -> bytes:
    """One request as the bytes on the wire."""
    key, content_type, body, _ = request
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wire: bytes) -> tuple[int, bytes]:
    writer.write(wire)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def tally_answer(tally: Tally, status: int, content: bytes) -> None:
    if status != 200:
        tally.errors.append(f"HTTP {status}: {content[:300].decode('utf-8', 'replace')}")
        return
    out = orjson.loads(content)
    tally.accepted += out["accepted"]
    tally.rejected += len(out["rejected"])
    tally.duplicates += len(out["duplicates"])
    if out["rejected"] and len(tally.reject_samples) < 5:
        tally.reject_samples.extend(out["rejected"][:2])


async def _send_all(url: str, wires: list[tuple[bytes, int]], concurrency: int, deadline: float | None) -> Tally:
    tally = Tally()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pending = iter(wires)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for wire, count in pending:
                if deadline is not None and time.perf_counter() > deadline:
                    return
                started = time.perf_counter()
                try:
                    status, content = await _exchange(reader, writer, wire)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    tally.errors.append(f"{type(exc).__name__}: {exc}")
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                tally.requests += 1
                tally.sent_records += count
                tally.latencies_ms.append((time.perf_counter() - started) * 1000)
                tally_answer(tally, status, content)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return tally


def on_the_wire(url: str, requests: list[Request]) -> list[tuple[bytes, int]]:
    host = urlsplit(url).netloc
    return [(encode(host, r), r[3]) for r in requests]


def send_all(url: str, wires: list[tuple[bytes, int]], concurrency: int, deadline: float | None) -> Tally:
    """Send every request (or those started before `deadline`, a perf_counter time) and tally the answers."""
    return asyncio.run(_send_all(url, wires, concurrency, deadline))


def main(argv: list[str]) -> int:
    spec: dict[str, Any] = json.loads(Path(argv[0]).read_text())
    with open(spec["requests"], "rb") as f:
        requests: list[Request] = pickle.load(f)
    warmup = int(spec["warmup"])
    concurrency = int(spec["concurrency"])
    warm = send_all(spec["url"], on_the_wire(spec["url"], requests[:warmup]), concurrency, None)
    if warm.errors or warm.rejected:
        print(json.dumps({"warmup_errors": warm.errors[:5], "reject_samples": warm.reject_samples}), flush=True)
        return 1
    measured = on_the_wire(spec["url"], requests[warmup:])
    print("measuring", flush=True)
    cpu0, started = time.process_time(), time.perf_counter()
    tally = send_all(spec["url"], measured, concurrency, started + float(spec["max_s"]))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    result = {
        "elapsed_s": elapsed,
        "cpu_s": cpu,
        "requests": tally.requests,
        "planned_requests": len(requests) - warmup,
        "sent_records": tally.sent_records,
        "accepted": tally.accepted,
        "rejected": tally.rejected,
        "duplicates": tally.duplicates,
        "latencies_ms": tally.latencies_ms,
        "errors": tally.errors[:10],
        "reject_samples": tally.reject_samples,
        "error_count": len(tally.errors),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
