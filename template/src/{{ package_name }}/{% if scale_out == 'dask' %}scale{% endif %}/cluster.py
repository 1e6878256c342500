"""The Dask cluster a command runs on: a scheduler by address, or a LocalCluster on this machine.

The address comes from `--scheduler`, else from Dask's own setting `scheduler-address` (the
environment variable DASK_SCHEDULER_ADDRESS); without one, a LocalCluster of worker processes
sized to the machine is started for the run and stopped after it. A scheduler that does not
answer within CONNECT_SECONDS is reported in one line, never waited on for Dask's default
30 s.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

import dask
from distributed import Client, Future, LocalCluster, as_completed

from ..errors import ProjectError

CONNECT_SECONDS = 5
ENVIRONMENT_VARIABLE = "DASK_SCHEDULER_ADDRESS"


class ClusterError(ProjectError):
    """The Dask scheduler cannot be reached, or a local cluster cannot start."""


class _Counted(Protocol):
    @property
    def rows(self) -> int: ...


Done = TypeVar("Done", bound=_Counted)


def in_order(futures: list[Future[Done]], progress: Callable[[int, int, int], None]) -> list[Done]:
    """The futures' results in their order, reporting each as it finishes to progress.

    progress is called with (partitions done, partitions, rows read so far).
    """
    done: list[Done | None] = [None] * len(futures)
    position = {future.key: index for index, future in enumerate(futures)}
    rows = 0
    for count, future in enumerate(as_completed(futures), start=1):
        result: Done = future.result()
        done[position[future.key]] = result
        rows += result.rows
        progress(count, len(futures), rows)
    return [result for result in done if result is not None]


@dataclass(frozen=True)
class Cluster:
    """A connected client and what to tell the user about the cluster behind it."""

    client: Client
    description: str


def scheduler_address(given: str | None) -> str | None:
    """The scheduler to use: the one given, else DASK_SCHEDULER_ADDRESS, else Dask's setting.

    The environment is read at the call, not only when Dask was imported, so that a process
    that sets it later (a test, a wrapper) is heard.
    """
    if given:
        return given
    configured = os.environ.get(ENVIRONMENT_VARIABLE) or dask.config.get(
        "scheduler-address", default=None
    )
    return str(configured) if configured else None


@contextmanager
def cluster(address: str | None = None, workers: int | None = None) -> Iterator[Cluster]:
    """Connect to the scheduler at address, or start a LocalCluster when there is none.

    Args:
        address: A scheduler address such as tcp://scheduler:8786; None reads
            DASK_SCHEDULER_ADDRESS, and without it a LocalCluster runs on this machine.
        workers: Worker processes of a LocalCluster; None lets Dask size it to the cores.

    Raises:
        ClusterError: The scheduler does not answer within CONNECT_SECONDS, or the address is
            malformed.
    """
    address = scheduler_address(address)
    if address is None:
        with _local(workers) as local:
            yield local
        return
    try:
        client = Client(address, timeout=f"{CONNECT_SECONDS}s")
    except (OSError, TimeoutError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} ({reason}); start it, or give another "
            "address with --scheduler or DASK_SCHEDULER_ADDRESS"
        ) from None
    with client:
        info = client.scheduler_info()
        count = len(info.get("workers", {}))
        dashboard = client.dashboard_link if "dashboard" in info.get("services", {}) else ""
        where = f"; dashboard {dashboard}" if dashboard else ""
        yield Cluster(client, f"Dask scheduler {address}: {count} workers{where}")


@contextmanager
def _local(workers: int | None) -> Iterator[Cluster]:
    # No dashboard: it needs bokeh, which the project does not install; a remote scheduler's
    # dashboard is printed when it has one. The scheduler's HTTP endpoints take any free port,
    # so that two runs on one machine do not compete for 8787.
    local = LocalCluster(
        n_workers=workers,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    with local, Client(local) as client:
        count = len(client.scheduler_info().get("workers", {}))
        yield Cluster(client, f"Dask LocalCluster on this machine: {count} worker processes")
