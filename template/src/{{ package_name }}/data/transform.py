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
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..app.records import Record


def categories() -> dict[str, list[str]]:
    """The categorical features and their allowed values, read from the API's record schema."""
    found = {}
    for name, field in Record.model_fields.items():
        if typing.get_origin(field.annotation) is typing.Literal:
            found[name] = [str(value) for value in typing.get_args(field.annotation)]
    return found


def numeric_features() -> list[str]:
    """The numeric features, in the record schema's order."""
    categorical = categories()
    return [name for name in Record.model_fields if name not in categorical]


def features_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The features of records in schema order: numbers as float64, categories as strings.

    Raises:
        KeyError: A feature column is missing.
    """
    categorical = categories()
    columns = {
        name: frame[name].astype(str) if name in categorical else frame[name].astype("float64")
        for name in Record.model_fields
    }
    return pd.DataFrame(columns, index=frame.index)


def records_frame(records: typing.Iterable[Record | Mapping[str, object]]) -> pd.DataFrame:
    """Features of records as the API receives them: the same columns and types as files.

    Built column by column in one step (no intermediate frame): at one record per request this
    is most of the service's own time, so it is kept to a single DataFrame construction.

    Raises:
        KeyError: A record lacks a feature.
    """
    rows = [
        record.model_dump() if isinstance(record, Record) else dict(record) for record in records
    ]
    categorical = categories()
    columns = {
        name: np.array([str(row[name]) for row in rows], dtype=object)
        if name in categorical
        else np.array([row[name] for row in rows], dtype=np.float64)
        for name in Record.model_fields
    }
    return pd.DataFrame(columns)


def build_transformer() -> ColumnTransformer:
    """Scale numbers, one-hot encode categories with the schema's fixed category lists."""
    categorical = categories()
    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric_features()),
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


def fit_transformer(features: pd.DataFrame) -> ColumnTransformer:
    """The transformer fitted once, on training features."""
    return build_transformer().fit(features_frame(features))
