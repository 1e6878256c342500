"""Prediction service: serves the champion model and applies the contract's decision rule.

Every prediction gets an id and is logged with the model version and its features; users
send what really happened to POST /feedback with that id. /metrics speaks Prometheus.

The app is assembled here from routers (routes/), their dependencies (deps.py), the running
service (service.py), the error answers (answers.py) and three ASGI layers in front of all of
FastAPI's own: request metrics outermost, the body guard, then the single-record path (fast.py).
"""

from __future__ import annotations

import html
import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.middleware import Middleware
from starlette.types import ASGIApp

from ..config import Contract, Settings
from .answers import ERRORS, ERRORS_SHOWN, NAME_SHOWN, add_handlers, shown_name
from .fast import SingleRecord
from .metrics import ServiceMetrics
from .middleware import BodyLimit, BodyRules, Observe
from .records import Record
from .routes.feedback import feedback_router
from .routes.health import router as health_router
from .routes.predict import router as predict_router
from .schemas import Feedback
from .service import Service

__all__ = ["ERRORS_SHOWN", "EXTRA_KEYS", "NAME_SHOWN", "body_limit", "create_app"]

# Room per record in a request body: a record's JSON is a few hundred bytes at most.
RECORD_BYTES = 2048
BODY_OVERHEAD = 64 * 1024
# Keys a JSON object may have beyond the record's own fields before it is refused unread.
EXTRA_KEYS = 16


def body_limit(contract: Contract) -> int:
    """Largest request body accepted: room for the contract's largest batch."""
    return contract.serving.max_batch_size * RECORD_BYTES + BODY_OVERHEAD


# Wraps FastAPI's own stack, given the middleware added with `add_middleware`, in front layers.
Front = Callable[[ASGIApp, Sequence[Middleware]], ASGIApp]


class ServiceApp(FastAPI):
    """FastAPI with the service's own ASGI layers in front of FastAPI's middleware stack.

    `add_middleware` puts a layer inside FastAPI's error, telemetry and body-size layers (three
    in FastAPI 0.165): a single record answered there still pays for all of them. `front` wraps
    the whole stack instead, so that the request metrics, the body guard and the single-record
    path come first. Middleware added with `add_middleware` is handed to `front` to place:
    create_app puts it right after the metrics, so that it sees every request, single records
    included, and whatever it answers is counted.
    """

    front: Front | None = None

    def build_middleware_stack(self) -> ASGIApp:
        """FastAPI's stack without the added middleware, wrapped by `front` when set."""
        if self.front is None:
            return super().build_middleware_stack()
        added, self.user_middleware = self.user_middleware, []
        try:
            app = super().build_middleware_stack()
        finally:
            self.user_middleware = added
        return self.front(app, added)


def create_app(settings: Settings | None = None, *, fast_path: bool = True) -> FastAPI:
    """Build the service; the champion is loaded at start-up, and readiness waits for it.

    Args:
        settings: The project's settings (default: read from the environment).
        fast_path: Answer single records through the compiled decision path (fast.py); off,
            every request goes through the FastAPI route and the full model.

    Raises:
        ContractError: The project's contract cannot be read; the service cannot run without it.
    """
    settings = settings or Settings()
    contract = settings.load_contract()
    service = Service(settings, contract, ServiceMetrics(contract), compile_model=fast_path)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = ServiceApp(
        title=contract.project.name,
        description=contract.project.goal,
        summary="Predictions with the decision rule of the project's contract, and feedback.",
        lifespan=lifespan,
        responses={500: ERRORS[500]},
        docs_url=None,
        redoc_url=None,
        **_telemetry(settings),
    )
    app.state.service = service
    add_handlers(app)
    routers = [health_router, predict_router, feedback_router(contract)]
    for router in routers:
        app.include_router(router)
    if settings.docs_pages:
        _add_docs_pages(app)
    # FastAPI includes routers lazily: the route templates are read from the routers themselves.
    paths = frozenset(
        route.path
        for route in [*app.routes, *(route for router in routers for route in router.routes)]
        if hasattr(route, "path")
    )
    rules = BodyRules(
        max_bytes=body_limit(contract),
        timeout=contract.serving.body_timeout_seconds,
        max_keys=len(Record.model_fields) + len(Feedback.model_fields) + EXTRA_KEYS,
        max_records={"/predict": contract.serving.max_batch_size},
        shown=shown_name,
    )

    def front(app: ASGIApp, added: Sequence[Middleware]) -> ASGIApp:
        if fast_path:
            app = SingleRecord(app, service=service)
        app = BodyLimit(app, rules=rules)
        for kind, args, options in reversed(added):
            app = kind(app, *args, **options)
        return Observe(app, metrics=service.metrics, paths=paths)

    app.front = front
    return app


def _telemetry(settings: Settings) -> dict[str, Any]:
    """FastAPI's OpenTelemetry switches, where the installed FastAPI has them (0.165 and later).

    With them on, FastAPI looks for configured providers on every request: 5 us of the 60 a
    single prediction costs in all. They stay on only when settings.opentelemetry asks for them.
    """
    if "telemetry" not in inspect.signature(FastAPI).parameters or settings.opentelemetry:
        return {}
    switches = {"tracing": False, "metrics": False, "logs": False}
    return {"telemetry": switches}


def _add_docs_pages(app: FastAPI) -> None:
    """Serve /docs and /redoc, with the project's name escaped: it is an answer, not markup."""
    title = html.escape(app.title)

    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "", title=f"{title} - docs")

    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url or "", title=f"{title} - ReDoc")

    app.add_api_route("/docs", swagger, include_in_schema=False, response_class=HTMLResponse)
    app.add_api_route("/redoc", redoc, include_in_schema=False, response_class=HTMLResponse)
