"""JSON Schema of the public contract, generated from the pydantic models in `schema.contract`.

The models are the one source: they validate every path, and the files in
`schema/contract/*.json` are their exported schemas (`baogong contract
export` writes them; a test fails if a file and its model disagree). The API
serves the files at /v1/schema/{name}.json and uses them in its OpenAPI.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schema.contract import InventoryRecord, InventoryReport, PriceRecord, PriceReport

CONTRACT_DIR = Path(__file__).resolve().parent.parent / "schema" / "contract"
SCHEMAS: dict[str, type[BaseModel]] = {
    "inventory-record": InventoryRecord,
    "price-record": PriceRecord,
    "inventory-report": InventoryReport,
    "price-report": PriceReport,
}


def generate(name: str) -> dict[str, Any]:
    schema = SCHEMAS[name].model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://baogong.example/schema/{name}.json"
    return schema


def export(directory: Path = CONTRACT_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SCHEMAS:
        path = directory / f"{name}.json"
        path.write_text(json.dumps(generate(name), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


@cache
def load_schema(name: str) -> dict[str, Any]:
    return dict(json.loads((CONTRACT_DIR / f"{name}.json").read_text(encoding="utf-8")))


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_EXAMPLES: dict[str, dict[str, Any]] = {
    "inventory-record": {
        "outlet_id": "C01-S001",
        "necessity": "rice",
        "quantity": 120,
        "unit": "kg",
        "reported_at": "2025-01-20T09:30:00+08:00",
    },
    "price-record": {
        "outlet_id": "C01-S001",
        "necessity": "rice",
        "price": 6.5,
        "unit": "kg",
        "reported_at": "2025-01-20T09:30:00+08:00",
    },
}


def _table(header: str, row: str) -> dict[str, Any]:
    return {
        "schema": {"type": "string", "description": "header row with the field names, then one record per row"},
        "example": f"{header}\n{row}\n",
    }


def _upload() -> dict[str, Any]:
    return {
        "schema": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {
                    "type": "string",
                    "format": "binary",
                    "description": "a CSV, NDJSON, JSON or XLSX file; format by its Content-Type or file name",
                }
            },
        }
    }


def request_body_openapi(record: str) -> dict[str, Any]:
    """OpenAPI requestBody for an ingest endpoint: the record schema in every accepted format, with examples."""
    item = load_schema(record)
    example = _EXAMPLES[record]
    header = ",".join(example)
    row = ",".join(str(v) for v in example.values())
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": item}, "example": [example]},
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "one JSON record per line"},
                    "example": json.dumps(example, ensure_ascii=False) + "\n",
                },
                "text/csv": _table(header, row),
                XLSX: {"schema": {"type": "string", "format": "binary", "description": "first sheet, header row 1"}},
                "multipart/form-data": _upload(),
            },
        }
    }


def sku_body_openapi() -> dict[str, Any]:
    """OpenAPI requestBody for PUT /v1/skus: a SKU map as CSV, XLSX or a multipart upload."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": _table("sku,necessity,pack_quantity,pack_unit,description", "RICE-5KG,rice,5,kg,5 kg bag"),
                XLSX: {"schema": {"type": "string", "format": "binary", "description": "first sheet, header row 1"}},
                "multipart/form-data": _upload(),
            },
        }
    }
