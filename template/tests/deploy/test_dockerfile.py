"""The container image's Dockerfile is lint-clean, runs unprivileged and checks its own health."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.deploy.manifests import DEPLOY

DOCKERFILE = DEPLOY / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    """Lint a Dockerfile with the locked hadolint; every finding, even a style one, fails."""
    return subprocess.run(  # noqa: S603 - the locked hadolint on a file of this project
        [HADOLINT, "--no-color", "--failure-threshold", "style", path],
        capture_output=True,
        text=True,
        check=False,
    )


def runtime_stage() -> list[str]:
    """The instructions of the last stage, the one the image runs, continuation lines joined."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, line in enumerate(instructions) if line.startswith("FROM "))
    return instructions[last_from:]


def test_dockerfile_passes_hadolint() -> None:
    """Hadolint finds nothing in deploy/Dockerfile."""
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint really runs: an unpinned base image and unpinned packages are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n", encoding="utf-8")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout


def test_image_runs_as_an_unprivileged_user() -> None:
    """The running stage switches to a numeric non-root user, which Kubernetes can verify."""
    users = [line.split()[1] for line in runtime_stage() if line.startswith("USER ")]
    assert users, "the runtime stage has no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "use a numeric user id"
    assert int(uid) > 0


def test_image_checks_its_liveness_without_curl() -> None:
    """The health check calls /health/live with the image's own Python."""
    checks = [line for line in runtime_stage() if line.startswith("HEALTHCHECK ")]
    assert len(checks) == 1
    assert "/health/live" in checks[0]
    assert '"python"' in checks[0]
    assert "curl" not in checks[0]


def test_image_serves_the_exported_model() -> None:
    """The model is copied into the image and the service is pointed at it, not at a registry."""
    stage = " ".join(runtime_stage())
    assert "COPY models/export /app/model" in stage
    assert "_MODEL_DIR=/app/model" in stage
    assert stage.endswith('"serve"]')


def dockerignore_allows() -> set[str]:
    """What .dockerignore lets into the build context, which is the project root."""
    lines = (DEPLOY.parent / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "exclude everything first, then allow what the image needs"
    return {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}


def test_build_context_leaves_data_and_secrets_out() -> None:
    """.dockerignore lets in only what the image needs: no data, no registry, no .env."""
    allowed = dockerignore_allows()
    assert not {name for name in allowed if name.startswith(("data", ".env", "mlflow"))}


def test_everything_the_image_copies_is_in_the_build_context() -> None:
    """Each file or folder a COPY takes from the project is let in by .dockerignore."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    copies = [line.split()[1:] for line in text.splitlines() if line.startswith("COPY ")]
    sources = {part for args in copies if not args[0].startswith("--from") for part in args[:-1]}
    assert sources
    assert sources <= dockerignore_allows()
