"""The feature schema's building blocks, and every view of the data derived from one schema.

The project's columns are declared once, in the user-owned `schema.py` (`SCHEMA`, built from
the classes below). The API's records, the data checks, the transforms, the synthetic rows,
the explore report and the tests all read that declaration, so nothing else lists columns.

This module is the stable interface between the template-owned code and `schema.py`: the
classes `Column`, `Target` and `Schema`, and `load()`, which imports the project's `SCHEMA`.
"""

from __future__ import annotations

import functools
import importlib
import keyword
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import ProjectError

Kind = Literal["integer", "number", "category", "text"]
Role = Literal["feature", "sensitive", "id", "ignored"]
Value = str | int | float | bool
SCHEMA_FILE = "src/{package}/schema.py"
# The console script is named after the project, not the package: this form works in both.
REINFER = "uv run python -m {package} schema infer PATH"
# The model's inputs: what a request must hold and what the models read.
INPUT_ROLES = ("feature", "sensitive")


class SchemaError(ProjectError):
    """The feature schema is missing, inconsistent, or does not match the data."""


@dataclass(frozen=True)
class Column:
    """One column of the data, under the name it has there.

    Attributes:
        name: The column's name exactly as in the data (any text; never renamed).
        kind: integer or number (a range), category (a fixed set of values), or text (free
            text: never a model input).
        role: feature (a model input), sensitive (a model input whose groups the bias gate
            compares), id (identifies a record; not an input) or ignored (not an input).
        description: What the column holds, in words (API docs, plots, the model card).
        minimum: Smallest accepted value of a number.
        maximum: Largest accepted value of a number.
        categories: The values a category may take, as they appear in the data.
        nullable: Whether a value may be missing.
        typical: Synthetic rows: the mean of a number.
        spread: Synthetic rows: the standard deviation of a number.
        weights: Synthetic rows: the share of each category (default: equal shares).
        effect: Synthetic rows: how the outcome moves with this column, per spread of a
            number, or one value per category.
    """

    name: str
    kind: Kind
    role: Role = "feature"
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[Value, ...] = ()
    nullable: bool = False
    typical: float | None = None
    spread: float | None = None
    weights: tuple[float, ...] = ()
    effect: float | tuple[float, ...] = 0.0

    @property
    def is_input(self) -> bool:
        """Whether the models read this column (features and sensitive features)."""
        return self.role in INPUT_ROLES and self.kind != "text"

    @property
    def numeric(self) -> bool:
        """Whether the column holds numbers."""
        return self.kind in ("integer", "number")

    def center(self) -> float:
        """The typical value of a number: declared, else the middle of its range."""
        if self.typical is not None:
            return self.typical
        low, high = self.bounds()
        return (low + high) / 2

    def scale(self) -> float:
        """The spread of a number: declared, else a sixth of its range (never zero)."""
        if self.spread is not None and self.spread > 0:
            return self.spread
        low, high = self.bounds()
        return max((high - low) / 6, 1e-9)

    def bounds(self) -> tuple[float, float]:
        """The accepted range of a number, falling back on the typical value and spread."""
        typical = self.typical if self.typical is not None else 0.0
        spread = self.spread if self.spread and self.spread > 0 else 1.0
        low = self.minimum if self.minimum is not None else typical - 4 * spread
        high = self.maximum if self.maximum is not None else typical + 4 * spread
        return float(low), float(max(high, low))


@dataclass(frozen=True)
class Target:
    """The column the model predicts, with its values as they appear in the data.

    Attributes:
        name: The column's name in the data.
        values: Classification: the classes in the data, from least to most severe; binary
            classification and anomaly detection: (negative, positive).
        minimum: Regression: the smallest value.
        maximum: Regression: the largest value.
        typical: Regression: the mean; synthetic rows centre on it.
        spread: Regression: the standard deviation.
        weights: Synthetic rows: the share of each value (binary: of the positive first...);
            one per value.
    """

    name: str
    values: tuple[Value, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    typical: float | None = None
    spread: float | None = None
    weights: tuple[float, ...] = ()


@dataclass(frozen=True)
class Schema:
    """The data's columns: the single declaration every stage and test reads.

    Attributes:
        target: The column the model predicts.
        columns: Every other column the data holds, model inputs first.
        noise: Synthetic rows: how much of the outcome the columns do not explain.
        notes: Why columns are not inputs (written by schema inference), for people.
    """

    target: Target
    columns: tuple[Column, ...]
    noise: float = 1.0
    notes: tuple[str, ...] = field(default=())

    @property
    def inputs(self) -> tuple[Column, ...]:
        """The columns the models read and a request must hold, in declaration order."""
        return tuple(column for column in self.columns if column.is_input)

    def column(self, name: str) -> Column:
        """The column of this name; a SchemaError naming the schema file when there is none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise SchemaError(f"no column {name!r} in the feature schema ({SCHEMA_FILE})")


@functools.cache
def load() -> Schema:
    """The project's schema: `SCHEMA` in the user-owned schema module, checked once."""
    package = __name__.split(".")[0]
    try:
        module = importlib.import_module(f"{package}.schema")
    except ModuleNotFoundError as error:
        if error.name != f"{package}.schema":
            raise
        raise SchemaError(
            f"{SCHEMA_FILE.format(package=package)} is missing: run "
            f"`{REINFER.format(package=package)}` to write it from your data"
        ) from None
    schema = getattr(module, "SCHEMA", None)
    if not isinstance(schema, Schema):
        raise SchemaError(f"{SCHEMA_FILE.format(package=package)} must define SCHEMA = Schema(...)")
    check(schema)
    return schema


def check(schema: Schema) -> None:
    """Refuse a schema no stage could work with, in one line naming the column."""
    where = SCHEMA_FILE.format(package=__name__.split(".")[0])
    names = [column.name for column in schema.columns]
    seen: set[str] = set()
    for name in [*names, schema.target.name]:
        if name in seen:
            raise SchemaError(f"{where}: column {name!r} is declared twice")
        seen.add(name)
    if not schema.inputs:
        raise SchemaError(f"{where}: no column is a model input (role feature or sensitive)")
    for column in schema.columns:
        if column.kind == "category" and column.is_input and not column.categories:
            raise SchemaError(f"{where}: category column {column.name!r} lists no categories")
        if column.weights and len(column.weights) != len(column.categories):
            raise SchemaError(f"{where}: {column.name!r} needs one weight per category")
        effects = column.effect
        if isinstance(effects, tuple) and len(effects) != len(column.categories):
            raise SchemaError(f"{where}: {column.name!r} needs one effect per category")
        low, high = column.minimum, column.maximum
        if column.numeric and low is not None and high is not None and low > high:
            raise SchemaError(f"{where}: {column.name!r} has minimum above maximum")


def missing_columns(names: Sequence[str], source: str = "PATH", shown: int = 5) -> str:
    """One line on input columns the data lacks: which, where they are declared, what to run."""
    package = __name__.split(".")[0]
    quoted = ", ".join(repr(name[:60]) for name in names[:shown])
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return (
        f"no column {quoted}{more}, which the feature schema "
        f"({SCHEMA_FILE.format(package=package)}) declares; if the data changed, run "
        f"`{REINFER.format(package=package).replace('PATH', source)}` to see the differences"
    )


def input_names(schema: Schema) -> list[str]:
    """The names of the model's input columns, as in the data."""
    return [column.name for column in schema.inputs]


def categories(schema: Schema) -> dict[str, list[str]]:
    """Each categorical input and its values, as text (how the models see categories)."""
    return {
        column.name: [_text(value) for value in column.categories]
        for column in schema.inputs
        if column.kind == "category"
    }


def numeric_inputs(schema: Schema) -> list[str]:
    """The numeric inputs, in declaration order."""
    return [column.name for column in schema.inputs if column.numeric]


def _text(value: object) -> str:
    """A category value as text: what a CSV round trip and the API both give.

    A column of whole numbers read with missing values becomes float: 1.0 is the category 1.
    """
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


value_text = _text


def label_key(text: str) -> str:
    """What the spellings of one label share: 6, 6.0 and 6.00 are all the class 6.

    A column of whole-number classes is written 6.0 by pandas once it has held a missing
    value, so a label is matched by this key where its exact text is not known.
    """
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def python_names(names: Sequence[str]) -> dict[str, str]:
    """A distinct Python identifier for each column name (the name itself where it is one).

    The identifiers stay inside the code (pydantic field names); requests, files and reports
    keep the columns' own names.
    """
    found: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        candidate = re.sub(r"\W", "_", name.strip())
        if not candidate or not candidate[0].isalpha() or keyword.iskeyword(candidate):
            candidate = f"f_{candidate}"
        unique, number = candidate, 2
        while unique in taken:
            unique, number = f"{candidate}_{number}", number + 1
        taken.add(unique)
        found[name] = unique
    return found


def synthetic(
    schema: Schema, rows: int, seed: int, *, task: str, labelled: bool = True
) -> pd.DataFrame:
    """Seeded synthetic rows drawn from the schema: the demo data, and data for checks.

    Numbers are drawn around their typical value with their spread and kept in range;
    categories with their weights. The outcome follows the columns' declared effects plus
    noise: the probability of the positive class, the class (ordered by how high the
    outcome is), the value, or, for anomaly detection, rows pushed far along the effects.

    Args:
        schema: The feature schema.
        rows: How many rows.
        seed: Random seed; the same seed gives the same rows.
        task: The contract's task type.
        labelled: Whether to add the target column.

    Returns:
        The rows: every declared column (ids numbered, text columns empty), the target last.
    """
    rng = np.random.default_rng(seed)
    target = schema.target
    anomalous = np.zeros(rows, dtype=bool)
    if task == "anomaly_detection":
        rate = target.weights[1] if len(target.weights) == 2 else 0.05
        anomalous = rng.random(rows) < rate
    data: dict[str, np.ndarray] = {}
    outcome = np.zeros(rows)
    for column in schema.columns:
        values, pushed = _draw(column, rows, rng, anomalous)
        data[column.name] = values
        outcome += pushed
    noise = rng.normal(0.0, schema.noise, rows) if schema.noise > 0 else np.zeros(rows)
    frame = pd.DataFrame(data)
    if labelled:
        frame[target.name] = _outcome(target, task, outcome + noise, anomalous, rng)
    return frame


def _draw(
    column: Column, rows: int, rng: np.random.Generator, anomalous: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One column's values and its share of the outcome."""
    if column.role == "id":
        return np.arange(1, rows + 1), np.zeros(rows)
    if column.kind == "text":
        return np.full(rows, "", dtype=object), np.zeros(rows)
    if column.kind == "category":
        count = len(column.categories)
        shares = np.asarray(column.weights or [1.0] * count, dtype=float)
        picks = rng.choice(count, rows, p=shares / shares.sum())
        effects = column.effect if isinstance(column.effect, tuple) else (0.0,) * count
        if anomalous.any() and any(effects):
            picks[anomalous] = int(np.argmax(np.abs(effects)))
        values = np.empty(rows, dtype=object)
        values[:] = [column.categories[pick] for pick in picks]
        values = _with_missing(column, values, rng)
        return values, np.asarray(effects, dtype=float)[picks]
    center, scale = column.center(), column.scale()
    standard = rng.normal(0.0, 1.0, rows)
    effect = column.effect if isinstance(column.effect, float | int) else 0.0
    if anomalous.any() and effect:
        standard[anomalous] += 4.0 * math.copysign(1.0, effect)
    low, high = column.bounds()
    values = np.clip(center + scale * standard, low, high)
    if column.kind == "integer":
        values = np.round(values).astype(np.int64)
    pushed = effect * (values - center) / scale
    if column.nullable:
        values = _with_missing(column, values.astype(float), rng)
    return values, np.asarray(pushed, dtype=float)


def _with_missing(column: Column, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few missing values in a column that may miss them, so that every path meets some."""
    if not column.nullable:
        return values
    missing = rng.random(len(values)) < 0.02
    values = values.astype(object) if values.dtype == object else values
    values[missing] = None if values.dtype == object else np.nan
    return values


def _outcome(
    target: Target,
    task: str,
    latent: np.ndarray,
    anomalous: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """The target column from the latent outcome."""
    rows = len(latent)
    if task == "regression":
        center = target.typical if target.typical is not None else 0.0
        spread = target.spread if target.spread and target.spread > 0 else 1.0
        deviation = latent.std() or 1.0
        values = center + spread * (latent - latent.mean()) / deviation
        low = target.minimum if target.minimum is not None else -np.inf
        high = target.maximum if target.maximum is not None else np.inf
        return np.asarray(np.clip(values, low, high).round(2), dtype=float)
    labels = np.asarray(target.values, dtype=object)
    if task == "anomaly_detection":
        return np.asarray(np.where(anomalous, labels[1], labels[0]), dtype=object)
    if task == "binary_classification":
        share = target.weights[1] if len(target.weights) == 2 else 0.3
        chance = 1 / (1 + np.exp(-(latent - np.quantile(latent, 1 - share))))
        return np.asarray(np.where(rng.random(rows) < chance, labels[1], labels[0]), dtype=object)
    shares = np.asarray(target.weights or [1.0] * len(labels), dtype=float)
    cuts = np.quantile(latent, np.cumsum(shares / shares.sum())[:-1])
    return np.asarray(labels[np.searchsorted(cuts, latent)], dtype=object)
