"""Benchmark `score` on a Dask LocalCluster against one process and a plain pandas read_csv.

It renders the template with scale_out=dask into a scratch folder, syncs the project's
environment, runs the pipeline once on a small demo sample so that a champion exists, writes
N demo rows (10 million by default) to CSV and then times, each in a fresh process, in one run:

- the reference: `pandas.read_csv` of the file;
- `score` of the file in one process, in 100,000-row chunks, to CSV;
- `score --engine dask` of the file on a LocalCluster of WORKERS worker processes (one thread
  each), to CSV: wall time including the cluster's start, the client's peak memory and every
  worker's (each worker reports its own peak resident memory before the cluster stops).

Worker memory must stay bounded whatever the input's size: a second, smaller input (a tenth)
is scored on the cluster too, and both peaks are printed with the 1 GiB budget.

    .venv/bin/python bench/score_dask.py                 # about 10 minutes on 2 idle cores
    .venv/bin/python bench/score_dask.py --rows 1000000  # a quicker look
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
from typing import Any

from _table import load_average, measuring_environment, positive_int, progress, run_in_project
from _table import render as render_project
from data import in_project, measure, uv
from score import READ_CSV, SCORE

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "customer_churn"
PIPELINE_ROWS = 20_000
WORKER_BUDGET_MIB = 1024

# A whole program, not a snippet: spawned Dask workers re-import the main module, which needs a
# main guard. The worker peaks are read before the cluster stops; the client's is its own.
SCORE_DASK = """
import json
import resource
import sys
import time
from pathlib import Path

from {package}.config import Settings
from {package}.scale.cluster import cluster
from {package}.scale.parts import partitions
from {package}.scale.score import score_on_cluster
from {package}.scale.shipped import ship


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    started = time.perf_counter()
    settings = Settings()
    contract = settings.load_contract()
    source = Path(sys.argv[1])
    with cluster(None, int(sys.argv[3])) as running:
        result = score_on_cluster(
            running.client,
            partitions(str(source)),
            ship(settings, contract),
            contract,
            Path(sys.argv[2]),
            source=source.name,
        )
        workers = sorted(running.client.run(peak_mib).values())
    assert result.rejected == 0, result.first_rejects
    seconds = time.perf_counter() - started
    print(json.dumps({{"seconds": seconds, "peak_mib": peak_mib(), "workers": workers}}))
"""
# The demo rows, drawn from the project's schema as its demo source draws them.
WRITE_ROWS = """
import sys
from {package}.config import Settings
from {package}.data.collect import synthetic_rows
contract = Settings().load_contract()
synthetic_rows(contract, int(sys.argv[1]), 7).to_csv(sys.argv[2], index=False)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description=(
            "Time `score` of a scale_out=dask project on N demo rows: one process, a Dask "
            "LocalCluster and a plain pandas read_csv of the same file, with peak memory."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=positive_int, default=10_000_000, help="rows to score")
    parser.add_argument("--workers", type=positive_int, default=2, help="LocalCluster workers")
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO_ROOT / "bench" / "results" / "score_dask.json",
        help="where to write the raw numbers",
    )
    return parser.parse_args(argv)


def render(destination: Path) -> Path:
    """The project with scale_out=dask, from this checkout including uncommitted changes."""
    return render_project(destination, REPO_ROOT, {"scale_out": "dask"})


def measure_dask(project: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    """One cluster run in a fresh process: wall time, client peak and every worker's peak."""
    script = project / "bench_score_dask.py"
    script.write_text(SCORE_DASK.format(package=PACKAGE), encoding="utf-8")
    output = run_in_project([*uv(), "run", "--quiet", "python", str(script), *args], project, env)
    numbers: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return numbers


def main(argv: list[str] | None = None) -> int:
    """Measure the reference, one process and the cluster, and print the table."""
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-score-dask-"))
    env = measuring_environment(scratch, "warm")
    small_rows = max(args.rows // 10, 1)
    try:
        progress(f"rendering and syncing a scale_out=dask project in {scratch}")
        project = render(scratch / "project")
        subprocess.run([*uv(), "sync", "--quiet"], cwd=project, env=env, check=True)
        progress("running the pipeline once for a champion")
        pipeline = ["python", "-m", PACKAGE, "pipeline", "--rows", str(PIPELINE_ROWS)]
        subprocess.run(
            [*uv(), "run", "--quiet", *pipeline],
            cwd=project,
            env=env,
            check=True,
            capture_output=True,
        )
        source, small = scratch / "records.csv", scratch / "small.csv"
        progress(f"writing {args.rows:,} demo rows, and {small_rows:,}")
        write = WRITE_ROWS.format(package=PACKAGE)
        in_project(project, env, write, str(args.rows), str(source))
        in_project(project, env, write, str(small_rows), str(small))
        workers = str(args.workers)
        progress("pandas read_csv")
        read = measure(project, env, READ_CSV, str(source))
        progress("score in one process")
        local = measure(
            project, env, SCORE.format(package=PACKAGE), str(source), str(scratch / "local.csv")
        )
        progress(f"score on a LocalCluster of {workers} workers")
        dask = measure_dask(project, env, str(source), str(scratch / "dask.csv"), workers)
        same = (scratch / "local.csv").read_bytes() == (scratch / "dask.csv").read_bytes()
        progress(f"score {small_rows:,} rows on the cluster")
        dask_small = measure_dask(
            project, env, str(small), str(scratch / "small.csv.out.csv"), workers
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"## score on {args.rows:,} rows ({os.cpu_count()} cores, load {load_average()}, "
        "one run each)\n"
    )
    print("| path | s | rows/s | peak MiB per process | ratio to read_csv (time) |")
    print("| --- | ---: | ---: | --- | ---: |")
    read_s = float(read["seconds"])
    print(
        f"| pandas read_csv (reference) | {read_s:.1f} | {args.rows / read_s:,.0f} "
        f"| {read['peak_mib']:,.0f} | 1 |"
    )
    seconds = float(local["seconds"])
    print(
        f"| score, one process | {seconds:.1f} | {args.rows / seconds:,.0f} "
        f"| {local['peak_mib']:,.0f} | {seconds / read_s:.2f}x |"
    )
    seconds = float(dask["seconds"])
    peaks = ", ".join(f"{peak:,.0f}" for peak in dask["workers"])
    print(
        f"| score, LocalCluster of {workers} workers | {seconds:.1f} | {args.rows / seconds:,.0f} "
        f"| client {dask['peak_mib']:,.0f}; workers {peaks} | {seconds / read_s:.2f}x |"
    )
    print(f"\nthe cluster's output is byte for byte the one-process output: {same}")
    worst = max(dask["workers"])
    worst_small = max(dask_small["workers"])
    print(
        f"worker peak: {worst:,.0f} MiB at {args.rows:,} rows, {worst_small:,.0f} MiB at "
        f"{small_rows:,} rows (budget {WORKER_BUDGET_MIB:,} MiB): "
        f"{'within' if worst <= WORKER_BUDGET_MIB else 'OVER'} the budget"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    numbers = {
        "rows": args.rows,
        "read": read,
        "local": local,
        "dask": dask,
        "dask_small": dask_small,
    }
    args.output.write_text(json.dumps(numbers, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
