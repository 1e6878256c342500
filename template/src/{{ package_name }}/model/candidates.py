"""The candidates training tries: kinds of estimator and the settings the search picks from.

This file is yours: add a kind, drop one, widen a grid. Each kind builds an estimator from one
setting and a seed; train.py puts it behind the shared feature transformer, tries up to a few
settings per kind (seeded) and keeps the best on validation data. A kind whose fitted model
holds types scikit-learn's safe loader does not know (skops) needs them in TRUSTED_TYPES, or
its saved model is refused when it is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
)
from sklearn.linear_model import LogisticRegression, QuantileRegressor

# The only types a saved candidate may hold beyond what skops trusts already: the fitted trees of
# the gradient boosting and isolation forest candidates. Anything else in a file is refused.
TRUSTED_TYPES = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
)


@dataclass(frozen=True)
class Kind:
    """A kind of estimator and the settings the search picks from."""

    name: str
    build: Callable[[dict[str, Any], int], BaseEstimator]
    grid: dict[str, list[Any]]


# --- Edit the candidates below. ----------------------------------------------------------------


def _logistic(params: dict[str, Any], seed: int) -> BaseEstimator:
    return LogisticRegression(max_iter=2000, random_state=seed, **params)


def _boosted_classifier(params: dict[str, Any], seed: int) -> BaseEstimator:
    return HistGradientBoostingClassifier(early_stopping=False, random_state=seed, **params)


BOOSTING_GRID: dict[str, list[Any]] = {
    "learning_rate": [0.05, 0.1],
    "max_iter": [100, 200],
    "max_leaf_nodes": [7, 15],
    "min_samples_leaf": [20, 50],
}
CLASSIFIERS = (
    Kind("logistic_regression", _logistic, {"C": [0.01, 0.1, 1.0, 10.0]}),
    Kind("gradient_boosting", _boosted_classifier, BOOSTING_GRID),
)


def regressors(quantile: float) -> tuple[Kind, ...]:
    """Regressors aimed at the contract's cost quantile."""

    def linear(params: dict[str, Any], seed: int) -> BaseEstimator:
        del seed  # the linear programme has one solution
        return QuantileRegressor(quantile=quantile, solver="highs", **params)

    def boosted(params: dict[str, Any], seed: int) -> BaseEstimator:
        return HistGradientBoostingRegressor(
            loss="quantile", quantile=quantile, early_stopping=False, random_state=seed, **params
        )

    return (
        Kind("linear_quantile", linear, {"alpha": [0.0, 0.001, 0.01]}),
        Kind("gradient_boosting_quantile", boosted, BOOSTING_GRID),
    )


def _isolation_forest(params: dict[str, Any], seed: int) -> BaseEstimator:
    return IsolationForest(random_state=seed, **params)


OUTLIER_DETECTORS = (
    Kind(
        "isolation_forest",
        _isolation_forest,
        {"n_estimators": [100, 200], "max_samples": [256, 512], "max_features": [0.5, 1.0]},
    ),
)
