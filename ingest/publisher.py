"""Publishing validated reports and dead letters to Kafka with kafka-python.

`Publisher.publish` blocks until the broker has acknowledged every message
(acks=all, idempotent producer) and raises `PublishFailed` otherwise: the
HTTP layer answers "accepted" only for records that are durably on Kafka.
Call it from a worker thread, never on the event loop. Thread-safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from ingest.contract import Kind, Rejection
from streams import topics

TOPICS: dict[Kind, topics.TopicSpec] = {"inventory": topics.INVENTORY, "price": topics.PRICES}


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
            max_request_size=8 * 1024 * 1024,
        )
        self._prefix = topic_prefix
        self._timeout_s = timeout_s

    def publish(self, kind: Kind, messages: Sequence[tuple[str, bytes]]) -> None:
        """Send (outlet id, report JSON) messages to the kind's topic and wait for every acknowledgement."""
        topic = self._prefix + TOPICS[kind].name
        try:
            futures = [self._producer.send(topic, key=key.encode(), value=value) for key, value in messages]
            self._producer.flush(self._timeout_s)
            for f in futures:
                f.get(timeout=self._timeout_s)
        except KafkaError as exc:
            raise PublishFailed(f"Kafka did not acknowledge the reports: {exc}") from exc

    def dead_letter(
        self, supplier_id: str, source: str, kind: Kind, rejections: Sequence[Rejection], payloads: Sequence[Any]
    ) -> None:
        """Send each rejection with its original payload to the dead-letter topic; best effort, never raises."""
        topic = self._prefix + topics.DEADLETTER.name
        at = datetime.now(UTC).isoformat()
        try:
            for rejection, payload in zip(rejections, payloads, strict=True):
                body = {
                    "supplier_id": supplier_id,
                    "source": source,
                    "kind": kind,
                    "at": at,
                    **rejection.as_dict(),
                    "payload": payload,
                }
                self._producer.send(topic, key=supplier_id.encode(), value=orjson.dumps(body, default=str))
            self._producer.flush(self._timeout_s)
        except KafkaError:
            pass

    def close(self) -> None:
        self._producer.close(timeout=5)
