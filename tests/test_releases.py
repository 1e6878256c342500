"""The release record: every release in releases.toml can be recreated as a tag in any clone."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import yaml

import noxfile
from tests.conftest import TEMPLATE

RECORD = tomllib.loads((TEMPLATE / "releases.toml").read_text(encoding="utf-8"))["release"]


def test_the_record_lists_releases_in_history_order_each_named_by_its_changelog() -> None:
    """Each recorded commit exists, names its version in CHANGELOG.md and follows the last."""
    assert len(RECORD) >= 2
    previous = None
    for release in RECORD:
        assert noxfile._release_problem(release["version"], release["commit"], previous) is None
        previous = release["commit"]


@pytest.mark.parametrize(
    ("version", "index", "previous", "problem"),
    [
        ("v9.9.9", 0, None, "does not name v9.9.9"),
        ("0.1.0", 0, None, "vMAJOR.MINOR.PATCH"),
        ("v0.1.0", 0, 1, "does not come after the previous release"),
    ],
)
def test_a_release_that_cannot_be_reconstructed_is_refused(
    version: str, index: int, previous: int | None, problem: str
) -> None:
    """A version its commit's changelog does not name, a bad version, or one out of order."""
    before = None if previous is None else RECORD[previous]["commit"]
    found = noxfile._release_problem(version, RECORD[index]["commit"], before)
    assert found is not None
    assert problem in found


def test_an_unknown_commit_is_refused() -> None:
    """A commit this clone does not have cannot be tagged; the message says what to do."""
    found = noxfile._release_problem("v0.1.0", "0" * 40, None)
    assert found is not None
    assert "fetch the full history" in found


def release_tool() -> ModuleType:
    """tools/release.py, loaded as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("release_tool", TEMPLATE / "tools/release.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("version", [release["version"] for release in RECORD])
def test_every_recorded_release_has_notes_to_publish(version: str) -> None:
    """The release workflow publishes each version with its CHANGELOG section, heading left out."""
    text = release_tool().notes(version)
    assert text.strip()
    assert not text.startswith("## ")
    assert "\n## v" not in text


def test_notes_of_a_version_the_changelog_lacks_are_refused() -> None:
    """A recorded version without a section stops the publishing with the version named."""
    tool = release_tool()
    with pytest.raises(tool.ReleaseError, match=r"no section '## v9\.9\.9'"):
        tool.notes("v9.9.9", "## v0.1.0 — 2026-11-27\n\nFirst.\n")
    with pytest.raises(tool.ReleaseError, match=r"section of v0\.1\.0 is empty"):
        tool.notes("v0.1.0", "## v0.1.0 — 2026-11-27\n\n## v0.0.9 — 2026-11-01\n\nOld.\n")


def test_release_workflow_is_valid_least_privileged_and_zizmor_clean() -> None:
    """It runs on releases.toml changes only, may write contents and nothing else, pins actions."""
    path = TEMPLATE / ".github/workflows/release.yml"
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert workflow["permissions"] == {}
    assert workflow[True]["push"] == {"branches": ["main"], "paths": ["releases.toml"]}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "write"}
    for step in job["steps"]:
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    bin_dir = Path(sys.executable).parent
    for command in (
        [bin_dir / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", path],
        [bin_dir / "zizmor", "--offline", "--persona", "pedantic", "--no-progress", path],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
