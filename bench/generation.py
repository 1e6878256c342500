"""Benchmark generation speed: copier-mlops against cookiecutter-data-science, and time to green.

Run it from the repository root with the dev environment's interpreter:

    .venv/bin/python bench/generation.py            # about 2 minutes on an idle 2-core machine
    .venv/bin/python bench/generation.py --help

It prints a Markdown report and writes the raw numbers to bench/results/generation.json.
Every generated project lands in a fresh temporary folder, removed right after it is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from _table import (
    BenchError,
    Row,
    add_bytecode_option,
    load_average,
    markdown_table,
    measuring_environment,
    output_of,
    positive_int,
    progress,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "generation.json"
COMMAND_TIMEOUT_SECONDS = 900

# Answers given to ccds so that its post-generation hook only writes files: no environment
# manager (nothing may create or fill a virtual environment), a plain requirements file and no
# pydata packages. Every other answer keeps the template's first choice.
CCDS_ANSWERS = {
    "environment_manager": "none",
    "dependency_file": "requirements.txt",
    "pydata_packages": "none",
}
CCDS_HOME_CHECKOUT = Path("~/.cookiecutters/cookiecutter-data-science")

TARGET_RATIO = 1.3
TARGET_OVERHEAD_SECONDS = 0.3
TARGET_WITH_TASKS_SECONDS = 3.0
TARGET_GREEN_SECONDS = 60.0


@dataclass
class Tools:
    """The executables the benchmark runs, resolved once."""

    copier: Path
    ccds: Path | None
    uv: list[str]
    uv_bin_dir: Path | None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description=(
            "Time project generation: `copier copy` of this template without and with its "
            "tasks, `ccds --no-input` of cookiecutter-data-science from a local template "
            "checkout, and the time from `copier copy` to all generated checks passing "
            "(`uv run nox`, then `uv run pre-commit run --all-files`). Prints a Markdown "
            "report and writes the raw numbers as JSON."
        ),
        epilog=(
            "Every command runs with UV_PYTHON_DOWNLOADS=never and no standard input, and "
            "each row starts with one untimed warm-up run (bytecode, uv and pre-commit caches). "
            "The ccds template is taken from --ccds-template, else $CCDS_TEMPLATE, else the "
            f"installed ccds package, else {CCDS_HOME_CHECKOUT} (where ccds clones it); "
            "without one the ccds row is left out. Exits 1 when a measured command fails."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=7,
        help="timed runs of each generation command (rows 1 to 3)",
    )
    parser.add_argument(
        "--repeat-green",
        type=positive_int,
        default=3,
        help="timed runs of copy plus all generated checks (row 4)",
    )
    parser.add_argument(
        "--skip-green",
        action="store_true",
        help="leave out the time-to-green row, which takes most of the run",
    )
    parser.add_argument(
        "--skip-generation",
        action="store_true",
        help=(
            "leave out rows 1 to 3 (copy without and with tasks, the floor, ccds) and measure "
            "time to green alone"
        ),
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=REPO_ROOT,
        help=(
            "template repository; copier is given a packed clone of it (made once per run, "
            "with its uncommitted changes committed on top), as a user's clone of the template "
            "is, rather than the working repository, whose loose objects Copier's own clone "
            "would copy on every run"
        ),
    )
    parser.add_argument(
        "--ccds-template",
        type=Path,
        default=None,
        help="folder of a cookiecutter-data-science template checkout (holds ccds.json)",
    )
    add_bytecode_option(parser)
    parser.add_argument(
        "--uv",
        default="python3 -m uv",
        help="command that runs uv in the generated project",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="where to write the raw numbers as JSON",
    )
    return parser.parse_args(argv)


def find_executable(name: str) -> Path | None:
    """Find a tool beside this interpreter, in the repository's .venv, then on PATH."""
    for folder in (Path(sys.executable).parent, REPO_ROOT / ".venv" / "bin"):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def interpreter_of(executable: Path) -> Path:
    """Python interpreter of the environment a console script belongs to."""
    candidate = executable.parent / "python"
    return candidate if candidate.exists() else Path(sys.executable)


def find_uv_binary(uv: list[str]) -> Path | None:
    """The uv binary behind the uv command, so that nested `uv` calls run the same one."""
    if uv[1:3] == ["-m", "uv"]:
        found = output_of([uv[0], "-c", "import uv; print(uv.find_uv_bin())"])
        return Path(found) if found != "?" else None
    located = shutil.which(uv[0])
    return Path(located).resolve() if located else None


def resolve_tools(uv_command: str) -> Tools:
    """Resolve copier, ccds and uv."""
    copier = find_executable("copier")
    if copier is None:
        sys.exit("copier not found: run this with the dev environment (.venv/bin/python).")
    uv = shlex.split(uv_command)
    if not uv or output_of([*uv, "--version"]) == "?":
        sys.exit(f"`{uv_command}` does not run uv: give another command with --uv.")
    uv_binary = find_uv_binary(uv)
    return Tools(
        copier=copier,
        ccds=find_executable("ccds"),
        uv=uv,
        uv_bin_dir=uv_binary.parent if uv_binary else None,
    )


def is_ccds_template(path: Path) -> bool:
    """Whether ccds can render this folder: cookiecutter wants one file, ccds the other."""
    return (path / "cookiecutter.json").is_file() and (path / "ccds.json").is_file()


def find_ccds_template(explicit: Path | None, ccds: Path | None) -> Path | None:
    """Find a local cookiecutter-data-science template."""
    if explicit is not None:
        if not is_ccds_template(explicit):
            sys.exit(
                f"{explicit} is not a ccds template: it needs cookiecutter.json and ccds.json."
            )
        return explicit.resolve()
    candidates: list[Path] = []
    if os.environ.get("CCDS_TEMPLATE"):
        candidates.append(Path(os.environ["CCDS_TEMPLATE"]))
    if ccds is not None:
        package = output_of(
            [
                str(interpreter_of(ccds)),
                "-c",
                "import ccds, pathlib; print(pathlib.Path(ccds.__file__).parent)",
            ]
        )
        if package != "?":
            for folder in sorted(Path(package).parent.glob("ccds*")):
                candidates.extend(path.parent for path in sorted(folder.rglob("ccds.json")))
    candidates.append(CCDS_HOME_CHECKOUT.expanduser())
    return next((path.resolve() for path in candidates if is_ccds_template(path)), None)


def child_environment(
    scratch: Path, bytecode_cache: str, uv_bin_dir: Path | None
) -> dict[str, str]:
    """Environment of every measured command."""
    env = measuring_environment(scratch, bytecode_cache)
    env["PRE_COMMIT_HOME"] = str(scratch / "pre-commit-home")
    if uv_bin_dir is not None:
        env["PATH"] = os.pathsep.join([str(uv_bin_dir), env.get("PATH", "")])
    return env


def short_name(cmd: list[str]) -> str:
    """A command as the table names it: the program and its subcommand or first arguments."""
    words = [Path(cmd[0]).name, *cmd[1:]]
    return "`" + " ".join(words[:4] if words[1:3] == ["-m", "uv"] else words[:2]) + "`"


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process and what it waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def snapshot_template(source: Path, scratch: Path) -> Path:
    """A packed clone of the template repository with its uncommitted changes committed.

    Copier clones a local template with `git clone`, which copies the object files: a working
    repository with hundreds of loose objects costs every copy a few tenths of a second that a
    user's clone (one pack) does not. Tracked and untracked files that git does not ignore are
    carried over, so the snapshot renders what `copier copy --vcs-ref HEAD` of the source would.
    """
    snapshot = scratch / "template"

    def git(*args: str, cwd: Path = snapshot) -> str:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
        return done.stdout

    git("clone", "--quiet", "--no-local", str(source), str(snapshot), cwd=scratch)
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=source)
    for name in filter(None, listed.split("\0")):
        original, copy = source / name, snapshot / name
        if original.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(original, copy)
        elif not original.exists():
            copy.unlink(missing_ok=True)  # deleted in the work tree, not yet committed
    git("add", "--all")
    if git("status", "--porcelain"):
        identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        git(*identity, "commit", "--quiet", "-m", "bench: uncommitted changes of the work tree")
    git("repack", "-a", "-d", "-q")
    git("prune")
    return snapshot


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    """Run a command to the end with no input; return its wall time in seconds."""
    start = time.perf_counter()
    try:
        result = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(
            f"{short_name(cmd)} timed out after {error.timeout} s\n{shlex.join(cmd)}"
        ) from error
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        tail = "\n".join(result.stdout.strip().splitlines()[-30:])
        raise BenchError(
            f"{short_name(cmd)} exited with {result.returncode}\n{shlex.join(cmd)}\n{tail}"
        )
    return elapsed


class Bench:
    """Runs the measurements in one scratch folder, a fresh destination for every run."""

    def __init__(self, tools: Tools, template: Path, scratch: Path, env: dict[str, str]) -> None:
        """Keep what every measurement needs."""
        self.tools = tools
        self.template = template
        self.scratch = scratch
        self.env = env
        self.runs = 0
        self.same_files = 0
        self.cpu: dict[str, list[float]] = {}
        self.cookiecutter_config = scratch / "cookiecutter-config.yaml"
        # ccds would otherwise write its replay file and clone cache under the home folder.
        self.cookiecutter_config.write_text(
            f"cookiecutters_dir: {json.dumps(str(scratch / 'cookiecutters'))}\n"
            f"replay_dir: {json.dumps(str(scratch / 'cookiecutter-replay'))}\n",
            encoding="utf-8",
        )

    def run(self, label: str, measure: Callable[[Path], float]) -> float:
        """Time one run into a new destination, then delete what it generated.

        The CPU time its processes used is kept under the label too: it moves far less than
        the wall time when other jobs share the machine.
        """
        self.runs += 1
        destination = self.scratch / "out" / f"{self.runs:03d}-{label}"
        cpu_before = children_cpu()
        try:
            elapsed = measure(destination)
        finally:
            shutil.rmtree(destination, ignore_errors=True)
        self.cpu.setdefault(label, []).append(children_cpu() - cpu_before)
        return elapsed

    def make_floor_template(self) -> Path:
        """A one-question, one-file Copier template in git: what Copier costs with nothing to do."""
        floor = self.scratch / "floor-template"
        floor.mkdir()
        (floor / "copier.yml").write_text("name:\n  type: str\n  default: x\n", encoding="utf-8")
        (floor / "README.md.jinja").write_text("{{ name }}\n", encoding="utf-8")
        (floor / "{{ _copier_conf.answers_file }}.jinja").write_text(
            "{{ _copier_answers | to_nice_yaml }}", encoding="utf-8"
        )
        identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        for args in (["init", "--quiet"], ["add", "--all"], [*identity, "commit", "-qm", "floor"]):
            subprocess.run(["git", *args], cwd=floor, check=True, capture_output=True)
        return floor

    def make_same_files_template(self) -> Path:
        """A Copier template of this template's default project, file for file, nothing to render.

        Every file the default answers give, as plain files at their rendered paths, plus one
        question and the answers file: what Copier itself costs for this many files, with no
        Jinja in paths or contents and no questions to answer.
        """
        render = self.scratch / "same-files-render"
        self._copier_copy(render, tasks=False)
        same = self.scratch / "same-files-template"
        shutil.copytree(render, same, ignore=shutil.ignore_patterns(".git", ".copier-answers.yml"))
        shutil.rmtree(render)
        self.same_files = sum(1 for path in same.rglob("*") if path.is_file())
        (same / "copier.yml").write_text("name:\n  type: str\n  default: x\n", encoding="utf-8")
        (same / "{{ _copier_conf.answers_file }}.jinja").write_text(
            "{{ _copier_answers | to_nice_yaml }}", encoding="utf-8"
        )
        identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        # -f: the project's own .gitignore must not keep any of its files out of the template.
        for args in (
            ["init", "--quiet"],
            ["add", "-f", "--all"],
            [*identity, "commit", "-qm", "same"],
            # Packed, as the snapshot of this template is: Copier's clone copies loose objects.
            ["repack", "-a", "-d", "-q"],
        ):
            subprocess.run(["git", *args], cwd=same, check=True, capture_output=True)
        return same

    def copier_floor(self, template: Path) -> Callable[[Path], float]:
        """`copier copy --defaults` of the one-file template."""

        def measure(destination: Path) -> float:
            cmd = [str(self.tools.copier), "copy", "--defaults", "--vcs-ref", "HEAD"]
            return timed([*cmd, str(template), str(destination)], self.env)

        return measure

    def copier_without_tasks(self, destination: Path) -> float:
        """`copier copy --skip-tasks` of the template's HEAD with default answers."""
        return self._copier_copy(destination, tasks=False)

    def copier_with_tasks(self, destination: Path) -> float:
        """`copier copy` with the post-copy task: uv lock and the first git commit."""
        return self._copier_copy(destination, tasks=True)

    def _copier_copy(self, destination: Path, *, tasks: bool) -> float:
        cmd = [str(self.tools.copier), "copy", "--defaults", "--trust"]
        if not tasks:
            cmd.append("--skip-tasks")
        cmd += ["--vcs-ref", "HEAD", str(self.template), str(destination)]
        return timed(cmd, self.env)

    def ccds(self, template: Path) -> Callable[[Path], float]:
        """`ccds --no-input` from a local template into an empty folder."""

        def measure(destination: Path) -> float:
            assert self.tools.ccds is not None
            destination.mkdir(parents=True)
            cmd = [
                str(self.tools.ccds),
                "--no-input",
                "--config-file",
                str(self.cookiecutter_config),
                "--output-dir",
                str(destination),
                str(template),
                *(f"{key}={value}" for key, value in CCDS_ANSWERS.items()),
            ]
            return timed(cmd, self.env)

        return measure

    def green(self, phases: list[dict[str, float]]) -> Callable[[Path], float]:
        """Copy with tasks, every default nox session, then every pre-commit hook."""

        def measure(destination: Path) -> float:
            # Wall and CPU seconds of each phase: under load the CPU time says more.
            run: dict[str, float] = {}
            commands = {
                "nox": [*self.tools.uv, "run", "nox"],
                "pre-commit": [*self.tools.uv, "run", "pre-commit", "run", "--all-files"],
            }
            cpu_before = children_cpu()
            run["copy"] = self.copier_with_tasks(destination)
            run["copy cpu"] = children_cpu() - cpu_before
            for name, cmd in commands.items():
                cpu_before = children_cpu()
                run[name] = timed(cmd, self.env, cwd=destination)
                run[f"{name} cpu"] = children_cpu() - cpu_before
            run["copy + nox"] = run["copy"] + run["nox"]
            run["total"] = run["copy + nox"] + run["pre-commit"]
            phases.append(run)
            return run["total"]

        return measure


def measure_side_by_side(
    bench: Bench, rows: dict[str, Row], repeat: int, ccds_template: Path | None
) -> None:
    """Rows 1 to 3, taking turns so that a change in load hits all of them alike."""
    with_ccds = " and ccds" if ccds_template is not None else ""
    floor = bench.copier_floor(bench.make_floor_template())
    same_files = bench.copier_floor(bench.make_same_files_template())
    rows["same"].what = rows["same"].what.replace(
        "project's files", f"project's {bench.same_files} files"
    )
    progress(f"warm-up: copier copy --skip-tasks, Copier's floors{with_ccds}")
    bench.run("warmup-copier", bench.copier_without_tasks)
    bench.run("warmup-floor", floor)
    bench.run("warmup-same", same_files)
    if ccds_template is not None:
        bench.run("warmup-ccds", bench.ccds(ccds_template))
    for index in range(repeat):
        progress(f"run {index + 1}/{repeat}: copier copy --skip-tasks, Copier's floor{with_ccds}")
        rows["copier"].samples.append(bench.run("copier", bench.copier_without_tasks))
        rows["floor"].samples.append(bench.run("floor", floor))
        # Paired with the floor run right after it, so that both saw about the same load.
        rows["overhead"].samples.append(rows["copier"].samples[-1] - rows["floor"].samples[-1])
        rows["same"].samples.append(bench.run("same", same_files))
        rows["per-file"].samples.append(rows["same"].samples[-1] - rows["floor"].samples[-1])
        if ccds_template is not None:
            rows["ccds"].samples.append(bench.run("ccds", bench.ccds(ccds_template)))


def measure_with_tasks(bench: Bench, row: Row, repeat: int) -> None:
    """Row 3, after a warm-up run that fills the uv cache."""
    progress("warm-up: copier copy with tasks (fills the uv cache)")
    bench.run("warmup-tasks", bench.copier_with_tasks)
    for index in range(repeat):
        progress(f"run {index + 1}/{repeat}: copier copy with tasks")
        row.samples.append(bench.run("tasks", bench.copier_with_tasks))


def measure_green(bench: Bench, row: Row, repeat: int, phases: list[dict[str, float]]) -> None:
    """Row 4, after a warm-up run; records the phases of every timed run."""
    progress("warm-up: copy, nox, pre-commit (fills the uv and pre-commit caches)")
    bench.run("warmup-green", bench.green([]))
    for index in range(repeat):
        progress(f"run {index + 1}/{repeat}: copy, nox, pre-commit")
        row.samples.append(bench.run("green", bench.green(phases)))


def judge(rows: dict[str, Row]) -> None:
    """Fill in each row's verdict from its median."""
    for row in rows.values():
        if row.median is None:
            row.verdict = row.not_measured or "not measured"
    copier, ccds = rows["copier"].median, rows["ccds"].median
    if copier is not None:
        if ccds:
            ratio = copier / ccds
            verdict = "pass" if ratio <= TARGET_RATIO else "miss"
            rows["copier"].verdict = f"ratio {ratio:.2f}: {verdict}"
        else:
            rows["copier"].verdict = "no ccds run to compare with"
    if ccds is not None:
        rows["ccds"].verdict = "reference for row 1"
    floor = rows["floor"].median
    if floor is not None:
        rows["floor"].verdict = f"{floor / ccds:.2f} of ccds" if ccds else "no ccds run"
    overhead = rows["overhead"].median
    if overhead is not None:
        verdict = "pass" if overhead <= TARGET_OVERHEAD_SECONDS else "miss"
        rows["overhead"].verdict = f"{overhead / TARGET_OVERHEAD_SECONDS:.2f} of target: {verdict}"
    per_file = rows["per-file"].median
    if per_file is not None:
        # What any Copier template of these files pays before its own work: where it is above
        # the overhead target, no template of this project's files can meet that target.
        within = "within" if per_file <= TARGET_OVERHEAD_SECONDS else "above"
        rows["per-file"].verdict = (
            f"{per_file / TARGET_OVERHEAD_SECONDS:.2f} of the {TARGET_OVERHEAD_SECONDS:.1f} s "
            f"target: {within} it before any rendering"
        )
    for key, limit in (("tasks", TARGET_WITH_TASKS_SECONDS), ("green", TARGET_GREEN_SECONDS)):
        median = rows[key].median
        if median is not None:
            verdict = "pass" if median <= limit else "miss"
            rows[key].verdict = f"{median / limit:.2f} of target: {verdict}"


def machine_info(
    tools: Tools, template: Path, ccds_template: Path | None, bytecode_cache: str
) -> dict[str, str]:
    """What the numbers were measured with."""
    ccds_version = "not installed"
    if tools.ccds is not None:
        ccds_version = output_of(
            [
                str(interpreter_of(tools.ccds)),
                "-c",
                "import importlib.metadata as m; print(m.version('cookiecutter-data-science'))",
            ]
        )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    copier_python = str(interpreter_of(tools.copier))
    return {
        "nproc": str(cores),
        "platform": platform.platform(),
        "python (copier's)": output_of(
            [copier_python, "-c", "import platform; print(platform.python_version())"]
        ),
        "copier": output_of([str(tools.copier), "--version"]).removeprefix("copier "),
        "cookiecutter-data-science (ccds)": ccds_version,
        "uv": output_of([*tools.uv, "--version"]),
        "git": output_of(["git", "--version"]),
        "template": str(template),
        "template commit": output_of(["git", "describe", "--always", "--dirty"], cwd=template),
        "ccds template": str(ccds_template) if ccds_template else "none found",
        "ccds answers": " ".join(f"{key}={value}" for key, value in CCDS_ANSWERS.items()),
        "bytecode cache": bytecode_cache,
        "load average at start": load_average(),
    }


def run_stage(keys: list[str], rows: dict[str, Row], stage: Callable[[], None]) -> bool:
    """Run one group of measurements; on failure keep no partial samples and say why."""
    try:
        stage()
    except BenchError as error:
        progress(f"failed: {error}")
        for key in keys:
            rows[key].samples.clear()
            if not rows[key].not_measured:
                rows[key].not_measured = f"failed: {str(error).splitlines()[0]}"
        return False
    return True


def cpu_medians(cpu: dict[str, list[float]]) -> dict[str, float]:
    """Median CPU seconds of each timed row (warm-up runs left out)."""
    return {
        label: statistics.median(samples)
        for label, samples in cpu.items()
        if samples and not label.startswith("warmup")
    }


def print_report(
    info: dict[str, str],
    rows: dict[str, Row],
    phases: list[dict[str, float]],
    cpu: dict[str, float],
    args: argparse.Namespace,
) -> None:
    """Print the Markdown report on stdout."""
    print("## Generation speed\n")
    for key, value in info.items():
        print(f"- {key}: {value}")
    print(
        f"- runs: {args.repeat} timed per generation row, {args.repeat_green} for time to "
        "green, each row after one untimed "
        "warm-up run"
    )
    print("- environment: UV_PYTHON_DOWNLOADS=never, PRE_COMMIT_HOME in a temporary folder\n")
    print(markdown_table(list(rows.values())))
    if cpu:
        line = ", ".join(f"{label} {value:.2f} s" for label, value in cpu.items())
        print(f"\nCPU time (user + system of every process of a run), medians: {line}.")
        if cpu.get("ccds") and "copier" in cpu and "floor" in cpu:
            print(
                "By CPU time, which other jobs on the machine move less: ratio to ccds "
                f"{cpu['copier'] / cpu['ccds']:.2f}, over the floor "
                f"{cpu['copier'] - cpu['floor']:.2f} s."
            )
    if phases:
        medians = {name: statistics.median(run[name] for run in phases) for name in phases[0]}
        print(
            "\nTime to green, median of each phase (wall, then CPU of its processes): "
            + ", ".join(f"{name} {value:.2f} s" for name, value in medians.items())
        )
        print(
            f"Copy with tasks + `uv run nox` (issue #13's measure): {medians['copy + nox']:.2f} s "
            f"against {TARGET_GREEN_SECONDS:.0f} s; with pre-commit: {medians['total']:.2f} s."
        )


def main(argv: list[str] | None = None) -> int:
    """Measure, print the report and write the JSON."""
    args = parse_args(argv)
    tools = resolve_tools(args.uv)
    template = args.template.resolve()
    source_ccds_template = find_ccds_template(args.ccds_template, tools.ccds)
    rows = {
        "copier": Row(
            "`copier copy --defaults --trust --skip-tasks` (this template)",
            f"ratio to ccds <= {TARGET_RATIO:.1f}",
        ),
        "floor": Row("`copier copy --defaults` of a one-file template (Copier's floor)", "-"),
        "overhead": Row(
            "this template's own time: row 1 minus row 2, run by run",
            f"<= {TARGET_OVERHEAD_SECONDS:.1f} s",
        ),
        "same": Row(
            "`copier copy --defaults` of the default project's files as a template with "
            "nothing to render",
            "-",
        ),
        "per-file": Row(
            "Copier's own cost of those files: the row above minus the one-file floor, run by run",
            "-",
        ),
        "ccds": Row("`ccds --no-input` (local template checkout)", "-"),
        "tasks": Row(
            "`copier copy --defaults --trust` with tasks (uv lock, git commit)",
            f"<= {TARGET_WITH_TASKS_SECONDS:.0f} s",
        ),
        "green": Row(
            "time to green: copy with tasks + `uv run nox` + `uv run pre-commit run --all-files`",
            f"<= {TARGET_GREEN_SECONDS:.0f} s",
        ),
    }
    if tools.ccds is None:
        rows["ccds"].not_measured = "left out: ccds is not installed"
    elif source_ccds_template is None:
        rows["ccds"].not_measured = "left out: no local ccds template (see --help)"
    if args.skip_generation:
        for key in ("copier", "floor", "overhead", "same", "per-file", "ccds", "tasks"):
            rows[key].not_measured = "left out (--skip-generation)"
    if args.skip_green:
        rows["green"].not_measured = "left out (--skip-green)"

    scratch = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    env = child_environment(scratch, args.bytecode_cache, tools.uv_bin_dir)
    info = machine_info(tools, template, source_ccds_template, args.bytecode_cache)
    bench = Bench(tools, snapshot_template(template, scratch), scratch, env)
    phases: list[dict[str, float]] = []
    started = time.perf_counter()
    try:
        ccds_template = None
        wanted = tools.ccds is not None and not args.skip_generation
        if source_ccds_template is not None and wanted:
            ccds_template = scratch / "ccds-template"
            shutil.copytree(source_ccds_template, ccds_template, symlinks=True)
        stages: list[tuple[list[str], Callable[[], None]]] = []
        if not args.skip_generation:
            stages += [
                (
                    ["copier", "floor", "overhead", "same", "per-file", "ccds"],
                    lambda: measure_side_by_side(bench, rows, args.repeat, ccds_template),
                ),
                (["tasks"], lambda: measure_with_tasks(bench, rows["tasks"], args.repeat)),
            ]
        if not args.skip_green:
            stages.append(
                (["green"], lambda: measure_green(bench, rows["green"], args.repeat_green, phases))
            )
        succeeded = [run_stage(keys, rows, stage) for keys, stage in stages]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.perf_counter() - started
    info["load average at end"] = load_average()
    judge(rows)

    if not rows["green"].samples:
        phases.clear()
    cpu = cpu_medians(bench.cpu)
    print_report(info, rows, phases, cpu, args)
    print(f"\nWhole benchmark: {elapsed:.0f} s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": info,
        "settings": {
            "repeat": args.repeat,
            "repeat_green": args.repeat_green,
            "skip_generation": args.skip_generation,
            "skip_green": args.skip_green,
            "ccds_answers": CCDS_ANSWERS,
            "uv_command": args.uv,
            "environment": {"UV_PYTHON_DOWNLOADS": "never"},
        },
        "rows": {
            key: {**asdict(row), "median": row.median, "min": row.minimum}
            for key, row in rows.items()
        },
        "green_phases": phases,
        "cpu_seconds_median": cpu,
        "elapsed_seconds": elapsed,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"Raw numbers: {args.output}")
    return 0 if all(succeeded) else 1


if __name__ == "__main__":
    sys.exit(main())
