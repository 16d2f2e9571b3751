"""Fixtures on real services: the configured Kafka, a throwaway Tansu, fresh PostgreSQL databases.

The services come from the environment (`BAOGONG_KAFKA_BOOTSTRAP`,
`BAOGONG_DATABASE_URL`); `make test` starts local ones first. Every test that
needs a database gets its own, copied from a migrated template
(`CREATE DATABASE … TEMPLATE`, fast); every test that needs topics gets its
own topic prefix, so tests never see each other's messages.

On TimescaleDB its scheduler keeps a connection to every database that allows
connections, and `CREATE DATABASE … TEMPLATE` refuses a template somebody is
connected to. So the migrated template is closed to connections
(`ALLOW_CONNECTIONS false`) and its sessions are ended before it is copied
(`copy_template`); the same fixtures run on plain PostgreSQL and TimescaleDB.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from baogong.settings import Settings
from schema.migrate import migrate

#: This session's migrated template (one per pytest process, so sessions side by side never drop each other's).
TEMPLATE = f"baogong_test_template_{os.getpid()}"


def _with_db(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def admin_url(settings: Settings) -> str:
    url = settings.database_url.get_secret_value()
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.exit(f"PostgreSQL at BAOGONG_DATABASE_URL is not reachable ({exc}); run `baogong services up`", 2)
    return url


def copy_template(admin_url: str, name: str) -> str:
    """Create database `name` as a copy of the migrated template; its URL. Ends the template's sessions first
    (TimescaleDB's scheduler may still hold one) and retries while PostgreSQL says it is being accessed."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for attempt in range(50):
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (TEMPLATE,),
            )
            try:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(*map(sql.Identifier, (name, TEMPLATE))))
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 49:
                    raise
                time.sleep(0.1)
    return _with_db(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_url(admin_url: str) -> Iterator[str]:
    drop_database(admin_url, TEMPLATE)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    url = _with_db(admin_url, TEMPLATE)
    migrate(url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(TEMPLATE)))
    yield url
    drop_database(admin_url, TEMPLATE)


@pytest.fixture
def database_url(admin_url: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated, empty database for one test."""
    name = f"baogong_test_{uuid.uuid4().hex[:10]}"
    yield copy_template(admin_url, name)
    drop_database(admin_url, name)


@pytest.fixture(scope="session")
def configured_kafka(settings: Settings) -> str:
    from baogong.services.kafka import wait_for_kafka

    try:
        wait_for_kafka(settings.kafka_bootstrap, timeout_s=30)
    except Exception as exc:
        pytest.exit(f"Kafka at BAOGONG_KAFKA_BOOTSTRAP is not reachable ({exc}); run `baogong services up`", 2)
    return settings.kafka_bootstrap


@pytest.fixture(scope="session")
def tansu_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway Tansu broker (the embedded default for machines without Java)."""
    from baogong.services.kafka import start_tansu, wait_for_kafka
    from tests.support import free_port

    port = free_port()
    log = Path(tmp_path_factory.mktemp("tansu")) / "tansu.log"
    proc = start_tansu("127.0.0.1", port, log)
    try:
        wait_for_kafka(f"127.0.0.1:{port}", timeout_s=30)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(params=["configured", "tansu"])
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on the configured broker (Apache Kafka under `make test`) and on Tansu."""
    name = "configured_kafka" if request.param == "configured" else "tansu_kafka"
    return str(request.getfixturevalue(name))


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."
