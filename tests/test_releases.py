"""The release record: every release in releases.toml can be recreated as a tag in any clone."""

from __future__ import annotations

import tomllib

import pytest

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
