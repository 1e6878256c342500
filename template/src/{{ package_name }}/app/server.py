"""The HTTP server's limits: what the `serve` command hands uvicorn, from the contract."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config import ServingSpec

# Request line and headers the server buffers at most; a larger head is refused with 400.
HEAD_LIMIT = 16 * 1024


class HeadDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing a new connection whose request head is not in on time.

    uvicorn times out idle keep-alive connections and (with the app's body guard) slow bodies,
    but waits for a first request head forever: connections that send half a head would hold
    their place under `limit_concurrency` until the client gives up.
    """

    head_timeout = 10.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the deadline for the first request head."""
        super().connection_made(transport)  # type: ignore[arg-type]
        self.head_timer = self.loop.call_later(self.head_timeout, self.head_too_late)

    def head_too_late(self) -> None:
        """Close the connection if no request has started on it."""
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        self.head_timer.cancel()
        super().connection_lost(exc)


def server_options(serving: ServingSpec) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` that bound connections, heads and idle time.

    Connections beyond `max_connections` are answered 503, an idle connection closes after
    `keep_alive_seconds`, a request head must arrive within `body_timeout_seconds` and fit in
    16 KiB. The body's own deadline is the app's (middleware.BodyLimit).
    """
    protocol = type(
        "ServiceProtocol", (HeadDeadline,), {"head_timeout": serving.body_timeout_seconds}
    )
    return {
        "http": protocol,
        "limit_concurrency": serving.max_connections,
        "backlog": serving.max_connections,
        "timeout_keep_alive": serving.keep_alive_seconds,
        "h11_max_incomplete_event_size": HEAD_LIMIT,
        "timeout_graceful_shutdown": int(serving.body_timeout_seconds) + 5,
    }
