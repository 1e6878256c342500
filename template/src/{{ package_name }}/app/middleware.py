"""ASGI layers around the service: a guard on request bodies, request metrics, no traceback out.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: it sees every chunk of a streamed body
and adds no task per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from .metrics import ServiceMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# Metric labels come from closed sets, so that no client can add a time series: a method or a
# path outside them is counted as OTHER, a status outside them by its class ("5xx").
OTHER = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STATUSES = frozenset({200, 201, 400, 404, 405, 408, 413, 415, 422, 500, 503})
# Bodies up to this size are parsed once, strictly, when nothing is wrong with them.
SMALL_BODY = 16 * 1024
# Where BodyLimit leaves the JSON document it parsed, for the single-record path (fast.py).
PARSED_BODY = "parsed_json_body"


async def send_json(send: Send, status: int, body: dict[str, Any], *, close: bool = False) -> None:
    """Send a whole JSON answer; `close` asks the server to close the connection after it."""
    content = json.dumps(body).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode("ascii")),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


class DuplicateKeyError(ValueError):
    """A JSON object names one key twice; which value was meant cannot be known."""

    def __init__(self, key: str) -> None:
        """Remember the key, never its values."""
        super().__init__(key)
        self.key = key


class TooManyKeysError(ValueError):
    """A JSON object has more keys than any body of this service can hold."""


def strict_decoder(max_keys: int) -> json.JSONDecoder:
    """A JSON decoder refusing duplicate keys and objects with more than `max_keys` keys.

    Its errors: DuplicateKeyError, TooManyKeysError, json.JSONDecodeError, and RecursionError
    for a document nested deeper than the parser can follow. Built once: `json.loads` with a
    hook builds a decoder on every call, which cost a single-record request about 3 us.
    """

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len(pairs) > max_keys:
            raise TooManyKeysError(f"an object has more than {max_keys} fields")
        found = dict(pairs)
        if len(found) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    raise DuplicateKeyError(key)
                seen.add(key)
        return found

    return json.JSONDecoder(object_pairs_hook=unique)


def strict_json(body: bytes, decoder: json.JSONDecoder) -> Any:
    """Parse a JSON body as `json.loads` reads bytes (UTF-8, -16 or -32), with `decoder`.

    Raises:
        ValueError: The body is not JSON (json.JSONDecodeError, UnicodeDecodeError), or the
            decoder refused it (see `strict_decoder`).
        RecursionError: The body nests deeper than the parser can follow.
    """
    return decoder.decode(body.decode(json.detect_encoding(body), "surrogatepass"))


@dataclass(frozen=True)
class BodyRules:
    """What a request body may be: its size, how long it may take, how many records it holds.

    Attributes:
        max_bytes: Largest body accepted (413 above it).
        timeout: Seconds the whole body may take to arrive (408 and the connection closed after).
        max_keys: Most keys any JSON object of a body may have (422 above it).
        max_records: Largest "records" array per path (413 above it), counted before validation.
        shown: Turns a key from the request into the text an answer may repeat.
    """

    max_bytes: int
    timeout: float
    max_keys: int
    max_records: dict[str, int]
    shown: Callable[[str], str]


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = bytes(value).split(b";")[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


class BodyDeadlines:
    """When each request's body must have arrived, kept for all of them by one timer.

    `asyncio.timeout` costs every request a timer handle, a heap entry and a cancelled
    handle to sweep later: about 5 us of a single prediction's 60. Here a request notes its
    deadline in a dict, and one timer, set for the earliest deadline, cancels the requests
    whose bodies are late. A cancellation that was the deadline's alone is taken back, as
    `asyncio.timeout` takes back its own.
    """

    def __init__(self, seconds: float) -> None:
        """Deadlines `seconds` after each request begins reading its body."""
        self.seconds = seconds
        # The task reading a body: its deadline, and how many cancellations it had before.
        self.waiting: dict[asyncio.Task[Any], tuple[float, int]] = {}
        self.late: set[asyncio.Task[Any]] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_loop: asyncio.AbstractEventLoop | None = None

    def begin(self) -> asyncio.Task[Any]:
        """Start the current task's deadline; call `end` with the task whatever happens."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a body deadline needs a running task")
        loop = task.get_loop()
        deadline = loop.time() + self.seconds
        self.waiting[task] = (deadline, task.cancelling())
        if self.timer is None or self.timer_loop is not loop:
            self.timer, self.timer_loop = loop.call_at(deadline, self._expire, loop), loop
        return task

    def end(self, task: asyncio.Task[Any]) -> bool:
        """Stop watching `task`; True when its body was late and that alone cancelled it.

        A second call for the same task returns False and changes nothing, so a caller may
        ask in its `except` and still end in its `finally`.
        """
        entry = self.waiting.pop(task, None)
        if task not in self.late or entry is None:
            return False
        self.late.discard(task)
        return task.uncancel() <= entry[1]

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        now = loop.time()
        earliest = None
        for task, (deadline, _) in list(self.waiting.items()):
            if task.done():
                # Its loop stopped before the request ended; nothing is left to cancel.
                del self.waiting[task]
                self.late.discard(task)
            elif task.get_loop() is not loop or task in self.late:
                continue
            elif deadline <= now:
                self.late.add(task)
                task.cancel()
            elif earliest is None or deadline < earliest:
                earliest = deadline
        if earliest is not None:
            self.timer, self.timer_loop = loop.call_at(earliest, self._expire, loop), loop


class BodyLimit:
    """Guard request bodies before the app parses or validates them.

    A declared Content-Length above the limit is refused before anything is read; a chunked
    body is counted as it arrives and refused as soon as it passes the limit; a body that does
    not arrive within the timeout gets 408 and the connection is closed. A JSON body is parsed
    once here, cheaply: repeated keys (400, naming the key), objects with more keys than any
    record has (422), and batches above the contract's size (413) are refused before a single
    record is validated, so no body under the size limit can cost more than one parse. Bodies
    that pass are handed to the app unchanged.
    """

    def __init__(self, app: ASGIApp, rules: BodyRules) -> None:
        """Wrap `app`."""
        self.app = app
        self.rules = rules
        self.decoder = strict_decoder(rules.max_keys)
        self.deadlines = BodyDeadlines(rules.timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer the body up to the limit and the deadline, check it, then pass it on."""
        if scope["type"] != "http" or scope["method"] not in WITH_BODY:
            await self.app(scope, receive, send)
            return
        rules = self.rules
        too_large = {"detail": f"the request body is larger than {rules.max_bytes} bytes"}
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await send_json(send, 400, {"detail": "invalid Content-Length header"})
                    return
                if int(value) > rules.max_bytes:
                    await send_json(send, 413, too_large)
                    return
        task = self.deadlines.begin()
        try:
            body = await self._read(receive, send, too_large)
        except asyncio.CancelledError:
            if not self.deadlines.end(task):
                raise
            late = {"detail": f"the request body did not arrive within {rules.timeout:g} seconds"}
            await send_json(send, 408, late, close=True)
            return
        finally:
            self.deadlines.end(task)
        if body is None:
            return
        if _is_json(scope):
            refusal = self._refusal(scope, body)
            if refusal is not None:
                await send_json(send, *refusal)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, send: Send, too_large: dict[str, Any]) -> bytes | None:
        """The whole body; None when it was answered here (413) or the client went away."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away; nothing to answer.
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.rules.max_bytes:
                await send_json(send, 413, too_large)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _refusal(self, scope: Scope, body: bytes) -> tuple[int, dict[str, Any]] | None:
        """Why a JSON body is refused before validation, or None to let the app judge it.

        A body that passes is left parsed in the scope (PARSED_BODY), so that it is read once.
        """
        rules = self.rules
        if len(body) <= SMALL_BODY:
            # A body the size of a record: one strict parse tells all when nothing is wrong. A
            # refusal takes the long way below, so that it is the same whatever the body's size.
            try:
                document = strict_json(body, self.decoder)
            except (ValueError, RecursionError):
                pass
            else:
                if self._batch_size_refusal(scope["path"], document) is None:
                    scope[PARSED_BODY] = document
                    return None
        try:
            # The plain parser first: it is fastest, and the batch's length needs nothing more.
            document = json.loads(body)
        except RecursionError:
            return 400, {"detail": "the body is not JSON this service reads: nested too deeply"}
        except ValueError:
            # Not JSON: the app answers that itself, in its own words.
            return None
        refusal = self._batch_size_refusal(scope["path"], document)
        if refusal is not None:
            return refusal
        try:
            strict_json(body, self.decoder)
        except DuplicateKeyError as error:
            return 400, {"detail": f"the key {rules.shown(error.key)} appears twice in an object"}
        except TooManyKeysError as error:
            item = {"loc": ["body"], "msg": str(error), "type": "too_many_fields"}
            return 422, {"detail": [item]}
        scope[PARSED_BODY] = document
        return None

    def _batch_size_refusal(self, path: str, document: Any) -> tuple[int, dict[str, Any]] | None:
        """413 when the document is a batch longer than the path allows."""
        limit = self.rules.max_records.get(path)
        if limit is not None and isinstance(document, dict):
            records = document.get("records")
            if isinstance(records, list) and len(records) > limit:
                return 413, {"detail": f"at most {limit} records per request"}
        return None


class Observe:
    """Count and time every request by route and status; answer 500 for any escaped error.

    The error's traceback goes to the service's log, never into the answer.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, paths: frozenset[str]) -> None:
        """Wrap `app`; requests to other paths than `paths` (route templates) count as "other"."""
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
            method = scope["method"] if scope["method"] in METHODS else OTHER
            path = scope["path"] if scope["path"] in self.paths else OTHER
            code = str(status) if status in STATUSES else f"{status // 100}xx"
            self.metrics.observe_request(method, path, code, time.perf_counter() - started)
