"""POST /feedback: what really happened after a prediction, stored before the answer."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ...config import Contract
from ..answers import BAD_JSON, INVALID, NOT_FOUND, TIMEOUT, TOO_LARGE, UNAVAILABLE, documented
from ..deps import ServiceDep
from ..feedback import (
    FeedbackError,
    UnknownPredictionError,
    prediction_id_made_at,
    target_value,
)
from ..schemas import Feedback, FeedbackReceipt, feedback_schema
from ..service import STORE_DOWN

logger = logging.getLogger(__name__)
# How long feedback waits for a prediction that another worker may not have written yet: the
# workers' logging interval, a synced write, and room for a busy store.
FEEDBACK_WAIT = 1.0
# How far the clocks of two workers may disagree: an id seemingly made this much earlier than
# the wait allows, or this much later than now, may still be on its way.
CLOCK_SLACK = 1.0


def waiting_time(prediction_id: str, now: float) -> float:
    """Seconds to look again for a prediction id not in the store, at Unix time `now`.

    Up to FEEDBACK_WAIT for an id made a moment ago; none for an older id, one from the
    future, or one of a kind this service never makes: waiting could not find those, and an
    unknown id would otherwise hold a request and poll the store for the whole wait.
    """
    made = prediction_id_made_at(prediction_id)
    if made is None or made > now + CLOCK_SLACK:
        return 0.0
    return max(0.0, min(FEEDBACK_WAIT, made + FEEDBACK_WAIT + CLOCK_SLACK - now))


async def feedback(body: Feedback, service: ServiceDep) -> FeedbackReceipt | JSONResponse:
    """Say what really happened after a prediction, by its id; stored before the answer.

    A prediction another worker made a moment ago may not be in the store yet: an unknown id
    made in the last two seconds is looked up again for up to a second before the answer is
    404 (see `waiting_time`); any other unknown id is 404 at once.
    """
    store, log = service.store, service.log
    if store is None or log is None:
        return JSONResponse({"detail": "not ready: " + service.problem}, status_code=UNAVAILABLE)
    if not log.writable:
        return JSONResponse({"detail": STORE_DOWN}, status_code=UNAVAILABLE)
    outcome = target_value(service.contract, body.outcome)
    deadline = asyncio.get_running_loop().time() + waiting_time(body.prediction_id, time.time())
    try:
        while True:
            await log.flush()
            try:
                await asyncio.to_thread(
                    store.add_feedback, body.prediction_id, outcome, body.comment
                )
                break
            except UnknownPredictionError:
                if asyncio.get_running_loop().time() >= deadline:
                    raise
                await asyncio.sleep(log.interval)
    except UnknownPredictionError:
        return JSONResponse({"detail": "no prediction with this id"}, status_code=NOT_FOUND)
    except FeedbackError as error:
        logger.error("%s", error)
        return JSONResponse({"detail": "cannot store feedback"}, status_code=UNAVAILABLE)
    return FeedbackReceipt(prediction_id=body.prediction_id)


def feedback_router(contract: Contract) -> APIRouter:
    """The feedback route, its body typed by the contract's task (classes, yes/no, a number)."""
    router = APIRouter(tags=["feedback"])
    router.add_api_route(
        "/feedback",
        _accepting(feedback, feedback_schema(contract)),
        methods=["POST"],
        status_code=201,
        response_model=FeedbackReceipt,
        responses=documented(BAD_JSON, NOT_FOUND, TIMEOUT, TOO_LARGE, INVALID, UNAVAILABLE),
    )
    return router


def _accepting(endpoint: Callable[..., Any], body_type: type[Feedback]) -> Callable[..., Any]:
    """A copy of the endpoint, with its body declared as the task's own schema for FastAPI."""

    # The outcome's allowed values come from the contract, so the body type is built at run
    # time; FastAPI reads the type from the signature.
    async def accepting(*args: Any, **kwargs: Any) -> Any:
        return await endpoint(*args, **kwargs)

    signature = inspect.signature(endpoint)
    parameter = signature.parameters["body"].replace(annotation=body_type)
    parameters = [
        parameter if name == "body" else value for name, value in signature.parameters.items()
    ]
    accepting.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters, return_annotation=inspect.Signature.empty
    )
    accepting.__doc__ = endpoint.__doc__
    accepting.__name__ = endpoint.__name__
    return accepting
