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


def request_body_openapi(record: str) -> dict[str, Any]:
    """OpenAPI requestBody for an ingest endpoint: the record schema in every accepted format."""
    item = load_schema(record)
    table = {"type": "string", "description": "header row with the record's field names, one record per row"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": item}},
                "application/x-ndjson": {"schema": {"type": "string", "description": "one JSON record per line"}},
                "text/csv": {"schema": table},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}
                },
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
                },
            },
        }
    }
