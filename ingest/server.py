"""Serving the supplier API: uvicorn with limits on what a connection may cost before the app sees it.

uvicorn's httptools protocol (the C parser the API runs on) has no limit on
the size or number of request headers and no deadline for them: a client
could send megabytes of headers, or hold a connection open forever by
sending a header line every few seconds (slowloris). `GuardedHttp` adds:

- the request line and headers together at most `max_header_bytes`, and at
  most `max_headers` headers, else 431 and the connection is closed;
- headers complete within `header_timeout_s` of the connection opening (or
  of the request starting, on a kept-alive connection), else 408 and close.

The body's own deadline (`body_timeout_s`) and size limit are the app's
(ingest/limits.py); idle kept-alive connections close after `keep_alive_s`;
beyond `api_max_connections` connections or requests in flight, uvicorn
answers 503 at once instead of queueing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from baogong.settings import Settings

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class _HeadersTooLarge(Exception):
    pass


class GuardedHttp(HttpToolsProtocol):
    """httptools with header size, count and time limits (class attributes, set by `protocol_for`)."""

    max_header_bytes = 16 * 1024
    max_headers = 64
    header_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_bytes = 0
        self._header_count = 0
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, but a parser error raised by our header limit is a 431, not its 400."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadersTooLarge):
                self._refuse(
                    431, f"request line and headers over {self.max_header_bytes} bytes or {self.max_headers} headers"
                )
            else:
                self.send_400_response("Invalid HTTP request received.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = self._header_count = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._grow(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow(len(name) + len(value) + 4, 1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _grow(self, size: int, count: int) -> None:
        self._header_bytes += size
        self._header_count += count
        if self._header_bytes > self.max_header_bytes or self._header_count > self.max_headers:
            raise _HeadersTooLarge

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        self._refuse(408, f"request headers not received within {self.header_timeout_s:g} s")

    def _refuse(self, status: int, message: str) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete and self.cycle.response_started:
            self.transport.close()  # a response is under way on this connection: just end it
            return
        text = message.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, _REASONS[status], len(text), text)
        )
        self.transport.close()


def protocol_for(settings: Settings) -> type[GuardedHttp]:
    """`GuardedHttp` with `settings`' limits."""
    return type(
        "GuardedHttp",
        (GuardedHttp,),
        {
            "max_header_bytes": settings.max_header_bytes,
            "max_headers": settings.max_headers,
            "header_timeout_s": settings.header_timeout_s,
        },
    )


def config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration of an API process: guarded protocol, keep-alive and concurrency limits."""
    options: dict[str, Any] = {
        "host": settings.api_host,
        "port": settings.api_port,
        "http": protocol_for(settings),
        "timeout_keep_alive": settings.keep_alive_s,
        "limit_concurrency": settings.api_max_connections,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "log_level": "info",
        "log_config": None,
        "access_log": False,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def serve(app: Any, settings: Settings) -> None:
    """Run the API until interrupted (blocks)."""
    uvicorn.Server(config(app, settings)).run()
