"""Per-supplier SKU maps: a supplier's own product codes mapped to catalogue necessities.

A map is a CSV/XLSX with columns `sku`, `necessity`, `pack_quantity`,
`pack_unit` and optional `description`: one row says "one of my SKU X is
`pack_quantity` `pack_unit` of `necessity`" (e.g. `RICE-5KG, rice, 5, kg`,
`WATER-12, bottled_water, 12x550ml` … written as `6.6, L` or `1, 12x550ml`).
Rows are validated one by one (line numbers as in the spreadsheet); good
rows are upserted, bad rows reported. Uploaded with `baogong skus import
--supplier ID FILE` or `PUT /v1/skus` by the supplier itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ingest.formats import parse
from schema.db import SCHEMA_DIR, connect, load_queries
from schema.units import UnitError, factor

QUERIES = load_queries(SCHEMA_DIR / "skus.sql")
REQUIRED = ("sku", "necessity", "pack_quantity", "pack_unit")


@dataclass(frozen=True, slots=True)
class SkuRow:
    sku: str
    necessity: str
    pack_quantity: float
    pack_unit: str
    description: str


@dataclass
class SkuImport:
    supplier_id: str
    rows: int = 0
    upserted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "supplier_id": self.supplier_id,
            "rows": self.rows,
            "upserted": self.upserted,
            "rejected": self.rejected,
        }


class SkuMapError(ValueError):
    """The file as a whole is unusable (missing columns, unknown supplier); the message says what to fix."""


def validate_rows(
    records: list[dict[str, Any]], lines: list[int], units: dict[str, str]
) -> tuple[list[SkuRow], list[dict[str, Any]]]:
    """Pure: good rows, and for each bad one its line, field and reason."""
    good: list[SkuRow] = []
    bad: list[dict[str, Any]] = []
    seen: set[str] = set()
    for record, line in zip(records, lines, strict=True):

        def reject(name: str, reason: str, line: int = line) -> None:
            bad.append({"line": line, "field": name, "reason": reason})

        sku = str(record.get("sku", "")).strip()
        necessity = str(record.get("necessity", "")).strip()
        unit = str(record.get("pack_unit", "")).strip()
        if not sku:
            reject("sku", "empty SKU code")
            continue
        if "\x00" in sku + necessity + unit:
            field = next(n for n, v in (("sku", sku), ("necessity", necessity), ("pack_unit", unit)) if "\x00" in v)
            reject(field, "contains a NUL character (\\x00), which cannot be stored; remove it")
            continue
        if sku in seen:
            reject("sku", f"SKU {sku!r} appears twice in the file")
            continue
        if necessity not in units:
            reject("necessity", f"unknown necessity {necessity!r}; known: {', '.join(sorted(units))}")
            continue
        try:
            qty = float(str(record.get("pack_quantity", "")).strip())
        except ValueError:
            reject("pack_quantity", f"{record.get('pack_quantity')!r} is not a number")
            continue
        if not 0 < qty < math.inf:
            reject("pack_quantity", "must be a finite number greater than 0")
            continue
        try:
            if not math.isfinite(qty * factor(unit, units[necessity])):
                raise UnitError(f"a pack of {qty:g} {unit} is too large to count; check pack_quantity and pack_unit")
        except UnitError as exc:
            reject("pack_unit", str(exc))
            continue
        seen.add(sku)
        good.append(SkuRow(sku, necessity, qty, unit, str(record.get("description", "")).strip()))
    return good, bad


def import_skus(url: str, supplier_id: str, body: bytes, fmt: str) -> SkuImport:
    """Validate and upsert a SKU map; raises SkuMapError or ingest.formats.BodyError for a whole-file problem."""
    parsed = parse(body, fmt)
    records = [r for r in parsed.records if isinstance(r, dict)]
    lines = parsed.lines or list(range(1, len(records) + 1))
    missing = [c for c in REQUIRED if not any(c in r for r in records)]
    if missing:
        raise SkuMapError(f"missing column(s) {', '.join(missing)}; a SKU map needs {', '.join(REQUIRED)}")
    result = SkuImport(supplier_id, rows=len(records))
    with connect(url) as conn:
        if conn.execute(QUERIES["supplier_exists"], {"supplier_id": supplier_id}).fetchone() is None:
            raise SkuMapError(f"unknown supplier {supplier_id!r}; `baogong keys list` shows the suppliers")
        units = {r["code"]: r["unit"] for r in conn.execute(QUERIES["necessity_units"]).fetchall()}
        good, result.rejected = validate_rows(records, lines, units)
        with conn.cursor() as cur:
            cur.executemany(
                QUERIES["upsert_sku"],
                [
                    {
                        "supplier_id": supplier_id,
                        "sku": g.sku,
                        "necessity": g.necessity,
                        "pack_quantity": g.pack_quantity,
                        "pack_unit": g.pack_unit,
                        "description": g.description,
                    }
                    for g in good
                ],
            )
        result.upserted = len(good)
    return result
