"""What the service answers when it cannot serve: status codes, documented errors, handlers.

No answer echoes the input or carries a traceback: validation errors say where and why, an
unknown field's name is escaped and cut short, and any other failure is a bare 500.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from .metrics import CONTENT_TYPE
from .schemas import ErrorResponse, Health

BAD_JSON, NOT_FOUND, TIMEOUT, TOO_LARGE, INVALID, UNAVAILABLE = 400, 404, 408, 413, 422, 503
# Longest unknown field name an error answer repeats.
NAME_SHOWN = 60
# Most problems one 422 answer lists; how many more were found is said in `omitted`.
ERRORS_SHOWN = 20


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    BAD_JSON: _error("The body is not JSON, is not sent as JSON, or repeats a key"),
    NOT_FOUND: _error("No prediction with this id"),
    TIMEOUT: _error("The body did not arrive in time; the connection is closed"),
    TOO_LARGE: _error("The body or the batch is larger than the contract allows"),
    INVALID: _error("The body does not match the schema; the answer says where and why"),
    UNAVAILABLE: _error("No model loaded, or the store cannot be reached or written"),
    500: _error("Server error; details are in the service's log only"),
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of the given error answers."""
    return {code: ERRORS[code] for code in codes}


NOT_READY: dict[str, Any] = {
    "model": Health,
    "description": "No model loaded yet, or the prediction store cannot be opened or written",
}

# /metrics answers in Prometheus's text format, as the OpenAPI spec says. Built one level at a
# time, so that no generated line closes two braces at once (leftover-template scans look for it).
_METRICS_SCHEMA: dict[str, Any] = {"type": "string"}
_METRICS_MEDIA: dict[str, Any] = {"schema": _METRICS_SCHEMA}
_METRICS_CONTENT: dict[str, Any] = {CONTENT_TYPE: _METRICS_MEDIA}
METRICS_RESPONSE: dict[str, Any] = {"content": _METRICS_CONTENT}


def shown_name(name: str) -> str:
    """A field name from a request, safe to answer with: escaped, then cut to 60 characters.

    Characters that print (accented letters, other scripts) stay as they are, so a column
    named Größe is named Größe; control and format characters (tabs, bidirectional
    overrides) and backslashes are written as escapes, and markup as entities.
    """
    head = name[: NAME_SHOWN + 1]
    visible = "".join(
        char
        if char.isprintable() and char != "\\"
        else char.encode("unicode_escape").decode("ascii")
        for char in head
    )
    shown = html.escape(visible)
    return shown[:NAME_SHOWN] + ("..." if len(shown) > NAME_SHOWN else "")


def error_items(error: RequestValidationError) -> list[dict[str, Any]]:
    """Location, message and type of each problem (FastAPI's own handler echoes the input)."""
    items = []
    for item in error.errors()[:ERRORS_SHOWN]:
        loc = list(item["loc"])
        if item["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            # An unknown field's name is input too: it is named, but cut short and escaped so
            # that no markup or control character comes back as it was sent.
            loc[-1] = shown_name(loc[-1])
        if loc[:1] == ["body"] and loc[1:2] in (["record"], ["batch"]):
            # The shape /predict took the body for is not part of the body's location.
            loc = loc[:1] + loc[2:]
        items.append({"loc": loc, "msg": item["msg"], "type": item["type"]})
    return items


def _not_json(error: RequestValidationError) -> bool:
    """Whether the body could not be read as JSON at all (not JSON, or not sent as JSON)."""
    return any(
        item["type"] == "json_invalid" or isinstance(item.get("input"), bytes)
        for item in error.errors()
    )


async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON; 422 with at most ERRORS_SHOWN problems otherwise."""
    if _not_json(error):
        return JSONResponse(
            {"detail": "the body is not JSON; send JSON with content-type application/json"},
            status_code=BAD_JSON,
        )
    body: dict[str, Any] = {"detail": error_items(error)}
    if (omitted := len(error.errors()) - ERRORS_SHOWN) > 0:
        body["omitted"] = omitted
    return JSONResponse(body, status_code=INVALID)


async def http_error(_: Request, error: HTTPException) -> Response:
    """Starlette's HTTP errors (404, 405) as the service's error body."""
    return JSONResponse({"detail": str(error.detail)}, status_code=error.status_code)


async def server_error(_: Request, __: Exception) -> JSONResponse:
    """Any other failure: a bare 500; the traceback goes to the log (middleware.Observe)."""
    return JSONResponse({"detail": "internal error"}, status_code=500)


def add_handlers(app: FastAPI) -> None:
    """Answer every error the service's way."""
    app.exception_handler(RequestValidationError)(invalid_request)
    app.exception_handler(HTTPException)(http_error)
    app.exception_handler(Exception)(server_error)
