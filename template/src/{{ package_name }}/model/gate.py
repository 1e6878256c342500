"""Gates: when a candidate may become challenger, and when a challenger may become champion.

A candidate becomes **challenger** when all of these hold on the same test data:

- its primary metric meets the contract's gate (`metrics.gate`, in the metric's direction);
- it **beats** the baseline and does not raise the **expected cost** per record;
- the fairness report passes (the fairness metric is within `fairness.tolerance`).

A challenger becomes **champion** when it still meets the gate, **beats** the champion and does
not raise the expected cost against it. The expected cost is the contract's: each model's
decisions at its own chosen threshold weighed with the costs of a false positive and a false
negative, or, for regression, the pinball loss at the contract's quantile times the costs. A
better metric bought with a higher cost is refused: the costs the business named decide.

"Beats" means: the primary metric is strictly better in its direction (higher when
`greater_is_better`, else lower), compared on the same number of test rows. A tie does not
beat: the model already in place keeps its place, so re-running the pipeline on the same data
never swaps one model for an equal one. A metric that could not be computed (NaN) on either
side beats nothing and is beaten by nothing, so nothing is promoted on it.

Each reason names the number that missed, the number it had to beat and by how much it fell
short, e.g. "roc_auc 0.7312 does not beat the baseline's 0.7440 (short by 0.0128)".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .evaluate import Evaluation
from .fairness import FairnessReport

# Expected costs this close (relative) count as equal: float sums of the same decisions differ.
COST_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Verdict:
    """Whether a model passed a gate; reasons holds one line per check it failed."""

    passed: bool
    reasons: list[str]

    def summary(self) -> str:
        """The reasons on one line each, or that every check passed."""
        return "\n".join(self.reasons) if self.reasons else "every check passed"


def _number(value: float) -> str:
    return f"{value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.3g}"


def _margin(value: float) -> str:
    return f"{value:.4f}" if value == 0 or value >= 1e-4 else f"{value:.2g}"


def beats(challenger: Evaluation, incumbent: Evaluation) -> bool:
    """Whether the challenger's primary metric is strictly better than the incumbent's."""
    ours, theirs = challenger.value, incumbent.value
    if math.isnan(ours) or math.isnan(theirs):
        return False
    return ours > theirs if challenger.greater_is_better else ours < theirs


def _gate_reason(model: Evaluation, name: str) -> str | None:
    if math.isnan(model.value):
        return f"{model.metric} of the {name} cannot be computed on the test data (NaN)"
    if model.passes_gate:
        return None
    side = "at least" if model.greater_is_better else "at most"
    return (
        f"{model.metric} {_number(model.value)} misses the gate ({side} {model.gate:g}) "
        f"(short by {_margin(abs(model.value - model.gate))})"
    )


def _beat_reason(challenger: Evaluation, incumbent: Evaluation, name: str) -> str | None:
    metric = challenger.metric
    if incumbent.metric != metric:
        return f"cannot compare {metric} with the {name}'s {incumbent.metric}"
    if challenger.rows != incumbent.rows:
        return (
            f"cannot compare with the {name}: judged on {challenger.rows} and "
            f"{incumbent.rows} test rows"
        )
    if math.isnan(incumbent.value):
        return f"{metric} of the {name} cannot be computed on the test data (NaN)"
    if math.isnan(challenger.value) or beats(challenger, incumbent):
        return None
    if challenger.value == incumbent.value:
        return (
            f"{metric} {_number(challenger.value)} only ties the {name}'s "
            f"{_number(incumbent.value)} (a tie keeps the {name})"
        )
    return (
        f"{metric} {_number(challenger.value)} does not beat the {name}'s "
        f"{_number(incumbent.value)} (short by {_margin(abs(challenger.value - incumbent.value))})"
    )


def _cost_reason(challenger: Evaluation, incumbent: Evaluation, name: str) -> str | None:
    ours, theirs = challenger.expected_cost, incumbent.expected_cost
    if challenger.rows != incumbent.rows or math.isnan(ours) or math.isnan(theirs):
        return None  # the metric's own check already says why they cannot be compared
    if ours <= theirs + COST_TOLERANCE * max(abs(theirs), 1.0):
        return None
    return (
        f"expected cost {_number(ours)} per record is above the {name}'s {_number(theirs)} "
        f"(higher by {_margin(ours - theirs)})"
    )


def deciding_gate(verdict: Verdict) -> str:
    """Which check decided: the first one that refused, or that all of them passed."""
    if verdict.passed:
        return "every gate passed: metric gate, beating the incumbent, expected cost, fairness"
    return verdict.reasons[0]


def _verdict(reasons: list[str | None]) -> Verdict:
    misses = [reason for reason in reasons if reason]
    return Verdict(passed=not misses, reasons=misses)


def challenger_verdict(
    candidate: Evaluation, baseline: Evaluation, fairness: FairnessReport
) -> Verdict:
    """May the candidate become challenger: meets the gate, beats the baseline, is fair enough."""
    return _verdict(
        [
            _gate_reason(candidate, "candidate"),
            _beat_reason(candidate, baseline, "baseline"),
            _cost_reason(candidate, baseline, "baseline"),
            None if fairness.passes else fairness.summary(),
        ]
    )


def promotion_verdict(challenger: Evaluation, champion: Evaluation) -> Verdict:
    """May the challenger become champion: meets the gate, beats the champion, costs no more."""
    name = f"champion (version {champion.model_version})"
    return _verdict(
        [
            _gate_reason(challenger, "challenger"),
            _beat_reason(challenger, champion, name),
            _cost_reason(challenger, champion, name),
        ]
    )
