"""The post-copy task: a first commit always, uv.lock when the registry answers, advice if not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import GIT_IDENTITY, TEMPLATE, Render

POST_COPY = TEMPLATE / "hooks" / "post_copy.py"


def run_post_copy(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the task the way Copier does: the template's interpreter, in the new project."""
    scrubbed = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "UV_"))}
    return subprocess.run(
        [sys.executable, str(POST_COPY)],
        cwd=project,
        env={**scrubbed, "HOME": str(project.parent), "UV_PYTHON_DOWNLOADS": "never", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_unreachable_registry_still_gives_a_first_commit_and_says_what_to_run(
    render: Render,
) -> None:
    """Offline, the task commits the project, writes no lock, and names the command to run later."""
    project = render()
    result = run_post_copy(
        project, UV_INDEX_URL="http://127.0.0.1:9/simple", UV_NO_CACHE="1", UV_HTTP_RETRIES="0"
    )
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
    result = run_post_copy(
        project, UV_INDEX_URL="http://127.0.0.1:9/simple", UV_NO_CACHE="1", UV_HTTP_RETRIES="0"
    )
    assert result.returncode == 0
    assert "review and commit the new files yourself" in result.stderr
    log = subprocess.run(["git", "log", "--oneline"], cwd=project, capture_output=True, text=True)
    assert len(log.stdout.splitlines()) == 1
