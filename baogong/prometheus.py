"""What Baogong's /metrics endpoints share: a registry with the process's own metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector


def process_registry() -> CollectorRegistry:
    """A new registry holding the process metrics (CPU, memory, open files) and the platform's (Python's
    version), as the default registry would, for a catalogue that adds its own to it."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry
