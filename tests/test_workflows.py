"""Generated CI workflows validate against GitHub's schema and pass zizmor's audits, offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import Render

BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


@pytest.mark.parametrize("python_version", ["3.11", "3.13"])
def test_ci_workflow_is_valid_and_has_no_zizmor_findings(
    render: Render, python_version: str
) -> None:
    """The workflow matches the vendored GitHub schema and zizmor finds nothing, all offline."""
    workflows = render(python_version=python_version) / ".github" / "workflows"
    files = sorted(str(path) for path in workflows.glob("*.yml"))
    schema = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    audit = subprocess.run(
        [BIN / "zizmor", "--offline", "--persona", "pedantic", "--no-progress", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_ci_workflow_is_locked_down(render: Render) -> None:
    """No permissions by default, read-only per job, credentials not kept, actions pinned by SHA."""
    workflow = yaml.safe_load((render() / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    assert workflow["permissions"] == {}
    assert list(workflow["jobs"]) == [
        "lint",
        "types",
        "unit",
        "api",
        "data",
        "bias",
        "model",
        "pipeline",
        "deploy",
        "security",
        "docs",
        "load",
    ]
    for name, job in workflow["jobs"].items():
        assert job["permissions"] == {"contents": "read"}, name
        uses = [step["uses"] for step in job["steps"] if "uses" in step]
        assert uses, name
        assert all(PINNED.match(action) for action in uses), uses
        checkout = next(
            step for step in job["steps"] if step.get("uses", "").startswith("actions/checkout@")
        )
        assert checkout["with"]["persist-credentials"] is False
        commands = [step["run"] for step in job["steps"] if "run" in step]
        # The load stage serves the champion and the site shows the reports, so the pipeline
        # makes them in the same job.
        sessions = f"pipeline {name}" if name in {"load", "docs"} else name
        assert commands == [f"uv run --locked nox -s {sessions}"]
    assert workflow["env"]["UV_PYTHON_DOWNLOADS"] == "never"


def test_types_stage_restores_the_mypy_cache_where_the_session_keeps_it(render: Render) -> None:
    """Before mypy runs, CI restores its cache from the folder the types session writes."""
    project = render()
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    steps = workflow["jobs"]["types"]["steps"]
    cache = next(step for step in steps if step.get("uses", "").startswith("actions/cache@"))
    mypy = next(step for step in steps if "run" in step)
    assert steps.index(cache) < steps.index(mypy)
    noxfile = (project / "noxfile.py").read_text(encoding="utf-8")
    kept = re.search(r'^MYPY_CACHE = Path\("([^"]+)"\)$', noxfile, re.MULTILINE)
    assert kept is not None
    assert cache["with"]["path"] == kept.group(1)
    # A new lock or mypy setting saves a new cache, starting from the newest older one.
    key = cache["with"]["key"]
    assert "hashFiles('uv.lock', 'pyproject.toml')" in key
    assert key.startswith(cache["with"]["restore-keys"])


def test_security_stage_reads_the_whole_history_and_keeps_the_sbom(render: Render) -> None:
    """The security job checks out every commit and uploads the SBOM the session writes."""
    workflow = yaml.safe_load((render() / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    steps = workflow["jobs"]["security"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    upload = steps[-1]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["path"] == "reports/sbom.cdx.json"
    assert upload["with"]["if-no-files-found"] == "error"


def test_docs_stage_keeps_the_site(render: Render) -> None:
    """The docs job builds the site after the pipeline and uploads it as an artifact."""
    workflow = yaml.safe_load((render() / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    job = workflow["jobs"]["docs"]
    assert job["needs"] == "pipeline"
    upload = job["steps"][-1]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"] == {"name": "site", "path": "site/", "if-no-files-found": "error"}


def test_update_bot_pins_digests_and_keeps_the_lock_current(render: Render) -> None:
    """Renovate's config is valid, pins images and actions, refreshes uv.lock and bumps Copier."""
    project = render(python_version="3.12")
    config_path = project / ".github" / "renovate.json"
    schema = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.renovate", config_path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    config = json.loads(config_path.read_text(encoding="utf-8"))
    assert {"docker:pinDigests", "helpers:pinGitHubActionDigestsToSemver"} <= set(config["extends"])
    assert config["lockFileMaintenance"]["enabled"] is True
    # The base images carry a tag the bot can pin: no `latest`, no digest invented offline.
    images = re.findall(r"^FROM (\S+)", (project / "deploy/Dockerfile").read_text("utf-8"), re.M)
    assert images == ["ghcr.io/astral-sh/uv:0.13.9", "python:3.12-slim", "python:3.12-slim"]
    # The custom manager's pattern finds the pinned Copier in the rendered workflow.
    manager = config["customManagers"][0]
    workflow = (project / ".github/workflows/template-update.yml").read_text(encoding="utf-8")
    pattern = manager["matchStrings"][0].replace("(?<", "(?P<")
    assert re.search(pattern, workflow)
    assert re.fullmatch(
        manager["managerFilePatterns"][0].strip("/"), ".github/workflows/template-update.yml"
    )


def test_batch_only_projects_have_no_load_stage(render: Render) -> None:
    """Without an online API there is nothing to load-test: no load job, session or locust file."""
    project = render(serving_mode="batch")
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    assert "load" not in workflow["jobs"]
    assert "deploy" in workflow["jobs"]
    assert "def load(" not in (project / "noxfile.py").read_text(encoding="utf-8")
    assert not (project / "tests" / "load").exists()


def test_template_update_workflow_asks_only_for_what_it_needs(render: Render) -> None:
    """The scheduled update may push its branch and open a PR, and nothing more; no cache."""
    path = render() / ".github/workflows/template-update.yml"
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert workflow["permissions"] == {}
    job = workflow["jobs"]["update"]
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    steps = job["steps"]
    assert all(PINNED.match(step["uses"]) for step in steps if "uses" in step)
    assert steps[0]["with"]["persist-credentials"] is False
    setup_uv = next(step for step in steps if step.get("uses", "").startswith("astral-sh/"))
    assert setup_uv["with"]["enable-cache"] is False
    script = "\n".join(step.get("run", "") for step in steps)
    assert re.fullmatch(r"copier==\d+\.\d+\.\d+", workflow["env"]["COPIER"]), "pin Copier"
    update = script.index('uvx --from "$COPIER" copier update --trust --defaults --skip-answered')
    # The lock is made again for the updated pyproject.toml before the commit takes it.
    assert update < script.index("uv lock") < script.index("git add --all")
