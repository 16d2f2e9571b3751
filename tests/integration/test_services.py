"""Real local services: a throwaway Tansu broker, and `services.up`/`down` on a private state dir and ports.

Nothing is mocked: these start real brokers and a real PostgreSQL cluster on free ports, in a state dir under
/tmp (the `postgres` OS user must be able to traverse it, which pytest's 0700 tmp_path does not allow).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pydantic import SecretStr

from baogong import services
from baogong.services import kafka, postgres, procs
from baogong.services.procs import ServiceError
from baogong.settings import Settings

pytestmark = pytest.mark.timeout(600)


def _free_port_pair() -> int:
    """A free port whose successor is free too (Apache's controller listens on broker port + 1)."""
    for _ in range(50):
        port = procs.free_port()
        if port < 65535 and not procs.port_open("127.0.0.1", port + 1):
            return port
    raise RuntimeError("no free port pair")


def _processes_with(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and procs.is_alive(int(entry.name)) and marker in procs.cmdline(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _roundtrip(bootstrap: str) -> bytes:
    """Produce one message to a new (auto-created) topic and read it back by partition assignment."""
    topic = f"svc-test-{uuid.uuid4().hex[:8]}"
    payload = f"hello {topic}".encode()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        meta = producer.send(topic, payload).get(timeout=30)
    finally:
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=20_000)
    try:
        consumer.assign([TopicPartition(topic, meta.partition)])
        for message in consumer:
            return bytes(message.value)
    finally:
        consumer.close()
    raise AssertionError(f"no message came back from {topic} on {bootstrap}")


def test_tansu_starts_on_a_free_port_and_carries_messages(tmp_path: Path) -> None:
    port = procs.free_port()
    bootstrap = f"127.0.0.1:{port}"
    log_path = tmp_path / "tansu.log"
    proc = kafka.start_tansu("127.0.0.1", port, log_path)
    try:
        kafka.wait_for_kafka(bootstrap, 30, log_path=log_path, pid=proc.pid)
        assert _roundtrip(bootstrap).startswith(b"hello svc-test-")
    finally:
        procs.stop(proc.pid, timeout_s=10)
    assert not procs.is_alive(proc.pid)
    assert "listening on" in log_path.read_text()


def test_wait_for_kafka_names_the_bootstrap_and_the_log(tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{procs.free_port()}"
    log_path = tmp_path / "kafka.log"
    started = time.monotonic()
    with pytest.raises(ServiceError) as info:
        kafka.wait_for_kafka(bootstrap, 1.5, log_path=log_path)
    assert time.monotonic() - started < 10
    assert bootstrap in str(info.value)
    assert str(log_path) in str(info.value)


@pytest.fixture
def private_state() -> Iterator[Path]:
    state = Path(tempfile.mkdtemp(prefix="baogong-svc-test-", dir="/tmp"))
    yield state
    shutil.rmtree(state, ignore_errors=True)


@pytest.mark.parametrize("kind", ["tansu", "apache"])
def test_up_is_idempotent_and_down_stops_everything(kind: str, private_state: Path) -> None:
    if kind == "apache":
        if (kafka.java_major() or 0) < 17:
            pytest.skip("Apache Kafka needs Java 17+")
        if not kafka.jars_present() and shutil.which("mvn") is None:
            pytest.skip("no Kafka jars and no Maven to fetch them")
    try:
        postgres.find_bindir()
    except ServiceError as exc:
        pytest.skip(str(exc))
    kafka_port, pg_port = _free_port_pair(), procs.free_port()
    settings = Settings.from_env(
        {},
        state_dir=private_state,
        kafka_bootstrap=f"127.0.0.1:{kafka_port}",
        database_url=SecretStr(f"postgresql://baogong_test:Sekr3t-Passw0rd@127.0.0.1:{pg_port}/baogong_test"),
        local_kafka=kind,
    )
    kafka_marker = (
        str(kafka.kafka_paths(settings).config) if kind == "apache" else f"--listener-url tcp://127.0.0.1:{kafka_port}"
    )
    pg_marker = f"-D {postgres.pg_paths(settings).data}"
    lines: list[str] = []
    try:
        services.up(settings, progress=lines.append)
        first_kafka_pid = procs.read_pid(private_state / "run" / "kafka.pid")
        first_pg_pid = procs.read_pid(private_state / "run" / "postgres.pid")
        assert first_kafka_pid is not None and first_pg_pid is not None

        lines.clear()
        services.up(settings, progress=lines.append)
        assert any("already running" in line for line in lines if line.startswith("kafka:")), lines
        assert any("already running" in line for line in lines if line.startswith("postgres:")), lines
        assert procs.read_pid(private_state / "run" / "kafka.pid") == first_kafka_pid
        assert _processes_with(kafka_marker) == [first_kafka_pid]
        assert _processes_with(pg_marker) == [first_pg_pid]

        state = services.status(settings)
        assert state["kafka"].startswith(kind) and f"running on 127.0.0.1:{kafka_port}" in state["kafka"]
        assert f"pid {first_kafka_pid}" in state["kafka"]
        assert f"running on 127.0.0.1:{pg_port}" in state["postgres"]
        assert "Sekr3t" not in " ".join(state.values()) + " ".join(lines)  # never print the password

        assert _roundtrip(settings.kafka_bootstrap).startswith(b"hello")
        with psycopg.connect(settings.database_url.get_secret_value()) as conn:
            row = conn.execute("SELECT current_user, current_database()").fetchone()
        assert row == ("baogong_test", "baogong_test")
    finally:
        services.down(settings, progress=lines.append)

    assert _processes_with(kafka_marker) == []
    assert _processes_with(pg_marker) == []
    state = services.status(settings)
    assert state["kafka"].startswith("not running") and state["postgres"].startswith("not running"), state
    lines.clear()
    services.down(settings, progress=lines.append)  # idempotent
    assert lines == ["kafka: not running", "postgres: not running"]
    assert (private_state / "pg" / "data" / "PG_VERSION").exists()  # data kept
