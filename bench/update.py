"""Benchmark `copier update`: a project with 50 commits of history, from one release to another.

Run it from the repository root with the dev environment's interpreter:

    .venv/bin/python bench/update.py                    # oldest -> newest recorded release
    .venv/bin/python bench/update.py --releases built   # two releases built from this checkout
    .venv/bin/python bench/update.py --help

By default it clones this repository into a temporary folder, tags the oldest and newest
releases of releases.toml there, and generates a project from the oldest whose users made 49
more commits. With --releases built it instead makes two releases of this checkout as it is
(v0.1.0 as it is, v0.2.0 with a few maintainer changes, checked to arrive). It then times
`copier update` to the newer release on a fresh clone of that project for every run, with two
references: the same update on a project with one commit and `copier copy` of the newer
release. Every update is checked (answers at the new release, no .rej file, no conflict
marker, user work kept). It prints a Markdown report and writes the raw numbers to
bench/results/update.json. Each update includes the release's migrations and the post-update
lock step (the generated projects have no uv.lock, so it only says so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
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
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "update.json"
COMMAND_TIMEOUT_SECONDS = 300

OLD_RELEASE = "v0.1.0"
NEW_RELEASE = "v0.2.0"
ANSWERS_FILE = ".copier-answers.yml"
TARGET_UPDATE_SECONDS = 5.0
CONFLICT_MARKERS = ("<<<<<<< ", ">>>>>>> ")

# Who commits in the scratch repositories, the user's global git configuration aside.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}

# What a maintainer changes between the two releases: (file under the template repository,
# text that must be there, its replacement). Each change must land in an updated project.
NOXFILE_DOCSTRING = '"""Run the unit tests (pytest)."""'
README_HEADING = "## Two commands to start"
RELEASE_EDITS = [
    ("template/noxfile.py.jinja", '"""Run the unit tests."""', NOXFILE_DOCSTRING),
    ("template/README.md.jinja", "## Two commands\n", README_HEADING + "\n"),
    (
        "template/.github/workflows/ci.yml.jinja",
        "  lint:\n    name: lint\n    runs-on: ubuntu-latest\n",
        "  lint:\n    name: lint\n    runs-on: ubuntu-latest\n    timeout-minutes: 15\n",
    ),
]
PRE_COMMIT_HOOK = (
    "      - id: check-json\n"
    "        name: JSON parses\n"
    "        entry: uv run check-json\n"
    "        language: system\n"
    "        require_serial: true\n"
    "        types: [json]\n"
)
RUNBOOK = "docs/runbook.md"
RUNBOOK_TEXT = "# Runbook\n\nWhat to do when the served model misbehaves.\n"

# Files only the project's users write; an update must leave them as they were committed.
USER_TITLE = "# Churn Radar"
NOTES = "NOTES.md"
FEATURES = "features"


@dataclass
class Project:
    """A generated project kept as a git repository, cloned afresh for every timed update."""

    path: Path
    package: str
    commits: int


def history_length(text: str) -> int:
    """Parse a number of commits: the first one plus at least one user commit."""
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError("give a whole number of at least 2")
    return value


def recorded_releases(source: Path) -> tuple[str, str]:
    """The oldest and newest releases in the checkout's releases.toml."""
    path = source / "releases.toml"
    if not path.is_file():
        raise BenchError(f"{source} has no releases.toml: use --releases built")
    versions = [r["version"] for r in tomllib.loads(path.read_text("utf-8")).get("release", [])]
    if len(versions) < 2:
        raise BenchError(f"{path} records fewer than two releases: use --releases built")
    return versions[0], versions[-1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description=(
            "Time `copier update --trust --defaults --skip-answered --vcs-ref NEW` "
            "on a project generated from OLD of this template with a history of "
            f"user commits (target <= {TARGET_UPDATE_SECONDS:.0f} s), beside the same update "
            "on a project with one commit and `copier copy --skip-tasks` of NEW. "
            "Prints a Markdown report and writes the raw numbers as JSON."
        ),
        epilog=(
            "With --releases recorded (the default), OLD and NEW are the oldest and newest "
            "releases in releases.toml, tagged in a clone of --template. With --releases built, "
            "they are built in a temporary git repository from the files git lists "
            "in --template (tracked and untracked, not ignored, uncommitted changes included): "
            f"{OLD_RELEASE} as they are, {NEW_RELEASE} with a changed noxfile docstring, README "
            f"heading, CI job and pre-commit hook plus a new {RUNBOOK}. Every update runs on a "
            "fresh `git clone` of the project (the clone is not timed), with "
            "UV_PYTHON_DOWNLOADS=never, no standard input and a fixed git identity; each row "
            "starts with one untimed warm-up run. Exits 1, with the error and no timings, "
            "when a command fails or an update leaves conflicts or loses work."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=5,
        help="timed runs of each row, taking turns",
    )
    parser.add_argument(
        "--commits",
        type=history_length,
        default=50,
        help="commits in the project's history: the generated project, then user edits",
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=REPO_ROOT,
        help="git checkout of copier-mlops whose files make the two releases",
    )
    parser.add_argument(
        "--releases",
        choices=["recorded", "built"],
        default="recorded",
        help="update between the oldest and newest recorded releases, or two built ones",
    )
    add_bytecode_option(parser)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folder (template releases and projects) and print its path",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="where to write the raw numbers as JSON",
    )
    return parser.parse_args(argv)


def find_copier() -> Path:
    """Copier beside this interpreter, in the repository's .venv, then on PATH."""
    for folder in (Path(sys.executable).parent, REPO_ROOT / ".venv" / "bin"):
        candidate = folder / "copier"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("copier")
    if found is None:
        sys.exit("copier not found: run this with the dev environment (.venv/bin/python).")
    return Path(found)


def child_environment(scratch: Path, bytecode_cache: str) -> dict[str, str]:
    """Environment of every command, measured or not."""
    env = measuring_environment(scratch, bytecode_cache)
    env.update(GIT_IDENTITY)
    return env


def run(
    cmd: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command with no input; raise BenchError with its output when it fails."""
    try:
        result = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"timed out after {error.timeout} s: {shlex.join(cmd)}") from error
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-30:])
        where = f" (in {cwd})" if cwd else ""
        raise BenchError(f"exited with {result.returncode}{where}: {shlex.join(cmd)}\n{tail}")
    return result


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    """Run a command to the end; return its wall time in seconds."""
    start = time.perf_counter()
    run(cmd, env, cwd)
    return time.perf_counter() - start


def replace_once(path: Path, old: str, new: str) -> None:
    """Replace one exact piece of text, failing loudly if the file no longer holds it."""
    text = path.read_text(encoding="utf-8")
    if old not in text:
        raise BenchError(
            f"{path.name} no longer holds {old!r}: adjust the edits in bench/update.py"
        )
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def append(path: Path, text: str) -> None:
    """Add text at the end of a file, creating it and its folder when needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as stream:
        stream.write(text)


class Bench:
    """Builds the template releases and projects in one scratch folder, then times runs."""

    def __init__(
        self, copier: Path, source: Path, scratch: Path, env: dict[str, str], recorded: bool
    ) -> None:
        """Keep what every step needs; `recorded` takes the releases from releases.toml."""
        self.copier = copier
        self.source = source
        self.scratch = scratch
        self.env = env
        self.template = scratch / "template"
        self.runs = 0
        self.recorded = recorded
        self.old, self.new = recorded_releases(source) if recorded else (OLD_RELEASE, NEW_RELEASE)

    def git(self, repository: Path, *args: str) -> str:
        """Run git in a repository and return what it printed."""
        return run(["git", *args], self.env, cwd=repository).stdout

    def commit_all(self, repository: Path, message: str) -> None:
        """Stage every change and commit it."""
        self.git(repository, "add", "--all")
        self.git(repository, "commit", "--quiet", "--no-verify", "-m", message)

    def build_template(self) -> Path:
        """The two releases: recorded ones in a clone, or two built from the checkout."""
        if self.recorded:
            return self.clone_releases()
        listed = run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            self.env,
            cwd=self.source,
        ).stdout.split("\0")
        for name in filter(None, listed):
            origin = self.source / name
            if origin.is_file():
                (self.template / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, self.template / name)
        if not (self.template / "copier.yml").is_file():
            raise BenchError(f"{self.source} has no copier.yml: give a copier-mlops checkout")
        self.git(self.template, "init", "--quiet", "--initial-branch=main")
        self.commit_all(self.template, "Release 0.1.0")
        self.git(self.template, "tag", self.old)
        for name, old, new in RELEASE_EDITS:
            replace_once(self.template / name, old, new)
        append(self.template / "template" / ".pre-commit-config.yaml", PRE_COMMIT_HOOK)
        append(self.template / "template" / RUNBOOK, RUNBOOK_TEXT)
        self.commit_all(self.template, "Release 0.2.0")
        self.git(self.template, "tag", self.new)
        return self.template

    def clone_releases(self) -> Path:
        """A clone of the source repository with the tags of its oldest and newest release."""
        run(["git", "clone", "--quiet", str(self.source), str(self.template)], self.env)
        record = tomllib.loads((self.source / "releases.toml").read_text(encoding="utf-8"))
        for release in record["release"]:
            if release["version"] in (self.old, self.new):
                self.git(self.template, "tag", "--force", release["version"], release["commit"])
        return self.template

    def copy_command(self, ref: str, destination: Path) -> list[str]:
        """`copier copy` of one release with default answers and no tasks."""
        return [
            str(self.copier),
            "copy",
            "--defaults",
            "--trust",
            "--skip-tasks",
            "--vcs-ref",
            ref,
            str(self.template),
            str(destination),
        ]

    def make_project(self, name: str, commits: int) -> Project:
        """A project generated from the old release, then edited by users in commits - 1 commits."""
        path = self.scratch / name
        run(self.copy_command(self.old, path), self.env)
        package = answer(path, "package_name")
        self.git(path, "init", "--quiet", "--initial-branch=main")
        self.commit_all(path, "Start the project")
        for number in range(1, commits):
            message = edit_like_a_user(path, package, number)
            self.commit_all(path, message)
        count = self.git(path, "rev-list", "--count", "HEAD").strip()
        if count != str(commits):
            raise BenchError(f"{path} has {count} commits, not {commits}")
        return Project(path=path, package=package, commits=commits)

    def fresh_destination(self, label: str) -> Path:
        """A new path for one run's output."""
        self.runs += 1
        return self.scratch / "runs" / f"{self.runs:03d}-{label}"

    def update(self, project: Project) -> float:
        """Time `copier update` to the new release on a fresh clone, then check the result."""
        clone = self.fresh_destination(f"update-{project.commits}")
        try:
            run(["git", "clone", "--quiet", str(project.path), str(clone)], self.env)
            cmd = [
                str(self.copier),
                "update",
                "--trust",
                "--defaults",
                "--skip-answered",
                "--vcs-ref",
                self.new,
            ]
            try:
                elapsed = timed(cmd, self.env, cwd=clone)
            except BenchError as error:
                raise BenchError(
                    f"copier update ({project.commits} commits) failed: {error}"
                ) from error
            self.check_update(clone, project)
            return elapsed
        finally:
            shutil.rmtree(clone, ignore_errors=True)

    def copy(self) -> float:
        """Time `copier copy` of the new release into an empty folder."""
        destination = self.fresh_destination("copy")
        try:
            elapsed = timed(self.copy_command(self.new, destination), self.env)
            if answer(destination, "_commit") != self.new:
                raise BenchError(f"copier copy did not record {self.new} in {ANSWERS_FILE}")
            return elapsed
        finally:
            shutil.rmtree(destination, ignore_errors=True)

    def check_update(self, clone: Path, project: Project) -> None:
        """Raise BenchError unless the update brought the new release and lost nothing."""
        problems: list[str] = []
        commit = answer(clone, "_commit")
        if commit != self.new:
            problems.append(f"{ANSWERS_FILE} says _commit: {commit}, not {self.new}")
        rejected = sorted(
            str(path.relative_to(clone))
            for path in clone.rglob("*.rej")
            if ".git" not in path.relative_to(clone).parts
        )
        if rejected:
            problems.append("rejected hunks: " + ", ".join(rejected))
        listed = self.git(clone, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
        conflicted = sorted(
            name
            for name in set(filter(None, listed.split("\0")))
            if (clone / name).is_file() and has_conflict_markers(clone / name)
        )
        if conflicted:
            problems.append("conflict markers in " + ", ".join(conflicted))
        readme = read(clone / "README.md")
        if not self.recorded:
            if not (clone / RUNBOOK).is_file():
                problems.append(f"the new {RUNBOOK} did not arrive")
            if NOXFILE_DOCSTRING not in read(clone / "noxfile.py"):
                problems.append("the noxfile change did not arrive")
            if README_HEADING not in readme:
                problems.append("the README change did not arrive")
        if project.commits > 1 and not readme.startswith(USER_TITLE):
            problems.append("the user's README title was lost")
        user_paths = [NOTES, f"src/{project.package}/{FEATURES}"]
        changed = self.git(clone, "status", "--porcelain", "--", *user_paths).strip()
        if changed:
            problems.append("user files changed: " + " ".join(changed.split()))
        if problems:
            raise BenchError(
                f"copier update ({project.commits} commits) went wrong: " + "; ".join(problems)
            )


def read(path: Path) -> str:
    """Text of a file, or '' when it does not exist."""
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


def has_conflict_markers(path: Path) -> bool:
    """Whether a file holds a line that starts a or ends a merge conflict."""
    return any(line.startswith(CONFLICT_MARKERS) for line in read(path).splitlines())


def answer(project: Path, key: str) -> str:
    """One top-level value of a project's answers file, as written there."""
    for line in read(project / ANSWERS_FILE).splitlines():
        name, separator, value = line.partition(":")
        if separator and name == key:
            return value.strip().strip("'\"")
    raise BenchError(f"{project / ANSWERS_FILE} has no {key}")


def edit_like_a_user(project: Path, package: str, number: int) -> str:
    """Make the user edit of commit `number`, away from what the new release changes.

    The edits take turns: a line of notes, a new feature module, a README line (the first
    one renames the title, far from the heading the release changes), a function added to an
    earlier module, and a test for a module. Returns the commit message.
    """
    features = project / "src" / package / FEATURES
    kind = number % 5
    if kind == 0:
        append(project / NOTES, f"- Decision {number}: keep the baseline until the gate moves.\n")
        return f"Notes: decision {number}"
    if kind == 1:
        if not (features / "__init__.py").exists():
            append(features / "__init__.py", '"""Features of our own."""\n')
        append(
            features / f"feature_{number:02d}.py",
            f'"""Feature {number}."""\n\n\n'
            f"def feature_{number:02d}(value: float) -> float:\n"
            f'    """Scale a value by {number}."""\n'
            f"    return value * {number}\n",
        )
        return f"Add feature {number}"
    if kind == 2:
        readme = project / "README.md"
        if not read(readme).startswith(USER_TITLE):
            text = read(readme)
            _, _, rest = text.partition("\n")
            readme.write_text(f"{USER_TITLE}\n{rest}", encoding="utf-8")
            append(readme, "\n## Team log\n\n")
        append(readme, f"- Week {number}: shipped what we planned.\n")
        return f"README: week {number}"
    modules = sorted(features.glob("feature_*.py"))
    module = modules[number % len(modules)]
    if kind == 3:
        append(
            module,
            f"\n\ndef helper_{number:02d}(value: float) -> float:\n"
            f'    """Shift a value by {number}."""\n'
            f"    return value + {number}\n",
        )
        return f"Extend {module.stem}"
    append(
        project / "tests" / "unit" / f"test_{module.stem}_{number:02d}.py",
        f'"""Tests of {module.stem}."""\n\n'
        f"from {package}.{FEATURES}.{module.stem} import {module.stem}\n\n\n"
        f"def test_{module.stem}_keeps_zero() -> None:\n"
        f'    """Zero stays zero."""\n'
        f"    assert {module.stem}(0.0) == 0.0\n",
    )
    return f"Test {module.stem}"


def machine_info(
    copier: Path, template: Path, args: argparse.Namespace, bench: Bench
) -> dict[str, str]:
    """What the numbers were measured with."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    copier_python = copier.parent / "python"
    python = str(copier_python) if copier_python.exists() else sys.executable
    return {
        "nproc": str(cores),
        "platform": platform.platform(),
        "python (copier's)": output_of(
            [python, "-c", "import platform; print(platform.python_version())"]
        ),
        "copier": output_of([str(copier), "--version"]).removeprefix("copier "),
        "git": output_of(["git", "--version"]),
        "template": str(template),
        "template commit": output_of(["git", "describe", "--always", "--dirty"], cwd=template),
        "releases": (
            f"{bench.old} -> {bench.new}, the oldest and newest in releases.toml"
            if bench.recorded
            else f"{bench.old} (this checkout) -> {bench.new} (changes in bench/update.py)"
        ),
        "project history": f"{args.commits} commits (1 generated + {args.commits - 1} user edits)",
        "bytecode cache": args.bytecode_cache,
        "load average at start": load_average(),
    }


def measure(bench: Bench, rows: dict[str, Row], projects: dict[str, Project], repeat: int) -> None:
    """All rows, after one warm-up run each, taking turns so that load hits them alike."""
    runs: dict[str, Callable[[], float]] = {
        "update": lambda: bench.update(projects["update"]),
        "update_one": lambda: bench.update(projects["update_one"]),
        "copy": bench.copy,
    }
    progress("warm-up: update (long history), update (1 commit), copy")
    for measure_once in runs.values():
        measure_once()
    for index in range(repeat):
        progress(f"run {index + 1}/{repeat}: update (long history), update (1 commit), copy")
        for key, measure_once in runs.items():
            rows[key].samples.append(measure_once())


def judge(rows: dict[str, Row], commits: int) -> dict[str, float]:
    """Fill in each row's verdict from the medians; return the ratios."""
    update, update_one, copy = (
        statistics.median(rows[key].samples) for key in ("update", "update_one", "copy")
    )
    verdict = "pass" if update <= TARGET_UPDATE_SECONDS else "miss"
    rows["update"].verdict = f"{update / TARGET_UPDATE_SECONDS:.2f} of target: {verdict}"
    ratios = {
        "update_over_copy": update / copy,
        f"update_{commits}_over_update_1": update / update_one,
    }
    rows["update_one"].verdict = f"update {commits} commits / 1 commit: {update / update_one:.2f}"
    rows["copy"].verdict = f"update ({commits} commits) / copy: {update / copy:.2f}"
    return ratios


def print_report(
    info: dict[str, str], rows: dict[str, Row], setup: float, args: argparse.Namespace
) -> None:
    """Print the Markdown report on stdout."""
    print("## Update speed\n")
    for key, value in info.items():
        print(f"- {key}: {value}")
    print(
        f"- runs: {args.repeat} timed per row, taking turns, after one untimed warm-up run "
        "each; every update on a fresh `git clone` (not timed) and checked afterwards"
    )
    print(
        "- environment: UV_PYTHON_DOWNLOADS=never, fixed git identity"
        + (", PYTHONPYCACHEPREFIX in a temporary folder" if args.bytecode_cache == "warm" else "")
    )
    print(f"- setup (template releases, projects and their history): {setup:.0f} s\n")
    print(markdown_table(list(rows.values()), last="verdict / ratio"))


def main(argv: list[str] | None = None) -> int:
    """Build the releases and projects, measure, print the report and write the JSON."""
    args = parse_args(argv)
    copier = find_copier()
    template = args.template.resolve()
    scratch = Path(tempfile.mkdtemp(prefix="bench-update-"))
    env = child_environment(scratch, args.bytecode_cache)
    try:
        bench = Bench(copier, template, scratch, env, recorded=args.releases == "recorded")
    except BenchError as error:
        progress(f"failed: {error}")
        shutil.rmtree(scratch, ignore_errors=True)
        return 1
    old, new = bench.old, bench.new
    update_command = f"`copier update --trust --defaults --skip-answered --vcs-ref {new}`"
    rows = {
        "update": Row(
            f"{update_command} from {old}, {args.commits} commits of history",
            f"<= {TARGET_UPDATE_SECONDS:.0f} s",
        ),
        "update_one": Row("the same update, 1 commit of history (reference)", "-"),
        "copy": Row(f"`copier copy --defaults --trust --skip-tasks` of {new} (reference)", "-"),
    }
    info = machine_info(copier, template, args, bench)
    started = time.perf_counter()
    try:
        progress(f"building the template releases {old} and {new}")
        bench.build_template()
        progress(f"generating a project from {old} with {args.commits} commits")
        projects = {"update": bench.make_project("project-long", args.commits)}
        progress(f"generating a project from {old} with 1 commit")
        projects["update_one"] = bench.make_project("project-one", 1)
        setup = time.perf_counter() - started
        measure(bench, rows, projects, args.repeat)
    except BenchError as error:
        progress(f"failed: {error}")
        if args.keep:
            progress(f"scratch folder kept: {scratch}")
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.perf_counter() - started
    info["load average at end"] = load_average()
    ratios = judge(rows, args.commits)

    print_report(info, rows, setup, args)
    print(
        f"\nRatios of medians: update / copy {ratios['update_over_copy']:.2f}, "
        f"update with {args.commits} commits / with 1 commit "
        f"{ratios[f'update_{args.commits}_over_update_1']:.2f}"
    )
    print(f"\nWhole benchmark: {elapsed:.0f} s")
    if args.keep:
        print(f"Scratch folder kept: {scratch}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": info,
        "settings": {
            "repeat": args.repeat,
            "commits": args.commits,
            "releases": [old, new],
            "update_command": update_command.strip("`"),
            "environment": {"UV_PYTHON_DOWNLOADS": "never", **GIT_IDENTITY},
        },
        "rows": {
            key: {**asdict(row), "median": row.median, "min": row.minimum}
            for key, row in rows.items()
        },
        "ratios": ratios,
        "setup_seconds": setup,
        "elapsed_seconds": elapsed,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"Raw numbers: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
