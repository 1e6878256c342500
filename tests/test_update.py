"""Upgrades: a project made from an older version, edited by its users, updates losing nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import copier
import pytest
import yaml

from tests.conftest import (
    GIT_IDENTITY,
    TEMPLATE,
    generate,
    render_project,
    run,
    snapshot_repository,
    update,
    uv,
)

PACKAGE = "customer_churn"
BASELINE = f"src/{PACKAGE}/model/baseline.py"
CANDIDATES = f"src/{PACKAGE}/model/candidates.py"
SEARCH_SPACE = f"src/{PACKAGE}/model/search_space.py"
CONFLICT_MARKER = "<<<<<<< "
USER_REASON = "customers who keep calling are about to give up"


def git(project: Path, *args: str) -> str:
    """Run git in a project and return what it printed."""
    return subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=project, capture_output=True, text=True, check=True
    ).stdout


def edit(path: Path, old: str, new: str) -> None:
    """Replace one exact piece of text, failing loudly if it is not there."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def release_next_version(repository: Path) -> None:
    """Change the template as a maintainer would, then tag the result v0.2.0."""
    template = repository / "template"
    edit(
        template / "noxfile.py.jinja",
        '"""Run the unit tests."""',
        '"""Run the unit tests (pytest)."""',
    )
    with (template / ".pre-commit-config.yaml").open("a", encoding="utf-8") as config:
        config.write(
            "      - id: check-json\n"
            "        name: JSON parses\n"
            "        entry: uv run check-json\n"
            "        language: system\n"
            "        require_serial: true\n"
            "        types: [json]\n"
        )
    edit(
        template / ".github/workflows/ci.yml.jinja",
        "  lint:\n    name: lint\n    runs-on: ubuntu-latest\n",
        "  lint:\n    name: lint\n    runs-on: ubuntu-latest\n    timeout-minutes: 15\n",
    )
    baseline = next((template / "src/{{ package_name }}/model").glob("*binary*baseline.py*"))
    edit(baseline, 'Rule("support_calls", ">=", 3,', 'Rule("support_calls", ">=", 2,')
    edit(template / "README.md.jinja", "## Two commands", "## Two commands to start")
    edit(template / "README.md.jinja", "## Where things are", "## Where things live")
    rename_candidates(repository)
    add_user_owned_files(repository)
    (template / "docs").mkdir(exist_ok=True)
    (template / "docs" / "runbook.md").write_text("# Runbook\n", encoding="utf-8")
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "-m", "next version")
    git(repository, "tag", "v0.2.0")


MIGRATION = """\
  - version: v0.2.0
    when: "{{ _stage == 'before' }}"
    command:
      - "{{ _copier_python }}"
      - "{{ _copier_conf.src_path / 'hooks' / 'migrate.py' }}"
      - rename
      - "src/{package}/model/candidates.py"
      - "src/{package}/model/search_space.py"
  - version: v0.2.0
    command:
      - "{{ _copier_python }}"
      - "{{ _copier_conf.src_path / 'hooks' / 'migrate.py' }}"
      - add
      - "src/{package}/data/features.py"
      - "src/{package}/model/rules.md"
"""


CANDIDATES_SHIM = '''"""Moved to search_space.py; this name keeps old imports working."""

from .search_space import CLASSIFIERS, OUTLIER_DETECTORS, TRUSTED_TYPES, Kind, regressors

__all__ = ["CLASSIFIERS", "OUTLIER_DETECTORS", "TRUSTED_TYPES", "Kind", "regressors"]
'''


def rename_candidates(repository: Path) -> None:
    """Rename the user-owned candidates module, with the migration that moves users' copies."""
    model = repository / "template/src/{{ package_name }}/model"
    (model / "candidates.py.jinja").rename(model / "search_space.py.jinja")
    # What imported `candidates` keeps working through a small compatibility module.
    (model / "candidates.py").write_text(CANDIDATES_SHIM, encoding="utf-8")
    edit(
        repository / "copier.yml",
        "/model/candidates.py{% endif %}",
        "/model/search_space.py{% endif %}",
    )
    settings = repository / "copier.yml"
    if "\n_migrations:\n" in settings.read_text(encoding="utf-8"):
        edit(settings, "\n_migrations:\n", "\n_migrations:\n" + MIGRATION)
    else:
        with settings.open("a", encoding="utf-8") as end:
            end.write("\n_migrations:\n" + MIGRATION)


NEW_RULES_NOTE = "# How we choose rules\n"


def add_user_owned_files(repository: Path) -> None:
    """Two user-owned files new in the release: one the user already made, one they did not."""
    package = repository / "template/src/{{ package_name }}"
    (package / "data/features.py").write_text('"""Template features."""\n', encoding="utf-8")
    (package / "model/rules.md").write_text(NEW_RULES_NOTE, encoding="utf-8")
    owned = "".join(
        f"  - \"{{% if _copier_operation == 'update' %}}src/{{{{ package_name }}}}/{name}"
        '{% endif %}"\n'
        for name in ("data/features.py", "model/rules.md")
    )
    edit(repository / "copier.yml", "_exclude:\n", "_exclude:\n" + owned)


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template repository with two releases: this checkout as v0.1.0 and a changed v0.2.0."""
    repository = snapshot_repository(tmp_path_factory.mktemp("template"), tag="v0.1.0")
    release_next_version(repository)
    return repository


def edit_like_a_user(project: Path) -> None:
    """Typical edits: rules, a feature, README, CI, a new file, a deletion, data; committed."""
    edit(project / BASELINE, "repeated support calls signal frustration", USER_REASON)
    edit(
        project / CANDIDATES, '"""The candidates training tries', '"""Our candidates (few for now)'
    )
    (project / f"src/{PACKAGE}/data/features.py").write_text(
        '"""Features of our own."""\n', encoding="utf-8"
    )
    edit(project / "README.md", "# Customer Churn", "# Churn Radar")
    edit(project / ".github/workflows/ci.yml", "fail-fast: false", "fail-fast: true")
    (project / "notes.md").write_text("Decisions we took.\n", encoding="utf-8")
    (project / ".env.example").unlink()
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "Our changes")
    (project / "data/raw/ours.csv").write_text("a,b\n1,2\n", encoding="utf-8")


def files_with_conflicts(project: Path) -> set[str]:
    """Tracked or new files holding conflict markers."""
    listed = git(project, "ls-files", "--cached", "--others", "--exclude-standard").split()
    return {
        name
        for name in listed
        if (project / name).is_file()
        and CONFLICT_MARKER in (project / name).read_text(encoding="utf-8", errors="replace")
    }


def test_update_keeps_user_work_and_brings_template_changes(versions: Path, tmp_path: Path) -> None:
    """Every user edit survives, every template change to template-owned files arrives."""
    project = generate(versions, tmp_path / "project", "v0.1.0")
    edit_like_a_user(project)

    update(project, "v0.2.0")

    baseline = (project / BASELINE).read_text(encoding="utf-8")
    assert USER_REASON in baseline, "the user's rule was lost"
    assert 'Rule("support_calls", ">=", 3,' in baseline, "a template change reached user code"
    features = (project / f"src/{PACKAGE}/data/features.py").read_text(encoding="utf-8")
    assert features == '"""Features of our own."""\n', "a new template file overwrote the user's"
    rules = project / f"src/{PACKAGE}/model/rules.md"
    assert rules.read_text(encoding="utf-8") == NEW_RULES_NOTE, "a new user-owned file is missing"
    moved = (project / SEARCH_SPACE).read_text(encoding="utf-8")
    assert moved.startswith('"""Our candidates (few for now)'), "the user's candidates were lost"
    assert "from .search_space import" in (project / CANDIDATES).read_text(encoding="utf-8")
    assert (project / "notes.md").read_text(encoding="utf-8") == "Decisions we took.\n"
    assert not (project / ".env.example").exists(), "a file the user deleted came back"
    assert (project / "data/raw/ours.csv").read_text(encoding="utf-8") == "a,b\n1,2\n"
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# Churn Radar")
    assert "## Two commands to start" in readme
    assert "## Where things live" in readme

    assert '"""Run the unit tests (pytest)."""' in (project / "noxfile.py").read_text(
        encoding="utf-8"
    )
    assert "check-json" in (project / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    assert workflow["jobs"]["lint"]["timeout-minutes"] == 15
    assert workflow["jobs"]["unit"]["strategy"]["fail-fast"] is True
    assert (project / "docs/runbook.md").exists()
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["_commit"] == "v0.2.0"
    assert not list(project.rglob("*.rej"))
    assert files_with_conflicts(project) == set()


def test_conflicts_only_where_both_sides_changed_the_same_lines(
    versions: Path, tmp_path: Path
) -> None:
    """Both sides rewrote one heading: inline markers there only, and the hook fails on them."""
    project = generate(versions, tmp_path / "project", "v0.1.0")
    edit(project / "README.md", "## Two commands", "## Quick start")
    git(project, "commit", "--quiet", "-am", "Our heading")

    update(project, "v0.2.0")

    assert files_with_conflicts(project) == {"README.md"}
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert "## Quick start" in readme
    assert "## Two commands to start" in readme
    assert "## Where things live" in readme, "the non-conflicting change did not arrive"
    assert not list(project.rglob("*.rej"))
    hook = subprocess.run(
        [Path(sys.executable).parent / "check-merge-conflict", "--assume-in-merge", "README.md"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert hook.returncode == 1, hook.stdout


def test_dirty_working_tree_is_refused(versions: Path, tmp_path: Path) -> None:
    """Uncommitted work is never mixed with an update: Copier refuses and says why."""
    project = generate(versions, tmp_path / "project", "v0.1.0")
    edit(project / BASELINE, "3,", "4,")
    with pytest.raises(copier.errors.UserMessageError, match="dirty"):
        update(project, "v0.2.0")
    assert '">=", 4,' in (project / BASELINE).read_text(encoding="utf-8")


def test_changing_an_answer_updates_the_contract_and_leaves_user_code_alone(
    versions: Path, tmp_path: Path
) -> None:
    """`copier update --data cost_false_negative=8` moves the threshold; the rules stay."""
    project = generate(versions, tmp_path / "project", "v0.2.0")
    edit(project / BASELINE, 'Rule("support_calls", ">=", 2,', 'Rule("support_calls", ">=", 6,')
    git(project, "commit", "--quiet", "-am", "Our rule")

    update(project, "v0.2.0", cost_false_negative=8.0)

    contract = yaml.safe_load((project / "ml_contract.yaml").read_text(encoding="utf-8"))
    assert contract["costs"]["false_negative"] == 8.0
    assert contract["decision"]["threshold"] == 0.1111
    assert 'Rule("support_calls", ">=", 6,' in (project / BASELINE).read_text(encoding="utf-8")
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert "threshold (0.1111)" in readme


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("task_type", "regression"),
        ("package_name", "churn_radar"),
        ("target_name", "left"),
    ],
)
def test_an_answer_the_user_owned_files_depend_on_cannot_change(
    versions: Path, tmp_path: Path, answer: str, value: str
) -> None:
    """`copier update --data task_type=…` is refused in one line and the project is untouched."""
    project = generate(versions, tmp_path / "project", "v0.2.0")
    with pytest.raises(ValueError, match=f"{answer} cannot change on update") as refused:
        update(project, "v0.2.0", **{answer: value})
    assert "\n" not in str(refused.value)
    assert "start a new project with copier copy" in str(refused.value)
    assert git(project, "status", "--porcelain") == ""


def test_adopting_an_existing_repository_never_overwrites_without_consent(
    tmp_path: Path,
) -> None:
    """`copier copy --skip '*'` into a repository adds the template's files and keeps the user's."""
    project = tmp_path / "existing"
    project.mkdir()
    (project / "README.md").write_text("# Our project\n", encoding="utf-8")
    (project / "noxfile.py").write_text("# our tasks\n", encoding="utf-8")
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "Our project")
    copier_cli = Path(sys.executable).parent / "copier"
    adopt = [copier_cli, "copy", "--trust", "--defaults", "--skip-tasks", "--vcs-ref", "HEAD"]
    result = subprocess.run(
        [*adopt, "--skip", "*", str(TEMPLATE), str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (project / "README.md").read_text(encoding="utf-8") == "# Our project\n"
    assert (project / "noxfile.py").read_text(encoding="utf-8") == "# our tasks\n"
    assert (project / "ml_contract.yaml").exists()
    assert (project / ".copier-answers.yml").exists()


# Copier leaves a directory scan open when it stops mid-copy; that is its leak, not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_copy_into_an_existing_repository_without_skip_stops_at_the_first_clash(
    tmp_path: Path,
) -> None:
    """Without --skip or --overwrite a copy with no terminal cannot ask, so it stops unwritten."""
    project = tmp_path / "existing"
    project.mkdir()
    (project / "noxfile.py").write_text("# our tasks\n", encoding="utf-8")
    with pytest.raises(copier.errors.InteractiveSessionError, match="--overwrite"):
        render_project(project, {})
    assert (project / "noxfile.py").read_text(encoding="utf-8") == "# our tasks\n"


CCDS_FILES = {
    "customer_churn/__init__.py": "from customer_churn import config  # noqa: F401\n",
    "customer_churn/config.py": (
        "from pathlib import Path\n\nPROJ_ROOT = Path(__file__).resolve().parents[1]\n"
        'DATA_DIR = PROJ_ROOT / "data"\nMODELS_DIR = PROJ_ROOT / "models"\n'
    ),
    "customer_churn/dataset.py": (
        "import typer\n\nfrom customer_churn.config import DATA_DIR\n\napp = typer.Typer()\n"
        "\n\n@app.command()\ndef main():\n    print(DATA_DIR)\n"
    ),
    "customer_churn/modeling/__init__.py": "",
    "customer_churn/modeling/train.py": (
        "from customer_churn.config import MODELS_DIR\n\n\ndef train():\n"
        '    return MODELS_DIR / "model.pkl"\n'
    ),
    "requirements.txt": "loguru\npython-dotenv\ntqdm\ntyper\n",
    "Makefile": "requirements:\n\tpython -m pip install -r requirements.txt\n",
    "pyproject.toml": (
        '[build-system]\nrequires = ["flit_core >=3.2,<4"]\nbuild-backend = "flit_core.buildapi"\n'
        '\n[project]\nname = "customer_churn"\nversion = "0.0.1"\nrequires-python = "~=3.11"\n'
        '\n[tool.ruff]\nline-length = 99\nsrc = ["customer_churn"]\n'
    ),
    "README.md": "# Customer Churn\n\nWhich customers leave, and why.\n",
    ".gitignore": "/data/\n/models/\n__pycache__/\n.venv\n",
    "tests/test_data.py": "def test_code_is_tested():\n    assert False\n",
    "notebooks/1.0-dt-initial-exploration.ipynb": (
        '{"cells": [{"cell_type": "code", "execution_count": null, "metadata": {}, '
        '"outputs": [], "source": ["import math\\n", "math.pi"]}], "metadata": {}, '
        '"nbformat": 4, "nbformat_minor": 5}\n'
    ),
    "data/raw/.gitkeep": "",
    "models/.gitkeep": "",
    "references/.gitkeep": "",
    "reports/figures/.gitkeep": "",
    "docs/index.md": "# customer_churn\n",
}


@pytest.mark.e2e
def test_adopting_a_cookiecutter_data_science_repository_reaches_green(tmp_path: Path) -> None:
    """The steps of docs/upgrading.md take a CCDS v2-shaped repository to green checks."""
    project = tmp_path / "customer-churn"
    for name, content in CCDS_FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(content, encoding="utf-8")
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "Our project")
    git(project, "switch", "--quiet", "-c", "adopt-template")
    copier_cli = Path(sys.executable).parent / "copier"

    command = ["copy", "--trust", "--defaults", "--skip", "*", "--vcs-ref", "HEAD"]
    adopted = subprocess.run(
        [copier_cli, *command, str(TEMPLATE), str(project)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert adopted.returncode == 0, adopted.stderr
    said = adopted.stderr
    assert "kept 3 file(s) of yours (.gitignore, README.md, pyproject.toml)" in said
    assert "customer_churn at the top of the repository shadows src/customer_churn" in said
    assert "once it is merged, run uv lock" in said
    assert (project / "Makefile").read_text(encoding="utf-8") == CCDS_FILES["Makefile"]
    versions = project / ".template-versions"
    # The walk-through of docs/upgrading.md, step by step.
    git(project, "mv", "customer_churn", "legacy")
    shutil.copy(versions / "pyproject.toml", project / "pyproject.toml")
    theirs = (project / ".gitignore").read_text(encoding="utf-8").splitlines()
    template_lines = (versions / ".gitignore").read_text(encoding="utf-8").splitlines()
    merged = template_lines + [line for line in theirs if line not in template_lines]
    (project / ".gitignore").write_text("\n".join(merged) + "\n", encoding="utf-8")
    shutil.rmtree(versions)
    git(project, "rm", "--quiet", "tests/test_data.py")
    hooks = project / ".pre-commit-config.yaml"
    hooks.write_text("exclude: ^legacy/\n" + hooks.read_text(encoding="utf-8"), encoding="utf-8")
    run([*uv(), "add", "--quiet", "-r", "requirements.txt"], project)
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "Adopt the template")

    sessions = ["lint", "types", "unit", "pipeline"]
    run([*uv(), "run", "--locked", "nox", "-s", *sessions], project, timeout=1800)
    assert git(project, "status", "--porcelain") == ""
