"""Prediction and feedback store: every served prediction, and what users said about it.

Predictions are logged with their id, the model version and the input features, for
monitoring; feedback names a prediction by id and says what really happened. Joined, they
are labelled records that the data stage collects (`data.source: feedback`), closing the loop
from serving back to training. SQLite file by default, any SQLAlchemy URL (PostgreSQL) by
setting; acknowledged feedback is on disk before the answer leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

from ..config import Contract, Settings
from ..data.columns import load
from ..data.transform import input_names
from ..errors import ProjectError

METADATA = sa.MetaData()
PREDICTIONS = sa.Table(
    "predictions",
    METADATA,
    sa.Column("prediction_id", sa.String(36), primary_key=True),
    # Naive UTC everywhere: SQLite has no time zones and PostgreSQL must agree with it.
    sa.Column("created_at", sa.DateTime(), nullable=False, index=True),
    sa.Column("model_version", sa.Integer(), nullable=False),
    sa.Column("prediction", sa.JSON(), nullable=False),
    sa.Column("score", sa.Float(), nullable=True),
    sa.Column("features", sa.JSON(), nullable=False),
)
FEEDBACK = sa.Table(
    "feedback",
    METADATA,
    sa.Column("feedback_id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "prediction_id",
        sa.String(36),
        sa.ForeignKey("predictions.prediction_id"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("outcome", sa.JSON(), nullable=False),
    sa.Column("comment", sa.Text(), nullable=True),
)
logger = logging.getLogger(__name__)
PREDICTION_COLUMNS = ["prediction_id", "created_at", "model_version", "prediction", "score"]


class FeedbackError(ProjectError):
    """The prediction and feedback store cannot be reached or refuses a write."""


class UnknownPredictionError(FeedbackError, KeyError):
    """Feedback names a prediction id the store has never logged."""

    def __str__(self) -> str:
        """The message without KeyError's quotes."""
        return str(self.args[0]) if self.args else "unknown prediction"


def store_url(settings: Settings) -> str:
    """The store's SQLAlchemy URL: the feedback_url setting, else the project's SQLite file."""
    if settings.feedback_url is not None:
        return settings.feedback_url.get_secret_value()
    return f"sqlite:///{settings.feedback_file.resolve()}"


def target_value(contract: Contract, outcome: Any) -> int | float | str:
    """A feedback outcome as the API spells it, turned into the data's target column value.

    Binary classification and anomaly detection: the positive class (or true) becomes the
    data's positive value, anything else its negative value, as the feature schema's target
    values spell them (1 and 0 where it lists none), so that collected feedback reads like
    the data; multiclass: the class label; regression: the number.
    """
    task = contract.task
    if task.type in ("binary_classification", "anomaly_detection"):
        yes = outcome == task.positive_class if task.type == "binary_classification" else outcome
        negative, positive = load().target.values[-2:] or (0, 1)
        return positive if bool(yes) else negative
    if task.type == "regression":
        return float(outcome)
    return str(outcome)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can store."""
    return value.item() if isinstance(value, np.generic) else value


def _utc_naive(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def prediction_rows(
    model_version: int,
    features: pd.DataFrame,
    predictions: Sequence[Any],
    scores: Sequence[float],
    ids: Sequence[str],
    at: datetime | None = None,
) -> list[dict[str, Any]]:
    """The store's rows for predictions made at `at` (default: now)."""
    now = _utc_naive(at or datetime.now(UTC))
    columns = list(features.columns)
    return [
        {
            "prediction_id": prediction_id,
            "created_at": now,
            "model_version": int(model_version),
            "prediction": _plain(prediction),
            "score": float(score) if math.isfinite(float(score)) else None,
            "features": dict(zip(columns, map(_plain, values), strict=True)),
        }
        for prediction_id, prediction, score, values in zip(
            ids, predictions, scores, features.itertuples(index=False), strict=True
        )
    ]


class FeedbackStore:
    """Predictions and feedback in one SQL database, created on first use.

    Args:
        url: SQLAlchemy URL; see `store_url`.
        target: Name of the target column in `labelled_frame` (the contract's task.target).
    """

    def __init__(self, url: str, *, target: str = "outcome") -> None:
        """Open the store, creating its tables when they are missing."""
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise FeedbackError("the feedback store URL is not a valid SQLAlchemy URL") from None
        self.shown = parsed.render_as_string(hide_password=True)
        self.target = target
        self._password = parsed.password
        try:
            self.engine = self._engine(parsed)
            METADATA.create_all(self.engine)
        except (SQLAlchemyError, ModuleNotFoundError, OSError) as error:
            raise self._error("cannot open the store", error) from None

    def _engine(self, url: URL) -> sa.Engine:
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(url, pool_pre_ping=True)
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url)

        @sa.event.listens_for(engine, "connect")
        def _durable(connection: Any, _: Any) -> None:
            # WAL lets readers run beside the writer; FULL syncs every commit to disk, so an
            # acknowledged write survives a crash of the process or the machine.
            cursor = connection.cursor()
            for pragma in (
                "journal_mode=WAL",
                "synchronous=FULL",
                "foreign_keys=ON",
                "busy_timeout=5000",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        return engine

    def _error(self, what: str, error: BaseException) -> FeedbackError:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        if self._password:
            reason = reason.replace(str(self._password), "***")
        return FeedbackError(f"{self.shown}: {what} ({reason})")

    def close(self) -> None:
        """Release the store's connections."""
        self.engine.dispose()

    def log_predictions(
        self,
        model_version: int,
        features: pd.DataFrame,
        predictions: Sequence[Any],
        scores: Sequence[float],
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Log one row per prediction with its features; returns the prediction ids.

        Args:
            model_version: Version of the model that made the predictions.
            features: The records' features, one row per prediction.
            predictions: The model's decisions, in the data's target encoding.
            scores: The scores behind the decisions.
            ids: Ids to log them under (default: new random UUIDs).
        """
        ids = list(ids) if ids is not None else [str(uuid.uuid4()) for _ in predictions]
        self.write_predictions(prediction_rows(model_version, features, predictions, scores, ids))
        return ids

    def write_predictions(self, rows: list[dict[str, Any]]) -> None:
        """Insert rows made by `prediction_rows`, all in one transaction."""
        if not rows:
            return
        try:
            with self.engine.begin() as connection:
                connection.execute(PREDICTIONS.insert(), rows)
        except SQLAlchemyError as error:
            raise self._error("cannot log predictions", error) from None

    def add_feedback(self, prediction_id: str, outcome: Any, comment: str | None = None) -> None:
        """Store what really happened for a logged prediction, durably, before returning.

        Raises:
            UnknownPredictionError: No prediction was logged under this id.
            FeedbackError: The store refused the write.
        """
        row = {
            "prediction_id": prediction_id,
            "created_at": datetime.now(UTC).replace(tzinfo=None),
            "outcome": _plain(outcome),
            "comment": comment,
        }
        try:
            with self.engine.begin() as connection:
                known = connection.execute(
                    sa.select(PREDICTIONS.c.prediction_id).where(
                        PREDICTIONS.c.prediction_id == prediction_id
                    )
                ).first()
                if known is None:
                    raise UnknownPredictionError(f"no prediction with id {prediction_id}")
                connection.execute(FEEDBACK.insert(), row)
        except IntegrityError:
            raise UnknownPredictionError(f"no prediction with id {prediction_id}") from None
        except SQLAlchemyError as error:
            raise self._error("cannot store feedback", error) from None

    def predictions_frame(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Logged predictions in [since, until): ids, UTC times, versions, decisions, features."""
        query = sa.select(PREDICTIONS).order_by(PREDICTIONS.c.created_at)
        if since is not None:
            query = query.where(PREDICTIONS.c.created_at >= _utc_naive(since))
        if until is not None:
            query = query.where(PREDICTIONS.c.created_at < _utc_naive(until))
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(query).mappings().all()
        except SQLAlchemyError as error:
            raise self._error("cannot read predictions", error) from None
        names = input_names()
        frame = pd.DataFrame(
            [
                [*(row[column] for column in PREDICTION_COLUMNS)]
                + [row["features"].get(name) for name in names]
                for row in rows
            ],
            columns=[*PREDICTION_COLUMNS, *names],
        )
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        return frame

    def labelled_frame(self) -> pd.DataFrame:
        """Predicted records with the outcome users reported: features plus the target column.

        When a prediction has several feedback rows the latest one counts.
        """
        query = (
            sa.select(FEEDBACK.c.prediction_id, FEEDBACK.c.outcome, PREDICTIONS.c.features)
            .join(PREDICTIONS, FEEDBACK.c.prediction_id == PREDICTIONS.c.prediction_id)
            .order_by(FEEDBACK.c.feedback_id)
        )
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
        except SQLAlchemyError as error:
            raise self._error("cannot read feedback", error) from None
        latest = {row.prediction_id: (row.features, row.outcome) for row in rows}
        names = input_names()
        return pd.DataFrame(
            [
                [features.get(name) for name in names] + [outcome]
                for features, outcome in latest.values()
            ],
            columns=[*names, self.target],
        )

    def counts(self) -> dict[str, int]:
        """How many predictions, feedback rows and labelled predictions the store holds."""
        try:
            with self.engine.connect() as connection:
                predictions = connection.execute(
                    sa.select(sa.func.count()).select_from(PREDICTIONS)
                ).scalar_one()
                feedback = connection.execute(
                    sa.select(sa.func.count()).select_from(FEEDBACK)
                ).scalar_one()
                labelled = connection.execute(
                    sa.select(sa.func.count(sa.distinct(FEEDBACK.c.prediction_id)))
                ).scalar_one()
        except SQLAlchemyError as error:
            raise self._error("cannot read the store", error) from None
        return {"predictions": predictions, "feedback": feedback, "labelled": labelled}


class PredictionLog:
    """Writes logged predictions in batches from a background task, off the request path.

    A synced SQLite commit takes milliseconds, longer than a prediction, so requests only queue
    their rows; a write every `interval` seconds takes all of them in one transaction. Feedback
    flushes the queue first, so it always finds its prediction. A killed process loses at most
    the last interval of prediction logs, never acknowledged feedback.
    """

    def __init__(self, store: FeedbackStore, interval: float = 0.05) -> None:
        """Queue for `store`; call `start` inside the running event loop."""
        self.store = store
        self.interval = interval
        self.pending: list[tuple[Any, ...]] = []
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None

    def add(
        self,
        model_version: int,
        features: pd.DataFrame,
        predictions: Sequence[Any],
        scores: Sequence[float],
        ids: Sequence[str],
    ) -> None:
        """Queue predictions (arguments as for `prediction_rows`), timed now."""
        self.pending.append((model_version, features, predictions, scores, ids, datetime.now(UTC)))

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        # Rows are built here, in the writer's thread, to keep the request path short.
        self.store.write_predictions([row for item in batch for row in prediction_rows(*item)])

    async def flush(self) -> None:
        """Write everything queued so far; returns when it is in the store."""
        async with self.lock:
            batch, self.pending = self.pending, []
            if batch:
                try:
                    await asyncio.to_thread(self._write, batch)
                except FeedbackError as error:
                    logger.error("%s; %d prediction logs lost", error, len(batch))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    def start(self) -> None:
        """Start writing in the background."""
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the background writer and write what is still queued."""
        if self.task is not None:
            # Under the lock the writer is asleep or waiting, never half way through a write.
            async with self.lock:
                self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.flush()
