"""What the benchmark scripts share: the rows of their tables and small process helpers."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class BenchError(RuntimeError):
    """A measured command failed, so its timing would mean nothing."""


@dataclass
class Row:
    """One line of the table: what was timed, its samples and how it compares to its target."""

    what: str
    target: str
    samples: list[float] = field(default_factory=list)
    verdict: str = ""
    not_measured: str = ""

    @property
    def median(self) -> float | None:
        """Median of the samples, or None when nothing was measured."""
        return statistics.median(self.samples) if self.samples else None

    @property
    def minimum(self) -> float | None:
        """Fastest sample, or None when nothing was measured."""
        return min(self.samples) if self.samples else None


def positive_int(text: str) -> int:
    """Parse a count of at least one."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("give a whole number of at least 1")
    return value


def output_of(cmd: list[str], cwd: Path | None = None) -> str:
    """First line a short command prints, or '?' when it fails."""
    try:
        result = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].strip() if result.returncode == 0 and lines else "?"


def progress(message: str) -> None:
    """Say what is running, on stderr so that stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


def seconds(value: float | None) -> str:
    """Format a time for the table."""
    return "-" if value is None else f"{value:.2f}"


def load_average() -> str:
    """The 1-minute load average, which says how busy the machine was."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"


def markdown_table(rows: list[Row], last: str = "ratio / verdict") -> str:
    """The results as a Markdown table."""
    lines = [
        f"| what | median s | min s | target | {last} |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        cells = [row.what, seconds(row.median), seconds(row.minimum), row.target, row.verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_bytecode_option(parser: argparse.ArgumentParser) -> None:
    """The --bytecode-cache option every benchmark offers."""
    parser.add_argument(
        "--bytecode-cache",
        choices=["warm", "inherit"],
        default="warm",
        help=(
            "warm: every Python process writes and reuses bytecode in a private "
            "PYTHONPYCACHEPREFIX, as on a user's machine after the first run; inherit: keep "
            "this environment's PYTHONDONTWRITEBYTECODE, so a venv installed without bytecode "
            "compiles all its imports on every run"
        ),
    )


def measuring_environment(scratch: Path, bytecode_cache: str) -> dict[str, str]:
    """Environment of measured commands: no interpreter downloads, no outer virtualenv.

    With a warm bytecode cache, processes write and reuse bytecode in a private folder, as a
    user's machine does after the first run (this machine sets PYTHONDONTWRITEBYTECODE).
    """
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    if bytecode_cache == "warm":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    return env


def uv() -> list[str]:
    """The uv command of this environment."""
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def render(destination: Path, template: Path, data: dict[str, str] | None = None) -> Path:
    """The default project from a checkout, uncommitted changes included, tasks skipped.

    data: answers other than the defaults, such as {"scale_out": "dask"}.
    """
    import copier

    # Copier prints the project's welcome message on stdout, which holds only the report here.
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        copier.run_copy(
            str(template),
            destination,
            data=data or {},
            defaults=True,
            unsafe=True,
            vcs_ref="HEAD",
            skip_tasks=True,
            quiet=True,
        )
    return destination


def run_in_project(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """What a program run in a project printed.

    A failing program ends the benchmark with the end of its error output: a timing of a
    run that failed would mean nothing.
    """
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"failed in {cwd}:\n{result.stderr[-3000:]}")
    return result.stdout


def project_json(
    project: Path, env: dict[str, str], code: str, *args: str, cwd: Path | None = None
) -> Any:
    """Run a Python program in the project's environment; the JSON of its last line of output."""
    python = str(project / ".venv" / "bin" / "python")
    output = run_in_project([python, "-c", code, *args], cwd or project, env)
    return json.loads(output.strip().splitlines()[-1])
