"""The benchmark's load generator, run as its own process: `python -m tests.bench.load SPEC.json`.

SPEC names the API's URL, a pickle of pre-encoded requests (api key,
content type, body, record count), how many of them are warm-up, how many
connections to keep busy and the longest the measured part may run. It
sends the warm-up requests, prints `measuring`, sends the rest over
`concurrency` keep-alive connections (one thread and one httpx.Client
each), and prints one JSON line with what the API answered: accepted,
rejected and duplicate records, request latencies, errors (any answer other
than 200), the measured wall time and this process's CPU time. Bodies are
encoded before the clock starts, so the generator spends its CPU on HTTP only.
"""

from __future__ import annotations

import json
import pickle
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
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


def send_all(url: str, requests: list[Request], concurrency: int, deadline: float | None) -> Tally:
    """Send every request (or those started before `deadline`, a perf_counter time) and tally the answers."""
    tally = Tally()
    lock = threading.Lock()
    pending = iter(requests)

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=120.0) as client:
            while True:
                with lock:
                    request = next(pending, None)
                if request is None or (deadline is not None and time.perf_counter() > deadline):
                    return
                key, content_type, body, count = request
                started = time.perf_counter()
                try:
                    answer = client.post(
                        "/v1/inventory", content=body, headers={"X-API-Key": key, "Content-Type": content_type}
                    )
                except httpx.HTTPError as exc:
                    with lock:
                        tally.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed_ms = (time.perf_counter() - started) * 1000
                with lock:
                    tally.requests += 1
                    tally.sent_records += count
                    tally.latencies_ms.append(elapsed_ms)
                    if answer.status_code != 200:
                        tally.errors.append(f"HTTP {answer.status_code}: {answer.text[:300]}")
                        continue
                    out = orjson.loads(answer.content)
                    tally.accepted += out["accepted"]
                    tally.rejected += len(out["rejected"])
                    tally.duplicates += len(out["duplicates"])
                    if out["rejected"] and len(tally.reject_samples) < 5:
                        tally.reject_samples.extend(out["rejected"][:2])

    threads = [threading.Thread(target=worker, name=f"load-{i}") for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally


def main(argv: list[str]) -> int:
    spec: dict[str, Any] = json.loads(Path(argv[0]).read_text())
    with open(spec["requests"], "rb") as f:
        requests: list[Request] = pickle.load(f)
    warmup = int(spec["warmup"])
    concurrency = int(spec["concurrency"])
    warm = send_all(spec["url"], requests[:warmup], concurrency, None)
    if warm.errors or warm.rejected:
        print(json.dumps({"warmup_errors": warm.errors[:5], "reject_samples": warm.reject_samples}), flush=True)
        return 1
    print("measuring", flush=True)
    cpu0, started = time.process_time(), time.perf_counter()
    tally = send_all(spec["url"], requests[warmup:], concurrency, started + float(spec["max_s"]))
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
