"""Bring the local services up and down: the Kafka broker and PostgreSQL that Baogong needs.

`up` also makes sure the Alertmanager binary the tests start is installed (`alertmanager.ensure_installed`:
Debian's prometheus-alertmanager, as root) and that a Chinese font for the daily report's charts is
(`baogong.report.fonts.ensure_installed`: Debian's fonts-wqy-microhei, as root); it runs no Alertmanager
itself, and a machine where they cannot be installed still gets Kafka and PostgreSQL (a progress line says
what to install).

    from baogong import services
    services.up(settings)        # start what is missing, block until both answer
    services.status(settings)    # {"kafka": "...", "postgres": "..."}
    services.down(settings)      # stop what `up` started

Contracts:

* `up` is idempotent: what already runs (ours, or someone else's answering at the configured addresses) is
  reused. It blocks until Kafka answers a metadata request and the database accepts a connection; the first
  Apache Kafka start also downloads its jars with Maven (minutes). While PostgreSQL starts, Kafka boots in
  parallel. On failure it raises `ServiceError` naming the address and the log file to read, and leaves
  running whatever did start (run `down` to clean up, or `up` again after fixing the cause).
* `down` stops only what this state dir's `up` started (never a server someone else runs), keeps the data
  dirs, and is idempotent.
* `up` and `down` hold `state_dir/run/services.lock`, so concurrent calls on one state dir wait for each other.
* One line per step goes to `progress` (default `print`); secrets are never printed.
* Files: `state_dir/logs/{kafka,postgres,maven}.log`, `state_dir/run/{kafka,postgres}.pid`,
  data in `state_dir/kafka/data` and `state_dir/pg/data`.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator

from baogong.services import alertmanager, kafka, postgres
from baogong.services.procs import ServiceError
from baogong.settings import Settings

__all__ = ["ServiceError", "down", "status", "up"]


@contextlib.contextmanager
def _state_lock(settings: Settings) -> Iterator[None]:
    run_dir = settings.state_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "services.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def up(settings: Settings, *, progress: Callable[[str], None] = print) -> None:
    """Start Kafka and PostgreSQL unless they run, and block until both answer. Raises ServiceError."""
    for sub in ("logs", "run"):
        (settings.state_dir / sub).mkdir(parents=True, exist_ok=True)
    with _state_lock(settings):
        pid = kafka.ensure_started(settings, progress=progress)
        postgres.up(settings, progress=progress)
        kafka.wait_ready(settings, pid, progress=progress)
        try:
            alertmanager.ensure_installed(progress=progress)
        except ServiceError as exc:
            progress(f"alertmanager: {exc}")
        from baogong.report import fonts  # the daily report's Chinese charts (Debian's fonts-wqy-microhei)

        try:
            fonts.ensure_installed(progress=progress)
        except fonts.FontMissing as exc:
            progress(f"fonts: {exc}")


def down(settings: Settings, *, progress: Callable[[str], None] = print) -> None:
    """Stop the Kafka broker and PostgreSQL cluster that `up` started; leave data dirs. Idempotent."""
    if not settings.state_dir.exists():
        progress(f"services: nothing to stop ({settings.state_dir} does not exist)")
        return
    with _state_lock(settings):
        errors: list[str] = []
        for name, stop in (("kafka", kafka.stop), ("postgres", postgres.stop)):
            try:
                stop(settings, progress=progress)
            except Exception as exc:  # stop the other one anyway
                errors.append(f"{name}: {exc}")
        if errors:
            raise ServiceError("; ".join(errors))


def status(settings: Settings) -> dict[str, str]:
    """One line per service, e.g. {"kafka": "apache 4.1.1 running on 127.0.0.1:19092 (pid 123)", ...}."""
    result: dict[str, str] = {}
    for name, probe in (("kafka", kafka.status), ("postgres", postgres.status)):
        try:
            result[name] = probe(settings)
        except Exception as exc:
            result[name] = f"unknown ({type(exc).__name__}: {exc})"
    result["alertmanager"] = alertmanager.status()
    return result
