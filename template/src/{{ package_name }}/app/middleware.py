"""ASGI layers around the service: a body size limit, request metrics, and no traceback out.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: it sees every chunk of a streamed body
and adds no task per request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .metrics import ServiceMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
UNMATCHED = "<unmatched>"


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    """Send a whole JSON answer."""
    content = json.dumps(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


class BodyLimit:
    """Refuse request bodies above `max_bytes` with 413, whether sized or streamed in chunks.

    A declared Content-Length above the limit is refused before anything is read; a chunked
    body is counted as it arrives and refused as soon as it passes the limit. Bodies within
    the limit are handed to the app unchanged.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        """Wrap `app`."""
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer the body up to the limit, then pass the request on."""
        if scope["type"] != "http" or scope["method"] not in WITH_BODY:
            await self.app(scope, receive, send)
            return
        too_large = {"detail": f"the request body is larger than {self.max_bytes} bytes"}
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await send_json(send, 400, {"detail": "invalid Content-Length header"})
                    return
                if int(value) > self.max_bytes:
                    await send_json(send, 413, too_large)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away; nothing to answer.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_json(send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Observe:
    """Count and time every request by route and status; answer 500 for any escaped error.

    The error's traceback goes to the service's log, never into the answer.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, paths: frozenset[str]) -> None:
        """Wrap `app`; requests to other paths than `paths` are counted under one label."""
        self.app = app
        self.metrics = metrics
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, watching the status it is answered with."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        answered = False

        async def watch(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            logger.exception("request failed: %s %s", scope["method"], scope["path"])
            status = 500
            if not answered:
                await send_json(send, 500, {"detail": "internal error"})
        finally:
            path = scope["path"] if scope["path"] in self.paths else UNMATCHED
            self.metrics.observe_request(
                scope["method"], path, status, time.perf_counter() - started
            )
