"""The post-copy task: a first commit always, uv.lock when the registry answers, advice if not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import GIT_IDENTITY, TEMPLATE, Render, uv

POST_COPY = TEMPLATE / "hooks" / "post_copy.py"
# uv settings that make the package index unreachable at once: the offline case.
OFFLINE = {"UV_INDEX_URL": "http://127.0.0.1:9/simple", "UV_NO_CACHE": "1", "UV_HTTP_RETRIES": "0"}


def run_post_copy(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the task the way Copier does: the template's interpreter, in the new project."""
    return run_hook(POST_COPY, project, **env)


def test_unreachable_registry_still_gives_a_first_commit_and_says_what_to_run(
    render: Render,
) -> None:
    """Offline, the task commits the project, writes no lock, and names the command to run later."""
    project = render()
    result = run_post_copy(project, **OFFLINE)
    assert result.returncode == 0, result.stderr
    assert "could not write uv.lock" in result.stderr
    assert "uv lock && git add uv.lock && git commit" in result.stderr
    assert not (project / "uv.lock").exists()
    log = subprocess.run(
        ["git", "log", "--format=%an <%ae>|%s"], cwd=project, capture_output=True, text=True
    )
    assert log.stdout.splitlines() == ["ML Team <ml-team@example.com>|Start the project"]
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True)
    assert status.stdout == b""


def test_project_inside_an_existing_history_is_left_for_the_user_to_commit(
    render: Render, tmp_path: Path
) -> None:
    """Generated inside another repository, the task commits nothing and says so."""
    project = render()
    for args in (["init", "-q"], ["add", "README.md"], [*GIT_IDENTITY, "commit", "-qm", "theirs"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    result = run_post_copy(project, **OFFLINE)
    assert result.returncode == 0
    assert "review and commit the new files yourself" in result.stderr
    log = subprocess.run(["git", "log", "--oneline"], cwd=project, capture_output=True, text=True)
    assert len(log.stdout.splitlines()) == 1


POST_UPDATE = TEMPLATE / "hooks" / "post_update.py"


def run_hook(hook: Path, project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a hook as Copier does: its interpreter, in the project, no git or uv settings."""
    scrubbed = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "UV_"))}
    return subprocess.run(
        [sys.executable, str(hook), *args],
        cwd=project,
        env={**scrubbed, "HOME": str(project.parent), "UV_PYTHON_DOWNLOADS": "never", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_after_an_update_the_lock_follows_pyproject(render: Render) -> None:
    """A dependency the update brings is in uv.lock afterwards, so `uv lock --check` passes."""
    project = render()
    assert run_hook(POST_COPY, project).returncode == 0
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace("dependencies = [\n", 'dependencies = [\n  "idna",\n', 1))

    result = run_hook(POST_UPDATE, project)

    assert result.returncode == 0, result.stderr
    assert "refreshed uv.lock" in result.stderr
    check = subprocess.run(
        [*uv(), "lock", "--check"], cwd=project, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    again = run_hook(POST_UPDATE, project)
    assert "uv.lock already matches pyproject.toml" in again.stderr


def test_after_an_update_a_lock_that_cannot_be_written_is_reported_not_fatal(
    render: Render,
) -> None:
    """Offline, in conflict or without a lock: the update stands; one line says what to run."""
    project = render()
    result = run_hook(POST_UPDATE, project)
    assert result.returncode == 0
    assert "no uv.lock in the project: run `uv lock`" in result.stderr

    (project / "uv.lock").write_text("version = 1\n", encoding="utf-8")
    offline = run_hook(POST_UPDATE, project, **OFFLINE)
    assert offline.returncode == 0
    assert "could not refresh uv.lock (" in offline.stderr
    assert len(offline.stderr.strip().splitlines()) == 1

    pyproject = project / "pyproject.toml"
    pyproject.write_text("<<<<<<< before updating\n" + pyproject.read_text(encoding="utf-8"))
    conflicted = run_hook(POST_UPDATE, project)
    assert "pyproject.toml has conflicts: resolve them" in conflicted.stderr
    assert (project / "uv.lock").read_text(encoding="utf-8") == "version = 1\n"


def test_a_relative_template_path_is_recorded_absolute(render: Render, tmp_path: Path) -> None:
    """Copied from ./template, the answers name the template's absolute path for later updates."""
    project = render()
    answers_file = project / ".copier-answers.yml"
    text = answers_file.read_text(encoding="utf-8")
    (tmp_path / "here" / "tpl").mkdir(parents=True)
    lines = [
        "_src_path: ./tpl" if line.startswith("_src_path:") else line for line in text.splitlines()
    ]
    answers_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = run_hook(POST_COPY, project, str(tmp_path / "here"), **OFFLINE)

    assert result.returncode == 0, result.stderr
    recorded = answers_file.read_text(encoding="utf-8")
    assert f'_src_path: "{tmp_path / "here" / "tpl"}"' in recorded
    assert "copied from the relative path ./tpl" in result.stderr
