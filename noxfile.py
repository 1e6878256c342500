"""Tasks of the template repository; CI calls the same sessions (see README.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import nox

# Sessions run in the environment `uv run` already synced from uv.lock: nothing is built twice.
nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).resolve().parent
DEMO = ROOT / "demo" / "customer-churn"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the template's test suite: questions, render matrix, hostile answers, end to end."""
    workers = "2" if (os.cpu_count() or 1) > 1 else "0"
    session.run("pytest", "-n", workers, "--durations=15", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and format-check the template's own Python code."""
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def demo(session: nox.Session) -> None:
    """Generate a project with the default answers from this checkout and run its pipeline."""
    import copier

    if DEMO.exists():
        session.log(f"replacing the previous demo in {DEMO}")
        shutil.rmtree(DEMO)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        copier.run_copy(str(ROOT), DEMO, defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    uv = shutil.which("uv") or sys.executable
    command = [uv] if uv != sys.executable else [uv, "-m", "uv"]
    subprocess.run([*command, "run", "nox", "-s", "pipeline"], cwd=DEMO, env=env, check=True)
    session.log(f"evaluation report: {DEMO / 'reports' / 'evaluation.md'}")
    session.log(f"model card: {DEMO / 'reports' / 'model_card.html'}")
    session.log(f"serve it with: cd {DEMO.relative_to(ROOT)} && uv run nox -s serve")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks and print their tables (numbers, not pass/fail)."""
    for script in sorted((ROOT / "bench").glob("[!_]*.py")):
        session.run("python", str(script), *session.posargs)
