"""Installing a Debian package the project needs (Alertmanager for the tests, a Chinese font for reports).

`install(package, label=…)` runs `apt-get install -y --no-install-recommends
PACKAGE`, and once more after `apt-get update` when the local package lists do
not know it. It blocks for the install (a minute at most, usually seconds),
prints one progress line per step, and raises `CannotInstall` saying why when
this is not a Debian machine, we are not root, or apt-get failed (with the
last lines it printed). The caller checks afterwards that what it needs is
really there; `ensure(find, package, …)` does the whole round: what `find`
gives, else install and look again, else the caller's error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class CannotInstall(Exception):
    """The package could not be installed here; the message says why."""


def install(package: str, *, label: str, progress: Callable[[str], None] = print) -> None:
    """Install Debian's `package` with apt-get as root; `label` starts each progress line. Raises CannotInstall."""
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists() or shutil.which("apt-get") is None:
        raise CannotInstall("installing it needs root on a Debian machine with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", package]
    progress(f"{label}: installing Debian's {package} (apt-get install)")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        progress(f"{label}: package not in the local lists; apt-get update")
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, timeout=600)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise CannotInstall(f"apt-get could not install {package}:\n{tail}")


def ensure(
    find: Callable[[], T | None],
    package: str,
    *,
    label: str,
    failed: Callable[[str], Exception],
    progress: Callable[[str], None] = print,
) -> T:
    """What `find()` gives; when None, install `package` and look again. Raises `failed(why)` when the package
    cannot be installed ("… is not installed, and <why>") or is installed but `find()` still gives None."""
    found = find()
    if found is not None:
        return found
    try:
        install(package, label=label, progress=progress)
    except CannotInstall as exc:
        raise failed(f"it is not installed, and {exc}") from exc
    found = find()
    if found is None:
        raise failed(f"{package} was installed but it is still not found")
    progress(f"{label}: installed {found}")
    return found
