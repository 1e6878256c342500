"""Benchmark batch scoring of a generated project on a million rows, with its peak memory.

It renders the template with default answers into a scratch folder, syncs the project's
environment, runs the pipeline once on a small demo sample so that a champion exists, writes
a million demo rows to CSV, and then times, each in a fresh process so that peak memory is its
own:

- the reference: `pandas.read_csv` of the file (what reading it at all costs);
- `score` of the file with the champion in chunks (validation against the API's schema,
  features, predictions, output written), to CSV and to Parquet.

Scoring streams: its peak memory should stay near that of scoring a single chunk (100,000
rows, also measured) however large the input, where the reference holds the whole file.

    .venv/bin/python bench/score.py            # about 1 minute on an idle 2-core machine
    .venv/bin/python bench/score.py --help
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

from _table import load_average, measuring_environment, positive_int, progress
from data import WRITE_DATA, in_project, measure, render, uv

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "customer_churn"
PIPELINE_ROWS = 20_000
CHUNK_ROWS = 100_000  # score's default chunk

READ_CSV = """
import pandas as pd
frame = pd.read_csv(sys.argv[1])
rows = len(frame)
"""
SCORE = """
from pathlib import Path
from {package}.config import Settings
from {package}.model.registry import load_champion
from {package}.model.score import file_chunks, score
settings = Settings()
contract = settings.load_contract()
model = load_champion(settings, contract)
source = Path(sys.argv[1])
result = score(file_chunks(source), model, contract, Path(sys.argv[2]), source=source.name)
assert result.rejected == 0, result.first_rejects
rows = result.scored
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description=(
            "Time `score` of a generated project on N demo rows (CSV and Parquet output) "
            "against a plain pandas read_csv of the same file, with peak memory of each."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=positive_int, default=1_000_000, help="rows to score")
    parser.add_argument("--repeat", type=positive_int, default=3, help="timed runs of each")
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO_ROOT / "bench" / "results" / "score.json",
        help="where to write the raw numbers",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure the reference and both outputs, and print the table."""
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-score-"))
    env = measuring_environment(scratch, "warm")
    runs: dict[str, list[dict[str, float]]] = {"read": [], "csv": [], "parquet": [], "chunk": []}
    try:
        progress(f"rendering and syncing a project in {scratch}")
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
        source = scratch / "records.csv"
        progress(f"writing {args.rows:,} demo rows, and {CHUNK_ROWS:,} for one chunk")
        write = WRITE_DATA.format(package=PACKAGE)
        in_project(project, env, write, str(args.rows), str(source))
        one_chunk = scratch / "one-chunk.csv"
        in_project(project, env, write, str(CHUNK_ROWS), str(one_chunk))
        program = SCORE.format(package=PACKAGE)
        for index in range(args.repeat):
            progress(f"run {index + 1}/{args.repeat}")
            runs["read"].append(measure(project, env, READ_CSV, str(source)))
            for suffix in ("csv", "parquet"):
                output = scratch / f"scored.{suffix}"
                runs[suffix].append(measure(project, env, program, str(source), str(output)))
                output.unlink()
            output = scratch / "one-chunk-scored.csv"
            runs["chunk"].append(measure(project, env, program, str(one_chunk), str(output)))
            output.unlink()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def median(key: str, field: str) -> float:
        return statistics.median(run[field] for run in runs[key])

    read_s, read_mib = median("read", "seconds"), median("read", "peak_mib")
    print(
        f"## score on {args.rows:,} rows ({os.cpu_count()} cores, load {load_average()}, "
        f"median of {args.repeat})\n"
    )
    print("| path | median s | rows/s | peak MiB | ratio to read_csv (time, memory) |")
    print("| --- | ---: | ---: | ---: | --- |")
    print(
        f"| pandas read_csv (reference) | {read_s:.2f} | {args.rows / read_s:,.0f} "
        f"| {read_mib:,.0f} | 1, 1 |"
    )
    for suffix in ("csv", "parquet"):
        seconds, mib = median(suffix, "seconds"), median(suffix, "peak_mib")
        print(
            f"| score -> {suffix} | {seconds:.2f} | {args.rows / seconds:,.0f} | {mib:,.0f} "
            f"| {seconds / read_s:.2f}x, {mib / read_mib:.2f}x |"
        )
    seconds, mib = median("chunk", "seconds"), median("chunk", "peak_mib")
    print(
        f"| score -> csv of one chunk ({CHUNK_ROWS:,} rows) | {seconds:.2f} "
        f"| {CHUNK_ROWS / seconds:,.0f} | {mib:,.0f} | peak of {args.rows:,} rows is "
        f"{median('csv', 'peak_mib') / mib:.2f}x this |"
    )
    extra_rows = args.rows - CHUNK_ROWS
    if extra_rows > 0:
        # Start-up (interpreter, imports, model) is in both runs; the difference is the work.
        marginal = extra_rows / (median("csv", "seconds") - seconds)
        print(f"\nscore -> csv past start-up: {marginal:,.0f} rows/s (1M run less one-chunk run)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"rows": args.rows, "runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
