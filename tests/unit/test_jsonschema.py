from __future__ import annotations

import pytest

from ingest.jsonschema import SCHEMAS, generate, load_schema


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_matches_the_models(name: str) -> None:
    """schema/contract/*.json are what the validating models export; run `baogong contract export` if not."""
    assert load_schema(name) == generate(name)


def test_record_schema_names_the_contract_fields() -> None:
    props = load_schema("inventory-record")["properties"]
    assert {"outlet_id", "necessity", "sku", "quantity", "unit", "reported_at", "sold_24h", "message_id"} <= set(props)
    assert set(load_schema("inventory-record")["required"]) == {"outlet_id", "quantity", "unit", "reported_at"}
