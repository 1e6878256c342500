"""Benchmark the data report of a generated project: drawn, then kept while nothing changed.

It renders the template with default answers into a scratch folder and syncs the project's
environment. Then, in one process of that environment, it explores data sets that scikit-learn
ships (without their target, as unlabelled rows: the contract's target is the demo's), each
into its own folder, alternating round by round: the first report (every plot drawn), the same
rows again (the report is kept), and the same rows with `redraw=True`.

    .venv/bin/python bench/report.py
    .venv/bin/python bench/report.py --repeat 5
"""

from __future__ import annotations

import argparse
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
    positive_int,
    progress,
    project_json,
    render,
    uv,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "customer_churn"
DATA_SETS = ("breast_cancer", "digits")

# Runs in the project's environment; prints one JSON line of seconds per data set and case.
MEASURED = """
import json, re, sys, tempfile, time
from pathlib import Path
from sklearn import datasets
from {package}.config import load_contract
from {package}.data.explore import UNCHANGED, explore

contract = load_contract(Path("ml_contract.yaml"))
names, rounds, scratch = sys.argv[1].split(","), int(sys.argv[2]), sys.argv[3]
timings = {{}}
for name in names:
    frame = getattr(datasets, f"load_{{name}}")(as_frame=True).frame.drop(columns="target")
    seconds = {{"drawn": [], "kept": [], "redrawn": []}}
    for _ in range(rounds):
        folder = Path(tempfile.mkdtemp(dir=scratch))
        for case, redraw in (("drawn", False), ("kept", False), ("redrawn", True)):
            told = []
            started = time.perf_counter()
            report = explore(frame, contract, folder, told.append, redraw=redraw)
            seconds[case].append(time.perf_counter() - started)
            assert (told == [UNCHANGED]) == (case == "kept"), (case, told[:2])
    plots = len(re.findall(r"^!\\[", report.read_text(encoding="utf-8"), flags=re.MULTILINE))
    timings[name] = {{"rows": len(frame), "columns": frame.shape[1], "plots": plots, **seconds}}
print(json.dumps(timings))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description="Time the data report drawn, kept unchanged, and drawn again on request.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--repeat", type=positive_int, default=3, help="rounds of the three")
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO_ROOT / "bench" / "results" / "report.json",
        help="where to write the raw numbers",
    )
    add_bytecode_option(parser)
    return parser.parse_args(argv)


def median(values: list[float]) -> float:
    """The middle value (the mean of the middle two for an even count)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main(argv: list[str] | None = None) -> int:
    """Render, sync, measure in the project's environment and print the table."""
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-report-"))
    env = measuring_environment(scratch, args.bytecode_cache)
    try:
        progress(f"rendering and syncing a project in {scratch}")
        project = render(scratch / "project", REPO_ROOT)
        subprocess.run([*uv(), "sync", "--quiet"], cwd=project, env=env, check=True)
        progress(f"exploring {', '.join(DATA_SETS)}, {args.repeat} rounds")
        code = MEASURED.format(package=PACKAGE)
        names = ",".join(DATA_SETS)
        timings: dict = project_json(project, env, code, names, str(args.repeat), str(scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    load = load_average()
    print(f"## data report, median of {args.repeat} ({os.cpu_count()} cores, load {load})\n")
    print("| data set | rows x columns | plots | drawn s | kept s | redrawn s | kept / drawn |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, run in timings.items():
        drawn, kept, redrawn = (median(run[case]) for case in ("drawn", "kept", "redrawn"))
        print(
            f"| {name} | {run['rows']:,} x {run['columns']} | {run['plots']} | {drawn:.2f} "
            f"| {kept:.3f} | {redrawn:.2f} | {kept / drawn:.3f} |"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(timings, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
