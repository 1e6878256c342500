"""The render matrix: the exact file set, no leftover Jinja, and every file parses and lints."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import copier._main
import pytest
import yaml

from tests.conftest import TASK_TYPES, Render, copier_copy

EXPECTED_FILES = {
    ".copier-answers.yml",
    ".dockerignore",
    ".env.example",
    ".github/renovate.json",
    ".github/workflows/ci.yml",
    ".github/workflows/template-update.yml",
    ".gitignore",
    ".pre-commit-config.yaml",
    "README.md",
    "data/interim/.gitkeep",
    "data/processed/.gitkeep",
    "data/raw/.gitkeep",
    "deploy/Dockerfile",
    "deploy/k8s/analysis-template.yaml",
    "deploy/k8s/configmap.yaml",
    "deploy/k8s/hpa.yaml",
    "deploy/k8s/persistent-volume-claim.yaml",
    "deploy/k8s/rollout.yaml",
    "deploy/k8s/service.yaml",
    "deploy/monitoring/alerts.yaml",
    "deploy/schemas/README.md",
    "deploy/schemas/analysistemplate-argoproj-v1alpha1.json",
    "deploy/schemas/configmap-v1.json",
    "deploy/schemas/horizontalpodautoscaler-autoscaling-v2.json",
    "deploy/schemas/persistentvolumeclaim-v1.json",
    "deploy/schemas/prometheus-rules.json",
    "deploy/schemas/rollout-argoproj-v1alpha1.json",
    "deploy/schemas/service-v1.json",
    "docs/deploy.md",
    "docs/hooks.py",
    "ml_contract.yaml",
    "mkdocs.yml",
    "notebooks/01-explore.ipynb",
    "noxfile.py",
    "pyproject.toml",
    "reports/.gitkeep",
    "src/{pkg}/__init__.py",
    "src/{pkg}/__main__.py",
    "src/{pkg}/app/__init__.py",
    "src/{pkg}/app/answers.py",
    "src/{pkg}/app/api.py",
    "src/{pkg}/app/deps.py",
    "src/{pkg}/app/fast.py",
    "src/{pkg}/app/feedback.py",
    "src/{pkg}/app/metrics.py",
    "src/{pkg}/app/middleware.py",
    "src/{pkg}/app/records.py",
    "src/{pkg}/app/routes/__init__.py",
    "src/{pkg}/app/routes/feedback.py",
    "src/{pkg}/app/routes/health.py",
    "src/{pkg}/app/routes/predict.py",
    "src/{pkg}/app/schemas.py",
    "src/{pkg}/app/server.py",
    "src/{pkg}/app/service.py",
    "src/{pkg}/cli.py",
    "src/{pkg}/config.py",
    "src/{pkg}/data/__init__.py",
    "src/{pkg}/data/collect.py",
    "src/{pkg}/data/curate.py",
    "src/{pkg}/data/columns.py",
    "src/{pkg}/data/conform.py",
    "src/{pkg}/data/infer.py",
    "src/{pkg}/data/explore.py",
    "src/{pkg}/data/label.py",
    "src/{pkg}/data/rows.py",
    "src/{pkg}/data/transform.py",
    "src/{pkg}/data/validate.py",
    "src/{pkg}/errors.py",
    "src/{pkg}/files.py",
    "src/{pkg}/model/__init__.py",
    "src/{pkg}/model/baseline.py",
    "src/{pkg}/model/candidates.py",
    "src/{pkg}/model/card.py",
    "src/{pkg}/model/compiled.py",
    "src/{pkg}/model/evaluate.py",
    "src/{pkg}/model/fairness.py",
    "src/{pkg}/model/gate.py",
    "src/{pkg}/model/registry.py",
    "src/{pkg}/model/rules.py",
    "src/{pkg}/model/score.py",
    "src/{pkg}/model/train.py",
    "src/{pkg}/monitor/__init__.py",
    "src/{pkg}/monitor/drift.py",
    "src/{pkg}/pipeline.py",
    "src/{pkg}/schema.py",
    "tests/__init__.py",
    "tests/api/__init__.py",
    "tests/api/conftest.py",
    "tests/api/test_abuse.py",
    "tests/api/test_compiled.py",
    "tests/api/test_durability.py",
    "tests/api/test_openapi.py",
    "tests/api/test_properties.py",
    "tests/api/test_store_failure.py",
    "tests/bias/__init__.py",
    "tests/bias/test_bias.py",
    "tests/conftest.py",
    "tests/data/__init__.py",
    "tests/data/test_drift.py",
    "tests/data/test_label_terminal.py",
    "tests/data/test_notebook.py",
    "tests/data/test_pii.py",
    "tests/data/test_schema.py",
    "tests/data/test_skew.py",
    "tests/data/test_sources.py",
    "tests/deploy/__init__.py",
    "tests/deploy/manifests.py",
    "tests/deploy/test_alerts.py",
    "tests/deploy/test_dockerfile.py",
    "tests/deploy/test_k8s.py",
    "tests/load/__init__.py",
    "tests/load/locustfile.py",
    "tests/model/__init__.py",
    "tests/model/behaviour.py",
    "tests/model/expectations.py",
    "tests/model/test_behaviour.py",
    "tests/planted.py",
    "tests/unit/__init__.py",
    "tests/unit/test_api.py",
    "tests/unit/test_baseline.py",
    "tests/unit/test_card.py",
    "tests/unit/test_collect.py",
    "tests/unit/test_config.py",
    "tests/unit/test_curate.py",
    "tests/unit/test_evaluate.py",
    "tests/unit/test_explore.py",
    "tests/unit/test_fairness.py",
    "tests/unit/test_feedback.py",
    "tests/unit/test_gate.py",
    "tests/unit/test_infer.py",
    "tests/unit/test_label.py",
    "tests/unit/test_metrics.py",
    "tests/unit/test_monitor.py",
    "tests/unit/test_registry.py",
    "tests/unit/test_rules.py",
    "tests/unit/test_score.py",
    "tests/unit/test_train.py",
    "tests/unit/test_validate.py",
}
# Rendered only with scale_out=dask: the Dask code paths and their tests.
SCALE_OUT_FILES = {
    "deploy/dask/batch-volume.yaml",
    "deploy/dask/daskcluster.yaml",
    "deploy/dask/score-cronjob.yaml",
    "deploy/schemas/cronjob-batch-v1.json",
    "deploy/schemas/daskcluster-kubernetes.dask.org-v1.json",
    "tests/deploy/test_dask_manifests.py",
    "src/{pkg}/scale/__init__.py",
    "src/{pkg}/scale/boosting.py",
    "src/{pkg}/scale/cluster.py",
    "src/{pkg}/scale/parts.py",
    "src/{pkg}/scale/score.py",
    "src/{pkg}/scale/monitor.py",
    "src/{pkg}/scale/shipped.py",
    "src/{pkg}/scale/validate.py",
    "tests/scale/__init__.py",
    "tests/scale/conftest.py",
    "tests/scale/test_monitor.py",
    "tests/scale/test_score.py",
    "tests/scale/test_validate.py",
    "tests/scale/test_train.py",
}
# A GitHub expression `${{ x }}` is fine; a bare "}}" (even a dict literal) is not, so that any
# quick scan for leftover template markers in a generated project finds nothing.
JINJA_LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|%\}|\{#|#\}|(?<! )\}\}")
LONG_PACKAGE = "p" * 40

MATRIX = [
    pytest.param(
        {"task_type": task, "data_availability": availability}, id=f"{task}-{availability}"
    )
    for task in TASK_TYPES
    for availability in ("none", "unlabelled", "labelled")
] + [
    pytest.param(
        {
            "project_slug": "s" * 63,
            "package_name": LONG_PACKAGE,
            "target_name": "t" * 40,
            "python_version": "3.13",
            "license": "Proprietary",
        },
        id="longest-identifiers",
    ),
    pytest.param(
        {
            "task_type": "multiclass_classification",
            "class_labels": ",".join(f"class-{n}.x" for n in range(10)),
            "primary_metric": "accuracy",
            "python_version": "3.12",
        },
        id="ten-classes",
    ),
    pytest.param(
        {"task_type": "regression", "primary_metric": "r2", "metric_gate": -0.5},
        id="regression-r2",
    ),
    pytest.param(
        {"task_type": "multiclass_classification", "scale_out": "dask"}, id="scale-out-dask"
    ),
    pytest.param(
        {
            "project_name": "Churn</title><script>alert(1)</script>",
            # After "tests" in the alphabet: the imports of the tests still sort as they are
            # written (the package's first, then the tests' helpers).
            "package_name": "web_churn",
            "project_description": 'Flags <b>churn</b> & "risk" <img src=x onerror=alert(1)>',
        },
        id="markup-in-answers",
    ),
]


def project_files(project: Path) -> set[str]:
    """Every file of a rendered project, relative to it."""
    return {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


@pytest.mark.parametrize("answers", MATRIX)
def test_render_matrix(render: Render, answers: dict) -> None:
    """Each combination renders exactly the expected files, all of which parse."""
    project = render(**answers)
    package = answers.get("package_name", "customer_churn")
    expected = EXPECTED_FILES | (SCALE_OUT_FILES if answers.get("scale_out") == "dask" else set())
    assert project_files(project) == {name.format(pkg=package) for name in expected}
    for name in project_files(project):
        path = project / name
        text = path.read_text(encoding="utf-8")
        assert not JINJA_LEFTOVER.search(text), f"leftover Jinja in {path.name}"
        if path.suffix in {".yml", ".yaml"}:
            list(yaml.safe_load_all(text))
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".py":
            compile(text, str(path), "exec")


def test_a_copy_is_the_same_wherever_it_is_made(tmp_path: Path) -> None:
    """The files depend on the answers alone: no path, time or machine is rendered into them.

    Updates diff a project against a fresh render of its answers, and the template's tests
    render each set of answers once per process (tests/conftest.py): both rely on it.
    """
    answers = {"task_type": "multiclass_classification", "scale_out": "dask"}
    here = copier_copy(tmp_path / "here", answers, tasks=False)
    there = copier_copy(tmp_path / "deeper" / "elsewhere" / "there", answers, tasks=False)
    files = project_files(here)
    assert files == project_files(there)
    assert all((here / name).read_bytes() == (there / name).read_bytes() for name in files)


def test_copier_asks_git_about_file_modes_inside_a_repository_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests skip Copier's per-file git call where it is a no-op, and only there.

    tests/conftest.py wraps it; an update or a copy into an existing repository must still run
    Copier's own code, or the update tests would stop testing what users run.
    """
    asked: list[str] = []
    real_git = copier._main.get_git

    def counted(*args: Any, **kwargs: Any) -> Any:
        asked.append(str(kwargs.get("context_dir", "")))
        return real_git(*args, **kwargs)

    monkeypatch.setattr(copier._main, "get_git", counted)
    copier_copy(tmp_path / "new-folder", {}, tasks=False)
    assert not [folder for folder in asked if "new-folder" in folder]
    repository = tmp_path / "repository"
    repository.mkdir()
    subprocess.run(["git", "init", "--quiet"], cwd=repository, check=True)
    copier_copy(repository / "project", {}, tasks=False)
    files = sum(1 for path in (repository / "project").rglob("*") if path.is_file())
    assert len([folder for folder in asked if "repository" in folder]) >= files


@pytest.mark.parametrize("answers", MATRIX[:4] + MATRIX[-4:])
def test_rendered_code_passes_ruff(render: Render, answers: dict) -> None:
    """The rendered code is already lint-clean and formatted, whatever the identifiers' lengths."""
    project = render(**answers)
    ruff = [sys.executable, "-m", "ruff"]
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run(
            [*ruff, *command], cwd=project, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_python_version_sets_requires_python_and_the_ci_matrix(render: Render) -> None:
    """The oldest supported Python is the floor of requires-python and the first CI entry."""
    project = render(python_version="3.12")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == ">=3.12"
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    assert workflow["jobs"]["unit"]["strategy"]["matrix"]["python"] == ["3.12", "3.13"]


@pytest.mark.parametrize("answers", MATRIX[:4])
def test_no_rendered_file_is_ignored_by_the_gitignore(render: Render, answers: dict) -> None:
    """What git ignores (.env, data, models, reports) is never rendered: no update clobbers it."""
    project = render(**answers)
    subprocess.run(["git", "init", "--quiet"], cwd=project, check=True)
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=project,
        input="\n".join(sorted(project_files(project))),
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout == "", f"rendered but ignored: {ignored.stdout}"


def test_project_site_shows_markup_in_answers_as_text(render: Render) -> None:
    """The generated project's site, built strict, prints the answers' markup as text."""
    project = render(**MATRIX[-1].values[0])
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"],
        cwd=project,
        env={"PATH": str(Path(sys.executable).parent), "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    site = project / "site"
    pages = {
        path.relative_to(site).as_posix(): path.read_text("utf-8") for path in site.rglob("*.html")
    }
    assert "Churn&lt;/title&gt;&lt;script&gt;alert(1)" in pages["index.html"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages["index.html"]
    for name, page in pages.items():
        assert "<script>alert" not in page, name
        assert "<img src=x" not in page, name
