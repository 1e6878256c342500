"""The template is usable from a local checkout and from a git URL, through Copier's own CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import TEMPLATE, snapshot_repository

COPIER = Path(sys.executable).parent / "copier"


def test_copy_from_a_git_url(tmp_path: Path) -> None:
    """`copier copy --trust <git URL> <dst>` renders the latest tag and records its source."""
    repository = snapshot_repository(tmp_path / "template-repo")
    url = f"git+{repository.as_uri()}"
    project = tmp_path / "project"
    result = subprocess.run(
        [COPIER, "copy", "--trust", "--defaults", "--skip-tasks", "--quiet", url, str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["_src_path"] == url
    assert answers["_commit"] == "v0.1.0"
    assert (project / "ml_contract.yaml").exists()


def test_copy_without_trust_is_refused_clearly(tmp_path: Path) -> None:
    """Without --trust Copier refuses the post-copy task up front and writes nothing."""
    result = subprocess.run(
        [COPIER, "copy", "--defaults", "--vcs-ref", "HEAD", str(TEMPLATE), str(tmp_path / "p")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 4
    assert "--trust" in result.stderr
    assert not (tmp_path / "p").exists()
