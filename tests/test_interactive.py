"""The questionnaire as a person answers it: Copier's interactive prompts driven through a terminal.

The other tests pass answers as data; these spawn `copier copy` in a pseudo-terminal, wait for each
question to show up on screen, and answer with the keys a person would press: arrow keys in the
choice lists, Ctrl-U to clear a prefilled default, Enter to accept one.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import pexpect
import pytest
import yaml

from tests.conftest import TEMPLATE

UP = "\x1b[A"
DOWN = "\x1b[B"
ENTER = "\r"
# Text questions come prefilled with their default and the cursor at its end; Ctrl-U deletes from
# the cursor to the start of the line, which clears the default before a new answer is typed.
CLEAR = "\x15"

STEP_TIMEOUT = 30.0
# Starting up clones the template and rendering writes the project: allow for a loaded machine.
SLOW_TIMEOUT = 120.0

# CSI (colours, cursor moves, modes), OSC (titles) and the short two-character escapes.
ANSI_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[0-9=>@-Z\\-_])"
)


def plain(text: str) -> str:
    """The terminal output without escape sequences and carriage returns."""
    return ANSI_ESCAPE.sub("", text).replace("\r", "")


def copier_executable() -> str:
    """The copier command installed beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).with_name("copier")
    if beside.is_file():
        return str(beside)
    found = shutil.which("copier")
    if found is None:
        pytest.fail(f"copier is neither beside {sys.executable} nor on PATH")
    return found


class Terminal:
    """A person at a terminal: watches what Copier shows, waits for a question, then types."""

    def __init__(self, destination: Path) -> None:
        """Start `copier copy` of this checkout into `destination` in a pseudo-terminal."""
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in {"COLUMNS", "LINES", "NO_COLOR"}
        }
        # Without an answer to its cursor position request, prompt_toolkit waits and then prints
        # a warning into the screen; a terminal emulator would answer, pexpect does not.
        environment.update(
            TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", PYTHONIOENCODING="utf-8"
        )
        self.child = pexpect.spawn(
            copier_executable(),
            [
                "copy",
                "--trust",
                "--vcs-ref",
                "HEAD",
                "--skip-tasks",
                str(TEMPLATE),
                str(destination),
            ],
            env=environment,
            encoding="utf-8",
            codec_errors="replace",
            dimensions=(40, 200),
            timeout=STEP_TIMEOUT,
        )
        self.output = ""
        self.seen = 0  # how far into the plain transcript the person has read

    @property
    def transcript(self) -> str:
        """Everything shown so far, as plain text."""
        return plain(self.output)

    def last_screen(self) -> str:
        """The end of the plain transcript, for failure messages."""
        return self.transcript[-3000:]

    def wait_for(self, text: str, timeout: float = STEP_TIMEOUT) -> str:
        """Wait until `text` appears after what was already read; return the plain text before it.

        Matching runs on the transcript without escape sequences, so colours and cursor moves
        between the words do not matter.
        """
        deadline = time.monotonic() + timeout
        while True:
            transcript = self.transcript
            found = transcript.find(text, self.seen)
            if found >= 0:
                before = transcript[self.seen : found]
                self.seen = found + len(text)
                return before
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(
                    f"{text!r} did not appear within {timeout:.0f} s; last screen text:\n"
                    f"{self.last_screen()}"
                )
            try:
                self.output += self.child.read_nonblocking(65536, timeout=min(remaining, 1.0))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                pytest.fail(
                    f"copier exited before {text!r} appeared; last screen text:\n"
                    f"{self.last_screen()}"
                )

    def answer(self, question: str, keys: str) -> None:
        """Wait for a question to be shown, then press `keys`."""
        self.wait_for(question)
        self.press(keys)

    def press(self, keys: str) -> None:
        """Type `keys` into the terminal."""
        self.child.send(keys)

    def wait_for_exit(self, timeout: float = SLOW_TIMEOUT) -> int | None:
        """Wait until copier closes the terminal; return its exit status."""
        try:
            self.child.expect(pexpect.EOF, timeout=timeout)
        except pexpect.TIMEOUT:
            self.output += self.child.before or ""
            pytest.fail(
                f"copier did not finish within {timeout:.0f} s; last screen text:\n"
                f"{self.last_screen()}"
            )
        self.output += self.child.before or ""
        self.child.close()
        return self.child.exitstatus

    def close(self) -> None:
        """Kill copier if it is still running."""
        if not self.child.closed:
            self.child.close(force=True)


def test_a_person_plans_a_regression_project_at_the_terminal(tmp_path: Path) -> None:
    """A full questionnaire answered at the keyboard writes the contract and the answers file.

    The person picks regression with the arrow keys, replaces prefilled defaults, has a bad
    repository name refused with the validator's message and corrects it, sees only the questions
    that apply to regression, and sees the prediction quantile that follows from their costs
    before picking a metric. Copier exits cleanly and ml_contract.yaml and .copier-answers.yml
    hold exactly those answers.
    """
    destination = tmp_path / "proj"
    terminal = Terminal(destination)
    try:
        terminal.wait_for("Let's plan the ML product first", SLOW_TIMEOUT)

        terminal.wait_for("Project name, as people say it", SLOW_TIMEOUT)
        terminal.answer("Customer Churn", CLEAR + "Demand Forecast" + ENTER)

        terminal.wait_for("Short name for the repository")
        terminal.answer("demand-forecast", CLEAR + "Bad_Slug" + ENTER)
        refused = terminal.wait_for("(a DNS-1123 label)")
        assert "Validation error for question 'project_slug'" in refused, terminal.last_screen()
        assert "Python package name" not in refused, terminal.last_screen()
        terminal.press(CLEAR + "demand-forecast" + ENTER)

        terminal.wait_for("Python package name")
        terminal.answer("demand_forecast", ENTER)
        terminal.wait_for("One sentence on what the product does")
        terminal.answer("Demand Forecast: predictions people can act on", ENTER)
        terminal.wait_for("Your name")
        terminal.answer("ML Team", CLEAR + "Ada Lovelace" + ENTER)
        terminal.wait_for("Your e-mail address")
        terminal.answer("ml-team@example.com", CLEAR + "ada@example.com" + ENTER)

        terminal.wait_for("Licence of the code")
        terminal.answer("» MIT", ENTER)
        terminal.wait_for("Oldest Python the project supports")
        terminal.answer("» 3.11", DOWN)
        terminal.answer("» 3.12", ENTER)

        terminal.wait_for("What kind of decision does the model make?")
        terminal.answer("» Binary classification", DOWN)
        terminal.answer("» Multiclass classification", DOWN)
        terminal.answer("» Regression (a number", ENTER)

        terminal.wait_for("The problem in one sentence")
        terminal.answer("Forecast each customer's spend next month", ENTER)
        terminal.wait_for("What data do you have today?")
        terminal.answer("» Labelled records", UP)
        terminal.answer("» Unlabelled records", ENTER)
        terminal.wait_for("Where does the data come from?")
        terminal.answer("» The synthetic demo data", ENTER)
        terminal.wait_for("Name of the column the model predicts")
        terminal.answer("monthly_spend", ENTER)

        terminal.wait_for("Cost of predicting one unit too much")
        terminal.answer("1.0", CLEAR + "2" + ENTER)
        terminal.wait_for("Cost of predicting one unit too little")
        terminal.answer("3.0", CLEAR + "6" + ENTER)

        terminal.wait_for("Your costs put the prediction quantile at 0.75.")
        terminal.wait_for("Which metric decides whether a model is good enough?")
        terminal.answer("» Mean absolute error", DOWN)
        terminal.answer("» Root mean squared error", ENTER)
        terminal.wait_for("Largest RMSE you accept, in target units")
        terminal.answer("18.0", ENTER)
        terminal.wait_for("The business number the metric stands for")
        terminal.answer("Cost of over- and under-stocking per month", ENTER)

        terminal.wait_for("Which columns hold groups that must be treated fairly?")
        terminal.answer("sex", CLEAR + "sex, region" + ENTER)
        terminal.wait_for("Which fairness measure must stay within the tolerance?")
        terminal.answer("» Gap of the primary metric", ENTER)
        terminal.wait_for("Largest gap of rmse between groups")
        terminal.answer("4.5", CLEAR + "3" + ENTER)

        terminal.wait_for("How are predictions used?")
        terminal.answer("» Both", UP)
        terminal.answer("» Batch", ENTER)

        terminal.wait_for("MLflow tracking server that keeps the model registry")
        terminal.press("https://user:secret@mlflow.example.com" + ENTER)
        refused = terminal.wait_for("without credentials")
        assert "Validation error for question 'registry_tracking_uri'" in refused
        terminal.press(CLEAR + "https://mlflow.example.com" + ENTER)

        terminal.wait_for("How is the service deployed?")
        terminal.answer("» Kubernetes with an Argo Rollouts canary", DOWN)
        terminal.answer("» Container image only", ENTER)
        terminal.wait_for("Population stability index above which")
        terminal.answer("0.2", CLEAR + "0.25" + ENTER)
        # Batch scoring that will outgrow one machine: Dask.
        terminal.wait_for("Should batch work run beyond one process?")
        terminal.answer("» One process", DOWN)
        terminal.answer("» Dask", ENTER)

        terminal.wait_for("Demand Forecast is ready in", SLOW_TIMEOUT)
        terminal.wait_for("Your costs put the prediction quantile at 0.75 (ml_contract.yaml")
        status = terminal.wait_for_exit()
    finally:
        terminal.close()

    assert status == 0, f"copier exited with {status}; last screen text:\n{terminal.last_screen()}"

    shown = terminal.transcript
    for hidden in (
        "Label the API returns for the positive class",
        "Label the API returns for the negative class",
        "The classes, comma-separated",
        "Cost of a false positive",
        "Cost of a false negative",
        "Score at which a positive costs less",
        "Quantile that minimises the expected cost",
        "95th-percentile latency",
        "Requests per second the API must sustain",
        "Share of traffic, in percent",
    ):
        assert hidden not in shown, f"{hidden!r} was asked in a regression project"

    contract = yaml.safe_load((destination / "ml_contract.yaml").read_text(encoding="utf-8"))
    assert contract["project"]["name"] == "Demand Forecast"
    assert contract["project"]["slug"] == "demand-forecast"
    assert contract["task"] == {"type": "regression", "target": "monthly_spend"}
    assert contract["data"]["availability"] == "unlabelled"
    assert contract["costs"] == {"over_prediction": 2.0, "under_prediction": 6.0}
    assert contract["decision"] == {"quantile": 0.75}
    assert contract["metrics"]["primary"] == "rmse"
    assert contract["metrics"]["gate"] == 18.0
    assert contract["metrics"]["greater_is_better"] is False
    assert contract["fairness"] == {
        "sensitive_features": ["sex", "region"],
        "metric": "metric_gap",
        "tolerance": 3.0,
        "reason": "",
    }
    assert contract["registry"]["tracking_uri"] == "https://mlflow.example.com"
    assert contract["serving"]["mode"] == "batch"
    assert contract["delivery"] == {"deployment": "container", "canary_steps": []}
    assert contract["data"]["drift_limit"] == 0.25

    answers = yaml.safe_load((destination / ".copier-answers.yml").read_text(encoding="utf-8"))
    expected = {
        "project_name": "Demand Forecast",
        "project_slug": "demand-forecast",
        "package_name": "demand_forecast",
        "project_description": (
            "Demand Forecast: predictions people can act on, with the cost of each error in view."
        ),
        "author_name": "Ada Lovelace",
        "author_email": "ada@example.com",
        "license": "MIT",
        "python_version": "3.12",
        "task_type": "regression",
        "business_goal": "Forecast each customer's spend next month to plan stock and offers.",
        "target_name": "monthly_spend",
        "data_availability": "unlabelled",
        "data_source": "demo",
        "cost_over_prediction": 2.0,
        "cost_under_prediction": 6.0,
        "primary_metric": "rmse",
        "metric_gate": 18.0,
        "business_metric": "Cost of over- and under-stocking per month",
        "sensitive_features": "sex, region",
        "fairness_metric": "metric_gap",
        "fairness_tolerance": 3.0,
        "serving_mode": "batch",
        "registry_tracking_uri": "https://mlflow.example.com",
        "deployment": "container",
        "drift_limit": 0.25,
        "scale_out": "dask",
    }
    assert {key: answers.get(key) for key in expected} == expected
    # Questions hidden by `when` (other task types, derived values) are not recorded.
    assert not answers.keys() & {
        "positive_class",
        "negative_class",
        "class_labels",
        "cost_false_positive",
        "cost_false_negative",
        "decision_threshold",
        "prediction_quantile",
        "latency_p95_ms",
        "throughput_rps",
        "canary_steps",
    }
