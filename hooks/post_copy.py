"""After a copy: infer the feature schema from the user's data, lock, then make the first commit.

Runs in the new project's directory as a list-form Copier task (no shell), reading the answers it
needs from the answers file rather than from its command line. Its one argument is the folder
copier ran in, which a relative data_path is read from.

`uv lock` takes most of the task's time, waiting on the package index; git's share of the first
commit (init, hashing every file into the index) runs meanwhile.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

LOCK_TIMEOUT_SECONDS = 300
# Rows the baseline's rules are chosen from: enough for stable rates, quick in pure Python.
RULE_ROWS = 20_000
ANSWERS_FILE = Path(".copier-answers.yml")
CONTRACT_FILE = Path("ml_contract.yaml")
# Adopting a repository: where the template's versions of the files the copy kept are written.
TEMPLATE_VERSIONS = Path(".template-versions")


def say(message: str) -> None:
    """Print a line of progress where Copier prints its own."""
    print(f"  {message}", file=sys.stderr, flush=True)


def uv_command() -> list[str] | None:
    """How to run uv here: from PATH, or as a module of the interpreter running Copier."""
    found = shutil.which("uv")
    if found:
        return [found]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    return None


def run_uv(command: list[str]) -> str | None:
    """Run one uv command; None when it succeeds, else why not in one line."""
    return finish_uv(start_uv(command))


def start_uv(command: list[str]) -> subprocess.Popen[str]:
    """Start a uv command in the background, its output captured."""
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_uv(process: subprocess.Popen[str]) -> str | None:
    """Wait for a uv command; None when it succeeded, else why not in one line."""
    try:
        _, stderr = process.communicate(timeout=LOCK_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return "timed out"
    if process.returncode == 0:
        return None
    return reason(stderr)


def reason(stderr: str) -> str:
    """The line of a tool's error output that says what went wrong, cut to one screen line.

    uv (and pyenv shims in front of it) end with hints or a bare path; the first line that
    starts like an error is the one to show, else the last line that has words in it.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    chosen = next(
        (line for line in lines if line.lower().startswith(("error", "pyenv:", "fatal"))),
        next((line for line in reversed(lines) if any(c.isalpha() for c in line)), "?"),
    )
    printable = "".join(c if c.isprintable() else "?" for c in chosen)
    return printable if len(printable) <= 200 else printable[:197] + "..."


def start_lock() -> subprocess.Popen[str] | None:
    """Start writing uv.lock; None, having said what to do, when uv is not installed."""
    uv = uv_command()
    if uv is None:
        say("uv is not installed, so uv.lock was not written. Install uv, then run: uv lock")
        return None
    say("resolving dependencies into uv.lock ...")
    return start_uv([*uv, "lock", "--quiet"])


def finish_lock(locking: subprocess.Popen[str] | None) -> bool:
    """Wait for uv.lock; say plainly what to run later when it could not be written now."""
    if locking is None:
        return False
    reason = finish_uv(locking)
    if reason is not None:
        say(f"could not write uv.lock ({reason}).")
        say("When the package registry is reachable, run: uv lock && git add uv.lock && git commit")
        return False
    return True


def git(*args: str) -> subprocess.CompletedProcess[str]:
    """Run git in the project, capturing its output."""
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def prepare_first_commit() -> list[str] | None:
    """Initialise git (unless the project is already inside a work tree) and stage every file.

    Returns the options that give the commit an author, or None when no commit is to be made
    (git is missing, or the project sits in an existing history).
    """
    if shutil.which("git") is None:
        say("git is not installed: initialise a repository before running `copier update`.")
        return None
    if git("rev-parse", "--is-inside-work-tree").returncode != 0:
        git("init", "--quiet", "--initial-branch=main")
    if git("rev-parse", "--verify", "--quiet", "HEAD").returncode == 0:
        say(
            "the project sits in an existing git history: review and commit the new files yourself."
        )
        return None
    identity: list[str] = []
    if not git("config", "user.email").stdout.strip():
        given = answers()
        identity = [
            "-c",
            f"user.name={given.get('author_name', 'ML Team')}",
            "-c",
            f"user.email={given.get('author_email', 'ml-team@example.com')}",
        ]
    git("add", "--all")
    return identity


def first_commit(identity: list[str]) -> None:
    """Commit everything, staging again what changed since prepare_first_commit (uv.lock)."""
    git("add", "--all")
    committed = git(*identity, "commit", "--quiet", "--no-verify", "-m", "Start the project")
    if committed.returncode != 0:
        say(f"git commit failed: {committed.stderr.strip()}")
    else:
        say("initialised git and made the first commit")


def answers() -> dict[str, Any]:
    """The answers Copier recorded for this project."""
    return yaml.safe_load(ANSWERS_FILE.read_text(encoding="utf-8")) or {}


def data_file(given: str, copier_dir: Path) -> Path:
    """Where the data file is: a relative answer is read from the folder copier ran in."""
    path = Path(given).expanduser()
    return path if path.is_absolute() else copier_dir / path


def point_contract_at(given: str, found: Path) -> None:
    """Make the contract's data.path name the file from the project, when the answer does not.

    A path relative to where copier ran is rewritten relative to the project (absolute when
    the two share nothing but the root), so that `collect` finds the same file.
    """
    project = Path.cwd()
    if (project / Path(given)).resolve() == found.resolve():
        return
    try:
        relative = Path(os.path.relpath(found.resolve(), project.resolve()))
    except ValueError:  # another drive on Windows
        relative = found.resolve()
    shared = Path(os.path.commonpath([found.resolve(), project.resolve()]))
    written = found.resolve() if shared == Path(shared.anchor) else relative
    line = f"  path: {json.dumps(given, ensure_ascii=False)}\n"
    contract = CONTRACT_FILE.read_text(encoding="utf-8")
    if line not in contract:
        say(f"set data.path in {CONTRACT_FILE} to {written} (the path from the project)")
        return
    replacement = f"  path: {json.dumps(str(written), ensure_ascii=False)}\n"
    CONTRACT_FILE.write_text(contract.replace(line, replacement, 1), encoding="utf-8")
    say(f"data.path in {CONTRACT_FILE} is {written}, as seen from the project")


def names(answer: str) -> list[str]:
    """The names in a comma-separated answer."""
    return [name.strip() for name in answer.split(",") if name.strip()]


def load_infer(package: str, module: str = "data/infer.py") -> ModuleType:
    """One of the project's standard-library modules (schema inference, rule fitting), by path.

    They need the standard library only, while the package's other modules need pandas, which
    Copier's interpreter lacks.
    """
    location = Path("src") / package / module
    name = f"_{package}_{location.stem}_for_post_copy"
    spec = importlib.util.spec_from_file_location(name, location)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {location}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def own_data(copier_dir: Path) -> None:
    """Write the feature schema from the user's CSV file; otherwise say what to run later."""
    given = answers()
    source = given.get("data_source", "demo")
    if source == "demo":
        return
    package, slug = given["package_name"], given["project_slug"]
    schema_file = Path("src") / package / "schema.py"
    later = f"uv run {slug} schema infer --write"
    if source == "sql":
        say(
            f"{schema_file} still describes the demo data: set {package.upper()}_DATABASE_URL "
            f"in .env, then run: {later}"
        )
        return
    answer = str(given.get("data_path", ""))
    path = data_file(answer, copier_dir)
    point_contract_at(answer, path)
    if not path.is_file() or not os.access(path, os.R_OK):
        reason = "not a readable file" if path.exists() else "not found"
        say(
            f"{path}: {reason}, so {schema_file} still describes the demo data. Once the file is "
            f"in place, run: {later}"
        )
        return
    if source != "csv":
        return  # Parquet needs the project's own packages: infer_in_project runs after the lock
    infer = load_infer(package)
    started = time.perf_counter()
    try:
        schema = infer.infer_csv(
            path,
            target=given["target_name"],
            task=given["task_type"],
            sensitive=names(given.get("sensitive_features", "")),
            positive=given.get("positive_value"),
            classes=names(given.get("class_labels", "")),
            labelled=given.get("data_availability") != "unlabelled",
        )
    except infer.InferenceError as error:
        say(f"{error}")
        say(f"{schema_file} still describes the demo data: fix the data or the answer, then run:")
        say(f"  {later}")
        return
    schema_file.write_text(infer.schema_source(schema, command=f"uv run {slug}"), encoding="utf-8")
    seconds = time.perf_counter() - started
    say(f"wrote {schema_file} from {path.name} in {seconds:.1f} s: {schema.summary()}")
    for warning in schema.warnings:
        say(f"note: {warning}")
    fit_rules(infer, schema, path, given)


def fit_rules(infer: ModuleType, schema: Any, path: Path, given: dict[str, Any]) -> None:
    """Choose the baseline's rules from a sample of the file and write them between its markers.

    On any problem the demo's rules stay and one line says how to choose them later.
    """
    package, slug = given["package_name"], given["project_slug"]
    baseline = Path("src") / package / "model" / "baseline.py"
    later = f"uv run {slug} baseline rules --write"
    rules = load_infer(package, "model/rules.py")
    started = time.perf_counter()
    try:
        sample = infer.sample_csv(path, RULE_ROWS)
        rows = [
            dict(zip(sample.columns, row, strict=False)) for chunk in sample.chunks for row in chunk
        ]
        inputs = rules.rule_inputs([column for column in schema.columns if column.is_input])
        task = given["task_type"]
        decision = given.get(
            "prediction_quantile" if task == "regression" else "decision_threshold"
        )
        block = rules.rules_block(
            task,
            rows,
            target=schema.target.name,
            numeric=[column.name for column in inputs if column.kind in ("integer", "number")],
            categorical={
                column.name: column.categories for column in inputs if column.kind == "category"
            },
            target_values=schema.target.values,
            decision=float(decision) if decision is not None else None,
        )
        text = baseline.read_text(encoding="utf-8")
        baseline.write_text(rules.replace_block(text, block, str(baseline)), encoding="utf-8")
    except (OSError, ValueError, infer.InferenceError) as error:
        say(f"{baseline} keeps the demo's rules ({error}); choose them later with: {later}")
        return
    seconds = time.perf_counter() - started
    say(f"chose the baseline's rules in {baseline} from {len(rows):,} rows in {seconds:.1f} s")


def infer_in_project(given: dict[str, Any], locked: bool) -> None:
    """Parquet: infer the schema and the rules with the project's own packages, once locked."""
    if given.get("data_source") != "parquet":
        return
    uv = uv_command()
    schema_file = Path("src") / given["package_name"] / "schema.py"
    if uv is None or not locked:
        slug = given["project_slug"]
        say(
            f"{schema_file} still describes the demo data: Parquet needs the project's own "
            f"packages, so once `uv lock` works run: uv run {slug} schema infer --write && "
            f"uv run {slug} baseline rules --write"
        )
        return
    say("inferring the feature schema and the baseline's rules with the project's packages ...")
    module = ["run", "--frozen", "--quiet", "python", "-m", given["package_name"]]
    for step in (["schema", "infer", "--write"], ["baseline", "rules", "--write"]):
        last = run_uv([*uv, *module, *step])
        if last is not None:
            command = " ".join(step)
            slug = given["project_slug"]
            say(f"could not run `{command}` ({last}); run it later: uv run {slug} {command}")
            return
    say(f"wrote {schema_file} and the baseline's rules from the Parquet file")


def pin_template_path(copier_dir: Path) -> None:
    """Record a template copied from a relative local path by its absolute path.

    Copier stores the path as given, so `copier update` run from inside the project would look
    for ./template relative to the project and fail with a message about git-tracked templates.
    URLs and absolute paths are left as they are.
    """
    text = ANSWERS_FILE.read_text(encoding="utf-8")
    source = str(answers().get("_src_path", ""))
    if not source or "://" in source or source.startswith(("gh:", "gl:", "git@", "/", "~")):
        return
    found = (copier_dir / source).resolve()
    if not found.is_dir():
        return
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines):
        if line.startswith("_src_path:"):
            lines[number] = f"_src_path: {json.dumps(str(found), ensure_ascii=False)}\n"
            ANSWERS_FILE.write_text("".join(lines), encoding="utf-8")
            say(f"recorded the template as {found} (copied from the relative path {source})")
            return


def adopting() -> bool:
    """Whether the copy went into a repository that already has commits (an adoption)."""
    return shutil.which("git") is not None and (
        git("rev-parse", "--verify", "--quiet", "HEAD").returncode == 0
    )


def keep_template_versions() -> list[str]:
    """Adopting: write the template's version of each file the copy kept as the user's.

    `copier copy --skip '*'` keeps every existing file; the template's pyproject.toml,
    .gitignore or README would then be nowhere to merge from. They go to TEMPLATE_VERSIONS,
    under the same relative paths, for the user to merge and then delete.
    """
    from migrate import render_release  # the hook folder is not a package

    kept: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        rendered = Path(scratch) / "fresh"
        render_release(answers(), rendered)
        for source in sorted(path for path in rendered.rglob("*") if path.is_file()):
            relative = source.relative_to(rendered)
            if relative == ANSWERS_FILE or relative.parts[0] == ".git":
                continue
            if relative.is_file() and relative.read_bytes() != source.read_bytes():
                (TEMPLATE_VERSIONS / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, TEMPLATE_VERSIONS / relative)
                kept.append(relative.as_posix())
    if kept:
        shown = ", ".join(kept[:6]) + (f" and {len(kept) - 6} more" if len(kept) > 6 else "")
        say(
            f"kept {len(kept)} file(s) of yours ({shown}); the template's versions are in "
            f"{TEMPLATE_VERSIONS}/: merge them, pyproject.toml first, then delete the folder"
        )
    return kept


def shadowing_package() -> None:
    """Adopting: a top-level package named like the project's would be imported instead of it."""
    package = str(answers().get("package_name", ""))
    if package and ((Path(package) / "__init__.py").is_file() or Path(f"{package}.py").is_file()):
        say(
            f"{package} at the top of the repository shadows src/{package} (Python imports it "
            f"first): move it out of the way, e.g. git mv {package} legacy, or copy again with "
            f"--data package_name=another_name"
        )


def main() -> int:
    """Infer the schema, lock, then commit: the first commit holds both whenever they exist."""
    copier_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    pin_template_path(copier_dir)
    kept: list[str] = []
    if adopting():
        kept = keep_template_versions()
        shadowing_package()
    own_data(copier_dir)
    locking = None
    if "pyproject.toml" in kept:
        say("uv.lock is for the merged pyproject.toml: once it is merged, run uv lock")
    else:
        locking = start_lock()
    # git hashes the project into its index while uv waits on the package index; the commit
    # stages again whatever the lock and the Parquet inference wrote meanwhile.
    identity = prepare_first_commit()
    locked = finish_lock(locking)
    infer_in_project(answers(), locked=locked)
    if identity is not None:
        first_commit(identity)
    return 0


if __name__ == "__main__":
    sys.exit(main())
