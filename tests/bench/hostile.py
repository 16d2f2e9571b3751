"""The API under attack, for other suppliers: `python -m tests.bench.hostile` (issue 13).

A scratch database with the tiny city (tests/support.py: s1 owns O1 and O2, s2 owns O3), `baogong api` as a
child process with default limits, on a fresh topic prefix. The probe is what a well-behaved supplier does: s2
posts one record (a small JSON array) and waits for its 200; probes go one after another. Two phases of
`--probes` probes each: first alone (the baseline), then while s1 attacks with, at the same time,
- an XLSX bomb: a 0.3 MB file whose sheet unpacks to `--bomb-mb` MB, posted again and again;
- a chunked oversize upload: a multipart body with no Content-Length, streamed without end, again and again;
- `--slow` slow connections: each sends half a request's headers and one more header byte every 2 s
  (reopened when the API closes it).
Prints one table: probe p50/p99/max and the API's resident memory (RSS, peak sampled every 50 ms) per phase,
and what the attackers got back.
"""

from __future__ import annotations

import argparse
import io
import socket
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psutil

from baogong.settings import Settings
from tests.bench.run import Progress, bench_database, delete_topics, percentile, wait_for_api
from tests.support import baogong_process, free_port, seed_tiny_city

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Phase:
    latencies_ms: list[float] = field(default_factory=list)
    failed: int = 0
    peak_rss_mb: float = 0.0


def bomb(unpacked_mb: int) -> bytes:
    """An XLSX-shaped zip whose one sheet unpacks to `unpacked_mb` MB of rows (deflated ~1000:1)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            row = b'<row><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>' * 1000
            for _ in range(unpacked_mb * 1024 * 1024 // len(row)):
                sheet.write(row)
    return out.getvalue()


def endless_multipart() -> Iterator[bytes]:
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="stock.csv"\r\nContent-Type: text/csv\r\n\r\n'
    chunk = b"O1,rice,100,kg,2025-01-01T00:00:00+08:00\n" * 1600  # 64 kB
    while True:
        yield chunk


def probe_phase(url: str, key: str, probes: int, pid: int) -> Phase:
    phase = Phase()
    proc = psutil.Process(pid)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            phase.peak_rss_mb = max(phase.peak_rss_mb, proc.memory_info().rss / 2**20)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sh = ZoneInfo("Asia/Shanghai")
    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        for i in range(probes):
            at = (datetime.now(sh) - timedelta(minutes=1)).isoformat(timespec="seconds")
            body = [{"outlet_id": "O3", "necessity": "rice", "quantity": 100 + i, "unit": "kg", "reported_at": at}]
            started = time.perf_counter()
            try:
                ok = client.post("/v1/inventory", json=body).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                phase.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                phase.failed += 1
    stop.set()
    sampler.join()
    return phase


class Attack:
    """The three attacks of the module doc, in threads, until `stop`; `answers` counts what came back."""

    def __init__(self, url: str, key: str, bomb_body: bytes, slow: int) -> None:
        self.url, self.key, self.bomb_body, self.slow = url, key, bomb_body, slow
        self.stop = threading.Event()
        self.answers: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _count(self, what: str) -> None:
        with self._lock:
            self.answers[what] += 1

    def _bombs(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": XLSX}
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                try:
                    self._count(
                        f"bomb {client.post('/v1/inventory', content=self.bomb_body, headers=headers).status_code}"
                    )
                except (httpx.HTTPError, OSError) as exc:
                    self._count(f"bomb {type(exc).__name__}")

    def _oversize(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "multipart/form-data; boundary=b"}
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                try:
                    r = client.post("/v1/inventory", content=endless_multipart(), headers=headers)
                    self._count(f"chunked {r.status_code}")
                except (httpx.HTTPError, OSError) as exc:  # the API answered 413 and closed the connection
                    self._count(f"chunked {type(exc).__name__}")

    def _slowloris(self) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        conns: list[socket.socket | None] = [None] * self.slow
        while not self.stop.is_set():
            for i, sock in enumerate(conns):
                try:
                    if sock is None:
                        sock = socket.create_connection((host, int(port)), timeout=5)
                        sock.setblocking(False)
                        sock.send(b"POST /v1/inventory HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                        conns[i] = sock
                        self._count("slow opened")
                    else:
                        sock.send(b"a")
                except BlockingIOError:
                    pass
                except OSError:
                    if sock is not None:
                        sock.close()
                    conns[i] = None
                    self._count("slow cut off")
            self.stop.wait(2.0)
        for sock in conns:
            if sock is not None:
                sock.close()

    def __enter__(self) -> Attack:
        for target in (self._bombs, self._oversize, self._slowloris):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


def measure(
    settings: Settings, probes: int, bomb_mb: int, slow: int, progress: Progress
) -> tuple[Phase, Phase, Counter[str]]:
    run = uuid.uuid4().hex[:8]
    prefix = f"bench-hostile-{run}."
    admin_url = settings.database_url.get_secret_value()
    bomb_body = bomb(bomb_mb)
    progress(f"bomb: {len(bomb_body) / 2**20:.2f} MB packed, {bomb_mb} MB unpacked")
    with tempfile.TemporaryDirectory() as tmp, bench_database(admin_url, f"bench_hostile_{run}", progress) as url:
        keys = seed_tiny_city(url)
        local = Settings.from_env(
            kafka_bootstrap=settings.kafka_bootstrap,
            database_url=url,
            topic_prefix=prefix,
            api_port=free_port(),
            api_metrics_port=free_port(),
            rate_limit_per_s=1e9,
            rate_limit_burst=1e9,
        )
        api_url = f"http://127.0.0.1:{local.api_port}"
        log = Path(tmp) / "api.log"
        try:
            with baogong_process(["api"], local.env(), log) as api:
                wait_for_api(api_url, api, log)
                probe_phase(api_url, keys["s2"].key, 20, api.pid)  # warm up
                baseline = probe_phase(api_url, keys["s2"].key, probes, api.pid)
                progress(f"baseline: {len(baseline.latencies_ms)} probes")
                with Attack(api_url, keys["s1"].key, bomb_body, slow) as attack:
                    time.sleep(12)  # all slow connections opened and the first cut off (10 s), bombs and uploads going
                    attacked = probe_phase(api_url, keys["s2"].key, probes, api.pid)
                progress(f"under attack: {len(attacked.latencies_ms)} probes")
                return baseline, attacked, attack.answers
        finally:
            progress(delete_topics(settings.kafka_bootstrap, prefix))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.hostile", description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=2000, help="probes per phase")
    parser.add_argument("--bomb-mb", type=int, default=500, help="what the XLSX bomb unpacks to, MB")
    parser.add_argument("--slow", type=int, default=200, help="slow connections")
    args = parser.parse_args(argv)
    baseline, attacked, answers = measure(Settings.from_env(), args.probes, args.bomb_mb, args.slow, Progress())

    def ms(values: list[float], q: float) -> str:
        value = percentile(values, q)
        return "-" if value is None else f"{value:.1f}"

    print(f"{'phase':<14}{'probes ok':>10}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'peak RSS MB':>13}")
    for name, p in (("baseline", baseline), ("under attack", attacked)):
        top = f"{max(p.latencies_ms):.1f}" if p.latencies_ms else "-"
        print(
            f"{name:<14}{len(p.latencies_ms):>10}{p.failed:>8}{ms(p.latencies_ms, 0.5):>9}"
            f"{ms(p.latencies_ms, 0.99):>9}{top:>9}{p.peak_rss_mb:>13.0f}"
        )
    print("attackers got: " + ", ".join(f"{k} x{v}" for k, v in sorted(answers.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
