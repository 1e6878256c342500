"""Transform: one way from records to model features, shared by every path that scores records.

Training, evaluation, batch scoring and the API all call `features_frame` and the fitted
transformer, so a record is turned into the same numbers whichever way it arrives.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..app.schemas import Strict
from . import columns
from .columns import load, value_text


def input_names() -> list[str]:
    """The model's input columns, as named in the data, in schema order."""
    return columns.input_names(load())


def categories() -> dict[str, list[str]]:
    """The categorical inputs and their allowed values, as text."""
    return columns.categories(load())


def numeric_features() -> list[str]:
    """The numeric inputs, in schema order."""
    return columns.numeric_inputs(load())


def features_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The features of records in schema order: numbers as float64, categories as strings.

    Missing categories stay missing (None), missing numbers are NaN.

    Raises:
        KeyError: A feature column is missing.
    """
    categorical = categories()
    data = {
        name: _as_text(frame[name]) if name in categorical else frame[name].astype("float64")
        for name in input_names()
    }
    return pd.DataFrame(data, index=frame.index)


def _as_text(values: pd.Series) -> pd.Series:
    """Category values as text, the way a CSV round trip and the API both give them."""
    text = values.astype(object).where(values.notna(), None)
    return text.map(lambda value: value if value is None else value_text(value))


def records_frame(records: typing.Iterable[Strict | Mapping[str, object]]) -> pd.DataFrame:
    """Features of records as the API receives them: the same columns and types as files.

    Built column by column in one step (no intermediate frame): at one record per request this
    is most of the service's own time, so it is kept to a single DataFrame construction.

    Raises:
        KeyError: A record lacks a feature.
    """
    rows = [
        record.model_dump(by_alias=True) if isinstance(record, Strict) else dict(record)
        for record in records
    ]
    categorical = categories()
    data = {
        name: np.array(
            [None if row[name] is None else value_text(row[name]) for row in rows],
            dtype=object,
        )
        if name in categorical
        else np.array(
            [np.nan if row[name] is None else row[name] for row in rows], dtype=np.float64
        )
        for name in input_names()
    }
    return pd.DataFrame(data)


def build_transformer() -> ColumnTransformer:
    """Scale numbers, one-hot encode categories with the schema's fixed category lists."""
    categorical = categories()
    return ColumnTransformer(
        [
            ("numeric", _numeric_steps(), numeric_features()),
            (
                "categorical",
                OneHotEncoder(
                    categories=list(categorical.values()),
                    handle_unknown="ignore",
                    sparse_output=False,
                ),
                list(categorical),
            ),
        ],
        verbose_feature_names_out=False,
    )


def _numeric_steps() -> StandardScaler | Pipeline:
    """Scale numbers; where the schema lets a number be missing, fill it with the median first."""
    numbers = [column for column in load().inputs if column.numeric]
    if any(column.nullable for column in numbers):
        return make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    return StandardScaler()


def fit_transformer(features: pd.DataFrame) -> ColumnTransformer:
    """The transformer fitted once, on training features."""
    return build_transformer().fit(features_frame(features))
