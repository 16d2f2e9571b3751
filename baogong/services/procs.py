"""Small process helpers for the local services: spawn detached, check alive, stop, wait for a port.

Contracts:

* `spawn` starts a process in its own session (it survives the caller and a Ctrl-C in the caller's
  terminal), appends its stdout/stderr to a log file and writes its pid to a pid file. It does not block.
* `is_alive` never blocks; it reaps the process if it is our own exited child, so zombies count as dead.
* `stop` sends SIGTERM to the process group, waits up to `timeout_s`, then SIGKILLs it. It blocks for at
  most `timeout_s` plus a few seconds, and returns quietly when the process is already gone.
* `wait_for_port` blocks until a TCP connect succeeds, and raises `ServiceError` on timeout, or as soon as
  the watched process has died (naming its log file and quoting its tail).

Nothing here prints; callers report progress.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "ServiceError",
    "cmdline",
    "free_port",
    "is_alive",
    "port_open",
    "read_pid",
    "remove_pid",
    "spawn",
    "stop",
    "tail",
    "wait_for_port",
    "write_pid",
]


START_MARKER = "===== "  # `spawn` starts each run's section of a log file with this


class ServiceError(RuntimeError):
    """A local service could not be started, reached or stopped; the message says what to look at."""


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log_path: Path,
    pid_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` detached (new session), stdout+stderr appended to `log_path`, pid written to `pid_path`.

    Raises `ServiceError` when the executable cannot be run at all. Does not wait for the process.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(
            f"\n{START_MARKER}{time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(map(str, argv))}\n".encode()
        )
        log.flush()
        try:
            proc = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                cwd=None if cwd is None else str(cwd),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise ServiceError(f"cannot run {argv[0]}: {exc}") from exc
    if pid_path is not None:
        write_pid(pid_path, proc.pid)
    return proc


def write_pid(pid_path: Path, pid: int) -> None:
    """Write `pid` to `pid_path` atomically (creating the directory)."""
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pid_path.with_name(pid_path.name + ".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(pid_path)


def read_pid(pid_path: Path) -> int | None:
    """The pid stored in `pid_path`, or None when the file is missing or unreadable."""
    try:
        return int(pid_path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def remove_pid(pid_path: Path) -> None:
    """Delete `pid_path` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        pid_path.unlink()


def cmdline(pid: int) -> str:
    """The command line of `pid` joined with spaces ('' when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_alive(pid: int | None, *, marker: str | None = None) -> bool:
    """True when `pid` is a live, non-zombie process (whose command line contains `marker`, if given).

    The marker guards against a stale pid file whose pid the kernel has since given to another process.
    """
    if pid is None or pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap our own exited child, if it is one
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except (OSError, IndexError):
        pass
    return marker is None or marker in cmdline(pid)


def stop(pid: int, *, timeout_s: float = 30.0, marker: str | None = None) -> bool:
    """SIGTERM `pid` (its whole process group when it leads one), wait `timeout_s`, then SIGKILL.

    Returns True when a live process was stopped, False when it was already gone (or `marker` did not match).
    Raises `ServiceError` only when the process survives SIGKILL.
    """
    if not is_alive(pid, marker=marker):
        return False
    _signal(pid, signal.SIGTERM)
    if _wait_gone(pid, timeout_s):
        return True
    _signal(pid, signal.SIGKILL)
    if _wait_gone(pid, 5.0):
        return True
    raise ServiceError(f"process {pid} survived SIGKILL")


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.1)
    return not is_alive(pid)


def port_open(host: str, port: int, *, timeout_s: float = 0.5) -> bool:
    """True when a TCP connection to host:port succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str,
    port: int,
    timeout_s: float,
    *,
    pid: int | None = None,
    log_path: Path | None = None,
    what: str = "service",
) -> None:
    """Block until host:port accepts TCP connections.

    Raises `ServiceError` after `timeout_s`, or early when `pid` is given and that process has died.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if port_open(host, port):
            return
        if pid is not None and not is_alive(pid):
            raise ServiceError(f"{what} (pid {pid}) exited before listening on {host}:{port}{_log_hint(log_path)}")
        if time.monotonic() >= deadline:
            raise ServiceError(f"{what} did not listen on {host}:{port} within {timeout_s:.0f} s{_log_hint(log_path)}")
        time.sleep(0.1)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago (for throwaway services in tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tail(path: Path | None, lines: int = 20) -> str:
    """The last `lines` lines of a text file written since the last `spawn` into it ('' when it is missing)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    text = data.splitlines()
    starts = [i for i, line in enumerate(text) if line.startswith(START_MARKER)]
    if starts:
        text = text[starts[-1] :]
    return "\n".join(text[-lines:])


def _log_hint(log_path: Path | None) -> str:
    if log_path is None:
        return ""
    last = tail(log_path, 15)
    quoted = ("; last lines:\n" + last) if last else ""
    return f"; read {log_path}{quoted}"
