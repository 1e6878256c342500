"""Benchmark the generated prediction service against the ceiling of its stack.

It renders the default project into a scratch folder twice, syncs it and runs the pipeline:
once as it is (a logistic regression becomes the champion) and once with candidates.py cut
down to gradient boosting (a boosted-trees champion). Then it serves, one at a time and each
on one uvicorn worker on loopback without access log, in alternating rounds:

- the ceiling: a bare Starlette app whose POST /predict reads the body and answers a constant
  JSON body of the same shape as a prediction;
- FastAPI validating the project's request schema and answering a constant (where the time
  between the two goes: framework and validation, or features and model);
- the project's service (`<package>.app.api:create_app`), the way `serve` runs it, for each
  champion: single records (the compiled fast path), single records with the prediction log
  switched off (a bench-only shim: what logging costs), and 1,000-record batches.

A closed-loop client in its own process keeps a few keep-alive connections busy (send, wait
for the answer, send again) and records every latency. Single-record /predict throughput and
its p50/p99 latency are compared with the ceiling (target: at least 0.7 of its throughput);
batch /predict is measured in rows per second with 1,000-record batches.

Then the worst bodies under the size limit, each against a fresh `python -m <package> serve`
(the container's command, with the contract's server limits): empty records filling the body
limit (the batch is refused from its length), 1,000 records with every field of the wrong type
(the most validation a body can ask for: the 422 list is capped), and one record with 10,000
unknown fields. Each is sent again and again for 8 s: the median seconds to the answer, the
server's peak RSS, and the p99 of /health/live polled every 50 ms meanwhile.

    .venv/bin/python bench/serving.py            # about 8 minutes on an idle 2-core machine
    .venv/bin/python bench/serving.py --seconds 5 --skip-abuse
    .venv/bin/python bench/serving.py --abuse-only
    .venv/bin/python bench/serving.py --help
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from _table import add_bytecode_option, load_average, measuring_environment, positive_int, uv
from _table import render as render_project
from data import in_project

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "customer_churn"
TARGET_RATIO = 0.7
BOOSTING_TARGET = 0.5
BATCH_ROWS = 1000
# The service's body limit at the default max_batch_size (app/api.py body_limit).
BODY_LIMIT = 1000 * 2048 + 64 * 1024
ABUSE_SECONDS = 8

FIELD_NAMES = """
import json
from {package}.app.records import Record
print(json.dumps([field.alias for field in Record.model_fields.values()]))
"""

BARE_APP = """
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BODY = {"label": "churn", "score": 0.5, "threshold": 0.1667, "model_version": 1}


async def predict(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse(BODY)


async def ready(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[Route("/predict", predict, methods=["POST"]), Route("/health/ready", ready)]
)
"""

# Where the time goes: FastAPI parsing the project's own request schema, then a constant answer.
SCHEMA_ONLY_APP = """
from fastapi import FastAPI

from {package}.app.records import Record
from {package}.app.schemas import Batch

BODY = {{"label": "churn", "score": 0.5, "threshold": 0.1667, "model_version": 1}}
app = FastAPI()


@app.post("/predict")
async def predict(request: Record | Batch[Record]) -> dict[str, object]:
    return BODY


@app.get("/health/ready")
async def ready() -> dict[str, str]:
    return {{"status": "ok"}}
"""

# The service with the prediction log switched off: what logging costs a single record.
UNLOGGED_APP = """
from {package}.app import feedback
from {package}.app.api import create_app

feedback.PredictionLog.add = lambda self, *args: None
feedback.PredictionLog.add_rows = lambda self, rows: None
"""

# candidates.py of the second project: gradient boosting is the only classifier.
BOOSTING_ONLY = "CLASSIFIERS = (CLASSIFIERS[1],)\n"

WRITE_RECORDS = """
import json, sys
from {package}.config import Settings
from {package}.data.collect import synthetic_rows
from {package}.data.columns import input_names, load
frame = synthetic_rows(Settings().load_contract(), int(sys.argv[1]), seed=3)
print(frame[input_names(load())].to_json(orient="records"))
"""

# The client: stdlib asyncio, raw HTTP/1.1 over keep-alive connections, one request in flight
# per connection. It prints one JSON line: requests answered, seconds, latencies in ms.
CLIENT = r"""
import asyncio, json, sys, time

host, port, body_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
connections, warmup, duration = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
body = open(body_file, "rb").read()
request = (
    f"POST /predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    f"Content-Length: {len(body)}\r\n\r\n"
).encode() + body


async def answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def connection(start, stop, latencies, failures):
    reader, writer = await asyncio.open_connection(host, port)
    while True:
        sent = time.perf_counter()
        if sent >= stop:
            break
        writer.write(request)
        status = await answer(reader)
        done = time.perf_counter()
        if sent >= start:
            latencies.append((done - sent) * 1000)
            failures[0] += status != 200
    writer.close()


async def main():
    start = time.perf_counter() + warmup
    stop = start + duration
    latencies, failures = [], [0]
    clients = [connection(start, stop, latencies, failures) for _ in range(connections)]
    await asyncio.gather(*clients)
    print(json.dumps({"requests": len(latencies), "failures": failures[0], "seconds": duration,
                      "latencies_ms": latencies}))


asyncio.run(main())
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description=(
            "Measure single-record and batch POST /predict of a generated project on one "
            "uvicorn worker against a bare Starlette endpoint served the same way."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--seconds", type=positive_int, default=10, help="measured time per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--connections", type=positive_int, default=8, help="keep-alive clients")
    parser.add_argument("--repeat", type=positive_int, default=3, help="runs of each endpoint")
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO_ROOT / "bench" / "results" / "serving.json",
        help="where to write the raw numbers (latencies summarised)",
    )
    parser.add_argument(
        "--abuse-only", action="store_true", help="only the worst bodies under the size limit"
    )
    parser.add_argument(
        "--skip-abuse", action="store_true", help="leave out the worst bodies under the limit"
    )
    add_bytecode_option(parser)
    return parser.parse_args(argv)


def render(destination: Path) -> Path:
    """The default project, from this checkout including uncommitted changes."""
    return render_project(destination, REPO_ROOT)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    """Return once the server answers url with 200; stop when it dies or takes too long."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server stopped with exit code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    sys.exit(f"{url} was not ready within 120 s")


def serve_and_measure(
    project: Path,
    env: dict[str, str],
    app: list[str],
    ready_path: str,
    body: Path,
    args: argparse.Namespace,
) -> dict[str, float]:
    """Start one uvicorn worker for app, run the client against it, stop the server."""
    port = free_port()
    command = [
        *uv(),
        "run",
        "--quiet",
        "uvicorn",
        *app,
        "--host=127.0.0.1",
        f"--port={port}",
        "--workers=1",
        "--no-access-log",
        "--log-level=warning",
    ]
    server = subprocess.Popen(command, cwd=project, env=env, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}{ready_path}", server)
        client = subprocess.run(
            [
                *uv(),
                "run",
                "--quiet",
                "python",
                "-c",
                CLIENT,
                "127.0.0.1",
                str(port),
                str(body),
                str(args.connections),
                str(args.warmup),
                str(args.seconds),
            ],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if client.returncode != 0:
            sys.exit(f"the client failed:\n{client.stderr[-3000:]}")
        result = json.loads(client.stdout.strip().splitlines()[-1])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    latencies = sorted(result["latencies_ms"])
    if not latencies:
        sys.exit("no request was answered")
    return {
        "per_second": result["requests"] / result["seconds"],
        "failures": result["failures"],
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def abusive_bodies(fields: list[str]) -> dict[str, bytes]:
    """The costliest bodies under the size limit, by name."""
    empty = (BODY_LIMIT - len(b'{"records":[]}')) // 3
    wrong = json.dumps({name: [None] for name in fields})
    unknown = {f"unknown_{index}": 0 for index in range(10_000)}
    bodies = {
        f"{empty:,} empty records": b'{"records":[' + b",".join([b"{}"] * empty) + b"]}",
        f"{BATCH_ROWS:,} records, every field wrong": (
            '{"records":[' + ",".join([wrong] * BATCH_ROWS) + "]}"
        ).encode(),
        "one record, 10,000 unknown fields": json.dumps(unknown).encode(),
    }
    assert all(len(body) <= BODY_LIMIT for body in bodies.values())
    return bodies


def peak_rss(pid: int) -> int:
    """Highest peak resident memory (VmHWM) of a process and its descendants, in bytes."""
    peak = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text(encoding="utf-8")
            tasks = list(Path(f"/proc/{current}/task").iterdir())
            children = [(task / "children").read_text(encoding="utf-8") for task in tasks]
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) * 1024)
        pending.extend(int(child) for text in children for child in text.split())
    return peak


def post(url: str, body: bytes) -> int:
    """POST a JSON body; the status code."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=body, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as answer:  # noqa: S310
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)


def measure_abuse(project: Path, env: dict[str, str], body: bytes) -> dict[str, float]:
    """Serve as the container does, send `body` a few times, watch /health/live meanwhile."""
    port = free_port()
    command = [*uv(), "run", "--quiet", "python", "-m", PACKAGE, "serve", f"--port={port}"]
    server = subprocess.Popen(
        command,
        cwd=project,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    live: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            sent = time.perf_counter()
            try:
                with urllib.request.urlopen(f"{base}/health/live", timeout=600):  # noqa: S310
                    live.append((time.perf_counter() - sent) * 1000)
            except OSError:
                live.append(float("inf"))
            time.sleep(0.05)

    try:
        wait_ready(f"{base}/health/ready", server)
        watcher = threading.Thread(target=watch)
        watcher.start()
        seconds, statuses = [], set()
        try:
            stop = time.perf_counter() + ABUSE_SECONDS
            while time.perf_counter() < stop:
                sent = time.perf_counter()
                statuses.add(post(f"{base}/predict", body))
                seconds.append(time.perf_counter() - sent)
        finally:
            done.set()
            watcher.join()
        rss = peak_rss(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    live.sort()
    return {
        "status": float(statuses.pop() if len(statuses) == 1 else 0),
        "seconds": statistics.median(seconds),
        "requests": float(len(seconds)),
        "peak_rss_mb": rss / 1024**2,
        "live_p99_ms": live[min(len(live) - 1, int(len(live) * 0.99))] if live else float("nan"),
        "live_polls": float(len(live)),
    }


def abuse_table(project: Path, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """Measure every abusive body and print their table."""
    fields = json.loads(in_project(project, env, FIELD_NAMES.format(package=PACKAGE)))
    results = {}
    for name, body in abusive_bodies(fields).items():
        print(f"abuse: {name}", file=sys.stderr)
        results[name] = {"bytes": float(len(body)), **measure_abuse(project, env, body)}
    print(
        f"\n## Worst bodies under the {BODY_LIMIT:,}-byte limit, `python -m {PACKAGE} serve`, "
        f"each sent for {ABUSE_SECONDS} s ({os.cpu_count()} cores, load average {load_average()})\n"
    )
    print(
        "| body | bytes | answer | sent | median seconds | server peak RSS MB "
        "| /health/live p99 ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, result in results.items():
        print(
            f"| {name} | {result['bytes']:,.0f} | {result['status']:.0f} | "
            f"{result['requests']:.0f} | {result['seconds']:.2f} | "
            f"{result['peak_rss_mb']:,.0f} | "
            f"{result['live_p99_ms']:.1f} ({result['live_polls']:.0f} polls) |"
        )
    return results


def prepare(scratch: Path, name: str, env: dict[str, str], boosting_only: bool) -> Path:
    """A rendered, synced project whose pipeline has run; its champion's kind is checked."""
    project = render(scratch / name)
    if boosting_only:
        candidates = project / "src" / PACKAGE / "model" / "candidates.py"
        candidates.write_text(candidates.read_text("utf-8") + BOOSTING_ONLY, "utf-8")
    subprocess.run([*uv(), "sync", "--quiet"], cwd=project, env=env, check=True)
    subprocess.run(
        [*uv(), "run", "--quiet", "python", "-m", PACKAGE, "pipeline"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    (project / "bare_app.py").write_text(BARE_APP, encoding="utf-8")
    (project / "schema_app.py").write_text(SCHEMA_ONLY_APP.format(package=PACKAGE), "utf-8")
    (project / "unlogged_app.py").write_text(UNLOGGED_APP.format(package=PACKAGE), "utf-8")
    return project


def stored_predictions(project: Path) -> int:
    """How many predictions the project's SQLite store holds: the log's cost grows with it."""
    connection = sqlite3.connect(project / "data" / "feedback" / "feedback.db")
    try:
        return int(connection.execute("SELECT count(*) FROM predictions").fetchone()[0])
    finally:
        connection.close()


def champion_kind(project: Path) -> str:
    """The kind of model the evaluation report names (`model_kind`)."""
    report = json.loads((project / "reports" / "evaluation.json").read_text("utf-8"))
    return str(report["model_kind"])


def main(argv: list[str] | None = None) -> int:
    """Measure the ceiling, single records and batches for both champions; print the table."""
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    env = measuring_environment(scratch, args.bytecode_cache)
    runs: dict[str, list[dict[str, float]]] = {}
    kinds: dict[str, str] = {}
    abuse: dict[str, dict[str, float]] = {}
    try:
        print(f"rendering, syncing and running the pipelines in {scratch}", file=sys.stderr)
        projects = {"logistic": prepare(scratch, "logistic", env, boosting_only=False)}
        if not args.abuse_only:
            projects["boosting"] = prepare(scratch, "boosting", env, boosting_only=True)
        kinds = {name: champion_kind(project) for name, project in projects.items()}
        project = projects["logistic"]
        if not args.skip_abuse:
            abuse = abuse_table(project, env)
        if args.abuse_only:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps({"abuse": abuse}, indent=2) + "\n", "utf-8")
            return 0
        write_records = WRITE_RECORDS.format(package=PACKAGE)
        rows = json.loads(in_project(project, env, write_records, str(BATCH_ROWS)))
        single, batch = scratch / "single.json", scratch / "batch.json"
        single.write_text(json.dumps(rows[0]), encoding="utf-8")
        batch.write_text(json.dumps({"records": rows}), encoding="utf-8")
        service = [f"{PACKAGE}.app.api:create_app", "--factory"]
        unlogged = ["unlogged_app:create_app", "--factory"]
        plan: list[tuple[str, Path, list[str], Path]] = [
            ("bare", project, ["bare_app:app"], single),
            ("schema", project, ["schema_app:app"], single),
        ]
        for name, served in projects.items():
            plan += [
                (f"{name} single", served, service, single),
                (f"{name} single, no log", served, unlogged, single),
                (f"{name} batch", served, service, batch),
            ]
        for index in range(args.repeat):
            print(f"round {index + 1}/{args.repeat}", file=sys.stderr)
            for key, served, app, body in plan:
                result = serve_and_measure(served, env, app, "/health/ready", body, args)
                runs.setdefault(key, []).append(result)
        logged = {name: stored_predictions(served) for name, served in projects.items()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_table(runs, kinds, args)
    print(
        "\nPredictions in the store at the end (every run logs into the one it found): "
        + ", ".join(f"{name} {count:,}" for name, count in logged.items())
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "runs": runs,
        "champions": kinds,
        "abuse": abuse,
        "logged": logged,
        "load_average": load_average(),
    }
    args.output.write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    return 0


def print_table(
    runs: dict[str, list[dict[str, float]]], kinds: dict[str, str], args: argparse.Namespace
) -> None:
    """The medians of every endpoint, with their ratio to the bare Starlette ceiling."""

    def median(key: str, field: str) -> float:
        return statistics.median(run[field] for run in runs[key])

    bare = median("bare", "per_second")
    print(
        f"\n## POST /predict on one uvicorn worker, {args.connections} keep-alive connections, "
        f"{args.seconds} s per run, median of {args.repeat} alternating rounds "
        f"({os.cpu_count()} cores, load average {load_average()})\n"
    )
    print("| endpoint | per second | p50 ms | p99 ms | ratio to the ceiling |")
    print("| --- | ---: | ---: | ---: | --- |")
    for key, label in [
        ("bare", "bare Starlette, constant JSON (ceiling)"),
        ("schema", "FastAPI + request schema, constant answer"),
    ]:
        rate = median(key, "per_second")
        print(
            f"| {label} | {rate:,.0f} req | {median(key, 'p50_ms'):.1f} | "
            f"{median(key, 'p99_ms'):.1f} | {rate / bare:.2f} |"
        )
    for name, target in (("logistic", TARGET_RATIO), ("boosting", BOOSTING_TARGET)):
        kind = kinds.get(name, name)
        for suffix, label in (("single", "one record"), ("single, no log", "one record, no log")):
            key = f"{name} {suffix}"
            rate = median(key, "per_second")
            verdict = "pass" if rate / bare >= target else "miss"
            print(
                f"| {kind}: {label} | {rate:,.0f} req | {median(key, 'p50_ms'):.1f} | "
                f"{median(key, 'p99_ms'):.1f} | {rate / bare:.2f} (target {target}: {verdict}) |"
            )
        key = f"{name} batch"
        print(
            f"| {kind}: {BATCH_ROWS:,}-record batches | "
            f"{median(key, 'per_second') * BATCH_ROWS:,.0f} rows | {median(key, 'p50_ms'):.1f} | "
            f"{median(key, 'p99_ms'):.1f} | - |"
        )
    failures = sum(run["failures"] for key in runs for run in runs[key])
    if failures:
        print(f"\n{failures} answers were not 200: the numbers above count them.")


if __name__ == "__main__":
    sys.exit(main())
