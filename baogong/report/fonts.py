"""A Chinese font for the report's charts, from Debian's packages.

    path = fonts.ensure_installed()   # find one; install Debian's package with apt-get as root
    name = fonts.use(path)            # register it with matplotlib and make it the default family

Contracts:

* `find` looks for a font file that has every glyph the report draws (`SAMPLE`, checked with
  matplotlib's FreeType binding, not by file name): first the files of Debian's `fonts-wqy-microhei`
  and `fonts-noto-cjk` packages, then every font matplotlib's font manager and fontconfig know.
  It never installs. matplotlib's own Last Resort font (a box for every character) never counts.
* `ensure_installed` returns such a font, installing `fonts-wqy-microhei` (5 MB; `fonts-noto-cjk`
  works too when present) with `apt-get install -y --no-install-recommends` when none is found and we
  run as root on Debian (after `apt-get update` if the lists do not know it), like
  `baogong.services.alertmanager`. Otherwise it raises `FontMissing` saying what to install.
* `use` adds the file to matplotlib's font manager (no cache rebuild needed), puts its family first in
  `font.sans-serif`, and turns off the unicode minus (CJK fonts often lack U+2212). Returns the family.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from baogong.services import debian

__all__ = ["PACKAGE", "SAMPLE", "FontMissing", "ensure_installed", "find", "has_glyphs", "use"]

PACKAGE = "fonts-wqy-microhei"
#: Characters the charts draw: statuses, axis titles, the demo city's names.
SAMPLE = "保供日报生活圈可供天数正常关注短缺严重数据不足供应商接收拒绝重复北林区社区大米牛奶"
KNOWN = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)
INSTALL_HINT = (
    f"install a Chinese font from Debian's packages as root (`apt-get install -y --no-install-recommends {PACKAGE}`"
    " or fonts-noto-cjk), or any font with CJK glyphs that fontconfig knows"
)


class FontMissing(RuntimeError):
    """No font with Chinese glyphs, and it cannot be installed here."""


def has_glyphs(path: Path, text: str = SAMPLE) -> bool:
    """Does the font file (its first face) map every character of `text` to a glyph?"""
    from matplotlib.ft2font import FT2Font

    try:
        charmap = FT2Font(str(path)).get_charmap()
    except (OSError, RuntimeError, ValueError):
        return False
    return all(ord(ch) in charmap for ch in text if not ch.isspace())


def _candidates() -> Iterable[Path]:
    yield from KNOWN
    from matplotlib import font_manager

    for entry in font_manager.fontManager.ttflist:
        yield Path(entry.fname)
    if shutil.which("fc-list"):
        try:
            out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        for line in out.splitlines():
            yield Path(line.split(":", 1)[0].strip())


def find() -> Path | None:
    """A font file on this machine with every glyph of `SAMPLE`, or None (never installs)."""
    seen: set[Path] = set()
    for path in _candidates():
        if path in seen or not path.is_file() or "LastResort" in path.name:
            continue  # matplotlib's Last Resort font maps every character to a placeholder box
        seen.add(path)
        if has_glyphs(path):
            return path
    return None


def ensure_installed(*, progress: Callable[[str], None] = print) -> Path:
    """A Chinese font, installed from Debian's packages when missing (root on Debian only)."""
    return debian.ensure(
        find,
        PACKAGE,
        label="fonts",
        failed=lambda why: FontMissing(f"no Chinese font for the report's charts: {why}: {INSTALL_HINT}"),
        progress=progress,
    )


def status() -> str:
    """One line: the Chinese font the report would use, or that there is none (never installs)."""
    found = find()
    return f"Chinese font: {found}" if found else f"no Chinese font ({PACKAGE}; `baogong services up` installs it)"


def use(path: Path) -> str:
    """Register `path` with matplotlib and make its family the default; returns the family name."""
    import matplotlib
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(path))
    family = font_manager.FontProperties(fname=str(path)).get_name()
    matplotlib.rcParams["font.family"] = "sans-serif"
    rest = [f for f in matplotlib.rcParams["font.sans-serif"] if f != family]
    matplotlib.rcParams["font.sans-serif"] = [family, *rest]
    matplotlib.rcParams["axes.unicode_minus"] = False
    return family
