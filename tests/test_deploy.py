"""Deployment files follow the answers: canary steps, deployment kind, names Kubernetes accepts."""

from __future__ import annotations

import re

import yaml

from tests.conftest import Render

DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")


def test_rollout_steps_follow_the_canary_answer(render: Render) -> None:
    """Each canary step becomes a setWeight, with an analysis between steps and none after 100."""
    project = render(canary_steps="10, 50,100")
    rollout = yaml.safe_load((project / "deploy/k8s/rollout.yaml").read_text(encoding="utf-8"))
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert [next(iter(step)) for step in steps] == [
        "setWeight",
        "analysis",
        "setWeight",
        "analysis",
        "setWeight",
    ]
    assert [step["setWeight"] for step in steps if "setWeight" in step] == [10, 50, 100]
    contract = yaml.safe_load((project / "ml_contract.yaml").read_text(encoding="utf-8"))
    assert contract["delivery"]["canary_steps"] == [10, 50, 100]


def test_container_only_projects_get_no_kubernetes_manifests(render: Render) -> None:
    """deployment=container keeps the image, its checks and the alerts, and drops deploy/k8s."""
    project = render(deployment="container")
    assert not (project / "deploy" / "k8s").exists()
    assert not (project / "tests" / "deploy" / "test_k8s.py").exists()
    assert (project / "deploy" / "Dockerfile").exists()
    assert (project / "deploy" / "monitoring" / "alerts.yaml").exists()
    assert "kubectl" not in (project / "docs" / "deploy.md").read_text(encoding="utf-8")


def test_longest_slug_gives_valid_kubernetes_names(render: Render) -> None:
    """A 63-character slug still names the Service within DNS-1035 and every object parses."""
    project = render(project_slug="s" * 63)
    for path in sorted((project / "deploy" / "k8s").glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
        if manifest["kind"] == "Service":
            assert DNS_1035_LABEL.match(manifest["metadata"]["name"])
        assert len(manifest["metadata"]["name"]) <= 253


def test_thresholds_in_manifests_follow_the_serving_answers(render: Render) -> None:
    """The p95 latency answer reaches the canary analysis and the alert rules."""
    project = render(latency_p95_ms=750, drift_limit=0.3)
    analysis = (project / "deploy/k8s/analysis-template.yaml").read_text(encoding="utf-8")
    assert "result[0] <= 750" in analysis
    alerts = yaml.safe_load((project / "deploy/monitoring/alerts.yaml").read_text(encoding="utf-8"))
    expressions = {rule["alert"]: rule["expr"] for rule in alerts["groups"][0]["rules"]}
    assert expressions["PredictionLatencyHigh"].endswith("> 750")
    assert expressions["ModelInputDrift"].endswith("> 0.3")
