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
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic_core import PydanticSerializationError, to_json
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
# One row, rewritten while the service is idle: proof that the store still takes writes.
HEARTBEAT = sa.Table(
    "heartbeat",
    METADATA,
    sa.Column("heartbeat_id", sa.Integer(), primary_key=True),
    sa.Column("written_at", sa.DateTime(), nullable=False),
)
logger = logging.getLogger(__name__)
NEW_STORE = f"uv run python -m {__name__.split('.')[0]} feedback --new-store"
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


def read_ledger(ledger: Path) -> dict[str, str]:
    """The stores this project created: URL hash to creation time (empty when none yet)."""
    try:
        loaded = json.loads(ledger.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise FeedbackError(f"{ledger}: cannot read it ({error}); restore or delete it") from None
    if not isinstance(loaded, dict):
        raise FeedbackError(f"{ledger}: not a record of created stores; restore it or delete it")
    return {str(key): str(value) for key, value in loaded.items()}


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


def new_prediction_id() -> str:
    """A new prediction id: a UUID of version 7 (RFC 9562), ordered by time, 74 random bits.

    The store's primary key is this id. Ids that grow with time add to the right edge of its
    index; random (version 4) ids land on a random page of it each, and once a store held a
    few hundred thousand predictions that made SQLite spend about five times the CPU per
    logged row (38 against 8 microseconds, measured). The id tells its holder when it was
    made, to the millisecond, as `created_at` does; its random bits come from os.urandom.
    """
    moment = time.time_ns() // 1_000_000
    noise = int.from_bytes(os.urandom(10), "big")
    # 48 bits of Unix milliseconds, version 7, 12 random bits, variant 0b10, 62 random bits.
    value = (moment << 80) | (0x7 << 76) | ((noise >> 68) << 64) | (0b10 << 62)
    value |= noise & ((1 << 62) - 1)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def prediction_id_made_at(prediction_id: str) -> float | None:
    """When `new_prediction_id` made this id, in Unix seconds; None for an id of another kind."""
    digits = prediction_id.replace("-", "").lower()
    if len(digits) != 32 or digits[12] != "7" or digits[16] not in "89ab":
        return None
    try:
        return int(digits[:12], 16) / 1000
    except ValueError:
        return None


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


# The predictions table's columns in order; a test checks these rows against SQLAlchemy's.
SQLITE_INSERT = (
    "INSERT INTO predictions "
    "(prediction_id, created_at, model_version, prediction, score, features) VALUES "
)
SQLITE_ROW = "(?, ?, ?, ?, ?, ?)"
# Rows per INSERT statement. sqlite3 lets go of the interpreter lock for every statement it
# runs and must take it back after: one statement per row (executemany) made the log's thread
# queue for the lock once per row behind the thread that answers requests, and beside a busy
# one it wrote about 200 rows a second instead of thousands. 150 rows of six values stay
# within the limits of the oldest SQLite that Python ships with (999 values, 500 rows).
SQLITE_ROWS_PER_INSERT = 150


# json.dumps with its defaults, without its per-call checks: what SQLAlchemy's JSON type writes.
_JSON_TEXT = json.JSONEncoder().encode
# The JSON of labels seen so far, by type and value: a classifier answers with a few of them.
_PREDICTION_TEXTS: dict[tuple[type, Any], str] = {}
_PREDICTION_TEXTS_KEPT = 256
_LABEL_TYPES = frozenset({str, int, bool})


def _prediction_text(value: Any) -> str:
    """json.dumps(value); a label's (text, integer, boolean: 1 and True apart) once seen.

    Numbers with a fraction (a regression's values) rarely repeat, and 0.0 equals -0.0 as a
    key, so they are encoded every time.
    """
    if type(value) not in _LABEL_TYPES:
        return _JSON_TEXT(value)
    key = (type(value), value)
    text = _PREDICTION_TEXTS.get(key)
    if text is None:
        text = _JSON_TEXT(value)
        if len(_PREDICTION_TEXTS) < _PREDICTION_TEXTS_KEPT:
            _PREDICTION_TEXTS[key] = text
    return text


def _sqlite_rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Prediction rows in SQLite's storage format of SQLAlchemy's DateTime and JSON types."""
    return [
        (
            row["prediction_id"],
            row["created_at"].isoformat(" ", "microseconds"),
            row["model_version"],
            _prediction_text(row["prediction"]),
            row["score"],
            _features_text(row["features"]),
        )
        for row in rows
    ]


def _features_text(features: dict[str, Any]) -> str:
    """A row's features as JSON text: pydantic's JSON writer, a fifth of the time of json.dumps.

    Compact and UTF-8 where SQLAlchemy writes json.dumps' spaced ASCII: the same values when
    read back. Whatever pydantic cannot write goes to json.dumps, to be written or refused there.
    """
    try:
        return to_json(features).decode("utf-8")
    except PydanticSerializationError:
        return _JSON_TEXT(features)


class MissingStoreError(FeedbackError):
    """A store this project created before is gone; an empty one would hide the loss."""


class FeedbackStore:
    """Predictions and feedback in one SQL database, created on first use.

    Args:
        url: SQLAlchemy URL; see `store_url`.
        target: Name of the target column in `labelled_frame` (the contract's task.target).
        ledger: File recording the stores this project created (`Settings.store_ledger`). With
            it, a store is created only the first time its URL is opened; a recorded store
            that is missing later raises MissingStoreError instead of starting empty.
    """

    def __init__(self, url: str, *, target: str = "outcome", ledger: Path | None = None) -> None:
        """Open the store, creating its tables when they are missing and creation is allowed."""
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise FeedbackError("the feedback store URL is not a valid SQLAlchemy URL") from None
        self.shown = parsed.render_as_string(hide_password=True)
        self.target = target
        self._password = parsed.password
        try:
            self.engine = self._engine(parsed)
            if ledger is not None:
                self._check_created(ledger)
            METADATA.create_all(self.engine)
        except (SQLAlchemyError, ModuleNotFoundError, OSError) as error:
            raise self._error("cannot open the store", error) from None
        if ledger is not None:
            self._record_created(ledger)

    @property
    def key(self) -> str:
        """The store's name in the ledger: a hash of its URL without the password."""
        return hashlib.sha256(self.shown.encode("utf-8")).hexdigest()

    def _exists(self) -> bool:
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            # Connecting would create the file: look before touching it.
            return Path(url.database).is_file()
        return sa.inspect(self.engine).has_table(PREDICTIONS.name)

    def _check_created(self, ledger: Path) -> None:
        created = read_ledger(ledger).get(self.key)
        if created is not None and not self._exists():
            self.engine.dispose()
            raise MissingStoreError(
                f"{self.shown}: the prediction store created on {created} is missing; restore "
                f"it from a backup, or start an empty one with `{NEW_STORE}`"
            )

    def _record_created(self, ledger: Path) -> None:
        entries = read_ledger(ledger)
        if self.key in entries:
            return
        entries[self.key] = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            ledger.parent.mkdir(parents=True, exist_ok=True)
            ledger.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            self.engine.dispose()
            raise FeedbackError(f"{ledger}: cannot record the new store ({error})") from None

    def forget(self, ledger: Path) -> None:
        """Drop this store from the ledger, so that an empty one is created on the next open."""
        entries = read_ledger(ledger)
        if entries.pop(self.key, None) is not None:
            ledger.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")

    def probe(self) -> None:
        """Rewrite the heartbeat row: raises FeedbackError when the store refuses writes."""
        row = {"heartbeat_id": 1, "written_at": datetime.now(UTC).replace(tzinfo=None)}
        try:
            with self.engine.begin() as connection:
                connection.execute(HEARTBEAT.delete())
                connection.execute(HEARTBEAT.insert(), row)
        except SQLAlchemyError as error:
            raise self._error("cannot write to the store", error) from None

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
            ids: Ids to log them under (default: new ones, see `new_prediction_id`).
        """
        ids = list(ids) if ids is not None else [new_prediction_id() for _ in predictions]
        self.write_predictions(prediction_rows(model_version, features, predictions, scores, ids))
        return ids

    def write_predictions(self, rows: list[dict[str, Any]]) -> None:
        """Insert rows made by `prediction_rows`, all in one transaction."""
        if not rows:
            return
        try:
            with self.engine.begin() as connection:
                if self.engine.dialect.name == "sqlite":
                    # The service logs thousands of rows a second from a thread beside the one
                    # that answers requests: plain tuples take about a fifth less interpreter
                    # time than SQLAlchemy's per-row bind processing, and a statement per
                    # SQLITE_ROWS_PER_INSERT rows takes the interpreter lock back that much
                    # less often. Values are stored as SQLAlchemy stores them.
                    values = _sqlite_rows(rows)
                    for start in range(0, len(values), SQLITE_ROWS_PER_INSERT):
                        chunk = values[start : start + SQLITE_ROWS_PER_INSERT]
                        connection.exec_driver_sql(
                            SQLITE_INSERT + ", ".join([SQLITE_ROW] * len(chunk)),
                            tuple(value for row in chunk for value in row),
                        )
                else:
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


# A queued item of the prediction log: how many predictions it holds, and how to make their rows.
Queued = tuple[int, Callable[[], list[dict[str, Any]]]]


class PredictionLog:
    """Writes logged predictions in batches from a background task, off the request path.

    A synced SQLite commit takes milliseconds, longer than a prediction, so requests only queue
    their rows; a write every `interval` seconds takes all of them in one transaction. Feedback
    flushes the queue first, so it always finds its prediction. A killed process loses at most
    the last interval of prediction logs, never acknowledged feedback.

    When a write fails the log turns unwritable: the batch is held and retried on every tick
    (at most `max_held` predictions are held; older ones are dropped and reported to
    `on_unlogged`), one line goes to the log for the whole episode, and the first write that
    succeeds turns it writable again. While idle it writes a heartbeat every `probe_every`
    seconds, so that a store that stopped taking writes is noticed without traffic.
    """

    def __init__(
        self,
        store: FeedbackStore,
        interval: float = 0.05,
        *,
        on_unlogged: Callable[[int], None] | None = None,
        max_held: int = 10_000,
        probe_every: float = 1.0,
    ) -> None:
        """Queue for `store`; call `start` inside the running event loop."""
        self.store = store
        self.interval = interval
        self.pending: list[Queued] = []
        self.held: list[Queued] = []
        self.writable = True
        self.on_unlogged = on_unlogged or (lambda _: None)
        self.max_held = max_held
        self.probe_every = probe_every
        self.last_try = time.monotonic()
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
        """Queue predictions (arguments as for `prediction_rows`), timed now.

        The rows are built later, in the writer's thread, to keep the request path short.
        """
        at = datetime.now(UTC)
        self.pending.append(
            (
                len(ids),
                lambda: prediction_rows(model_version, features, predictions, scores, ids, at),
            )
        )

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        """Queue rows already made like `prediction_rows` makes them (one record's, cheaply)."""
        self.pending.append((len(rows), rows.copy))

    def _write(self, batch: list[Queued]) -> None:
        self.store.write_predictions([row for _, rows in batch for row in rows()])

    async def flush(self) -> None:
        """Write everything queued or held so far; returns when it is in the store or held."""
        async with self.lock:
            # An unwritable store is tried again once per probe_every, not on every tick.
            since = time.monotonic() - self.last_try
            if (not self.writable or not (self.held or self.pending)) and since < self.probe_every:
                return
            batch, self.pending = self.held + self.pending, []
            self.last_try = time.monotonic()
            try:
                if batch:
                    await asyncio.to_thread(self._write, batch)
                else:
                    await asyncio.to_thread(self.store.probe)
            except FeedbackError as error:
                self._failed(error, batch)
                return
            self.held = []
            if not self.writable:
                self.writable = True
                logger.warning(
                    "the prediction store takes writes again; %d held predictions written",
                    _count(batch),
                )

    def _failed(self, error: FeedbackError, batch: list[Queued]) -> None:
        """Hold what failed (up to `max_held` predictions) and log once per episode."""
        if self.writable:
            logger.error("%s; the prediction log holds what it cannot write", error)
            self.writable = False
        kept: list[Queued] = []
        room = self.max_held
        for item in reversed(batch):
            if _count([item]) > room:
                break
            kept.insert(0, item)
            room -= _count([item])
        self.held = kept
        if dropped := _count(batch) - _count(kept):
            self.on_unlogged(dropped)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    def start(self) -> None:
        """Start writing in the background."""
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the background writer and write what is still queued; count what never was."""
        if self.task is not None:
            # Under the lock the writer is asleep or waiting, never half way through a write.
            async with self.lock:
                self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.last_try = -math.inf
        await self.flush()
        if self.held:
            logger.error("%d predictions were never written to the store", _count(self.held))
            self.on_unlogged(_count(self.held))
            self.held = []


def _count(batch: list[Queued]) -> int:
    """How many predictions queued items hold."""
    return sum(count for count, _ in batch)
