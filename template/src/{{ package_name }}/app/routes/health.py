"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ..answers import METRICS_RESPONSE, NOT_READY, UNAVAILABLE
from ..deps import ServiceDep
from ..metrics import CONTENT_TYPE
from ..schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health/live", response_model=Health)
async def live() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/health/ready", response_model=Health, responses={UNAVAILABLE: NOT_READY})
async def ready(service: ServiceDep) -> Health | JSONResponse:
    """The champion model is loaded, the store takes writes, and requests can be served."""
    refusal = service.refusal()
    if refusal is not None or service.model is None:
        body = Health(status="not ready", detail=refusal)
        return JSONResponse(body.model_dump(), status_code=UNAVAILABLE)
    return Health(status="ok", model_version=service.model.version)


@router.get("/metrics", response_class=Response, responses={200: METRICS_RESPONSE})
async def prometheus(service: ServiceDep) -> Response:
    """Request counts, latency, predictions by class and the model version, for Prometheus."""
    log = service.log
    service.metrics.store_writable.set(int(log is not None and log.writable))
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)
