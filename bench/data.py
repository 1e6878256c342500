"""Benchmark the collect -> validate path of a generated project on a million rows.

It renders the template with default answers into a scratch folder, syncs the project's
environment, writes a million demo rows to CSV, and then times, each in a fresh process so
that peak memory is its own:

- the reference: `pandas.read_csv` of the file and `describe()` of the result;
- collect (checked byte-exact copy into data/raw with its SHA-256) then read and validate
  (schema, statistics log, alert rules), as the pipeline does.

    .venv/bin/python bench/data.py            # about 2 minutes on an idle 2-core machine
    .venv/bin/python bench/data.py --help
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _table import measuring_environment, project_json, run_in_project, uv
from _table import render as render_project

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 3.0
TARGET_PEAK_MIB = 2048

WRITE_DATA = """
import sys
from {package}.config import Settings
from {package}.data.collect import synthetic_rows
contract = Settings().load_contract()
synthetic_rows(contract, int(sys.argv[1]), seed=7).to_csv(sys.argv[2], index=False)
"""

# Each measured program prints one JSON line: its wall time and its peak resident memory.
MEASURE_HEAD = """
import json, resource, sys, time
started = time.perf_counter()
"""
MEASURE_TAIL = """
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "peak_mib": peak, "rows": rows}))
"""
READ_DESCRIBE = """
import pandas as pd
frame = pd.read_csv(sys.argv[1])
frame.describe(include="all")
rows = len(frame)
"""
COLLECT_VALIDATE = """
from pathlib import Path
from {package}.config import Settings
from {package}.data.collect import collect, read_raw
from {package}.data.validate import validate
settings = Settings()
contract = settings.load_contract()
source = Path(sys.argv[1])
data = contract.data.model_copy(update={{"source": "csv", "path": source}})
contract = contract.model_copy(update={{"data": data}})
raw_dir = Path(sys.argv[2])
landed = collect(contract, raw_dir, 10, 1)
frame = read_raw(landed[0])
stats_log = raw_dir.parent / "stats.jsonl"
validate(frame, contract, reference=None, stats_log=stats_log, source=source.name)
rows = len(frame)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description=(
            "Time collect + validate of a generated project on N demo rows against a plain "
            "pandas read_csv + describe of the same file, with peak memory of each."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the CSV file")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each path")
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO_ROOT / "bench" / "results" / "data.json",
        help="where to write the raw numbers",
    )
    return parser.parse_args(argv)


def render(destination: Path) -> Path:
    """The default project, from this checkout including uncommitted changes."""
    return render_project(destination, REPO_ROOT)


def in_project(project: Path, env: dict[str, str], code: str, *args: str) -> str:
    """Run Python code in the project's environment (synced first) and return what it printed."""
    return run_in_project([*uv(), "run", "--quiet", "python", "-c", code, *args], project, env)


def measure(project: Path, env: dict[str, str], body: str, *args: str) -> dict[str, float]:
    """One run of a measured program in a fresh process."""
    numbers: dict[str, float] = project_json(
        project, env, MEASURE_HEAD + body + MEASURE_TAIL, *args
    )
    return numbers


def main(argv: list[str] | None = None) -> int:
    """Measure both paths and print the table."""
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-data-"))
    env = measuring_environment(scratch, "warm")
    try:
        print(f"rendering and syncing a project in {scratch}", file=sys.stderr)
        project = render(scratch / "project")
        package = "customer_churn"
        subprocess.run([*uv(), "sync", "--quiet"], cwd=project, env=env, check=True)
        source = scratch / "records.csv"
        print(f"writing {args.rows:,} demo rows", file=sys.stderr)
        in_project(project, env, WRITE_DATA.format(package=package), str(args.rows), str(source))
        runs: dict[str, list[dict[str, float]]] = {"read": [], "validate": []}
        for index in range(args.repeat):
            print(f"run {index + 1}/{args.repeat}", file=sys.stderr)
            runs["read"].append(measure(project, env, READ_DESCRIBE, str(source)))
            raw_dir = scratch / f"raw-{index}"
            runs["validate"].append(
                measure(
                    project,
                    env,
                    COLLECT_VALIDATE.format(package=package),
                    str(source),
                    str(raw_dir),
                )
            )
            shutil.rmtree(raw_dir, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def median(key: str, field: str) -> float:
        return statistics.median(run[field] for run in runs[key])

    read_s, validate_s = median("read", "seconds"), median("validate", "seconds")
    read_mib, validate_mib = median("read", "peak_mib"), median("validate", "peak_mib")
    ratio = validate_s / read_s
    print(f"## collect -> validate on {args.rows:,} rows ({os.cpu_count()} cores)\n")
    print("| path | median s | rows/s | peak MiB | target | verdict |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    print(
        f"| pandas read_csv + describe (reference) | {read_s:.2f} | {args.rows / read_s:,.0f} "
        f"| {read_mib:,.0f} | - | - |"
    )
    verdict = "pass" if ratio <= TARGET_RATIO and validate_mib < TARGET_PEAK_MIB else "miss"
    print(
        f"| collect + read + validate | {validate_s:.2f} | {args.rows / validate_s:,.0f} "
        f"| {validate_mib:,.0f} | <= {TARGET_RATIO:.0f}x the reference, < {TARGET_PEAK_MIB} MiB "
        f"| {ratio:.2f}x: {verdict} |"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"rows": args.rows, "runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
