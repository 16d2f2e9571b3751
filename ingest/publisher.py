"""Publishing validated reports and dead letters to Kafka, from the API's event loop.

The producer is confluent-kafka (librdkafka): the API publishes ~10k report
messages a second at full load, and librdkafka builds and sends record
batches in its own C threads at a few µs of Python per message, where
kafka-python spends ~50 µs of Python per message on this path
(`tests/bench`). Suppliers' own producers and the tests still use
kafka-python; only this hot path does not.

`await Publisher.publish(kind, messages)` returns once the broker has
acknowledged every message (acks=all, idempotent producer) and raises
`PublishFailed` otherwise: the HTTP layer answers "accepted" only for records
that are durably on Kafka. Delivery reports are served on the event loop
itself, every millisecond while any message awaits one, and resolve the
waiting request's future directly. A poller thread cost more than it saved:
every 2 ms it took the GIL from the busy loop, and the hand-offs were the
largest syscall cost of the API process (futex, `perf trace -s`).
`produce` itself never blocks the loop (a full local queue yields to the
loop and retries).
A fatal producer error (the idempotent session is broken) replaces the
producer, so one broker incident does not fail every later request.
"""

from __future__ import annotations

import asyncio
import logging
import reprlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from schema import topics
from schema.contract import Kind, Rejection

log = logging.getLogger(__name__)
TOPICS: dict[Kind, topics.TopicSpec] = {"inventory": topics.INVENTORY, "price": topics.PRICES}
#: Report messages say they came through the API: the worker then leaves their feed-health counts to it.
_VIA_API: list[tuple[str, str | bytes | None]] = [(topics.VIA_HEADER, topics.VIA_API)]


#: A dead letter larger than this once encoded, or not encodable at all, carries its payload truncated.
MAX_LETTER_BYTES = 64 * 1024
#: Characters of payload a truncated dead letter keeps.
TRUNCATED_PAYLOAD_CHARS = 4096
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxstring, _SHORT.maxother = 12, 50, 50, 1000, 200


def encode_letter(body: dict[str, Any]) -> bytes:
    """A dead letter as JSON; never raises, and never exceeds `MAX_LETTER_BYTES` (plus the rejection's own text).

    A payload that JSON cannot carry (nested deeper than the encoder goes, or
    too large for a Kafka message) is replaced by a bounded Python-literal
    rendering of it, `payload_truncated: true` saying so: the record that
    was refused stays recognisable without failing the request that sent it.
    """
    try:
        encoded = orjson.dumps(body, default=str)
        if len(encoded) <= MAX_LETTER_BYTES:
            return encoded
    except (TypeError, ValueError, RecursionError):  # orjson.JSONEncodeError is a TypeError
        pass
    try:
        text = _SHORT.repr(body.get("payload"))
    except Exception:  # a payload odd enough to break repr itself: say only what type it was
        text = f"<unprintable {type(body.get('payload')).__name__}>"
    safe = {**body, "payload": text[:TRUNCATED_PAYLOAD_CHARS], "payload_truncated": True}
    return orjson.dumps(safe, default=str)


class PublishFailed(Exception):
    """Kafka did not acknowledge. Nothing is accepted; the client should retry later."""


class _Delivery:
    """Counts one request's delivery reports and resolves its future, on the loop that polls the producer."""

    __slots__ = ("error", "future", "pending")

    def __init__(self, count: int, loop: asyncio.AbstractEventLoop) -> None:
        self.pending = count
        self.error: str | None = None
        self.future: asyncio.Future[None] = loop.create_future()

    def report(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None and self.error is None:
            self.error = err.str()
        self.pending -= 1
        if self.pending == 0:
            self._resolve()

    def _resolve(self) -> None:
        if self.future.done():
            return
        if self.error is None:
            self.future.set_result(None)
        else:
            self.future.set_exception(PublishFailed(f"Kafka did not acknowledge the reports: {self.error}"))


class Publisher:
    def __init__(self, bootstrap: str, topic_prefix: str = "", timeout_s: float = 30.0) -> None:
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": "baogong-ingest",
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 1,
            "batch.size": 1024 * 1024,
            "message.max.bytes": 8 * 1024 * 1024,
            "queue.buffering.max.messages": 500_000,
            "message.timeout.ms": int(timeout_s * 1000),  # every message gets a report by then
            "error_cb": self._on_error,
            "logger": log,
        }
        self._prefix = topic_prefix
        self._timeout_s = timeout_s
        self._fatal = False
        self._producer = Producer(self._config)
        self._polling: asyncio.TimerHandle | None = None

    def _on_error(self, err: KafkaError) -> None:
        log.warning("Kafka producer: %s", err.str())
        if err.fatal():  # the idempotent session cannot continue; the next publish gets a new producer
            self._fatal = True

    def _serve_deliveries(self) -> None:
        """Run the delivery reports that arrived; again in 1 ms while any message awaits its report."""
        self._producer.poll(0)
        self._polling = None
        if len(self._producer):
            self._await_deliveries()

    def _await_deliveries(self) -> None:
        """Serve delivery reports in 1 ms (and on, while any are awaited), unless that is already scheduled."""
        if self._polling is None:
            self._polling = asyncio.get_running_loop().call_later(0.001, self._serve_deliveries)

    def _renew_if_fatal(self) -> None:
        if self._fatal:
            old, self._producer, self._fatal = self._producer, Producer(self._config), False
            old.purge()
            old.poll(0)  # the purged messages' reports fail their requests now, not at the timeout
            log.warning("Kafka producer replaced after a fatal error")

    async def _produce(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        on_delivery: Any,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        """Queue one message; yields to the loop only while librdkafka's local queue is full."""
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=on_delivery, headers=headers)
                return
            except BufferError:  # the local queue is full: serve reports, let librdkafka drain it
                self._producer.poll(0)
                await asyncio.sleep(0.005)

    async def publish(self, kind: Kind, messages: Sequence[tuple[str, bytes]]) -> None:
        """Send (outlet id, report JSON) messages to the kind's topic and wait for every acknowledgement."""
        if not messages:
            return
        self._renew_if_fatal()
        topic = self._prefix + TOPICS[kind].name
        delivery = _Delivery(len(messages), asyncio.get_running_loop())
        try:
            for key, value in messages:
                await self._produce(topic, key.encode(), value, delivery.report, _VIA_API)
        except KafkaException as exc:
            delivery.future.cancel()
            raise PublishFailed(f"Kafka did not take the reports: {exc}") from exc
        finally:
            self._await_deliveries()  # for whatever was queued, even if not all of it
        try:
            await asyncio.wait_for(asyncio.shield(delivery.future), self._timeout_s + 10)
        except TimeoutError as exc:
            raise PublishFailed("Kafka did not acknowledge the reports in time") from exc

    async def dead_letter(
        self, supplier_id: str, source: str, kind: Kind, rejections: Sequence[Rejection], payloads: Sequence[Any]
    ) -> None:
        """Send each rejection with its original payload to the dead-letter topic; best effort, never raises."""
        topic = self._prefix + topics.DEADLETTER.name
        at = datetime.now(UTC).isoformat()
        key = supplier_id.encode()
        delivery = _Delivery(len(rejections), asyncio.get_running_loop())
        try:
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
                    await self._produce(topic, key, encode_letter(body), delivery.report)
            finally:
                self._await_deliveries()
            await asyncio.wait_for(asyncio.shield(delivery.future), self._timeout_s + 10)
        except (KafkaException, PublishFailed, TimeoutError) as exc:
            log.warning("supplier %s: %d dead letters not confirmed by Kafka: %s", supplier_id, len(rejections), exc)

    async def close(self) -> None:
        """Deliver what is queued (up to 5 s), serving the delivery reports on this loop."""
        for _ in range(500):
            if not len(self._producer):
                break
            self._producer.poll(0)
            await asyncio.sleep(0.01)
        if self._polling is not None:
            self._polling.cancel()
            self._polling = None
