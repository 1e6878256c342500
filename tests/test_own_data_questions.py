"""Own data from the first command: the data questions, and the schema inferred at copy time."""

from __future__ import annotations

import ast
import csv
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from sklearn.datasets import load_breast_cancer, load_diabetes

from tests.conftest import TEMPLATE, Render

OFFLINE = {"UV_INDEX_URL": "http://127.0.0.1:9/simple", "UV_NO_CACHE": "1", "UV_HTTP_RETRIES": "0"}


def contract(project: Path) -> dict[str, Any]:
    """The rendered ml_contract.yaml."""
    return yaml.safe_load((project / "ml_contract.yaml").read_text(encoding="utf-8"))


def answers(project: Path) -> dict[str, Any]:
    """The recorded answers."""
    return yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))


def schema_calls(project: Path) -> tuple[list[ast.Call], ast.Call]:
    """The Column(...) calls and the Target(...) call of the project's schema.py."""
    source = (project / "src" / "customer_churn" / "schema.py").read_text(encoding="utf-8")
    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)]
    named = [(call, call.func.id) for call in calls if isinstance(call.func, ast.Name)]
    columns = [call for call, name in named if name == "Column"]
    target = next(call for call, name in named if name == "Target")
    return columns, target


def keyword(call: ast.Call, name: str) -> Any:
    """A keyword argument of a call, as the literal it is (None when it is not given)."""
    found = next((item.value for item in call.keywords if item.arg == name), None)
    return None if found is None else ast.literal_eval(found)


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    """A CSV file as a spreadsheet or pandas exports one."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def breast_cancer(tmp_path: Path) -> Path:
    """scikit-learn's bundled breast cancer data set as a CSV file (target 1 = benign)."""
    data = load_breast_cancer()
    rows = [
        [*map(repr, map(float, row)), int(label)]
        for row, label in zip(data.data, data.target, strict=True)
    ]
    return write_csv(tmp_path / "breast_cancer.csv", [*data.feature_names, "target"], rows)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The post-copy task cannot reach a package index: uv.lock fails fast, the commit happens."""
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_the_demo_stays_the_default(render: Render) -> None:
    """Without data questions answered, the project collects the synthetic demo source."""
    project = render()
    assert contract(project)["data"]["source"] == "demo"
    assert contract(project)["data"]["path"] is None
    assert "data_path" not in answers(project)
    assert "positive_value" not in answers(project)


def test_no_data_yet_means_the_demo_without_asking(render: Render) -> None:
    """With no data at all, where it comes from is not asked: it is the demo."""
    project = render(data_availability="none")
    assert contract(project)["data"]["source"] == "demo"
    assert "data_source" not in answers(project)


@pytest.mark.parametrize(
    ("answers_given", "section"),
    [
        (
            {"data_source": "csv", "data_path": "../shared/Survey Results 2024.csv"},
            {"source": "csv", "path": "../shared/Survey Results 2024.csv", "query": None},
        ),
        (
            {"data_source": "parquet", "data_path": "/data/sales.parquet"},
            {"source": "parquet", "path": "/data/sales.parquet", "query": None},
        ),
        (
            {"data_source": "sql", "data_query": "SELECT * FROM \"Kunden\" WHERE région = 'é'"},
            {"source": "sql", "path": None, "query": "SELECT * FROM \"Kunden\" WHERE région = 'é'"},
        ),
    ],
    ids=["csv", "parquet", "sql"],
)
def test_where_the_data_is_lands_in_the_contract(
    render: Render, answers_given: dict[str, str], section: dict[str, Any]
) -> None:
    """The source, path and query land in ml_contract.yaml data exactly as answered."""
    data = contract(render(**answers_given, sensitive_features=""))["data"]
    assert {key: data[key] for key in section} == section


@pytest.mark.parametrize(
    ("answers_given", "message"),
    [
        ({"data_source": "csv"}, "Give the path of the data file"),
        ({"data_source": "csv", "data_path": "   "}, "Give the path of the data file"),
        ({"data_source": "csv", "data_path": "a\nb.csv"}, "control characters"),
        ({"data_source": "csv", "data_path": "x" * 501}, "at most 500"),
        ({"data_source": "parquet", "data_path": "sales.csv"}, "must end in .parquet"),
        ({"data_source": "csv", "data_path": "sales.parquet"}, "answer parquet"),
        ({"data_source": "sql"}, "Give the SQL query"),
        ({"data_source": "sql", "data_query": "SELECT 1\nFROM t"}, "one line"),
        ({"data_source": "excel"}, "Invalid choice"),
    ],
)
def test_data_answers_are_checked(render: Render, answers_given: dict, message: str) -> None:
    """A missing path or query, control characters and mismatched file kinds are refused."""
    with pytest.raises(ValueError, match=message):
        render(**answers_given, sensitive_features="")


OWN = {"data_source": "csv", "data_path": "data.csv", "sensitive_features": ""}


@pytest.mark.parametrize(
    "name", ["Target", "Mean Radius", "income.2024", "0_label", "Zufriedenheit (1-5)", "é"]
)
def test_a_target_column_may_have_any_printable_name(render: Render, name: str) -> None:
    """Upper case, digits, dots, spaces and other scripts are real column names."""
    assert contract(render(**OWN, target_name=name))["task"]["target"] == name


@pytest.mark.parametrize(
    ("answers_given", "message"),
    [
        ({**OWN, "target_name": ""}, "Give the name of the target column"),
        ({**OWN, "target_name": "  "}, "Give the name of the target column"),
        ({**OWN, "target_name": "x" * 101}, "at most 100"),
        ({**OWN, "target_name": "tab\there"}, "control characters"),
        ({"target_name": "sex"}, "already a feature column of the demo data"),
    ],
)
def test_bad_target_names_are_refused(render: Render, answers_given: dict, message: str) -> None:
    """Empty, overlong or multi-line names are refused; demo feature names only for the demo."""
    with pytest.raises(ValueError, match=message):
        render(**answers_given)


def test_a_demo_feature_name_is_fine_as_the_target_of_own_data(render: Render) -> None:
    """'sex' is taken in the demo data, not in the user's."""
    assert contract(render(**OWN, target_name="sex"))["task"]["target"] == "sex"


@pytest.mark.parametrize(
    ("given", "listed"),
    [
        ("", []),
        ("Age Group", ["Age Group"]),
        ("mean radius, Sex.Code ,Région", ["mean radius", "Sex.Code", "Région"]),
    ],
)
def test_sensitive_features_of_own_data_are_any_column_names(
    render: Render, given: str, listed: list[str]
) -> None:
    """Own data may name any columns, or none; names are trimmed."""
    rendered = contract(render(**{**OWN, "sensitive_features": given}))
    assert rendered["fairness"]["sensitive_features"] == listed


@pytest.mark.parametrize(
    ("answers_given", "message"),
    [
        ({"sensitive_features": ""}, "Give 1 to 5 column names"),
        ({**OWN, "sensitive_features": "a,,b"}, "no empty name"),
        ({**OWN, "sensitive_features": "a,b,c,d,e,f"}, "at most 5"),
        ({**OWN, "sensitive_features": "churned"}, "cannot be a sensitive feature"),
        ({**OWN, "sensitive_features": "a\tb"}, "not a column name"),
        ({**OWN, "sensitive_features": "x" * 101}, "not a column name"),
    ],
)
def test_bad_sensitive_features_are_refused(
    render: Render, answers_given: dict, message: str
) -> None:
    """The demo needs a group column; empty names, the target and control characters never."""
    with pytest.raises(ValueError, match=message):
        render(**answers_given)


MULTICLASS = {**OWN, "task_type": "multiclass_classification"}


@pytest.mark.parametrize(
    ("given", "listed"),
    [
        ("0,1,2,3,4,5,6", ["0", "1", "2", "3", "4", "5", "6"]),
        ("very low, low, high", ["very low", "low", "high"]),
        (",".join(str(label) for label in range(50)), [str(label) for label in range(50)]),
    ],
)
def test_class_labels_of_own_data_are_written_as_in_the_data(
    render: Render, given: str, listed: list[str]
) -> None:
    """Numbers and spaces are fine in own data's classes, up to 50 of them."""
    rendered = contract(render(**{**MULTICLASS, "class_labels": given}))
    assert rendered["task"]["classes"] == listed


@pytest.mark.parametrize(
    ("answers_given", "message"),
    [
        ({**MULTICLASS, "class_labels": "0,1"}, "Give 3 to 50 labels"),
        ({**MULTICLASS, "class_labels": "0,1,1"}, "only once"),
        ({**MULTICLASS, "class_labels": "a,b,c\td"}, "not a valid label"),
        ({"task_type": "multiclass_classification", "class_labels": "a,b,c d"}, "not a valid"),
        (
            {"task_type": "multiclass_classification", "class_labels": ",".join("abcdefghijk")},
            "Give 3 to 10 labels",
        ),
    ],
)
def test_bad_class_labels_are_refused(render: Render, answers_given: dict, message: str) -> None:
    """Fewer than three classes, repeats and control characters are refused."""
    with pytest.raises(ValueError, match=message):
        render(**answers_given)


@pytest.mark.parametrize(
    ("answers_given", "quoted"),
    [
        ({**MULTICLASS, "class_labels": "a,b,c\x1b[2J\nd"}, '"c\\u001b[2J\\nd"'),
        ({**OWN, "sensitive_features": "x\ty"}, '"x\\ty"'),
        ({"target_name": "sex"}, '"sex"'),
    ],
)
def test_an_answer_quoted_in_an_error_is_escaped(
    render: Render, answers_given: dict, quoted: str
) -> None:
    """Newlines, tabs and terminal escapes in an answer never reach the terminal raw."""
    with pytest.raises(ValueError, match="Validation error") as refused:
        render(**answers_given)
    message = str(refused.value)
    assert quoted in message
    assert not any(character in message for character in "\x1b\n\t")


def test_the_positive_value_is_asked_for_own_binary_data_only(render: Render) -> None:
    """Own binary data records which value means positive; the demo does not ask."""
    assert answers(render(**OWN, positive_value="yes"))["positive_value"] == "yes"
    assert answers(render(**OWN))["positive_value"] == "1"
    assert "positive_value" not in answers(render())
    assert "positive_value" not in answers(render(**OWN, task_type="regression"))


@pytest.mark.parametrize(("value", "message"), [("", "Give the value"), ("a\nb", "control")])
def test_bad_positive_values_are_refused(render: Render, value: str, message: str) -> None:
    """The positive value is one line of printable text."""
    with pytest.raises(ValueError, match=message):
        render(**OWN, positive_value=value)


def test_the_schema_is_user_owned_and_kept_on_update() -> None:
    """schema.py is excluded from `copier update`, like the baseline rules."""
    settings = yaml.safe_load((TEMPLATE / "copier.yml").read_text(encoding="utf-8"))
    expected = "{% if _copier_operation == 'update' %}src/{{ package_name }}/schema.py{% endif %}"
    assert expected in settings["_exclude"]


def test_a_csv_file_gives_the_schema_at_copy_time(
    render: Render, breast_cancer: Path, offline: None, capfd: pytest.CaptureFixture[str]
) -> None:
    """The post-copy task writes schema.py from the data's own columns, before the first commit."""
    project = render(
        tasks=True,
        data_source="csv",
        data_path=str(breast_cancer),
        target_name="target",
        sensitive_features="",
        positive_class="benign",
        negative_class="malignant",
    )
    columns, target = schema_calls(project)
    names = [ast.literal_eval(call.args[0]) for call in columns]
    assert names == list(load_breast_cancer().feature_names)
    assert "mean radius" in names
    assert {ast.literal_eval(call.args[1]) for call in columns} == {"number"}
    assert ast.literal_eval(target.args[0]) == "target"
    assert keyword(target, "values") == (0, 1)
    shares = keyword(target, "weights")
    assert shares == pytest.approx((212 / 569, 357 / 569), abs=1e-4)
    shown = capfd.readouterr().err
    assert "wrote src/customer_churn/schema.py from breast_cancer.csv" in shown
    assert "30 columns (30 model inputs)" in shown
    assert "569 rows sampled of 569" in shown
    committed = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, check=True
    )
    assert committed.stdout == "", "the first commit holds the inferred schema"


def test_a_relative_path_is_read_from_where_copier_runs(
    render: Render,
    tmp_path: Path,
    offline: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A relative data_path names a file beside the user; the contract then points at it."""
    data = load_diabetes(scaled=False)
    rows = [
        [*(format(value, "g") for value in row), format(label, "g")]
        for row, label in zip(data.data, data.target, strict=True)
    ]
    write_csv(tmp_path / "diabetes.csv", [*data.feature_names, "disease progression"], rows)
    monkeypatch.chdir(tmp_path)
    project = render(
        tasks=True,
        task_type="regression",
        data_source="csv",
        data_path="diabetes.csv",
        target_name="disease progression",
        sensitive_features="sex",
    )
    assert contract(project)["data"]["path"] == "../diabetes.csv"
    assert (project / contract(project)["data"]["path"]).resolve() == tmp_path / "diabetes.csv"
    columns, target = schema_calls(project)
    by_name = {ast.literal_eval(call.args[0]): call for call in columns}
    assert list(by_name) == list(data.feature_names)
    assert keyword(by_name["sex"], "role") == "sensitive"
    assert keyword(by_name["sex"], "categories") == (1, 2)
    assert ast.literal_eval(target.args[0]) == "disease progression"
    assert keyword(target, "minimum") <= min(data.target)
    assert keyword(target, "maximum") >= max(data.target)


@pytest.mark.parametrize(
    ("answers_given", "advice"),
    [
        ({"data_source": "csv", "data_path": "missing.csv"}, "not found"),
        # Locked: the project's own reader says the file is no Parquet; offline: what to run.
        ({"data_source": "parquet", "data_path": "sales.parquet"}, "Parquet"),
        ({"data_source": "sql", "data_query": "SELECT * FROM t"}, "CUSTOMER_CHURN_DATABASE_URL"),
    ],
    ids=["unreadable", "parquet", "sql"],
)
def test_without_a_readable_csv_the_task_says_what_to_run_later(
    render: Render,
    tmp_path: Path,
    offline: None,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    answers_given: dict[str, str],
    advice: str,
) -> None:
    """The copy succeeds with the demo schema and one line naming the command to run later."""
    (tmp_path / "sales.parquet").write_bytes(b"PAR1")
    monkeypatch.chdir(tmp_path)
    project = render(tasks=True, **answers_given, sensitive_features="")
    shown = capfd.readouterr().err
    assert advice in shown
    assert "uv run customer-churn schema infer --write" in shown
    assert (project / "src" / "customer_churn" / "schema.py").is_file()


def test_data_that_does_not_fit_the_answers_leaves_the_demo_schema_and_says_why(
    render: Render, breast_cancer: Path, offline: None, capfd: pytest.CaptureFixture[str]
) -> None:
    """A target column the data lacks is one line naming it, then what to run after fixing it."""
    project = render(
        tasks=True, data_source="csv", data_path=str(breast_cancer), sensitive_features=""
    )
    shown = capfd.readouterr().err
    assert "no target column 'churned'; its columns are 'mean radius'" in shown
    assert "uv run customer-churn schema infer --write" in shown
    source = (project / "src" / "customer_churn" / "schema.py").read_text(encoding="utf-8")
    assert '"tenure_months"' in source
