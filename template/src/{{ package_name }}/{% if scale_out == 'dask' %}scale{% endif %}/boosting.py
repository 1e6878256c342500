"""LightGBM trained on the Dask cluster: the estimator of the distributed candidate.

`DaskBoosting` is a scikit-learn estimator whose `fit` spreads the transformed features over
the workers of the cluster (scale/cluster.py: the client already open in this process, else
`--scheduler`/DASK_SCHEDULER_ADDRESS, else a LocalCluster for the fit) and trains LightGBM's
Dask interface there. Training then swaps it for `to_local()`: a plain LightGBM model that the
threshold choice, evaluation, registry, gates and the service use like any other, with no
cluster behind it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from distributed import Client, default_client
from sklearn.base import BaseEstimator

from .cluster import cluster

if TYPE_CHECKING:
    from lightgbm import LGBMClassifier, LGBMRegressor

# Types a saved distributed candidate holds beyond what skops trusts: the local LightGBM model.
LIGHTGBM_TYPES = (
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
)

# The settings the search picks from for a distributed candidate.
LIGHTGBM_GRID: dict[str, list[Any]] = {
    "learning_rate": [0.05, 0.1],
    "n_estimators": [100, 200],
    "num_leaves": [7, 15],
    "min_child_samples": [20, 50],
}


@contextmanager
def _client() -> Iterator[Client]:
    """The client this process already has, else a connection made for this fit only."""
    try:
        yield default_client()
    except ValueError:  # no client in this process
        with cluster() as connected:
            yield connected.client


class DaskBoosting(BaseEstimator):  # type: ignore[misc]  # sklearn is untyped
    """LightGBM fitted on the Dask cluster, with the settings of one trial."""

    def __init__(
        self,
        task: Literal["classifier", "regressor"] = "classifier",
        params: dict[str, Any] | None = None,
        seed: int = 0,
        quantile: float | None = None,
    ) -> None:
        """Keep the settings; scikit-learn estimators do nothing else until fit.

        Args:
            task: "classifier" or "regressor".
            params: LightGBM settings (n_estimators, learning_rate, num_leaves, ...).
            seed: Seeds LightGBM, so that the same seed and partitions give the same model.
            quantile: For a regressor, the quantile it predicts; None predicts the mean.
        """
        self.task = task
        self.params = params
        self.seed = seed
        self.quantile = quantile

    def fit(self, features: Any, labels: Any) -> DaskBoosting:
        """Train on the cluster: one block of rows per worker."""
        # Imported here: LightGBM's Dask interface takes seconds to import, and only training
        # on the cluster needs it.
        import dask.array as da
        from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor

        matrix = np.asarray(features, dtype=float)
        target = np.asarray(labels)
        settings: dict[str, Any] = {"random_state": self.seed, "verbose": -1, **(self.params or {})}
        if self.task == "regressor" and self.quantile is not None:
            settings.update(objective="quantile", alpha=self.quantile)
        with _client() as client:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            rows = max(1, math.ceil(len(matrix) / workers))
            blocks = da.from_array(matrix, chunks=(rows, matrix.shape[1]))
            answers = da.from_array(target, chunks=(rows,))
            model: DaskLGBMClassifier | DaskLGBMRegressor
            if self.task == "classifier":
                model = DaskLGBMClassifier(client=client, **settings)
            else:
                model = DaskLGBMRegressor(client=client, **settings)
            with warnings.catch_warnings():
                # LightGBM's Dask fit warns that the n_jobs every estimator has is ignored (each
                # worker uses its own threads) even when nobody set it.
                warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored")
                model.fit(blocks, answers)
            self.local_: LGBMClassifier | LGBMRegressor = model.to_local()
        return self

    def to_local(self) -> LGBMClassifier | LGBMRegressor:
        """The fitted model as plain LightGBM, which predicts without a cluster."""
        return self.local_
