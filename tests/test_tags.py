"""Every released version of the template updates cleanly to the current one."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import TEMPLATE, generate, render_project, update


def user_owned() -> set[str]:
    """Files rendered once and then owned by users (docs/upgrading.md), read from copier.yml."""
    settings = yaml.safe_load((TEMPLATE / "copier.yml").read_text(encoding="utf-8"))
    prefix, suffix = "{% if _copier_operation == 'update' %}", "{% endif %}"
    return {
        pattern.removeprefix(prefix)
        .removesuffix(suffix)
        .replace("{{ package_name }}", "customer_churn")
        for pattern in settings["_exclude"]
        if pattern.startswith(prefix)
    }


def released_tags() -> list[str]:
    """The releases recorded in releases.toml, in history order; never none."""
    record = tomllib.loads((TEMPLATE / "releases.toml").read_text(encoding="utf-8"))
    versions = [str(release["version"]) for release in record.get("release", [])]
    assert versions, "releases.toml records no release"
    return versions


@pytest.fixture(autouse=True)
def tagged(request: pytest.FixtureRequest) -> None:
    """Each recorded release must be a tag of this clone: `nox -s release-tags` makes them."""
    tag = request.node.callspec.params.get("tag") if hasattr(request.node, "callspec") else None
    if tag is None:
        return
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}"],
        cwd=TEMPLATE,
        capture_output=True,
        check=False,
    )
    assert found.returncode == 0, f"no tag {tag} here: run `uv run nox -s release-tags` first"


def tree(project: Path) -> dict[str, str]:
    """Every template-owned file of a project with its content (git and answers left out)."""
    files = {}
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if (
            path.is_file()
            and ".git" not in relative.parts
            and relative.name != ".copier-answers.yml"
        ):
            files[relative.as_posix()] = path.read_text(encoding="utf-8")
    return files


@pytest.mark.parametrize("tag", released_tags())
def test_update_from_each_release_matches_a_fresh_copy(tag: str, tmp_path: Path) -> None:
    """A project made from an old release, updated to HEAD, is what HEAD would generate today.

    User-owned files are the exception by design: those the old release rendered stay as they
    were (even when the template no longer renders them), and those new since then arrive
    through the release's `add` migration.
    """
    project = generate(TEMPLATE, tmp_path / "project", tag)
    before = tree(project)
    update(project, "HEAD")
    fresh = tree(render_project(tmp_path / "fresh", {}))
    expected = {
        name: before[name] if name in user_owned() and name in before else content
        for name, content in fresh.items()
    }
    # A user-owned file the template no longer renders (data/demo.py since v0.3.0) is the
    # user's: it stays as it was.
    expected |= {
        name: content
        for name, content in before.items()
        if name in user_owned() and name not in fresh
    }
    assert tree(project) == expected


def migrated_paths() -> set[str]:
    """Old paths that copier.yml's migrations move, with {package} as written there."""
    settings = yaml.safe_load((TEMPLATE / "copier.yml").read_text(encoding="utf-8"))
    moved = set()
    for migration in settings.get("_migrations", []):
        command = migration["command"]
        if "rename" in command:
            moved.add(command[command.index("rename") + 1])
    return moved


@pytest.mark.parametrize("tag", released_tags())
def test_no_file_a_release_rendered_disappears_without_a_migration(
    tag: str, tmp_path: Path
) -> None:
    """A file a project got from an older release is still rendered, moved, or left to users.

    A user-owned file the template stops rendering is never deleted by an update: it stays.
    """
    old = generate(TEMPLATE, tmp_path / "old", tag)
    fresh = render_project(tmp_path / "new", {})
    gone = generic_files(old) - generic_files(fresh)
    kept = {name.replace("/customer_churn/", "/{package}/") for name in user_owned()}
    assert gone <= migrated_paths() | kept


def generic_files(project: Path) -> set[str]:
    """Every file a project holds, user-owned ones included, with the package as {package}."""
    return {
        path.relative_to(project).as_posix().replace("/customer_churn/", "/{package}/")
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }
