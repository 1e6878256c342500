"""Every released version of the template updates cleanly to the current one."""

from __future__ import annotations

import functools
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import GIT_IDENTITY, TEMPLATE, generate, render_project, run, update, uv


@functools.cache
def user_owned() -> frozenset[str]:
    """Files rendered once and then owned by users (docs/upgrading.md), read from copier.yml.

    Read once per test process: parsing copier.yml takes about 30 ms, and the comparisons
    below ask for every file of a project.
    """
    settings = yaml.safe_load((TEMPLATE / "copier.yml").read_text(encoding="utf-8"))
    prefix, suffix = "{% if _copier_operation == 'update' %}", "{% endif %}"
    return frozenset(
        pattern.removeprefix(prefix)
        .removesuffix(suffix)
        .replace("{{ package_name }}", "customer_churn")
        for pattern in settings["_exclude"]
        if pattern.startswith(prefix)
    )


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


def upgrades() -> list[object]:
    """Every release to HEAD, and every older release to the newest one.

    Releases never change, so an update between two of them can only break with a new Copier
    or uv: those cases run with the end-to-end tests, those to HEAD with every change.
    """
    tags = released_tags()
    return [(tag, "HEAD") for tag in tags] + [
        pytest.param(tag, tags[-1], marks=pytest.mark.e2e) for tag in tags[:-1]
    ]


@pytest.mark.parametrize(("tag", "target"), upgrades())
def test_update_from_each_release_matches_a_fresh_copy(
    tag: str, target: str, tmp_path: Path
) -> None:
    """A project made from an old release, updated, is what the target would generate today.

    User-owned files are the exception by design: those the old release rendered stay as they
    were (even when the template no longer renders them), and those new since then arrive
    through the release's `add` migration.
    """
    project = generate(TEMPLATE, tmp_path / "project", tag)
    before = tree(project)
    update(project, target)
    if target == "HEAD":
        fresh = tree(render_project(tmp_path / "fresh", {}))
        # A file the release rendered is still rendered, moved by a migration, or the user's
        # (a user-owned file the template stops rendering is never deleted by an update).
        gone = generic(before) - generic(fresh)
        kept = generic(dict.fromkeys(user_owned()))
        assert gone <= migrated_paths() | kept, "files a release rendered are gone unmigrated"
    else:
        fresh = tree(generate(TEMPLATE, tmp_path / "fresh", target))
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


def generic(files: dict[str, object]) -> set[str]:
    """File names of a project's tree, with its package written as {package}."""
    return {name.replace("/customer_churn/", "/{package}/") for name in files}


TEAMS_CANDIDATES = '''"""The models we tried before the template had a place for them."""

MODELS = ["logistic regression", "gradient boosting"]
'''


@pytest.mark.e2e
@pytest.mark.parametrize("tag", released_tags()[:1])
def test_the_oldest_release_updates_to_green_over_a_file_the_team_wrote_first(
    tag: str, tmp_path: Path
) -> None:
    """A team's own model/candidates.py predates the release that made the path user-owned.

    The update keeps it beside the release's version, leaves no conflict, refreshes the lock,
    and the project's lint, types and unit tests pass.
    """
    project = generate(TEMPLATE, tmp_path / "project", tag)
    own = project / "src/customer_churn/model/candidates.py"
    own.write_text(TEAMS_CANDIDATES, encoding="utf-8")
    run([*uv(), "lock", "--quiet"], project)
    git = ["git", *GIT_IDENTITY]
    for args in (["add", "--all"], ["commit", "--quiet", "-m", "Our candidates, our lock"]):
        subprocess.run([*git, *args], cwd=project, check=True, capture_output=True)

    update(project, "HEAD")

    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [name for name in listed if name.endswith(".rej")]
    assert not [
        name
        for name in listed
        if (project / name).is_file()
        and "<<<<<<< " in (project / name).read_text(encoding="utf-8", errors="replace")
    ]
    kept = project / "src/customer_churn/model/candidates_own.py"
    assert kept.read_text(encoding="utf-8") == TEAMS_CANDIDATES
    run([*uv(), "lock", "--check"], project)
    # A team's own, legitimate contract settings: no generated test may assume the defaults.
    contract = project / "ml_contract.yaml"
    text = contract.read_text(encoding="utf-8")
    for default, own in (
        ("  demo_rows: 5000\n", "  demo_rows: 3000\n"),
        ("  seed: 42\n", "  seed: 7\n"),
        ("  test_fraction: 0.2\n", "  test_fraction: 0.25\n"),
        ("  max_missing_rate: 0.2\n", "  max_missing_rate: 0.1\n"),
    ):
        assert default in text, default
        text = text.replace(default, own, 1)
    contract.write_text(text, encoding="utf-8")
    # The default `nox` (check: the four suites, lint, types and the pipeline at once) needs the
    # nox that the updated pyproject.toml asks for: the update's lock must have brought it.
    result = run([*uv(), "run", "--locked", "nox"], project, timeout=1800)
    assert "Session pipeline was successful" in result.stdout + result.stderr
