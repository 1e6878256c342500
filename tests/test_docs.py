"""The documentation site builds with --strict, and its generated pages follow their sources."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.workshop import all_checkpoints

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built as `nox -s docs` builds it, into a scratch folder."""
    target = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return target


def test_every_asked_question_has_a_section_in_the_reference(site: Path) -> None:
    """The questionnaire reference is generated from copier.yml: no question is missing."""
    questions = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
    asked = [
        name
        for name, spec in questions.items()
        if not name.startswith("_") and isinstance(spec, dict) and spec.get("when") is not False
    ]
    page = (site / "reference" / "questionnaire" / "index.html").read_text(encoding="utf-8")
    missing = [name for name in asked if f'id="{name}"' not in page]
    assert not missing, f"questions without a section in the reference: {missing}"


def test_benchmark_tables_get_plots(site: Path) -> None:
    """Each benchmark table with figures is followed by a chart drawn at build time."""
    page = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    plots = re.findall(r'<img[^>]*class="bench-plot"[^>]*src="data:image/svg\+xml;base64,', page)
    assert len(plots) >= 5


def test_changelog_page_is_the_changelog(site: Path) -> None:
    """The changelog page carries every release that CHANGELOG.md names."""
    page = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    for version in re.findall(r"^## (v\d+\.\d+\.\d+)", changelog, flags=re.MULTILINE):
        assert version in page


def test_workshop_has_a_checkpoint_in_every_module() -> None:
    """Ten modules, each with at least one checkpoint, and a fast subset for the suite."""
    checkpoints = all_checkpoints()
    modules = {checkpoint.module for checkpoint in checkpoints}
    assert len(modules) == 10
    assert len(checkpoints) >= 8
    assert any(checkpoint.fast for checkpoint in checkpoints)


def test_checkpoint_markers_are_hidden_on_the_page(site: Path) -> None:
    """A checkpoint's marker stays an HTML comment: the runner reads it, readers do not see it."""
    page = (site / "workshop" / "01-plan" / "index.html").read_text(encoding="utf-8")
    assert "<!-- checkpoint id=copy" in page
    assert "&lt;!-- checkpoint" not in page
    assert "uvx" in page


def test_pages_workflow_is_valid_and_zizmor_clean() -> None:
    """The site's workflow passes the workflow schema and zizmor's offline audits."""
    workflow = ROOT / ".github" / "workflows" / "docs.yml"
    bin_dir = Path(sys.executable).parent
    for command in (
        [bin_dir / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow],
        [bin_dir / "zizmor", "--offline", "--no-progress", workflow],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
