"""Units suppliers report in, and how they convert to a necessity's canonical unit (pure).

Canonical units are kg (mass), L (volume) and piece (count). Accepted:
- mass: kg, g, 斤/jin (0.5 kg), t, 公斤, 克 …; volume: L, ml, 升, 毫升; count: piece, pcs, 个, 件 …;
- packs of known net content, written as the content: `5kg` or `5 kg bag`
  (a 5 kg bag), `12x550ml` or `12×0.55L case` (a case of 12 bottles);
- a supplier's SKU (see `schema/migrations/0005_supplier_feeds.sql`): one pack of
  the SKU's content; the record's unit is then a count (piece, bag, case…) of packs,
  or a plain mass/volume unit.

A unit of another dimension than the necessity's is an error, never a guess; so is
a pack of no content (`0kg`): every factor is finite and positive.
"""

from __future__ import annotations

import math
import re

#: unit spelling (lower case) -> (canonical unit, factor to canonical)
UNITS: dict[str, tuple[str, float]] = {
    "kg": ("kg", 1.0),
    "公斤": ("kg", 1.0),
    "千克": ("kg", 1.0),
    "g": ("kg", 0.001),
    "克": ("kg", 0.001),
    "jin": ("kg", 0.5),
    "斤": ("kg", 0.5),
    "t": ("kg", 1000.0),
    "吨": ("kg", 1000.0),
    "l": ("L", 1.0),
    "升": ("L", 1.0),
    "ml": ("L", 0.001),
    "毫升": ("L", 0.001),
    "piece": ("piece", 1.0),
    "pieces": ("piece", 1.0),
    "pcs": ("piece", 1.0),
    "个": ("piece", 1.0),
    "件": ("piece", 1.0),
    "盒": ("piece", 1.0),
    "袋": ("piece", 1.0),
    "瓶": ("piece", 1.0),
    "包": ("piece", 1.0),
}

#: Count words meaning "one pack" when a record names a SKU.
PACK_WORDS = frozenset(
    {"piece", "pieces", "pcs", "pack", "bag", "case", "box", "bottle", "个", "件", "袋", "箱", "盒", "瓶", "包"}
)

_PACK = re.compile(
    r"^(?:(?P<count>\d+(?:\.\d+)?)\s*[x×*]\s*)?(?P<size>\d+(?:\.\d+)?)\s*(?P<unit>[a-z\u4e00-\u9fff]+?)"
    r"(?:\s*(?:bag|case|box|pack|bottle|袋|箱|盒|瓶|包))?$"
)


class UnitError(ValueError):
    """The unit is unknown or does not fit the necessity; the message names both."""


def _known() -> str:
    return ", ".join(sorted(u for u in UNITS if u.isascii())) + ", 斤…, or a pack like 5kg or 12x550ml"


def factor(unit: str, canonical: str) -> float:
    """How many `canonical` units one `unit` is: finite and positive. Raises UnitError naming the unit.

    A pack of zero content (`0kg`, `0x550ml`) or of more digits than a float holds is an error.
    """
    key = unit.strip().lower()
    entry = UNITS.get(key)
    if entry is None:
        match = _PACK.match(key)
        if match is None or match["unit"] not in UNITS:
            raise UnitError(f"unknown unit {unit!r}; use one of {_known()}")
        dimension, per = UNITS[match["unit"]]
        entry = (dimension, float(match["count"] or 1) * float(match["size"]) * per)
        if not 0.0 < entry[1] < math.inf:  # `0kg`, `0x550ml`, or more digits than a float holds
            size = "positive" if entry[1] == 0.0 else "a number of sensible size"
            raise UnitError(f"pack size must be {size}, got {unit!r}; check the unit column")
    dimension, per = entry
    if dimension != canonical:
        raise UnitError(f"unit {unit!r} measures {dimension}, but this necessity is counted in {canonical}")
    return per


def to_canonical(quantity: float, unit: str, canonical: str) -> float:
    """`quantity` in `unit`, expressed in `canonical`. Raises UnitError."""
    return quantity * factor(unit, canonical)


def is_pack_word(unit: str) -> bool:
    return unit.strip().lower() in PACK_WORDS
