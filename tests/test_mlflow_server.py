"""A generated project registers to a real MLflow tracking server started on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import Render, run, uv, uv_environment
from tests.test_e2e import free_port

pytestmark = pytest.mark.e2e

MODEL_NAME = "customer-churn"
START_SECONDS = 300


def get(base: str, path: str) -> dict:
    """One GET against the tracking server's REST API, decoded; errors answer with their body."""
    request = urllib.request.Request(f"{base}{path}")  # noqa: S310 - loopback URL built here
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def wait_until_up(server: subprocess.Popen, base: str, log: Path) -> None:
    """Poll /health until the server answers; fail with its log if it dies or never answers."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text(encoding="utf-8")[-4000:]
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the tracking server did not answer within {START_SECONDS} s")


def stop(server: subprocess.Popen) -> None:
    """Stop the server's whole process group: uv, the server and its workers."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)
    except ProcessLookupError:
        return
    # Workers that outlive the server still hold the group: take them down too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)


def test_pipeline_registers_to_a_tracking_server(render: Render, tmp_path: Path) -> None:
    """With MLFLOW_TRACKING_URI set, models, hashes and aliases live on the server, not locally."""
    project = render(tasks=True)
    store = tmp_path / "server"
    store.mkdir()
    log = tmp_path / "server.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # --isolated: the server's extra (full mlflow, pyarrow) goes into a throwaway environment,
    # so the project's own environment stays exactly what its lock file says.
    command = [
        *uv(),
        *("run", "--locked", "--isolated", "--extra", "server", "mlflow", "server"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--backend-store-uri", f"sqlite:///{store / 'server.db'}"),
        *("--artifacts-destination", str(store / "artifacts")),
    ]
    started = time.monotonic()
    with log.open("w") as output:
        server = subprocess.Popen(
            command,
            cwd=project,
            env=uv_environment(project) | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(server, base, log)
        print(
            f"tracking server installed and up in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )

        result = run(
            [
                *uv(),
                "run",
                "--locked",
                "python",
                "-m",
                "customer_churn",
                "pipeline",
                # Fewer rows than the demo's 5,000 make the candidate's fairness and cost noise.
                "--rows",
                "5000",
            ],
            project,
            MLFLOW_TRACKING_URI=base,
        )
        said = re.search(r"champion: version (\d+)", result.stdout + result.stderr)
        assert said, result.stderr[-2000:]

        first = get(base, f"/api/2.0/mlflow/model-versions/get?name={MODEL_NAME}&version=1")
        tags = {tag["key"]: tag["value"] for tag in first["model_version"]["tags"]}
        assert tags["model_kind"] == "baseline"
        assert re.fullmatch(r"[0-9a-f]{64}", tags["sha256"])
        assert first["model_version"]["source"].startswith("mlflow-artifacts:")

        alias = f"/api/2.0/mlflow/registered-models/alias?name={MODEL_NAME}&alias=champion"
        champion = get(base, alias)["model_version"]
        assert champion["version"] == said.group(1)
        assert champion["status"] == "READY"

        # The champion downloads through the server's artifact proxy and matches its hash.
        run(
            [*uv(), "run", "--locked", "python", "-m", "customer_churn", "export-model"],
            project,
            MLFLOW_TRACKING_URI=base,
        )
        exported = json.loads((project / "models/export/registered.json").read_text("utf-8"))
        champion_tags = {tag["key"]: tag["value"] for tag in champion["tags"]}
        assert exported["version"] == int(champion["version"])
        assert exported["sha256"] == champion_tags["sha256"]

        assert not (project / "mlflow.db").exists(), "the embedded store was used"
        assert not (project / "mlartifacts").exists(), "artifacts were written locally"
        assert any((store / "artifacts").rglob("*")), "the server stored no artifacts"
    finally:
        stop(server)
