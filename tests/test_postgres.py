"""A generated project collects from a real PostgreSQL server that the test starts on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import Render, run, uv

pytestmark = pytest.mark.e2e

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
LOAD_DEMO = """
import sys
from sqlalchemy import create_engine
from customer_churn.config import Settings
from customer_churn.data.collect import synthetic_rows

contract = Settings().load_contract()
engine = create_engine(sys.argv[1])
synthetic_rows(contract, 2000, seed=9).to_sql("customers", engine, index=False)
engine.dispose()
"""
STORE_CHECK = """
import sys
from datetime import UTC, datetime, timedelta
from customer_churn.app.feedback import FeedbackStore, UnknownPredictionError
from customer_churn.config import Settings
from customer_churn.data.collect import synthetic_rows
from customer_churn.data.transform import features_frame

contract = Settings().load_contract()
target = contract.task.target
store = FeedbackStore(sys.argv[1], target=target)
frame = synthetic_rows(contract, 5, seed=3)
ids = store.log_predictions(1, features_frame(frame), [1, 0, 1, 0, 1], [0.9, 0.1, 0.8, 0.2, 0.7])
for prediction_id, outcome in zip(ids[:3], frame[target][:3]):
    store.add_feedback(prediction_id, int(outcome), "checked")
try:
    store.add_feedback("00000000-0000-0000-0000-000000000000", 1)
except UnknownPredictionError:
    pass
else:
    raise SystemExit("feedback on an unknown prediction was accepted")
window = store.predictions_frame(since=datetime.now(UTC) - timedelta(minutes=5))
labelled = store.labelled_frame()
store.close()
print(len(window), len(labelled), labelled[target].tolist() == frame[target][:3].tolist())
"""


def switch_user() -> list[str] | None:
    """How root runs a command as the postgres user: runuser, else su; None when neither.

    Both live in /usr/sbin or /sbin, which a root shell's PATH may leave out.
    """
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"])
    if found := shutil.which("runuser", path=search):
        return [found, "-u", "postgres", "--"]
    if found := shutil.which("su", path=search):
        return [found, "postgres", "-s", "/bin/sh", "-c", '"$0" "$@"']
    return None


def as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; run it as the postgres user when we are root."""
    if os.geteuid() != 0:
        return command
    prefix = switch_user()
    if prefix is None:
        pytest.skip("running as root without runuser or su: PostgreSQL cannot be started")
    return [*prefix, *command]


@contextlib.contextmanager
def postgres_server(port: int) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1:port; yields its SQLAlchemy URL."""
    binaries = PG_BIN[-1]
    # pytest's own temporary folders are private to root, where the server user cannot enter.
    base = Path(tempfile.mkdtemp(prefix="pg-"))
    base.chmod(0o755)
    folder = base / "cluster"
    folder.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    run_server = [str(binaries / "pg_ctl"), "-D", str(data), "-w", "-t", "60"]
    subprocess.run(
        as_server_user(
            [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        as_server_user([*run_server, "-o", options, "-l", str(folder / "log"), "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            as_server_user([*run_server, "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(
    not PG_BIN, reason="PostgreSQL server binaries missing: apt-get install postgresql"
)
def test_pipeline_collects_from_postgresql(render: Render) -> None:
    """Pointed at a SQL query, the pipeline lands the query's rows and evaluates on them."""
    from tests.test_e2e import free_port

    project = render(tasks=True)
    with postgres_server(free_port()) as url:
        run([*uv(), "run", "--locked", "python", "-c", LOAD_DEMO, url], project)
        contract_path = project / "ml_contract.yaml"
        contract = yaml.safe_load(contract_path.read_text(encoding="utf-8"))
        contract["data"].update(source="sql", query="SELECT * FROM customers WHERE age >= 30")
        contract_path.write_text(yaml.safe_dump(contract, sort_keys=False), encoding="utf-8")
        run(
            [*uv(), "run", "--locked", "python", "-m", "customer_churn", "pipeline"],
            project,
            CUSTOMER_CHURN_DATABASE_URL=url,
        )
    landed = list((project / "data" / "raw").glob("query-*.csv"))
    assert len(landed) == 1
    rows = landed[0].read_text(encoding="utf-8").splitlines()
    assert 1000 < len(rows) - 1 < 2000, "the WHERE clause did not reach the database"
    assert (project / "reports" / "evaluation.md").exists()


@pytest.mark.skipif(
    not PG_BIN, reason="PostgreSQL server binaries missing: apt-get install postgresql"
)
def test_feedback_store_works_on_postgresql(render: Render) -> None:
    """The feedback store logs, refuses unknown ids and joins labels on PostgreSQL too."""
    from tests.test_e2e import free_port

    project = render(tasks=True)
    with postgres_server(free_port()) as url:
        result = run([*uv(), "run", "--locked", "python", "-c", STORE_CHECK, url], project)
    assert result.stdout.split() == ["5", "3", "True"]
