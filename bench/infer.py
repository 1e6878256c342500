"""Benchmark schema inference at copy time: a copy from a 1M-row CSV against a demo copy.

Run it from the repository root with the dev environment's interpreter:

    .venv/bin/python bench/infer.py            # about 3 minutes on an idle 2-core machine
    .venv/bin/python bench/infer.py --help

It writes a seeded CSV file of mixed columns (an id, integers, decimals with missing values,
categories, booleans, free text, a binary target), then times `copier copy` of this checkout
with its post-copy task, from that file (data_source csv: the task infers src/<pkg>/schema.py)
and from the demo, and measures the inference itself on a file ten times as long, in a fresh
process, for its time and peak memory. The package index is made unreachable for both copies,
so that `uv lock` fails at once in each and the difference is the inference.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _table import (
    BenchError,
    Row,
    load_average,
    markdown_table,
    positive_int,
    progress,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "infer.json"
INFER_MODULE = REPO_ROOT / "template" / "src" / "{{ package_name }}" / "data" / "infer.py"
TARGET_EXTRA_SECONDS = 2.0
TARGET_PEAK_MIB = 500
OFFLINE = {"UV_INDEX_URL": "http://127.0.0.1:9/simple", "UV_NO_CACHE": "1", "UV_HTTP_RETRIES": "0"}
HEADER = [
    "customer_id",
    "age",
    "tenure_months",
    "monthly_charges",
    "support_calls",
    "plan",
    "region",
    "autopay",
    "sex",
    "last_note",
    "churned",
]

# Runs in a fresh interpreter: the inference alone, as the post-copy task runs it, with the
# process's peak resident memory (interpreter included: what the machine must hold). Linux's
# VmHWM is this process's own; ru_maxrss (the fallback elsewhere) survives exec, so it can
# report the parent's peak. Not tracemalloc, which slows every allocation tenfold.
MEASURE_INFERENCE = """
import importlib.util, json, resource, sys, time
from pathlib import Path

def peak_mib():
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

spec = importlib.util.spec_from_file_location("infer_under_bench", sys.argv[1])
infer = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = infer
spec.loader.exec_module(infer)
before = peak_mib()
started = time.perf_counter()
schema = infer.infer_csv(Path(sys.argv[2]), target="churned", task="binary_classification")
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_mib": peak_mib(), "start_mib": before,
                  "summary": schema.summary()}))
"""
TASK_REPORT = re.compile(r"wrote src/customer_churn/schema.py from \S+ in ([0-9.]+) s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description=(
            "Time `copier copy` with schema inference from a CSV file against a copy from the "
            "demo, and the inference's time and peak memory on a file ten times as long."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=positive_int, default=1_000_000, help="rows of the CSV")
    parser.add_argument("--repeat", type=positive_int, default=5, help="timed copies of each")
    parser.add_argument(
        "--scale",
        type=positive_int,
        default=10,
        help="the memory run reads a file this many times as long (the rows repeated)",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the raw numbers"
    )
    return parser.parse_args(argv)


def write_rows(path: Path, rows: int, seed: int = 7) -> Path:
    """A seeded CSV file shaped like a customer table, with every kind of column."""
    rng = random.Random(seed)  # noqa: S311 - benchmark data, not secrets
    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "bills"]
    plans, regions = ["basic", "plus", "pro", "enterprise"], ["north", "south", "east", "west"]
    with path.open("w", encoding="utf-8", newline="") as stream:
        stream.write(",".join(HEADER) + "\n")
        for index in range(rows):
            calls = rng.randint(0, 9)
            churned = int(rng.random() < 0.1 + calls * 0.05)
            line = [
                str(100_000 + index),
                str(rng.randint(18, 90)),
                str(rng.randint(0, 120)),
                f"{rng.gauss(70, 20):.2f}" if rng.random() > 0.01 else "",
                str(calls),
                rng.choice(plans),
                rng.choice(regions),
                rng.choice(("true", "false")),
                rng.choice(("female", "male")),
                " ".join(rng.choices(words, k=6)),
                str(churned),
            ]
            stream.write(",".join(line) + "\n")
    return path


def repeated(source: Path, destination: Path, times: int) -> Path:
    """The source file's rows `times` over, under one header (copied a block at a time)."""
    with destination.open("wb") as stream:
        for time_ in range(times):
            with source.open("rb") as original:
                header = original.readline()
                if time_ == 0:
                    stream.write(header)
                shutil.copyfileobj(original, stream)
    return destination


def copier_executable() -> Path:
    """The copier beside this interpreter (the dev environment)."""
    found = Path(sys.executable).with_name("copier")
    if not found.exists():
        sys.exit("copier not found: run this with the dev environment (.venv/bin/python).")
    return found


def timed_copy(destination: Path, data: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds of one `copier copy` of this checkout, post-copy task included.

    Returns:
        The copy's seconds, and the inference's inside the task as it reports them (0 for
        the demo).
    """
    command = [
        str(copier_executable()),
        "copy",
        "--trust",
        "--defaults",
        "--quiet",
        "--vcs-ref",
        "HEAD",
        *data,
        str(REPO_ROOT),
        str(destination),
    ]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(f"copier copy failed:\n{result.stderr[-3000:]}")
    reported = TASK_REPORT.search(result.stderr)
    if data and reported is None:
        raise BenchError(f"the task did not infer the schema:\n{result.stderr[-3000:]}")
    shutil.rmtree(destination)
    return elapsed, float(reported.group(1)) if reported else 0.0


def measure_inference(path: Path) -> dict[str, float | str]:
    """The inference on one file in a fresh interpreter: seconds and peak memory."""
    result = subprocess.run(
        [sys.executable, "-c", MEASURE_INFERENCE, str(INFER_MODULE), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"inference failed:\n{result.stderr[-3000:]}")
    numbers: dict[str, float | str] = json.loads(result.stdout.strip().splitlines()[-1])
    return numbers


def main(argv: list[str] | None = None) -> int:
    """Measure, print the Markdown report, write the raw numbers."""
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-infer-"))
    env = {**os.environ, **OFFLINE, "HOME": str(scratch)}
    env.pop("VIRTUAL_ENV", None)
    own = ["--data", "data_source=csv", "--data", "sensitive_features=sex"]
    try:
        progress(f"writing {args.rows:,} rows")
        source = write_rows(scratch / "customers.csv", args.rows)
        own += ["--data", f"data_path={source}", "--data", "target_name=churned"]
        demo_row = Row("copy from the demo (post-copy task included)", "-")
        own_row = Row(f"copy from a {args.rows:,}-row CSV, schema inferred", "")
        task_row = Row("of which the inference, as the task reports it", "")
        for index in range(args.repeat + 1):  # the first of each warms caches, untimed
            progress(f"copy {index + 1}/{args.repeat + 1}")
            # Alternate which copy runs first, so that a busy moment does not favour one.
            order = [("demo", []), ("own", own)] if index % 2 else [("own", own), ("demo", [])]
            for name, data in order:
                seconds, inference = timed_copy(scratch / name, data, env)
                if index and data:
                    own_row.samples.append(seconds)
                    task_row.samples.append(inference)
                elif index:
                    demo_row.samples.append(seconds)
        extra = (own_row.median or 0.0) - (demo_row.median or 0.0)
        extra_fastest = (own_row.minimum or 0.0) - (demo_row.minimum or 0.0)
        own_row.target = f"<= demo + {TARGET_EXTRA_SECONDS:.0f} s"
        own_row.verdict = f"median {extra:+.2f} s, fastest {extra_fastest:+.2f} s"
        task_row.target = f"<= {TARGET_EXTRA_SECONDS:.0f} s"
        inside = task_row.median or 0.0
        task_row.verdict = "pass" if inside <= TARGET_EXTRA_SECONDS else "miss"
        progress("inference alone, and on a file ten times as long")
        single = measure_inference(source)
        large_rows = args.rows * args.scale
        large = measure_inference(repeated(source, scratch / "large.csv", args.scale))
    except BenchError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)

    print(f"## schema inference at copy time (load average {load_average()})\n")
    print(markdown_table([demo_row, own_row, task_row], last="extra / verdict"))
    print()
    print("| inference alone | s | peak RSS MiB | RSS before MiB | target | verdict |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for rows, numbers in ((args.rows, single), (large_rows, large)):
        peak = float(numbers["peak_mib"])
        verdict = "pass" if peak <= TARGET_PEAK_MIB else "miss"
        print(
            f"| {rows:,} rows | {float(numbers['seconds']):.2f} | {peak:.0f} "
            f"| {float(numbers['start_mib']):.0f} | <= {TARGET_PEAK_MIB} MiB | {verdict} |"
        )
    print(f"\nschema of the long file: {large['summary']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "rows": args.rows,
        "demo_copy_seconds": demo_row.samples,
        "csv_copy_seconds": own_row.samples,
        "task_inference_seconds": task_row.samples,
        "inference": single,
        "inference_large": {**large, "rows": large_rows},
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
