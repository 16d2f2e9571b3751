"""The inventory agent: reports from `supply.inventory.v1` into outlet levels.

Each batch (up to `sink_batch_size` messages, at most `sink_max_wait_s` old)
is validated with the same rules as the HTTP path, bad messages and lines go
to the dead-letter topic, good lines are written in one idempotent
transaction, and only then are the batch's offsets acknowledged.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from ingest.contract import validate_report
from streams.sink import SinkRow
from streams.state import WorkerState

log = logging.getLogger(__name__)


def register(app: faust.App, source: faust.TopicT, deadletter: faust.TopicT, state: WorkerState) -> None:
    settings = state.settings

    @app.agent(source, name="inventory")
    async def inventory(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take(settings.sink_batch_size, within=settings.sink_max_wait_s):
            await state.ready()
            rows: list[SinkRow] = []
            dead: list[dict[str, Any]] = []
            ctx = await state.registry.context(_outlet_ids(batch))
            for raw in batch:
                report, lines, rejections = validate_report(raw, ctx)
                supplier = report.supplier_id if report else "unknown"
                received = (report.received_at if report else None) or datetime.now(UTC)
                rows.extend(SinkRow(supplier, received, ln) for ln in lines)
                for rej in rejections:
                    dead.append(
                        {
                            "supplier_id": supplier,
                            "source": "kafka",
                            **rej.as_dict(),
                            "payload": raw.decode("utf-8", "replace"),
                        }
                    )
            await state.sink.write(rows)
            for body in dead:
                log.warning(
                    "dead-lettered: supplier=%s field=%s reason=%s", body["supplier_id"], body["field"], body["reason"]
                )
                await deadletter.send(key=str(body["supplier_id"]).encode(), value=orjson.dumps(body))


def _outlet_ids(batch: list[bytes]) -> list[str]:
    """Outlet ids named in a batch, cheaply, so the registry can refresh on a miss."""
    ids = []
    for raw in batch:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict) and isinstance(value.get("outlet_id"), str):
            ids.append(value["outlet_id"])
    return ids
