"""Compiled decisions: the served model turned into plain Python for one record at a time.

Run on a one-row DataFrame, the fitted feature transformer alone costs milliseconds; the numbers
it applies (means, scales, categories) and the model's own (coefficients, trees, rules) take
microseconds on a plain list. When the service loads a model, `compile_decider` reads the fitted
objects of every step the template's candidates and baselines use and builds one function from a
record's values to (decision, score). That function is checked against the full model on a
sample of records drawn from the feature schema: every decision must be the same and every score
within 1e-12. A step it does not know, or a sample record it decides otherwise, and the service
keeps the full model for single records; the reason is logged once, at load.

Only fitted parameters are read here, never edited: candidates.py and baseline.py stay yours, and
a change this module does not follow shows up as a fallback, not as a different answer.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special  # type: ignore[import-untyped]  # scipy ships no stubs
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, QuantileRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.extmath import softmax

from ..data.columns import load, synthetic, value_text
from ..data.transform import categories, input_names, records_frame
from .evaluate import Model, decide

logger = logging.getLogger(__name__)

# Records of the check at load: drawn from the schema with a fixed seed, so every load checks the
# same records; each nullable input is also left out in a share of them.
SAMPLE_ROWS = 400
SAMPLE_SEED = 20_261_202
TOLERANCE = 1e-12

Values = Sequence[Any]
Vector = list[float]
Step = Callable[[Values], Vector]
Decision = tuple[Any, float]


class NotCompilableError(Exception):
    """A step of the model this module does not know; the full model serves instead."""


@dataclass(frozen=True)
class Decider:
    """Decides one record given as its input values in schema order (None where missing).

    Attributes:
        model: The model it decides for.
        decide: Values to (decision, score), as `evaluate.decide` gives them for one record.
        compiled: Whether `decide` is the compiled path (else the full model on a one-row frame).
        reason: Why the full model serves, when it does.
    """

    model: Model
    decide: Callable[[Values], Decision]
    compiled: bool
    reason: str = ""


def features(values: Values, flags: Sequence[bool]) -> list[Any]:
    """A record's values as the model's features see them: floats (NaN missing) and category text.

    The same values as one row of `transform.records_frame`, without building a frame; `flags`
    (from `category_flags`) says which inputs are categories.
    """
    return [
        None if value is None else value_text(value) if is_category else float(value)
        for value, is_category in zip(values, flags, strict=True)
    ]


def category_flags() -> list[bool]:
    """For each input in schema order, whether it is a category (read once, not per record)."""
    names = categories()
    return [name in names for name in input_names()]


def compile_decider(model: Model, sample: pd.DataFrame | None = None) -> Decider:
    """The fastest decider for one record that decides exactly as `model` does.

    Args:
        model: The loaded model (a trained candidate or the baseline).
        sample: Records to check the compiled path on (default: drawn from the feature schema).
    """
    names = input_names()

    def full(values: Values) -> Decision:
        decisions, scores = decide(model, records_frame([dict(zip(names, values, strict=True))]))
        return decisions[0], float(scores[0])

    try:
        compiled = compile_model(model)
        _check(compiled, model, _sample() if sample is None else sample)
    except NotCompilableError as error:
        reason = str(error)
    except Exception as error:  # whatever breaks here, the full model still serves
        reason = f"the compiled path failed its check ({type(error).__name__}: {error})"
    else:
        return Decider(model, compiled, compiled=True)
    logger.warning("single records are scored by the full model: %s", reason)
    return Decider(model, full, compiled=False, reason=reason)


def _sample() -> pd.DataFrame:
    schema = load()
    # Drawn as for anomaly detection: some records pushed far out, so that the check reaches the
    # edges of the model as well as its middle.
    frame = synthetic(schema, SAMPLE_ROWS, SAMPLE_SEED, task="anomaly_detection", labelled=False)
    frame = frame[input_names()].astype(object)
    for position, column in enumerate(schema.inputs):
        if column.nullable:
            # Every fifth record, shifted per column, misses this input.
            missing = np.arange(len(frame)) % 5 == position % 5
            frame.loc[missing, column.name] = None
    return frame


def _check(compiled: Callable[[Values], Decision], model: Model, sample: pd.DataFrame) -> None:
    """Raise NotCompilableError unless the compiled path decides every sample record alike."""
    rows = [
        [None if _missing(value) else value for value in row]
        for row in sample[input_names()].itertuples(index=False)
    ]
    decisions, scores = decide(
        model, records_frame([dict(zip(input_names(), row, strict=True)) for row in rows])
    )
    for index, row in enumerate(rows):
        decision, score = compiled(row)
        if not (_same(decision, decisions[index]) and _close(score, float(scores[index]))):
            raise NotCompilableError(
                f"the compiled {model.kind} decides sample record {index} otherwise "
                f"({decision!r}, {score!r} instead of {decisions[index]!r}, {scores[index]!r})"
            )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(left: Any, right: Any) -> bool:
    if isinstance(right, float | np.floating):
        return _close(float(left), float(right))
    return bool(left == right) and type(_plain(left)) is type(_plain(right))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _close(left: float, right: float) -> bool:
    if math.isnan(left) or math.isnan(right):
        return math.isnan(left) and math.isnan(right)
    return abs(left - right) <= TOLERANCE * max(1.0, abs(right))


def compile_model(model: Model) -> Callable[[Values], Decision]:
    """Values in schema order to (decision, score), from the model's fitted parameters.

    Raises:
        NotCompilableError: The model holds a step this module does not know.
    """
    pipeline = getattr(model, "pipeline", None)
    if isinstance(pipeline, Pipeline):
        return _candidate(model, pipeline)
    if model.kind == "baseline":
        return _baseline(model)
    raise NotCompilableError(f"no compiled form of a {type(model).__name__}")


# --- Trained candidates: the shared feature transformer and one estimator. ----------------------


def _candidate(model: Any, pipeline: Pipeline) -> Callable[[Values], Decision]:
    if len(pipeline.steps) != 2:
        raise NotCompilableError(
            f"a pipeline of {len(pipeline.steps)} steps, not transformer + model"
        )
    transform = _column_transformer(pipeline.steps[0][1])
    estimator = pipeline.steps[1][1]
    threshold, classes = model.threshold, model.classes
    if type(estimator) is IsolationForest:
        scores = _isolation_forest(estimator)
    elif model.quantile is not None:
        scores = _regressor(estimator)
    elif type(estimator) in (LogisticRegression, HistGradientBoostingClassifier):
        probabilities = _probabilities(estimator)
        if classes is not None:
            labels = np.asarray(estimator.classes_, dtype=object)

            def most_likely(values: Values) -> Decision:
                proba = probabilities(transform(values))
                return labels[int(proba.argmax(axis=1)[0])], float(proba.max(axis=1)[0])

            return most_likely

        scores = _positive(estimator, probabilities)
    else:
        raise NotCompilableError(f"no compiled form of the estimator {type(estimator).__name__}")

    def scored(values: Values) -> Decision:
        score = scores(transform(values))
        if threshold is None:
            return score, score
        return int(score >= threshold), score

    return scored


def _column_transformer(transformer: Any) -> Callable[[Values], Vector]:
    if type(transformer) is not ColumnTransformer or transformer.sparse_output_:
        raise NotCompilableError(
            f"no compiled form of the transformer {type(transformer).__name__}"
        )
    positions = {name: index for index, name in enumerate(input_names())}
    flags = category_flags()
    steps: list[tuple[list[int], Step]] = []
    for name, step, columns in transformer.transformers_:
        if step == "drop" or len(columns) == 0:
            continue
        if not all(isinstance(column, str) and column in positions for column in columns):
            raise NotCompilableError(f"the transformer step {name!r} selects unknown columns")
        steps.append(([positions[column] for column in columns], _step(step)))

    def transform(values: Values) -> Vector:
        prepared = features(values, flags)
        vector: Vector = []
        for where, step in steps:
            vector.extend(step([prepared[index] for index in where]))
        return vector

    return transform


def _step(step: Any) -> Step:
    if step == "passthrough":
        return _as_numbers
    kind = type(step)
    if kind is Pipeline:
        parts = [_step(part) for _, part in step.steps]

        def chained(values: Values) -> Vector:
            result: Values = values
            for part in parts:
                result = part(result)
            return list(result)

        return chained
    if kind is StandardScaler:
        return _scaler(step)
    if kind is SimpleImputer:
        return _imputer(step)
    if kind is OneHotEncoder:
        return _one_hot(step)
    raise NotCompilableError(f"no compiled form of the transformer step {kind.__name__}")


def _as_numbers(values: Values) -> Vector:
    return [math.nan if value is None else float(value) for value in values]


def _scaler(scaler: StandardScaler) -> Step:
    means = None if scaler.mean_ is None or not scaler.with_mean else scaler.mean_.tolist()
    scales = None if scaler.scale_ is None or not scaler.with_std else scaler.scale_.tolist()

    def scale(values: Values) -> Vector:
        numbers = _as_numbers(values)
        if means is not None:
            numbers = [number - mean for number, mean in zip(numbers, means, strict=True)]
        if scales is not None:
            numbers = [number / size for number, size in zip(numbers, scales, strict=True)]
        return numbers

    return scale


def _imputer(imputer: SimpleImputer) -> Step:
    fills = np.asarray(imputer.statistics_, dtype=float)
    missing = imputer.missing_values
    if imputer.add_indicator or np.isnan(fills).any() or not _is_nan(missing):
        raise NotCompilableError("no compiled form of this SimpleImputer's settings")
    filled = fills.tolist()

    def impute(values: Values) -> Vector:
        numbers = _as_numbers(values)
        return [
            fill if math.isnan(number) else number
            for number, fill in zip(numbers, filled, strict=True)
        ]

    return impute


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _one_hot(encoder: OneHotEncoder) -> Step:
    if (
        encoder.drop_idx_ is not None
        or encoder.handle_unknown not in ("ignore", "infrequent_if_exist")
        or getattr(encoder, "_infrequent_enabled", False)
        or encoder.sparse_output
    ):
        raise NotCompilableError("no compiled form of this OneHotEncoder's settings")
    tables = [
        {category: index for index, category in enumerate(found.tolist())}
        for found in encoder.categories_
    ]
    widths = [len(table) for table in tables]

    def encode(values: Values) -> Vector:
        vector: Vector = []
        for value, table, width in zip(values, tables, widths, strict=True):
            hot = [0.0] * width
            index = table.get(value)
            if index is not None:
                hot[index] = 1.0
            vector.extend(hot)
        return vector

    return encode


def _probabilities(estimator: Any) -> Callable[[Vector], np.ndarray]:
    """predict_proba of one transformed row: an array of one row, a column per class."""
    if type(estimator) is LogisticRegression:
        coef = estimator.coef_.T
        intercept = estimator.intercept_
        if len(estimator.classes_) <= 2:

            def binary(row: Vector) -> np.ndarray:
                positive = special.expit((np.array([row]) @ coef + intercept).reshape(-1))
                return np.stack([1 - positive, positive], axis=1)

            return binary

        def multinomial(row: Vector) -> np.ndarray:
            return np.asarray(softmax(np.array([row]) @ coef + intercept, copy=False))

        return multinomial
    raw = _boosted_raw(estimator)
    loss = estimator._loss  # the link sklearn itself applies, so that scores match to the bit

    def boosted(row: Vector) -> np.ndarray:
        return np.asarray(loss.predict_proba(np.array([raw(row)])))

    return boosted


def _positive(
    estimator: Any, probabilities: Callable[[Vector], np.ndarray]
) -> Callable[[Vector], float]:
    """The probability of the positive class (the second column of predict_proba)."""
    if type(estimator) is LogisticRegression:
        weights = estimator.coef_.ravel().tolist()
        intercept = float(estimator.intercept_[0])

        def logistic(row: Vector) -> float:
            # Plain floats: NumPy's three calls on a one-row array take five times as long.
            # The products are added in the row's order. NumPy adds a short row the same way
            # and a long one (about 17 features on) in another order, a few 1e-16 apart; its
            # one-row and batch products differ as much. The check allows 1e-12. The logistic
            # is SciPy's expit to the bit: 1 / (1 + exp(-z)), and 0 where exp overflows.
            total = 0.0
            for number, weight in zip(row, weights, strict=True):
                total += number * weight
            total += intercept
            return 1.0 / (1.0 + _exp(-total))

        return logistic

    def second_column(row: Vector) -> float:
        return float(probabilities(row)[0, 1])

    return second_column


def _exp(number: float) -> float:
    """math.exp, inf where the result overflows a double (as NumPy's exp gives it)."""
    try:
        return math.exp(number)
    except OverflowError:
        return math.inf


def _regressor(estimator: Any) -> Callable[[Vector], float]:
    if type(estimator) is QuantileRegressor:
        coef, intercept = estimator.coef_, estimator.intercept_

        def linear(row: Vector) -> float:
            return float((np.array([row]) @ coef + intercept)[0])

        return linear
    if type(estimator) is HistGradientBoostingRegressor:
        raw = _boosted_raw(estimator)
        inverse = estimator._loss.link.inverse

        def boosted(row: Vector) -> float:
            return float(inverse(np.array(raw(row)))[0])

        return boosted
    raise NotCompilableError(f"no compiled form of the regressor {type(estimator).__name__}")


def _boosted_raw(estimator: Any) -> Callable[[Vector], list[float]]:
    """The boosted trees' raw sum per class, added in sklearn's order (baseline, then trees)."""
    if getattr(estimator, "is_categorical_", None) is not None and estimator.is_categorical_.any():
        raise NotCompilableError("no compiled form of gradient boosting on native categories")
    baseline = [0.0 + value for value in np.asarray(estimator._baseline_prediction).ravel()]
    trees = [
        [_tree_nodes(predictor.nodes) for predictor in iteration]
        for iteration in estimator._predictors
    ]
    try:
        return _generated_sum(baseline, trees)
    except (SyntaxError, RecursionError, MemoryError) as error:
        # Trees deeper than Python's parser nests: walk them instead, about three times slower.
        logger.info("boosted trees are walked, not generated as code (%s)", error)

    def raw(row: Vector) -> list[float]:
        sums = list(baseline)
        for iteration in trees:
            for k, tree in enumerate(iteration):
                sums[k] += _walk(tree, row)
        return sums

    return raw


Node = tuple[bool, int, float, bool, int, int, float]


def _tree_nodes(nodes: np.ndarray) -> list[Node]:
    """A fitted tree's nodes as tuples: leaf?, feature, threshold, NaN left?, children, value."""
    columns = ("is_leaf", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right")
    fields = [nodes[name].tolist() for name in (*columns, "value")]
    return [
        (bool(leaf), int(feature), float(threshold), bool(left_missing), left, right, value)
        for leaf, feature, threshold, left_missing, left, right, value in zip(*fields, strict=True)
    ]


def _walk(tree: list[Node], row: Vector) -> float:
    node = tree[0]
    while not node[0]:
        number = row[node[1]]
        if number != number:  # NaN: the side the tree learnt for missing values
            node = tree[node[4] if node[3] else node[5]]
        elif number <= node[2]:
            node = tree[node[4]]
        else:
            node = tree[node[5]]
    return node[6]


def _generated_sum(
    baseline: list[float], trees: list[list[list[Node]]]
) -> Callable[[Vector], list[float]]:
    """The trees written out as nested ifs in one Python function, compiled once at load.

    Each tree becomes a function whose branches compare the row's values with the fitted
    thresholds, written with `repr` (which reads back as the very same double); the sum adds
    the leaves in the order `_walk` does, so the result is the same to the bit. Only numbers
    read from the fitted model reach the source. About three times faster than the walk.
    """
    lines: list[str] = []
    names: list[list[str]] = []
    for position, iteration in enumerate(trees):
        names.append([])
        for k, tree in enumerate(iteration):
            name = f"tree_{position}_{k}"
            names[-1].append(name)
            lines.append(f"def {name}(row):")
            _write_node(tree, 0, 1, lines)
    lines.append("def raw(row):")
    lines.extend(f"    s{k} = {_literal(value)}" for k, value in enumerate(baseline))
    for functions in names:
        lines.extend(f"    s{k} += {name}(row)" for k, name in enumerate(functions))
    lines.append(f"    return [{', '.join(f's{k}' for k in range(len(baseline)))}]")
    namespace: dict[str, Any] = {"__builtins__": {}, "INF": math.inf, "NAN": math.nan}
    code = compile("\n".join(lines), "<boosted trees>", "exec")
    # Only numbers read from the fitted model are in the source.
    exec(code, namespace)  # noqa: S102  # nosec B102
    raw: Callable[[Vector], list[float]] = namespace["raw"]
    return raw


def _literal(number: float) -> str:
    """Python source for a float that reads back as exactly the same float."""
    number = float(number)
    if math.isnan(number):
        return "NAN"
    if math.isinf(number):
        return "INF" if number > 0 else "-INF"
    return repr(number)


def _write_node(tree: list[Node], index: int, depth: int, lines: list[str]) -> None:
    leaf, feature, threshold, missing_left, left, right, value = tree[index]
    indent = "    " * depth
    if leaf:
        lines.append(f"{indent}return {_literal(value)}")
        return
    # NaN compares false with everything: it goes right unless the tree sends it left.
    test = f"x <= {_literal(threshold)}" + (" or x != x" if missing_left else "")
    lines.append(f"{indent}x = row[{int(feature)}]")
    lines.append(f"{indent}if {test}:")
    _write_node(tree, left, depth + 1, lines)
    lines.append(f"{indent}else:")
    _write_node(tree, right, depth + 1, lines)


def _isolation_forest(forest: IsolationForest) -> Callable[[Vector], float]:
    """Minus sklearn's score_samples: 2 ** -(mean path length / expected path length)."""
    from sklearn.ensemble._iforest import _average_path_length

    subsets = [
        None if forest._max_features == forest.n_features_in_ else features.tolist()
        for features in forest.estimators_features_
    ]
    trees = [
        (
            tree.tree_.children_left.tolist(),
            tree.tree_.children_right.tolist(),
            tree.tree_.feature.tolist(),
            tree.tree_.threshold.tolist(),
            tree.tree_.missing_go_to_left.tolist(),
            (lengths + averages - 1.0).tolist(),
        )
        for tree, lengths, averages in zip(
            forest.estimators_,
            forest._decision_path_lengths,
            forest._average_path_length_per_tree,
            strict=True,
        )
    ]
    denominator = len(forest.estimators_) * _average_path_length([forest._max_samples])

    def score(row: Vector) -> float:
        # sklearn reads the features as float32 before comparing them with the thresholds.
        numbers = np.array(row, dtype=np.float32).tolist()
        depth = 0.0
        for (left, right, feature, threshold, missing_left, depths), subset in zip(
            trees, subsets, strict=True
        ):
            values = numbers if subset is None else [numbers[index] for index in subset]
            node = 0
            while left[node] != -1:
                number = values[feature[node]]
                if number != number:
                    node = left[node] if missing_left[node] else right[node]
                elif number <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            depth += depths[node]
        depths = np.array([depth])
        ratio = np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0)
        return float((2 ** (-ratio))[0])

    return score


# --- The baselines of baseline.py, read through their fitted fields. -----------------------------


def _baseline(model: Any) -> Callable[[Values], Decision]:
    for fields, build in (
        (("rules", "threshold"), _rules_baseline),
        (("signals", "z_cutoff", "steepness", "threshold"), _signals_baseline),
        (("cut_points", "points_per_unit", "points_per_category", "classes"), _points_baseline),
        (("amount_per_unit", "amount_per_category", "base", "quantile_offset"), _value_baseline),
    ):
        if all(hasattr(model, name) for name in fields):
            return build(model)
    raise NotCompilableError(f"no compiled form of the baseline {type(model).__name__}")


def _position(name: str) -> int:
    names = input_names()
    if name not in names:
        raise NotCompilableError(f"the baseline reads {name!r}, which is not a model input")
    return names.index(name)


def _number_of(value: Any) -> float:
    """A feature value as a number the way the baselines read one: NaN when it is none."""
    if value is None:
        return math.nan
    if isinstance(value, float):
        return value
    try:
        return float(pd.to_numeric(value))
    except (TypeError, ValueError):
        return math.nan


def _rules_baseline(model: Any) -> Callable[[Values], Decision]:
    flags = category_flags()
    rules = []
    for rule in model.rules:
        if rule.op not in (">=", "<", "=="):
            raise NotCompilableError(f"no compiled form of the rule operator {rule.op!r}")
        position = _position(rule.feature)
        wanted: Any = value_text(rule.value) if rule.op == "==" and flags[position] else None
        if wanted is None:
            try:
                wanted = float(rule.value)
            except ValueError:
                wanted = math.nan
        rules.append((position, rule.op, wanted, float(rule.weight), flags[position]))
    total = sum(rule.weight for rule in model.rules) or 1.0
    threshold = model.threshold

    def fires(op: str, value: Any, wanted: Any, is_category: bool) -> bool:
        if op == "==":
            return bool(value == wanted) if value is not None else False
        number = _number_of(value) if is_category else value
        return bool(number >= wanted) if op == ">=" else bool(number < wanted)

    def scored(values: Values) -> Decision:
        prepared = features(values, flags)
        fired = 0.0
        for position, op, wanted, weight, is_category in rules:
            fired += weight * fires(op, prepared[position], wanted, is_category)
        score = float(np.float64(fired) / total)
        return int(score >= threshold), score

    return scored


def _signals_baseline(model: Any) -> Callable[[Values], Decision]:
    signals = [(_position(s.feature), s.direction, s.log, s.center, s.scale) for s in model.signals]
    if any(not scale > 0 for *_, scale in signals):
        raise NotCompilableError("a baseline signal without a positive scale")
    steepness, cutoff, threshold = model.steepness, model.z_cutoff, model.threshold
    flags = category_flags()

    def scored(values: Values) -> Decision:
        prepared = features(values, flags)
        if signals:
            largest = -math.inf
            for position, direction, log, center, scale in signals:
                value = prepared[position]
                number = np.array([_number_of(value) if flags[position] else value], dtype=float)
                if log:
                    number = np.log1p(np.clip(number, 0, None))
                z = np.nan_to_num((number - center) / scale, nan=0.0)
                z = -z if direction == "low" else np.abs(z) if direction == "far" else z
                largest = max(largest, float(z[0]))
        else:
            largest = 0.0
        rise = steepness * (np.array([largest]) - cutoff)
        score = float((0.5 * (1 + np.tanh(rise / 2)))[0])
        return int(score >= threshold), score

    return scored


def _points(
    model: Any, per_unit: dict[str, float], per_category: dict[str, dict[Any, float]], start: float
) -> Callable[[list[Any]], float]:
    flags = category_flags()
    units = [
        (_position(column), float(amount), float(model.typical.get(column, 0.0)))
        for column, amount in per_unit.items()
    ]
    tables = [(_position(column), dict(table)) for column, table in per_category.items()]

    def total(prepared: list[Any]) -> float:
        points = start
        for position, amount, typical in units:
            value = prepared[position]
            number = _number_of(value) if flags[position] else value
            points += amount * (typical if math.isnan(number) else number)
        for position, table in tables:
            found = table.get(prepared[position]) if prepared[position] is not None else None
            points += 0.0 if found is None or _is_nan(found) else float(found)
        return points

    return total


def _points_baseline(model: Any) -> Callable[[Values], Decision]:
    flags = category_flags()
    total = _points(model, model.points_per_unit, model.points_per_category, 0.0)
    cuts = [float(point) for point in model.cut_points]
    classes = list(model.classes)

    def scored(values: Values) -> Decision:
        points = total(features(values, flags))
        return classes[bisect.bisect_right(cuts, points)], points

    return scored


def _value_baseline(model: Any) -> Callable[[Values], Decision]:
    flags = category_flags()
    total = _points(model, model.amount_per_unit, model.amount_per_category, float(model.base))
    offset, lowest = model.quantile_offset, model.lowest

    def scored(values: Values) -> Decision:
        value = total(features(values, flags)) + offset
        if lowest is not None:
            value = max(value, lowest)
        return value, value

    return scored
