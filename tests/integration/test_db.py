"""schema.db against the real PostgreSQL: what the ingest API's parameters arrive as."""

from __future__ import annotations

from schema.db import ByteaArray, connect


def test_bytea_array_arrives_as_the_same_list(database_url: str) -> None:
    items = [b"\x00" * 16, b"", b"\xff\x00key", bytes(range(256))]
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT %(a)b::bytea[] AS a, %(e)b::bytea[] AS e", {"a": ByteaArray(items), "e": ByteaArray([])}
        )
        got = row.fetchone()
    assert got is not None
    assert [bytes(x) for x in got["a"]] == items
    assert got["e"] == []
