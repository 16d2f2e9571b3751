"""Notifiers: one module per channel, each behind the `Notifier` interface.

A notifier delivers one prepared payload. It returns on success and raises
`NotifyError` otherwise; `recoverable` says whether retrying the same payload
may succeed (a 5xx, a timeout) or not (a 4xx: fix the receiver's config).
The dispatcher retries both, with back-off, and keeps undelivered pages visible.
"""

from __future__ import annotations

from typing import Any, Protocol


class NotifyError(Exception):
    def __init__(self, message: str, *, recoverable: bool) -> None:
        super().__init__(message)
        self.recoverable = recoverable


class Notifier(Protocol):
    name: str

    async def notify(self, payload: dict[str, Any]) -> None: ...
