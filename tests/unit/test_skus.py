"""A supplier's SKU map: a pack that cannot be counted or stored is refused by its line, never written."""

from __future__ import annotations

from ingest.skus import validate_rows

UNITS = {"rice": "kg", "bottled_water": "L"}


def _row(sku: str, quantity: str, unit: str = "kg", necessity: str = "rice") -> dict[str, str]:
    return {"sku": sku, "necessity": necessity, "pack_quantity": quantity, "pack_unit": unit}


def test_packs_that_cannot_be_counted_or_stored_are_refused_by_line_and_field() -> None:
    rows = [
        _row("RICE-5KG", "5"),
        _row("RICE-INF", "inf"),
        _row("RICE-NAN", "nan"),
        _row("RICE-0", "0"),
        _row("RICE\x00", "5"),
        _row("WATER", "12", "550ml", "bottled_water"),
        _row("RICE-0KG", "1", "0kg"),
    ]
    good, bad = validate_rows(rows, list(range(2, 2 + len(rows))), UNITS)
    assert [g.sku for g in good] == ["RICE-5KG", "WATER"]
    assert [(b["line"], b["field"]) for b in bad] == [
        (3, "pack_quantity"),
        (4, "pack_quantity"),
        (5, "pack_quantity"),
        (6, "sku"),
        (8, "pack_unit"),
    ]
    assert "NUL" in bad[3]["reason"] and "finite" in bad[0]["reason"]
