"""Dependencies of the routes: the running service, as the app factory stored it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .service import Service


def running_service(request: Request) -> Service:
    """The service of the app answering this request."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(running_service)]
