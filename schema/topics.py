"""Every Kafka topic Baogong uses, in one place (names are public contracts)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    doc: str


INVENTORY = TopicSpec("supply.inventory.v1", "outlet_id", "validated outlet inventory reports (one report per message)")
PRICES = TopicSpec("supply.prices.v1", "outlet_id", "validated outlet price reports (one report per message)")
DEADLETTER = TopicSpec("supply.deadletter.v1", "supplier_id", "rejected records and messages, with the reason")
CIRCLE_LEVELS = TopicSpec("supply.circle-levels.v1", "circle_id", "derived levels: one message per circle per tick")
ALERTS = TopicSpec("supply.alerts.v1", "fingerprint", "alert state changes")
PRICE_LEVELS = TopicSpec(
    "supply.price-levels.v1", "circle_id", "graded price levels: one message per circle (and '*', the city) per pass"
)

ALL: tuple[TopicSpec, ...] = (INVENTORY, PRICES, DEADLETTER, CIRCLE_LEVELS, ALERTS, PRICE_LEVELS)

#: Kafka header on the report messages the supplier API publishes. The API has
#: already counted those records' feed health (accepted, duplicates) at its
#: edge; the worker counts only what it rejects of them, so a record pushed
#: over HTTP is counted once. A supplier's own producer sets no such header.
VIA_HEADER = "baogong-via"
VIA_API = b"api"


def ensure_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create the topics that do not exist yet (replication 1 on one broker, else up to 3).

    Blocks for at most a few seconds; raises kafka.errors.KafkaError when the
    broker cannot be reached.
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="baogong-admin")
    try:
        existing = set(admin.list_topics())
        brokers = len(admin.describe_cluster().get("brokers", [])) or 1
        missing = [NewTopic(n, partitions, min(3, brokers)) for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()
