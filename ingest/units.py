"""Units suppliers report in, converted to a necessity's canonical unit (pure).

Canonical units are kg (mass), L (volume) and piece (count). Suppliers may
report mass in kg, g or 斤 (jin, 0.5 kg), volume in L or ml, counts in
pieces. A unit from another dimension than the necessity's canonical unit is
an error, never a guess.
"""

from __future__ import annotations

#: unit spelling -> (canonical unit, factor to canonical)
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
}


class UnitError(ValueError):
    """The unit is unknown or does not fit the necessity; the message names both."""


def to_canonical(quantity: float, unit: str, canonical: str) -> float:
    """`quantity` in `unit`, expressed in `canonical`. Raises UnitError."""
    key = unit.strip()
    entry = UNITS.get(key) or UNITS.get(key.lower())
    if entry is None:
        known = ", ".join(sorted({u for u in UNITS if u.isascii()}))
        raise UnitError(f"unknown unit {unit!r}; use one of {known} (or 斤, 个…)")
    dimension, factor = entry
    if dimension != canonical:
        raise UnitError(f"unit {unit!r} measures {dimension}, but this necessity is counted in {canonical}")
    return quantity * factor
