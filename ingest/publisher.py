"""Publishing validated reports and dead letters to Kafka with kafka-python.

`Publisher.publish` blocks until the broker has acknowledged every message
(acks=all, idempotent producer) and raises `PublishFailed` otherwise: the
HTTP layer answers "accepted" only for records that are durably on Kafka.
Call it from a worker thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from ingest.contract import InventoryReport, Rejection
from streams import topics


class PublishFailed(Exception):
    """Kafka did not acknowledge. Nothing is accepted; the client should retry later."""


class Publisher:
    def __init__(self, bootstrap: str, topic_prefix: str = "", timeout_s: float = 30.0) -> None:
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="baogong-ingest",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
            compression_type=None,
        )
        self._prefix = topic_prefix
        self._timeout_s = timeout_s

    def publish(self, reports: Sequence[InventoryReport]) -> None:
        """Send every report keyed by outlet id and wait for all acknowledgements."""
        topic = self._prefix + topics.INVENTORY.name
        try:
            futures = [
                self._producer.send(topic, key=r.outlet_id.encode(), value=r.model_dump_json().encode())
                for r in reports
            ]
            self._producer.flush(self._timeout_s)
            for f in futures:
                f.get(timeout=self._timeout_s)
        except KafkaError as exc:
            raise PublishFailed(f"Kafka did not acknowledge the reports: {exc}") from exc

    def dead_letter(
        self, supplier_id: str, source: str, rejections: Sequence[Rejection], payloads: Sequence[Any]
    ) -> None:
        """Send each rejection with its original payload to the dead-letter topic; best effort, never raises."""
        topic = self._prefix + topics.DEADLETTER.name
        at = datetime.now(UTC).isoformat()
        try:
            for rejection, payload in zip(rejections, payloads, strict=True):
                body = {
                    "supplier_id": supplier_id,
                    "source": source,
                    "at": at,
                    **rejection.as_dict(),
                    "payload": payload,
                }
                self._producer.send(topic, key=supplier_id.encode(), value=orjson.dumps(body, default=str))
        except KafkaError:
            pass

    def close(self) -> None:
        self._producer.close(timeout=5)
