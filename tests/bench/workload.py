"""The ingest benchmark's workload: deterministic inventory records for the demo city's reporting suppliers.

Pure: no I/O. One *round* is a report of every necessity each reporting
outlet of S01..S08 carries (schema.catalogue.CARRIES), all with the same
`reported_at`; round r of a phase is `base + r` seconds, and every record has
its own `message_id`, so no record of any round or phase is a duplicate of
another. Each supplier's records are cut into requests of `batch_size`
records (a request only ever holds one supplier's outlets, since a key
speaks for one supplier), and the suppliers' requests are interleaved in
proportion to their volume, so concurrent requests hit different suppliers.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from schema.catalogue import CARRIES, NECESSITY_BY_CODE
from schema.contract import SHANGHAI
from schema.demo_city import DemoCity

CSV_COLUMNS = ("outlet_id", "necessity", "quantity", "unit", "reported_at", "message_id")


@dataclass(frozen=True, slots=True)
class Batch:
    """One request's records, all for outlets of `supplier_id`."""

    supplier_id: str
    records: list[dict[str, Any]]


def reporting_outlets(city: DemoCity) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Supplier id -> [(outlet id, necessities it reports)] for every supplier holding a key, in outlet order."""
    reporting = {s.id for s in city.suppliers if s.has_key}
    out: dict[str, list[tuple[str, tuple[str, ...]]]] = {sid: [] for sid in sorted(reporting)}
    for outlet in city.outlets:
        carried = CARRIES.get(outlet.business_type)
        if carried and outlet.supplier_id in reporting:
            out[outlet.supplier_id].append((outlet.id, carried))
    return out


def make_batches(
    city: DemoCity, *, phase: int, run_id: str, base: datetime, records: int, batch_size: int = 500
) -> list[Batch]:
    """At least `records` records (whole rounds, cut to whole requests) in request order; same inputs, same output."""
    outlets = reporting_outlets(city)
    rng = random.Random(f"baogong-bench:{city.seed}:{phase}")
    per_supplier: dict[str, list[dict[str, Any]]] = {sid: [] for sid in outlets}
    made, round_ = 0, 0
    while made < records:
        at = (base + timedelta(seconds=round_)).astimezone(SHANGHAI).isoformat(timespec="seconds")
        for supplier_id, owned in outlets.items():
            rows = per_supplier[supplier_id]
            for outlet_id, carried in owned:
                for necessity in carried:
                    rows.append(
                        {
                            "outlet_id": outlet_id,
                            "necessity": necessity,
                            "quantity": round(rng.uniform(0.0, 800.0), 1),
                            "unit": NECESSITY_BY_CODE[necessity].unit,
                            "reported_at": at,
                            "message_id": f"b{run_id}-{phase}-{round_}-{outlet_id}-{necessity}",
                        }
                    )
                    made += 1
        round_ += 1
    ordered: list[tuple[float, str, Batch]] = []
    for supplier_id, rows in per_supplier.items():
        chunks = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
        for i, chunk in enumerate(chunks):
            ordered.append(((i + 0.5) / len(chunks), supplier_id, Batch(supplier_id, chunk)))
    ordered.sort(key=lambda item: (item[0], item[1]))
    out: list[Batch] = []
    total = 0
    for _, _, batch in ordered:
        if total >= records:
            break
        out.append(batch)
        total += len(batch.records)
    return out


def json_body(batch: Batch) -> bytes:
    return orjson.dumps(batch.records)


def csv_body(batch: Batch) -> bytes:
    """The batch as a CSV file with a header row (`CSV_COLUMNS`), as a supplier's spreadsheet export would be."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows([r[c] for c in CSV_COLUMNS] for r in batch.records)
    return buffer.getvalue().encode()
