"""Fixtures for integration tests: a real supplier API process on the configured Kafka and a fresh database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from baogong.services.alertmanager import RunningAlertmanager
from baogong.services.alertmanager import start as start_alertmanager
from baogong.settings import Settings
from schema.keys import IssuedKey
from tests.support import Receiver, baogong_process, free_port, read_topic, seed_tiny_city, wait_for


@dataclass
class Api:
    url: str
    keys: dict[str, IssuedKey]
    bootstrap: str
    prefix: str
    log: Path
    database_url: str
    metrics_url: str = ""

    def post(self, path: str, supplier: str = "s1", **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[supplier].key}", **kw.pop("headers", {})}
        return httpx.post(self.url + path, headers=headers, timeout=30, **kw)

    def topic(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(v) for _, v in read_topic(self.bootstrap, self.prefix + name)]


@contextmanager
def start_api(bootstrap: str, database_url: str, prefix: str, log: Path, **overrides: Any) -> Iterator[Api]:
    """A real `baogong api` process on the tiny city (tests/support.py), answering when this yields."""
    keys = seed_tiny_city(database_url)
    port = free_port()
    overrides.setdefault("api_metrics_port", free_port())
    settings = Settings.from_env(
        kafka_bootstrap=bootstrap, database_url=database_url, topic_prefix=prefix, api_port=port, **overrides
    )
    with baogong_process(["api"], settings.env(), log):
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(url), 60, "the API")
        yield Api(url, keys, bootstrap, prefix, log, database_url, f"http://127.0.0.1:{settings.api_metrics_port}")


@pytest.fixture
def api(configured_kafka: str, database_url: str, topic_prefix: str, tmp_path: Path) -> Iterator[Api]:
    limits = {"max_request_bytes": 300_000, "rate_limit_per_s": 1000, "rate_limit_burst": 5000}
    with start_api(configured_kafka, database_url, topic_prefix, tmp_path / "api.log", **limits) as running:
        yield running


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningAlertmanager, Receiver]]:
    """A real Alertmanager (Debian's) for the whole session, and the webhook receiver it notifies.

    Tests share it: label your alerts uniquely and pick your own out of `receiver.bodies`.
    """
    receiver = Receiver()
    running = start_alertmanager(receiver.url, tmp_path_factory.mktemp("alertmanager"))
    try:
        yield running, receiver
    finally:
        running.stop()
        receiver.close()
