"""Benchmark a generated project's whole `pipeline` on demo data of growing size.

It renders the template with default answers into a scratch folder and syncs the project's
environment once. Then, for each size, a fresh project folder (the contract alone, so every
run starts with an empty registry) runs collect -> curate -> validate -> explore -> calibrate →
register the baseline -> train -> evaluate -> fairness -> model card -> register -> promote in one
fresh process, which reports its wall time, its peak resident memory and the time of each stage.

    .venv/bin/python bench/pipeline.py                    # 10k and 1M rows
    .venv/bin/python bench/pipeline.py --rows 10000 100000
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _table import (
    add_bytecode_option,
    load_average,
    measuring_environment,
    progress,
    project_json,
    uv,
)
from _table import render as render_project

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "customer_churn"
PIPELINE_STAGES = (
    "check the registry",
    "collect",
    "curate",
    "validate",
    "explore",
    "calibrate the baseline",
    "register the baseline as champion",
    "train candidates",
    "evaluate the candidate, the baseline and the champion",
    "measure fairness",
    "draw plots and write the model card",
    "register the candidate",
    "promote the challenger to champion",
)

# One pipeline run, timed stage by stage through its step callback; prints one JSON line.
MEASURED = """
import json, resource, sys, time
started = time.perf_counter()
from {package}.config import Settings
from {package}.pipeline import run_pipeline
# The pipeline's own stages; the data report tells each plot it draws, training each trial
# as it ends, logging each one after.
STAGES = {pipeline_stages!r}
def stage_of(name):
    if name.startswith("explore: "):
        return "explore"
    if name.startswith("log trial"):
        return "log trials to MLflow"
    return name if name in STAGES or name == "import" else "train candidates"
stages = []
def step(name):
    stages.append([name, time.perf_counter()])
result = run_pipeline(Settings(), rows=int(sys.argv[1]), step=step)
ended = time.perf_counter()
marks = [["import", started]] + stages + [["end", ended]]
spent = {{}}
for (name, begin), (_, end) in zip(marks, marks[1:]):
    spent[stage_of(name)] = spent.get(stage_of(name), 0.0) + end - begin
print(json.dumps({{
    "seconds": ended - started,
    "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "stages": spent,
    "passed": result.passed,
    "champion_version": result.champion_version,
}}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description="Time the generated project's pipeline and its peak memory at growing sizes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[10_000, 1_000_000], help="demo rows per run"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO_ROOT / "bench" / "results" / "pipeline.json",
        help="where to write the raw numbers",
    )
    add_bytecode_option(parser)
    return parser.parse_args(argv)


def render(destination: Path) -> Path:
    """The default project, from this checkout including uncommitted changes."""
    return render_project(destination, REPO_ROOT)


def measure(project: Path, folder: Path, rows: int, env: dict[str, str]) -> dict:
    """One pipeline run of `rows` demo records in `folder`, in a fresh process."""
    folder.mkdir(parents=True)
    shutil.copy2(project / "ml_contract.yaml", folder / "ml_contract.yaml")
    code = MEASURED.format(package=PACKAGE, pipeline_stages=PIPELINE_STAGES)
    numbers: dict = project_json(project, env, code, str(rows), cwd=folder)
    return numbers


def slowest(stages: dict[str, float], count: int = 4) -> str:
    """The stages that took longest, with their share of the run."""
    total = sum(stages.values()) or 1.0
    top = sorted(stages.items(), key=lambda item: item[1], reverse=True)[:count]
    return ", ".join(f"{name} {seconds:.1f} s ({seconds / total:.0%})" for name, seconds in top)


def main(argv: list[str] | None = None) -> int:
    """Measure each size and print the table and how time and memory grow."""
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    env = measuring_environment(scratch, args.bytecode_cache)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    runs: list[dict] = []
    try:
        progress(f"rendering and syncing a project in {scratch}")
        project = render(scratch / "project")
        subprocess.run([*uv(), "sync", "--quiet"], cwd=project, env=env, check=True)
        # One untimed small run compiles the bytecode, so the first timed run is not penalised.
        measure(project, scratch / "warm-up", 1_000, env)
        for rows in args.rows:
            progress(f"pipeline on {rows:,} rows")
            numbers = measure(project, scratch / f"run-{rows}", rows, env)
            runs.append({"rows": rows, **numbers})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"## pipeline on demo data ({os.cpu_count()} cores, load {load_average()})\n")
    print("| rows | wall s | rows/s | peak MiB | gates | slowest stages |")
    print("| ---: | ---: | ---: | ---: | --- | --- |")
    for run in runs:
        print(
            f"| {run['rows']:,} | {run['seconds']:.1f} | {run['rows'] / run['seconds']:,.0f} "
            f"| {run['peak_mib']:,.0f} | {'passed' if run['passed'] else 'refused'} "
            f"| {slowest(run['stages'])} |"
        )
    for small, large in itertools.pairwise(runs):
        growth = large["rows"] / small["rows"]
        print(
            f"\n{small['rows']:,} -> {large['rows']:,} rows ({growth:g}x): time "
            f"{large['seconds'] / small['seconds']:.1f}x, peak memory "
            f"{large['peak_mib'] / small['peak_mib']:.1f}x"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
