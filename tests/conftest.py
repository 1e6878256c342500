"""Fixtures that render the template from this checkout, the way Copier's own suite does."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import copier
import copier._main
import pytest

TEMPLATE = Path(__file__).resolve().parents[1]
GIT_IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
TASK_TYPES = (
    "binary_classification",
    "multiclass_classification",
    "regression",
    "anomaly_detection",
)
Render = Callable[..., Path]
# About how many seconds the longest end-to-end tests take in the suite on 2 quiet workers
# (issue #13; the workshop's is an estimate), for their order alone: nothing asserts them.
# An e2e test not named here counts as UNLISTED_E2E.
E2E_SECONDS = {
    "test_default_project_is_green_in_every_stage_and_serves_predictions": 215,
    "test_scale_out_project_scores_on_a_local_dask_cluster": 179,
    "test_demo_project_trains_a_champion_that_passes_its_checks": 70,
    "test_own_data_is_green_with_no_hand_edit": 120,
    "test_the_oldest_release_updates_to_green_over_a_file_the_team_wrote_first": 75,
    "test_adopting_a_cookiecutter_data_science_repository_reaches_green": 63,
    "test_fast_checkpoints_pass": 60,
}
UNLISTED_E2E = 30


def expected_seconds(item: pytest.Item) -> float:
    """About how long a test takes: its entry in E2E_SECONDS; the rest take seconds or less."""
    if item.get_closest_marker("e2e") is None:
        return 0
    name = getattr(item, "originalname", item.name)
    return E2E_SECONDS.get(name, UNLISTED_E2E)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first, the rest in the order they were collected.

    With `--maxschedchunk=1` (pyproject.toml's addopts) xdist hands each worker its next
    test as it frees up: the long projects spread over both workers from the start and the
    short tests fill in the gaps, so neither waits for the other at the end. Plain load
    scheduling instead deals a quarter of the tests up front in consecutive runs, which put
    every long test first in line on one worker.
    """
    items.sort(key=expected_seconds, reverse=True)


def template_files() -> list[str]:
    """The files of this checkout as they are now: tracked or new, never ignored ones."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return [name for name in listed if name and (TEMPLATE / name).is_file()]


def copy_checkout(destination: Path) -> Path:
    """This checkout's files, uncommitted changes included, copied to `destination`."""
    for name in template_files():
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE / name, destination / name)
    return destination


@functools.cache
def checkout_snapshot() -> Path:
    """One copy of this checkout per test process, outside git, removed when the process ends.

    Copier clones a git template for every copy (to apply uncommitted changes on top of HEAD);
    from a plain folder it reads the files in place: the same files, a second less per copy.
    """
    return copy_checkout(Path(process_folder("checkout")))


def render_project(destination: Path, answers: dict[str, Any], *, tasks: bool = False) -> Path:
    """Render this checkout, uncommitted changes included, with the defaults plus `answers`.

    Without its tasks, a copy into a new folder is a function of the answers alone: the
    template's files name no path, time or machine, and the answers file names the template's
    snapshot, which is this process's. So each set of answers is rendered once per test
    process and each test gets its own copy of the files (the template's tests ask for the
    same defaults 17 times and each answer matrix entry three times, 1-2 s of CPU a copy). The
    first copy of a set of answers renders into `destination` itself, so a refusal is always
    Copier's, in the test's own folder; so is a copy with tasks, or into a folder with files.
    """
    if tasks or (destination.exists() and any(destination.iterdir())):
        return copier_copy(destination, answers, tasks=tasks)
    key = repr(sorted(answers.items()))
    if key in _RENDERED:
        shutil.copytree(_RENDERED[key], destination, symlinks=True, dirs_exist_ok=True)
        return destination
    copier_copy(destination, answers, tasks=False)
    _RENDERED[key] = Path(process_folder("rendered")) / str(len(_RENDERED))
    shutil.copytree(destination, _RENDERED[key], symlinks=True)
    return destination


# The projects this test process rendered without tasks, by their answers (render_project).
_RENDERED: dict[str, Path] = {}


def copier_copy(destination: Path, answers: dict[str, Any], *, tasks: bool) -> Path:
    """`copier copy` of this checkout's snapshot with the defaults plus `answers`."""
    copier.run_copy(
        str(checkout_snapshot()),
        destination,
        data=answers,
        defaults=True,
        unsafe=True,
        skip_tasks=not tasks,
        quiet=True,
    )
    return destination


def in_git_work_tree(folder: Path) -> bool:
    """Whether git could find a repository at `folder`: a `.git` in it or above, or GIT_DIR set."""
    if "GIT_DIR" in os.environ:
        return True
    return any((parent / ".git").exists() for parent in (folder, *folder.parents))


@pytest.fixture(scope="session", autouse=True)
def no_git_for_file_modes_outside_a_repository() -> Iterator[None]:
    """Copier's executable-bit sync for each written file, only where it can do something.

    After writing each file Copier runs `git config core.fileMode` in the destination, and
    more when that says false, to keep an executable bit git would miss. Outside a git
    repository that ends in nothing every time, and most copies here go into new folders: a
    third of a copy's time (0.3 s of 0.95 s for the default answers), one process per file.
    Inside a repository (updates, a copy into an existing project) Copier's own code runs.
    Should Copier rename the method, nothing is wrapped and the copies are only slower; should
    it stop naming the destination where the wrapper looks, Copier's own code runs every time.
    """
    worker = copier._main.Worker
    sync = getattr(worker, "_sync_git_index_executable_bit", None)
    if sync is None:
        yield
        return

    @functools.wraps(sync)
    def sync_in_a_repository(self: copier._main.Worker, *args: Any, **kwargs: Any) -> None:
        folder = getattr(getattr(self, "subproject", None), "local_abspath", None)
        if folder is None or in_git_work_tree(Path(folder).resolve()):
            sync(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker, "_sync_git_index_executable_bit", sync_in_a_repository)
        yield


@pytest.fixture
def render(tmp_path: Path) -> Render:
    """Render a project into a fresh folder; returns its path."""
    counter = iter(range(1_000))

    def _render(tasks: bool = False, **answers: Any) -> Path:
        return render_project(tmp_path / f"project-{next(counter)}", answers, tasks=tasks)

    return _render


def uv_environment(project: Path | None = None) -> dict[str, str]:
    """Environment for uv in a generated project: the machine's Python, never a downloaded one.

    Given the project the command runs in, uv keeps that project's environment where every
    project of this test process keeps it, emptied whenever another project takes it over
    (`project_environment`).
    """
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.setdefault("NO_COLOR", "1")
    # Generated projects share one mypy cache per user. Two projects with the same package
    # running mypy at the same moment can read each other's half of a module's cache entry:
    # each test worker gets its own, which its projects (one at a time) still share.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    env["MYPY_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / f"copier-mlops-mypy-{worker}")
    # Machines that set PYTHONDONTWRITEBYTECODE (CI images often do) make every process of a
    # fresh project compile each module it imports, MLflow's and scikit-learn's included:
    # 3-5 s of CPU a process, dozens of processes a project. A user's machine keeps bytecode;
    # so do these projects, outside their folders.
    if env.pop("PYTHONDONTWRITEBYTECODE", None) and "PYTHONPYCACHEPREFIX" not in env:
        env["PYTHONPYCACHEPREFIX"] = process_folder("bytecode")
    if project is not None:
        env["UV_PROJECT_ENVIRONMENT"] = str(project_environment(project))
    return env


# The project whose environment project_environment() holds now, in this test process.
_ENVIRONMENT_HOLDER: dict[str, Path] = {}


def project_environment(project: Path) -> Path:
    """One path for the environment of every project this test process runs, one at a time.

    Each project gets a new, empty environment there, which uv fills from its own lock file
    exactly as it fills `.venv` (from its cache, in about a second): nothing installed for
    the project before it is left over. What the path buys is the bytecode: Python keeps a
    module's compiled code under the source's path, so at a path of its own every project
    compiled all of pandas, scikit-learn and MLflow again (about 15 s of CPU a project on a
    slow host). At one path, a file uv links from the same cached wheel keeps its bytecode.
    """
    folder = Path(process_folder("environment")) / "venv"
    project = project.resolve()
    if _ENVIRONMENT_HOLDER.get("project") != project:
        shutil.rmtree(folder, ignore_errors=True)
        _ENVIRONMENT_HOLDER["project"] = project
    return folder


@functools.cache
def process_folder(purpose: str) -> str:
    """This test process's folder for `purpose` (one each), removed when the process ends."""
    folder = tempfile.mkdtemp(prefix=f"copier-mlops-{purpose}-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def uv() -> list[str]:
    """The uv command: from PATH, or the module installed beside this interpreter."""
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def run(
    command: list[str], cwd: Path, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a command in a generated project, with `env` added; fail the test if it fails."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=uv_environment(cwd) | env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed ({result.returncode}) in {cwd}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def judge_champion(project: Path, *suites: str) -> subprocess.CompletedProcess[str]:
    """Run the suites that judge the champion the pipeline promoted, in one pytest process.

    `uv run nox -s bias model` runs the same pytest commands, one process each; every start
    imports the project and its libraries again (about 5 s on 2 idle cores). The default
    project runs the sessions themselves. The run fails the test when the suites skipped the
    champion because there was none.
    """
    return champion_judged(run([*uv(), "run", "--locked", "pytest", *suites], project))


def champion_judged(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """The run of the bias and model suites, after checking they did not skip the champion."""
    assert "no champion registered yet" not in result.stdout, "the suites skipped the champion"
    return result


def snapshot_repository(destination: Path, tag: str = "v0.1.0") -> Path:
    """A git repository holding this checkout's files as they are now, committed and tagged."""
    copy_checkout(destination)
    for command in (
        ["init", "--quiet", "--initial-branch=main"],
        ["add", "--all"],
        [*GIT_IDENTITY, "commit", "--quiet", "-m", "snapshot"],
        [*GIT_IDENTITY, "tag", tag],
    ):
        subprocess.run(["git", *command], cwd=destination, check=True, capture_output=True)
    return destination


def generate(source: Path, destination: Path, ref: str, **answers: Any) -> Path:
    """A project from one release of the template, committed as its first commit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        copier.run_copy(
            str(source),
            destination,
            data=answers,
            defaults=True,
            unsafe=True,
            vcs_ref=ref,
            skip_tasks=True,
            quiet=True,
        )
    for args in (
        ["init", "--quiet", "--initial-branch=main"],
        ["add", "--all"],
        [*GIT_IDENTITY, "commit", "--quiet", "-m", "Start the project"],
    ):
        subprocess.run(["git", *args], cwd=destination, check=True, capture_output=True)
    return destination


def update(project: Path, ref: str, **answers: Any) -> None:
    """`copier update` to one release, as the scheduled workflow runs it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        copier.run_update(
            project,
            data=answers,
            vcs_ref=ref,
            overwrite=True,
            defaults=True,
            unsafe=True,
            skip_answered=True,
            conflict="inline",
            quiet=True,
        )
