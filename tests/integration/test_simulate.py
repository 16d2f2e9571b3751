"""`baogong simulate` feeds a generated city to a real API process, and refuses a city whose keys it cannot know."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from baogong.settings import Settings
from baogong.simulate import UnknownKeys, simulate
from schema.city_seed import seed_city
from tests.integration.worker_harness import create_topics
from tests.support import baogong_process, free_port, wait_for


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_simulate_feeds_a_generated_city_to_the_api(configured_kafka: str, database_url: str, tmp_path: Path) -> None:
    seed_city(database_url, outlets=1_500, circles=6, seed=2024, progress=lambda _line: None)
    prefix = f"t{uuid.uuid4().hex[:8]}."
    create_topics(configured_kafka, prefix)
    port = free_port()
    settings = Settings.from_env(
        kafka_bootstrap=configured_kafka, database_url=database_url, topic_prefix=prefix, api_port=port
    )
    url = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    with baogong_process(["api"], settings.env(), tmp_path / "api.log"):
        wait_for(lambda: _up(url), 60, "the API")
        with pytest.raises(UnknownKeys, match="--seed"):
            simulate(database_url, url, rate=100, duration_s=1, seed=7)
        done = simulate(database_url, url, rate=300, duration_s=3, seed=2024, progress=lines.append)
    assert done.records >= 300 and done.accepted == done.records  # every record of the city is valid
    assert done.rejected == 0 and done.failed_requests == 0
    assert lines[0].startswith("simulating ") and lines[-1].startswith("done: ")
