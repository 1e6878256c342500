"""Migration operations are idempotent and never overwrite or leave the project."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from tests.conftest import GIT_IDENTITY, TEMPLATE

MIGRATE = TEMPLATE / "hooks" / "migrate.py"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A committed project with a user-owned file at its old name."""
    (tmp_path / ".copier-answers.yml").write_text("package_name: shop\n", encoding="utf-8")
    (tmp_path / "src/shop/data").mkdir(parents=True)
    (tmp_path / "src/shop/data/demo.py").write_text("# ours\n", encoding="utf-8")
    for args in (["init", "--quiet"], ["add", "--all"], [*GIT_IDENTITY, "commit", "-qm", "start"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    return tmp_path


def migrate(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one migration operation the way Copier does: list form, in the project."""
    return subprocess.run(
        [sys.executable, str(MIGRATE), *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


def test_rename_moves_the_file_once_and_keeps_its_history(project: Path) -> None:
    """The first run moves the file through git; a second run finds nothing to do."""
    old, new = "src/{package}/data/demo.py", "src/{package}/data/sources.py"
    first = migrate(project, "rename", old, new)
    assert first.returncode == 0, first.stderr
    assert (project / "src/shop/data/sources.py").read_text(encoding="utf-8") == "# ours\n"
    assert not (project / "src/shop/data/demo.py").exists()
    staged = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, check=True
    ).stdout
    assert staged.startswith("R  src/shop/data/demo.py -> src/shop/data/sources.py")
    again = migrate(project, "rename", old, new)
    assert again.returncode == 0
    assert "nothing to rename" in again.stderr


def test_rename_never_overwrites_a_file_at_the_new_name(project: Path) -> None:
    """When both names exist the migration stops and says what to do, touching neither."""
    (project / "src/shop/data/sources.py").write_text("# also ours\n", encoding="utf-8")
    result = migrate(
        project, "rename", "src/{package}/data/demo.py", "src/{package}/data/sources.py"
    )
    assert result.returncode == 1
    assert "merge them by hand" in result.stderr
    assert (project / "src/shop/data/demo.py").read_text(encoding="utf-8") == "# ours\n"
    assert (project / "src/shop/data/sources.py").read_text(encoding="utf-8") == "# also ours\n"


@pytest.mark.parametrize("escape", ["../outside.py", "/etc/passwd"])
def test_paths_outside_the_project_are_refused(project: Path, escape: str) -> None:
    """A migration can only move files inside the project it runs in."""
    result = migrate(project, "rename", "src/{package}/data/demo.py", escape)
    assert result.returncode == 1
    assert "inside the project" in result.stderr
    assert (project / "src/shop/data/demo.py").exists()


def test_add_brings_a_file_new_in_the_release_and_never_overwrites(project: Path) -> None:
    """Missing user-owned files arrive rendered with the project's answers; present ones stay."""
    (project / "src/shop/model").mkdir(parents=True)
    ours = "class Baseline:  # our rules\n    pass\n"
    (project / "src/shop/model/baseline.py").write_text(ours, encoding="utf-8")
    result = migrate(
        project, "add", "notebooks/01-explore.ipynb", "src/{package}/model/baseline.py"
    )
    assert result.returncode == 0, result.stderr
    notebook = (project / "notebooks/01-explore.ipynb").read_text(encoding="utf-8")
    assert "from shop" in notebook, "the new file was not rendered with the project's answers"
    assert (project / "src/shop/model/baseline.py").read_text(encoding="utf-8") == ours
    assert "kept your src/shop/model/baseline.py" in result.stderr
    again = migrate(project, "add", "notebooks/01-explore.ipynb")
    assert again.returncode == 0
    assert "nothing to add" in again.stderr


def test_add_moves_aside_a_module_of_the_users_that_lacks_what_the_release_imports(
    project: Path,
) -> None:
    """A team's own candidates.py from before the release: kept beside, release's in its place."""
    model = project / "src/shop/model"
    model.mkdir(parents=True)
    ours = "MODELS = ['our favourite']\n"
    (model / "candidates.py").write_text(ours, encoding="utf-8")
    subprocess.run(["git", "add", "--all"], cwd=project, check=True)
    subprocess.run(["git", *GIT_IDENTITY, "commit", "-qm", "ours"], cwd=project, check=True)

    result = migrate(project, "add", "src/{package}/model/candidates.py")

    assert result.returncode == 0, result.stderr
    assert (model / "candidates_own.py").read_text(encoding="utf-8") == ours
    release = (model / "candidates.py").read_text(encoding="utf-8")
    assert "CLASSIFIERS" in release
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "lacked CLASSIFIERS, Kind, OUTLIER_DETECTORS, TRUSTED_TYPES, regressors" in message
    assert "move what you need from candidates_own.py into it" in message
    staged = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, check=True
    ).stdout
    assert staged.splitlines() == [
        "M  src/shop/model/candidates.py",
        "A  src/shop/model/candidates_own.py",
    ]

    again = migrate(project, "add", "src/{package}/model/candidates.py")
    assert "kept your src/shop/model/candidates.py" in again.stderr


@pytest.mark.parametrize(
    "ours",
    [
        "from .search_space import *\n",
        "def __getattr__(name):\n    raise AttributeError(name)\n",
        "try:\n    from .a import CLASSIFIERS, OUTLIER_DETECTORS, TRUSTED_TYPES\n"
        "except ImportError:\n    CLASSIFIERS = OUTLIER_DETECTORS = TRUSTED_TYPES = {}\n"
        "Kind = str\n\ndef regressors():\n    return {}\n",
    ],
)
def test_add_keeps_a_module_that_provides_the_interface_however_it_does(
    project: Path, ours: str
) -> None:
    """Names imported, assigned in a try block, or supplied dynamically all count."""
    model = project / "src/shop/model"
    model.mkdir(parents=True)
    (model / "candidates.py").write_text(ours, encoding="utf-8")
    result = migrate(project, "add", "src/{package}/model/candidates.py")
    assert result.returncode == 0, result.stderr
    assert (model / "candidates.py").read_text(encoding="utf-8") == ours
    assert not (model / "candidates_own.py").exists()


def test_add_refuses_a_path_the_release_does_not_have(project: Path) -> None:
    """A misspelt path in a migration stops it with the path named, and nothing is added."""
    result = migrate(project, "add", "src/{package}/model/nonexistent.py", "README.md")
    assert result.returncode == 1
    assert "src/shop/model/nonexistent.py is not a file of this release" in result.stderr
    assert not (project / "README.md").exists()


class Stand(types.SimpleNamespace):
    """Stands in for the schema classes: keeps what the written schema passes to them."""

    def __init__(self, name: object = None, kind: object = None, **facts: object) -> None:
        """Positional name and kind as the schema classes take them, the rest by keyword."""
        super().__init__(**{"name": name, "kind": kind, "role": "feature", **facts})


EDITED_RECORDS = '''
class Record(Strict):
    """One patient."""

    Age: int = Field(ge=0, le=120, description="Age in years")
    blood_pressure: float = Field(ge=40, le=250)
    smoker: Literal["yes", "no"]
    sex: Literal["female", "male"]
'''
OLD_DEMO = """
NUMERIC_FEATURES = ["age", "tenure_months"]
CATEGORIES = {"sex": ["female", "male"]}
"""


def test_schema_keeps_the_fields_of_an_edited_record_class(project: Path) -> None:
    """A v0.2.0 project that edited app/records.py gets those fields as its feature schema."""
    answers = "package_name: shop\ntask_type: binary_classification\ntarget_name: ill\n"
    (project / ".copier-answers.yml").write_text(answers + "sensitive_features: sex\n")
    (project / "src/shop/app").mkdir(parents=True)
    (project / "src/shop/app/records.py").write_text(EDITED_RECORDS, encoding="utf-8")
    (project / "src/shop/data/demo.py").write_text(OLD_DEMO, encoding="utf-8")
    paths = [
        "src/{package}/app/records.py",
        "src/{package}/data/demo.py",
        "src/{package}/schema.py",
    ]

    result = migrate(project, "schema", *paths)

    assert result.returncode == 0, result.stderr
    written = (project / "src/shop/schema.py").read_text(encoding="utf-8")
    namespace: dict[str, object] = {
        "Column": Stand,
        "Schema": Stand,
        "Target": Stand,
    }
    exec(written.replace("from .data.columns import Column, Schema, Target", ""), namespace)  # noqa: S102 - the file the test wrote
    schema = namespace["SCHEMA"]
    columns = {column.name: column for column in schema.columns}  # type: ignore[attr-defined]
    assert list(columns) == ["Age", "blood_pressure", "smoker", "sex"]
    assert (columns["Age"].kind, columns["Age"].minimum, columns["Age"].maximum) == (
        "integer",
        0,
        120,
    )
    assert columns["smoker"].categories == ("yes", "no")
    assert columns["sex"].role == "sensitive"
    assert schema.target.name == "ill"  # type: ignore[attr-defined]
    again = migrate(project, "schema", *paths)
    assert "already there" in again.stderr


def test_schema_leaves_demo_shaped_records_to_the_release(project: Path) -> None:
    """Records that still hold the demo's columns are left for the release's own schema."""
    (project / "src/shop/app").mkdir(parents=True)
    (project / "src/shop/app/records.py").write_text(
        "class Record:\n    age: int\n    tenure_months: int\n    sex: str\n", encoding="utf-8"
    )
    (project / "src/shop/data/demo.py").write_text(OLD_DEMO, encoding="utf-8")
    paths = [
        "src/{package}/app/records.py",
        "src/{package}/data/demo.py",
        "src/{package}/schema.py",
    ]

    result = migrate(project, "schema", *paths)

    assert result.returncode == 0, result.stderr
    assert not (project / "src/shop/schema.py").exists()
    assert "demo's columns" in result.stderr
