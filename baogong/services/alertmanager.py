"""A throwaway Prometheus Alertmanager (Debian `prometheus-alertmanager`) for tests and local checks.

    binary = alertmanager.ensure_installed()        # find it; install it with apt-get as root on Debian
    am = alertmanager.start(receiver_url, workdir)   # blocks until it answers /-/ready
    ... POST am.url + "/api/v2/alerts" ...
    am.stop()

Contracts:

* `find` looks on PATH (`prometheus-alertmanager`, then `alertmanager`) and in /usr/bin; it never installs.
* `ensure_installed` returns the binary, installing Debian's package with `apt-get install -y
  --no-install-recommends prometheus-alertmanager` when it is missing and we run as root on Debian (after
  `apt-get update` if the package lists do not know it). Progress goes to `progress`. Otherwise it raises
  `ServiceError` saying what to install. It blocks for the install (a minute at most, usually seconds).
  The package's own systemd service is not used (it may or may not start, on its default port 9093).
* `start` runs one Alertmanager on a free 127.0.0.1 port with a generated config whose only receiver is the
  webhook `receiver_url` (`send_resolved: true`, group_wait/group_interval 1 s, grouped by `group_by`),
  data in `workdir` (`--storage.path`), no clustering (`--cluster.listen-address=` empty), log in
  `workdir/alertmanager.log`. It blocks until `/-/ready` answers 200 and raises `ServiceError` quoting the
  log when the process dies or does not answer within `timeout_s`.
* `RunningAlertmanager.stop` ends the process group (SIGTERM, then SIGKILL); idempotent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from baogong.services import debian, procs
from baogong.services.procs import ServiceError

__all__ = ["PACKAGE", "RunningAlertmanager", "ensure_installed", "find", "start", "status"]

PACKAGE = "prometheus-alertmanager"
NAMES = ("prometheus-alertmanager", "alertmanager")
INSTALL_HINT = (
    f"install Debian's package as root (`apt-get install -y --no-install-recommends {PACKAGE}`), "
    "or put an `alertmanager` binary (0.25 or newer) on PATH"
)


def find() -> Path | None:
    """The Alertmanager binary on this machine, or None."""
    for name in NAMES:
        found = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
        if found:
            return Path(found)
    return None


def ensure_installed(*, progress: Callable[[str], None] = print) -> Path:
    """The Alertmanager binary, installed from Debian's registry when missing (root on Debian only)."""
    return debian.ensure(
        find,
        PACKAGE,
        label="alertmanager",
        failed=lambda why: ServiceError(f"no Alertmanager binary: {why}: {INSTALL_HINT}"),
        progress=progress,
    )


def status() -> str:
    """One line: where the binary is and its version, or that it is missing (never installs)."""
    found = find()
    if found is None:
        return f"not installed ({PACKAGE}; `baogong services up` installs it as root on Debian)"
    try:
        out = subprocess.run([str(found), "--version"], capture_output=True, text=True, timeout=10)
        version = (out.stdout or out.stderr).split("version ")[1].split()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        version = "unknown version"
    return f"installed: {found} ({version}); tests start their own"


@dataclass
class RunningAlertmanager:
    url: str
    port: int
    pid: int
    workdir: Path
    log: Path
    receiver_url: str

    def stop(self) -> None:
        procs.stop(self.pid, timeout_s=10.0)


def config_yaml(receiver_url: str, group_by: Sequence[str], repeat_interval: str, resolve_timeout: str) -> str:
    """The generated config (YAML is a superset of JSON: every value is written as a JSON string)."""
    labels = ", ".join(json.dumps(label) for label in group_by)
    return (
        "global:\n"
        f"  resolve_timeout: {json.dumps(resolve_timeout)}\n"
        "route:\n"
        '  receiver: "baogong-test"\n'
        f"  group_by: [{labels}]\n"
        '  group_wait: "1s"\n'
        '  group_interval: "1s"\n'
        f"  repeat_interval: {json.dumps(repeat_interval)}\n"
        "receivers:\n"
        '  - name: "baogong-test"\n'
        "    webhook_configs:\n"
        f"      - url: {json.dumps(receiver_url)}\n"
        "        send_resolved: true\n"
    )


def start(
    receiver_url: str,
    workdir: Path,
    *,
    group_by: Sequence[str] = ("alertname", "circle", "necessity"),
    repeat_interval: str = "1h",
    resolve_timeout: str = "5m",
    timeout_s: float = 30.0,
    progress: Callable[[str], None] = lambda _: None,
) -> RunningAlertmanager:
    """Start an Alertmanager whose only receiver is `receiver_url`; block until it is ready."""
    binary = ensure_installed(progress=progress)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    config.write_text(config_yaml(receiver_url, group_by, repeat_interval, resolve_timeout))
    port = procs.free_port()
    log = workdir / "alertmanager.log"
    argv: list[str | os.PathLike[str]] = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    proc = procs.spawn(argv, log_path=log)
    am = RunningAlertmanager(f"http://127.0.0.1:{port}", port, proc.pid, workdir, log, receiver_url)
    try:
        procs.wait_for_port("127.0.0.1", port, timeout_s, pid=proc.pid, log_path=log, what="alertmanager")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(am.url + "/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not procs.is_alive(proc.pid):
                raise ServiceError(f"alertmanager on {am.url} is not ready; last lines of {log}:\n{procs.tail(log)}")
            time.sleep(0.1)
    except BaseException:
        am.stop()
        raise
    progress(f"alertmanager: ready on {am.url} (pid {proc.pid}), receiver {receiver_url}")
    return am
