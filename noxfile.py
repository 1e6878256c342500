"""Tasks of the template repository; CI calls the same sessions (see README.md)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import nox

# Sessions run in the environment `uv run` already synced from uv.lock: nothing is built twice.
nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).resolve().parent
DEMO = ROOT / "demo" / "customer-churn"
RELEASES = ROOT / "releases.toml"
VERSION = re.compile(r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\Z")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the template's test suite: questions, render matrix, hostile answers, end to end."""
    workers = "2" if (os.cpu_count() or 1) > 1 else "0"
    session.run("pytest", "-n", workers, "--durations=15", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and format-check the template's own Python code."""
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def demo(session: nox.Session) -> None:
    """Generate a project with the default answers from this checkout and run its pipeline."""
    import copier

    if DEMO.exists():
        session.log(f"replacing the previous demo in {DEMO}")
        shutil.rmtree(DEMO)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        copier.run_copy(str(ROOT), DEMO, defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    uv = shutil.which("uv") or sys.executable
    command = [uv] if uv != sys.executable else [uv, "-m", "uv"]
    subprocess.run([*command, "run", "nox", "-s", "pipeline"], cwd=DEMO, env=env, check=True)
    session.log(f"evaluation report: {DEMO / 'reports' / 'evaluation.md'}")
    session.log(f"model card: {DEMO / 'reports' / 'model_card.html'}")
    session.log(f"serve it with: cd {DEMO.relative_to(ROOT)} && uv run nox -s serve")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks and print their tables (numbers, not pass/fail)."""
    for script in sorted((ROOT / "bench").glob("[!_]*.py")):
        session.run("python", str(script), *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ with --strict: a broken link or page fails."""
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"), *session.posargs)


@nox.session
def workshop(session: nox.Session) -> None:
    """Run every workshop checkpoint in order in a scratch folder (`-- --fast` for the subset)."""
    session.run("python", str(ROOT / "tools" / "workshop.py"), *session.posargs)


@nox.session(name="release-tags")
def release_tags(session: nox.Session) -> None:
    """Recreate the release tags vX.Y.Z recorded in releases.toml (idempotent)."""
    releases = tomllib.loads(RELEASES.read_text(encoding="utf-8")).get("release", [])
    if not releases:
        session.error(f"{RELEASES.name} records no release: nothing to test updates from")
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        session.log("a shallow clone: fetching the history the releases were cut from")
        _git("fetch", "--quiet", "--unshallow")
    previous = None
    for release in releases:
        version, commit = str(release.get("version", "")), str(release.get("commit", ""))
        problem = _release_problem(version, commit, previous)
        if problem:
            session.error(f"{RELEASES.name}: {version or '?'}: {problem}")
        tagged = _git("rev-parse", "--verify", "--quiet", f"refs/tags/{version}^{{commit}}")
        if tagged.returncode == 0:
            if tagged.stdout.strip() != _git("rev-parse", commit).stdout.strip():
                session.error(f"tag {version} points elsewhere than {commit[:12]}: delete it first")
            session.log(f"{version} is already tagged at {commit[:12]}")
        else:
            message = f"{version}: {release.get('notes', '')}".strip()
            created = _git("tag", "--annotate", "--message", message, version, commit)
            if created.returncode != 0:
                session.error(f"cannot tag {version}: {created.stderr.strip()}")
            session.log(f"tagged {version} at {commit[:12]}")
        previous = commit


def _release_problem(version: str, commit: str, previous: str | None) -> str | None:
    """Why a recorded release cannot be tagged, or None when it can."""
    if not VERSION.match(version):
        return "a version is written vMAJOR.MINOR.PATCH"
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        return f"commit {commit[:12] or '?'} is not in this clone (fetch the full history)"
    changelog = _git("show", f"{commit}:CHANGELOG.md").stdout
    if not re.search(rf"^## {re.escape(version)}\b", changelog, flags=re.MULTILINE):
        return f"the CHANGELOG.md of commit {commit[:12]} does not name {version}"
    if previous and _git("merge-base", "--is-ancestor", previous, commit).returncode != 0:
        return f"commit {commit[:12]} does not come after the previous release's"
    return None


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "user.name=release-tags", "-c", "user.email=release-tags@localhost", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
