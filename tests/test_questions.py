"""The questionnaire: derived values, choices per task type, and validators with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import TASK_TYPES, Render


def contract(project: Path) -> dict:
    """The rendered ml_contract.yaml."""
    return yaml.safe_load((project / "ml_contract.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("task_type", "fp", "fn", "threshold"),
    [
        ("binary_classification", 1.0, 5.0, 0.1667),
        ("binary_classification", 3.0, 1.0, 0.75),
        ("anomaly_detection", 1.0, 10.0, 0.0909),
        ("anomaly_detection", 2.5, 2.5, 0.5),
    ],
)
def test_threshold_follows_from_the_costs(
    render: Render, task_type: str, fp: float, fn: float, threshold: float
) -> None:
    """The decision threshold is c_fp / (c_fp + c_fn), rounded to four places, in the contract."""
    project = render(task_type=task_type, cost_false_positive=fp, cost_false_negative=fn)
    rendered = contract(project)
    assert rendered["decision"]["threshold"] == threshold
    assert rendered["costs"] == {"false_positive": fp, "false_negative": fn}


@pytest.mark.parametrize(("over", "under", "quantile"), [(1.0, 3.0, 0.75), (4.0, 1.0, 0.2)])
def test_regression_quantile_follows_from_the_costs(
    render: Render, over: float, under: float, quantile: float
) -> None:
    """Regression aims at the c_under / (c_over + c_under) quantile, which the contract holds."""
    project = render(task_type="regression", cost_over_prediction=over, cost_under_prediction=under)
    rendered = contract(project)
    assert rendered["decision"] == {"quantile": quantile}
    assert rendered["costs"] == {"over_prediction": over, "under_prediction": under}


def test_multiclass_has_no_threshold_and_keeps_the_class_order(render: Render) -> None:
    """Multiclass predicts the most likely class; the classes keep the order they were given in."""
    project = render(task_type="multiclass_classification", class_labels="p3, p2,p1,p0")
    rendered = contract(project)
    assert rendered["decision"] == {"threshold": None}
    assert rendered["task"]["classes"] == ["p3", "p2", "p1", "p0"]


@pytest.mark.parametrize(
    ("task_type", "default_metric", "allowed", "refused"),
    [
        ("binary_classification", "roc_auc", "f1", "mae"),
        ("anomaly_detection", "average_precision", "recall", "f1_macro"),
        ("multiclass_classification", "f1_macro", "balanced_accuracy", "roc_auc"),
        ("regression", "mae", "r2", "accuracy"),
    ],
)
def test_metric_choices_depend_on_the_task(
    render: Render, task_type: str, default_metric: str, allowed: str, refused: str
) -> None:
    """Each task type offers its own metrics, defaults to a sensible one, and refuses the others."""
    assert contract(render(task_type=task_type))["metrics"]["primary"] == default_metric
    assert (
        contract(render(task_type=task_type, primary_metric=allowed))["metrics"]["primary"]
        == allowed
    )
    with pytest.raises(ValueError, match="for "):
        render(task_type=task_type, primary_metric=refused)


@pytest.mark.parametrize(
    ("metric", "gate", "greater"),
    [("mae", 12.0, False), ("rmse", 18.0, False), ("r2", 0.5, True)],
)
def test_regression_gates_know_their_direction(
    render: Render, metric: str, gate: float, greater: bool
) -> None:
    """Error metrics pass below their gate; the contract says which way each one points."""
    metrics = contract(render(task_type="regression", primary_metric=metric))["metrics"]
    assert metrics["gate"] == gate
    assert metrics["greater_is_better"] is greater


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_slug": "Bad_Slug"}, "DNS-1123"),
        ({"project_slug": "a" * 64}, "1 to 63"),
        ({"project_slug": "ends-with-"}, "not ending with '-'"),
        ({"project_slug": "ok\n"}, "DNS-1123"),
        ({"package_name": "class"}, "Python keyword"),
        ({"package_name": "data"}, "shadow"),
        ({"package_name": "1abc"}, "Python identifier"),
        ({"package_name": "abc\n"}, "Python identifier"),
        ({"project_name": ""}, "Give the project a name"),
        ({"project_name": "tab\there"}, "control characters"),
        ({"project_name": "x" * 81}, "at most 80"),
        ({"business_goal": "line one\nline two"}, "control characters"),
        ({"author_email": "not-an-email"}, "e-mail address"),
        ({"target_name": "sex"}, "already a feature column"),
        ({"target_name": "two\nlines"}, "control characters"),
        ({"positive_class": "a b"}, "letters, digits"),
        ({"positive_class": "same", "negative_class": "same"}, "must differ"),
        ({"task_type": "multiclass_classification", "class_labels": "a,b"}, "3 to 10"),
        ({"task_type": "multiclass_classification", "class_labels": "a,b,a"}, "only once"),
        (
            {"task_type": "multiclass_classification", "class_labels": "a,b,c d"},
            "not a valid label",
        ),
        ({"cost_false_positive": 0}, "positive number"),
        ({"cost_false_negative": -1}, "positive number"),
        ({"task_type": "regression", "cost_under_prediction": 0}, "positive number"),
        ({"metric_gate": 1.5}, "between 0.5"),
        ({"primary_metric": "f1", "metric_gate": 0}, "between 0 and 1"),
        ({"task_type": "regression", "metric_gate": -3}, "positive error"),
        ({"task_type": "regression", "primary_metric": "r2", "metric_gate": 1}, "between -1 and 1"),
        ({"python_version": "3.10"}, "Invalid choice"),
        ({"sensitive_features": "sex,sex"}, "only once"),
        ({"sensitive_features": "sex,churned"}, "cannot be a sensitive feature"),
        ({"sensitive_features": "sex;drop"}, "not a column name"),
        ({"task_type": "regression", "fairness_metric": "equalized_odds_difference"}, "for binary"),
        ({"fairness_tolerance": 0}, "above 0 and at most 1"),
        ({"latency_p95_ms": 0}, "milliseconds from 1"),
        ({"throughput_rps": 0}, "requests per second"),
        ({"registry_tracking_uri": "https://u:p@mlflow.example.com"}, "without credentials"),
        ({"registry_tracking_uri": "ftp://mlflow.example.com"}, "without credentials"),
        ({"registry_tracking_uri": "http://x\n"}, "without credentials"),
        ({"canary_steps": "5,2,100"}, "Steps must rise"),
        ({"canary_steps": "2,5,50"}, "last step must be 100"),
        ({"canary_steps": "0,100"}, "whole percentage"),
        ({"canary_steps": "2,x,100"}, "whole percentage"),
        ({"drift_limit": 0}, "above 0 and at most 10"),
    ],
)
def test_bad_answers_get_one_clear_line_and_no_files(
    render: Render, tmp_path: Path, answers: dict, message: str
) -> None:
    """A bad answer stops Copier before it writes anything, saying what is allowed instead."""
    with pytest.raises(ValueError, match=message) as caught:
        render(**answers)
    assert "\n" not in str(caught.value).strip()
    assert not any(tmp_path.glob("project-*/*"))


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_defaults_render_for_every_task_type(render: Render, task_type: str) -> None:
    """Each task type renders with its defaults and names its own target column."""
    rendered = contract(render(task_type=task_type))
    assert rendered["task"]["type"] == task_type
    assert (
        rendered["task"]["target"]
        == {
            "binary_classification": "churned",
            "multiclass_classification": "priority",
            "regression": "monthly_spend",
            "anomaly_detection": "is_anomaly",
        }[task_type]
    )


@pytest.mark.parametrize(
    ("name", "slug", "package"),
    [
        ("Customer Churn", "customer-churn", "customer_churn"),
        ("True", "true", "true_app"),
        ("Data", "data", "data_app"),
        ("2024 Fraud -- Radar!", "fraud-radar", "fraud_radar"),
        ("🚀", "ml-project", "ml_project"),
        ("A" * 30 + " " + "b" * 49, "a" * 30 + "-" + "b" * 32, "a" * 30 + "_" + "b" * 9),
    ],
)
def test_identifiers_derived_from_the_name_are_valid(
    render: Render, name: str, slug: str, package: str
) -> None:
    """Whatever the project is called, the derived slug and package name pass their validators."""
    project = render(project_name=name)
    assert contract(project)["project"]["slug"] == slug
    assert (project / "src" / package).is_dir()


def test_later_sections_reach_the_contract(render: Render) -> None:
    """Fairness, registry, serving and delivery answers land in the contract's own sections."""
    rendered = contract(
        render(
            sensitive_features="sex, region",
            fairness_metric="demographic_parity_difference",
            fairness_tolerance=0.05,
            serving_mode="online",
            latency_p95_ms=150,
            throughput_rps=80,
            registry_tracking_uri="http://127.0.0.1:5000",
            canary_steps="10, 50,100",
            drift_limit=0.3,
        )
    )
    assert rendered["fairness"] == {
        "sensitive_features": ["sex", "region"],
        "metric": "demographic_parity_difference",
        "tolerance": 0.05,
        "reason": "",
    }
    assert rendered["registry"] == {
        "model_name": "customer-churn",
        "tracking_uri": "http://127.0.0.1:5000",
    }
    assert rendered["serving"]["mode"] == "online"
    assert rendered["serving"]["latency_p95_ms"] == 150
    assert rendered["serving"]["throughput_rps"] == 80
    assert rendered["delivery"] == {"deployment": "kubernetes", "canary_steps": [10, 50, 100]}
    assert rendered["data"]["drift_limit"] == 0.3
    assert contract(render())["registry"]["tracking_uri"] is None
