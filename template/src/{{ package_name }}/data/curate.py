"""Curate: drop duplicates, handle missing values, check labels and stop on personal data."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import Contract
from ..errors import ProjectError
from .columns import load

# Below this many rows a feature can match the target by chance, so leakage is not judged.
LEAKAGE_MIN_ROWS = 30
LEAKAGE_MIN_CORRELATION = 0.98
# How many offending values, and rows of each, an error message names.
SHOWN_VALUES = 5
SHOWN_ROWS = 3


class CurationError(ProjectError):
    """The data breaks a rule of the contract's data section; the message names column and rule."""


class PiiFoundError(CurationError):
    """A text column holds what looks like personal data and is not declared as allowed to."""

    def __init__(self, message: str, hits: tuple[PiiHit, ...]) -> None:
        """Keep the hits (column, rule, row count; never the values) beside the message."""
        super().__init__(message)
        self.hits = hits


@dataclass(frozen=True)
class CurationReport:
    """What curation did to the data, in counts."""

    rows_in: int
    rows_out: int
    duplicates_dropped: int
    duplicates_found: int
    rows_dropped_missing: int
    filled: dict[str, int]
    pii_checked_columns: tuple[str, ...]

    def summary(self) -> str:
        """One line for the terminal and the logs."""
        filled = sum(self.filled.values())
        scanned = len(self.pii_checked_columns)
        scan = (
            f"no personal data found in {_count(scanned, 'text column')}"
            if scanned
            else "no text column to scan for personal data"
        )
        return (
            f"{self.rows_in} rows in, {self.rows_out} out: "
            f"{self._duplicates()}, "
            f"{_count(self.rows_dropped_missing, 'row')} with missing values dropped, "
            f"{_count(filled, 'missing value')} filled in {_count(len(self.filled), 'column')}; "
            f"{scan}"
        )

    def _duplicates(self) -> str:
        if self.duplicates_found and not self.duplicates_dropped:
            found = _count(self.duplicates_found, "exact duplicate")
            return f"{found} kept (data.duplicates: keep; the split keeps copies on one side)"
        return f"{_count(self.duplicates_dropped, 'duplicate')} dropped"


def curate(frame: pd.DataFrame, contract: Contract) -> tuple[pd.DataFrame, CurationReport]:
    """Clean one table by the contract's data rules, or stop with the first rule it breaks.

    In order: exact duplicate rows are counted, and dropped when data.duplicates says drop
    (repeated rows can be real: coarse survey answers repeat); text columns are scanned for
    personal data (columns in data.pii_allowed_columns are skipped); a column missing more than
    data.max_missing_rate of its values is refused; data.missing_values then fills (median
    for numbers, most frequent value otherwise), drops or refuses what is missing (columns the
    feature schema declares as no model input are left as they are); when the
    target column is present, rows without a label are dropped (or refused under `fail`:
    labels are never invented), labels are checked against the task, and a feature that
    gives the label away is refused. Row numbers in messages count data rows from 1.

    Args:
        frame: The table to curate; it is not modified.
        contract: The planning contract.

    Returns:
        The curated table, indexed from 0, and what was done to it.

    Raises:
        CurationError: The data breaks a rule; PiiFoundError when the rule is about
            personal data.
    """
    rows_in = len(frame)
    if rows_in == 0:
        raise CurationError("the data has no rows; collect some first")
    # Positions from 0 as the index, so that messages can name the rows of the input.
    work = frame.reset_index(drop=True)
    repeated = work.duplicated()
    found = int(repeated.sum())
    if contract.data.duplicates == "drop":
        work = work[~repeated].copy()
    duplicates = rows_in - len(work)
    scan = scan_pii(work, contract.data.pii_allowed_columns)
    if scan.hits:
        raise PiiFoundError(pii_message(scan.hits), scan.hits)
    target = contract.task.target
    labelled = target in work.columns
    # Columns the schema declares as no model input (ids, free text, ignored ones) are left as
    # they are: a mostly empty comments column must not stop the data the models read.
    unread = _not_inputs()
    judged = [column for column in work.columns if column not in unread]
    _check_missing_rate(work[judged], contract.data.max_missing_rate)
    before_missing = len(work)
    work, filled = _handle_missing(work, judged, contract, target if labelled else None)
    if work.empty:
        raise CurationError(
            "every row has a missing value, so data.missing_values drop_rows leaves nothing; "
            "choose fill_median or fix the data at its source"
        )
    if labelled:
        work[target] = _checked_labels(work[target], contract)
        _check_leakage(work, target)
    report = CurationReport(
        rows_in=rows_in,
        rows_out=len(work),
        duplicates_dropped=duplicates,
        duplicates_found=found,
        rows_dropped_missing=before_missing - len(work),
        filled=filled,
        pii_checked_columns=scan.checked_columns,
    )
    return work.reset_index(drop=True), report


# --- Missing values ------------------------------------------------------------------------


def _check_missing_rate(frame: pd.DataFrame, limit: float) -> None:
    missing = frame.isna().sum()
    over = [
        f"{_name(column)} misses {count} of {len(frame)} values ({100 * count / len(frame):.1f}%)"
        for column, count in missing.items()
        if count / len(frame) > limit
    ]
    if over:
        raise CurationError(
            f"{'; '.join(over)}: more than data.max_missing_rate {limit:g} allows; "
            "fill the column at its source, drop it, or raise the limit in ml_contract.yaml"
        )


def _not_inputs() -> set[str]:
    """The columns the feature schema declares that no model reads."""
    return {column.name for column in load().columns if not column.is_input}


def _handle_missing(
    frame: pd.DataFrame, judged: list[str], contract: Contract, target: str | None
) -> tuple[pd.DataFrame, dict[str, int]]:
    missing = frame[judged].isna().sum()
    missing = missing[missing > 0]
    if missing.empty:
        return frame, {}
    policy = contract.data.missing_values
    if policy == "fail":
        counts = ", ".join(
            f"{_name(column)} in {_count(count, 'row')}" for column, count in missing.items()
        )
        raise CurationError(
            f"values are missing and data.missing_values is fail: {counts}; fill them at the "
            "source, or choose fill_median or drop_rows in ml_contract.yaml"
        )
    if policy == "drop_rows":
        return frame.dropna(subset=judged), {}
    if target is not None:
        frame = frame[frame[target].notna()].copy()
    filled: dict[str, int] = {}
    for column, count in missing.items():
        if column == target:
            continue
        frame[column] = _filled(frame[column])
        filled[str(column)] = int(count)
    return frame, filled


def _filled(values: pd.Series) -> pd.Series:
    present = values.dropna()
    if present.empty:
        raise CurationError(
            f"{_name(values.name)} has no values at all; drop it or fill it at the source"
        )
    if pd.api.types.is_bool_dtype(present) or not pd.api.types.is_numeric_dtype(present):
        return values.fillna(present.mode().iloc[0])
    median = float(present.median())
    if (present % 1 == 0).all():
        # Whole numbers stay whole: an age filled with 44.5 would not be an age.
        return values.fillna(round(median)).astype("int64")
    return values.fillna(median)


# --- Labels --------------------------------------------------------------------------------


def _checked_labels(labels: pd.Series, contract: Contract) -> pd.Series:
    task = contract.task
    column = _name(task.target)
    if task.type == "multiclass_classification":
        classes = task.classes or []
        text = labels.astype(str)
        _refuse_values(
            labels,
            ~text.isin(classes),
            f"{column} holds labels that are not in task.classes {classes}",
            "fix the labels, or add the class with `copier update --data class_labels=...`",
        )
        return text
    numbers = pd.to_numeric(labels, errors="coerce")
    if task.type == "regression":
        _refuse_values(
            labels,
            numbers.isna() | numbers.abs().eq(np.inf),
            f"{column} must hold finite numbers",
            "fix or remove those rows at the source",
        )
        return numbers.astype(float)
    if task.type == "binary_classification":
        meaning = f"1 = {task.positive_class!r}, 0 = {task.negative_class!r}"
    else:
        meaning = "1 = anomaly, 0 = normal"
    _refuse_values(
        labels,
        ~numbers.isin([0, 1]),
        f"{column} must hold 0 or 1 ({meaning})",
        "recode the labels at the source",
    )
    return numbers.astype("int64")


def _refuse_values(labels: pd.Series, wrong: pd.Series, problem: str, next_step: str) -> None:
    if not wrong.any():
        return
    bad = labels[wrong]
    shown = []
    for value in pd.unique(bad)[:SHOWN_VALUES]:
        rows = [str(int(row) + 1) for row in bad.index[bad == value][:SHOWN_ROWS]]
        shown.append(f"{_short(value)} ({'row' if len(rows) == 1 else 'rows'} {', '.join(rows)})")
    more = bad.nunique() - len(shown)
    found = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    raise CurationError(f"{problem}; found {found}; {next_step}")


def _check_leakage(frame: pd.DataFrame, target: str) -> None:
    if len(frame) < LEAKAGE_MIN_ROWS:
        return
    labels = frame[target]
    labels_repeat = 1 < labels.nunique() < len(labels)
    leaks = []
    for column in frame.columns:
        if column == target:
            continue
        reason = _leak_reason(frame[column], labels, labels_repeat)
        if reason:
            leaks.append(f"{_name(column)} {reason} the target {target!r}")
    if leaks:
        raise CurationError(
            f"{'; '.join(leaks)}: a feature known only with the outcome gives the answer away; "
            "remove it from the data"
        )


def _leak_reason(feature: pd.Series, labels: pd.Series, labels_repeat: bool) -> str | None:
    if feature.equals(labels):
        return "is a copy of"
    if labels_repeat:
        pairs = pd.DataFrame({"feature": feature, "label": labels}).drop_duplicates()
        if pairs["feature"].is_unique and pairs["label"].is_unique:
            return "maps one-to-one to"
    numeric = pd.api.types.is_numeric_dtype
    if numeric(feature) and numeric(labels):
        correlation = _correlation(feature.to_numpy(dtype=float), labels.to_numpy(dtype=float))
        if abs(correlation) >= LEAKAGE_MIN_CORRELATION:
            return f"correlates at {correlation:.3f} with"
    return None


def _correlation(left: np.ndarray, right: np.ndarray) -> float:
    # Infinite or huge values make the sums overflow; that correlation is no evidence of a leak.
    with np.errstate(all="ignore"):
        left, right = left - left.mean(), right - right.mean()
        scale = float(np.sqrt((left @ left) * (right @ right)))
        correlation = float(left @ right) / scale if scale > 0 else 0.0
    return correlation if np.isfinite(correlation) else 0.0


# --- Personal data -------------------------------------------------------------------------


@dataclass(frozen=True)
class PiiRule:
    """A kind of personal data: a cheap prefilter, the full pattern and a checksum if any."""

    name: str
    description: str
    pattern: re.Pattern[str]
    # A plain string is searched for as it is, which is faster than any pattern.
    prefilter: str | re.Pattern[str] | None = None
    is_valid: Callable[[str], bool] | None = None
    # Phone, IBAN and card numbers all have at least 8 digits; e-mail addresses need none.
    needs_eight_digits: bool = True


@dataclass(frozen=True)
class PiiHit:
    """How many rows of a column one rule matched; the matched values are never kept."""

    column: str
    rule: str
    rows: int

    def describe(self) -> str:
        """The hit in words, e.g. "column 'notes': 12 rows look like e-mail addresses"."""
        rows = _count(self.rows, "row") + (" looks" if self.rows == 1 else " look")
        description = PII_RULES[self.rule].description
        return f"column {self.column!r}: {rows} like {description} (rule {self.rule})"


@dataclass(frozen=True)
class PiiScan:
    """The text columns scanned and what was found in them."""

    checked_columns: tuple[str, ...]
    hits: tuple[PiiHit, ...]


def _phone_is_valid(match: str) -> bool:
    digits = sum(map(str.isdigit, match))
    return 8 <= digits <= 15 and not _DATE.match(match)


_LETTERS_AS_NUMBERS = str.maketrans(
    {letter: str(number) for number, letter in enumerate(string.ascii_uppercase, start=10)}
)


def _iban_is_valid(match: str) -> bool:
    compact = match.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    # ISO 13616: move country and check digits to the end, letters become 10..35, mod 97 is 1.
    rearranged = compact[4:] + compact[:4]
    return int(rearranged.translate(_LETTERS_AS_NUMBERS)) % 97 == 1


def _luhn_is_valid(match: str) -> bool:
    digits = [int(character) for character in match if character.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if position % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


# Most text has fewer than 8 digits, and this one pass spares it the patterns of the rules that
# need them. Non-digits and digits never overlap, so it cannot backtrack badly; no possessive
# quantifier, which the RE2 engine of pyarrow-backed strings would refuse.
_EIGHT_DIGITS = re.compile(r"(?:[^0-9]*[0-9]){8}")
_DATE = re.compile(r"(?:0?[1-9]|[12]\d|3[01])[./-](?:0?[1-9]|1[0-2])[./-](?:19|20)\d\d", re.ASCII)
# A phone number neither starts nor ends inside a longer run of digit groups, so that dates,
# IBANs and card numbers are not read as phone numbers too.
_NOT_INSIDE_NUMBER = r"(?<![\w.+\-/])(?<!\d[ .\-/])"
_NOT_FOLLOWED_BY_DIGITS = r"(?![\w/:]|[ .\-/]?\d|\.\w)"
PII_RULES = {
    rule.name: rule
    for rule in (
        PiiRule(
            name="email",
            description="e-mail addresses",
            prefilter="@",
            pattern=re.compile(
                r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
            ),
            needs_eight_digits=False,
        ),
        PiiRule(
            name="phone",
            description="phone numbers",
            pattern=re.compile(
                _NOT_INSIDE_NUMBER + r"(?:"
                r"\+[1-9]\d{0,2}(?:[ .\-]?\(?\d{1,4}\)?){2,6}"  # +44 20 7946 0958
                r"|\(0?\d{2,4}\)[ .\-]?\d{2,4}(?:[ .\-]?\d{2,4}){1,3}"  # (030) 123 4567
                r"|0\d{1,4}[ .\-/]\d{2,4}(?:[ .\-]?\d{2,4}){0,3}"  # 06-12345678
                r"|\d{3}[ .\-]\d{3}[ .\-]\d{4}"  # 555-123-4567
                r")" + _NOT_FOLLOWED_BY_DIGITS,
                re.ASCII,
            ),
            is_valid=_phone_is_valid,
        ),
        PiiRule(
            name="iban",
            description="IBANs with a valid checksum",
            prefilter=re.compile(r"[A-Z]{2}[0-9]{2}"),
            pattern=re.compile(
                r"(?<!\w)[A-Z]{2}\d\d(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?!\w)", re.ASCII
            ),
            is_valid=_iban_is_valid,
        ),
        PiiRule(
            name="card",
            description="payment card numbers with a valid Luhn check digit",
            prefilter=re.compile(r"[0-9]{4}[ \-]?[0-9]{4}"),
            pattern=re.compile(
                r"(?<![\w\-])(?<!\d[ \-])(?:"
                r"[2-6]\d{12,18}"  # 4111111111111111
                r"|[2-6]\d{3}(?: \d{4}){3}(?: \d{3})?"  # 4111 1111 1111 1111
                r"|[2-6]\d{3}(?:-\d{4}){3}(?:-\d{3})?"  # 4111-1111-1111-1111
                r"|3\d{3} \d{6} \d{4,5}"  # 3782 822463 10005
                r"|3\d{3}-\d{6}-\d{4,5}"  # 3782-822463-10005
                r")(?!\w|[ \-]\d)",
                re.ASCII,
            ),
            is_valid=_luhn_is_valid,
        ),
    )
}


def text_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding text: object, string, or categories of text."""
    columns = []
    for column, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            dtype = dtype.categories.dtype
        if pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype):
            columns.append(str(column))
    return columns


def scan_pii(frame: pd.DataFrame, allowed_columns: Collection[str] = ()) -> PiiScan:
    """Count, per text column and rule, the rows that look like personal data.

    Each distinct value is looked at once. Each rule first narrows the values with a fast
    search over all of them, then checks the few that are left one by one, checksums included.

    Args:
        frame: The table to scan.
        allowed_columns: Columns declared to hold personal data; they are not scanned.

    Returns:
        The scanned columns and the hits, each a column, a rule and a row count.
    """
    checked = tuple(column for column in text_columns(frame) if column not in allowed_columns)
    hits = []
    for column in checked:
        codes, distinct = pd.factorize(frame[column])
        # The number of rows holding each distinct text; missing values have the code -1.
        counts = np.bincount(codes[codes >= 0], minlength=len(distinct))
        rows = pd.Series(counts, index=pd.Index(distinct).astype(str))
        with_digits = rows[rows.index.str.match(_EIGHT_DIGITS)]
        for rule in PII_RULES.values():
            matched = _rows_matching(with_digits if rule.needs_eight_digits else rows, rule)
            if matched:
                hits.append(PiiHit(column=column, rule=rule.name, rows=matched))
    return PiiScan(checked_columns=checked, hits=tuple(hits))


def _rows_matching(rows: pd.Series, rule: PiiRule) -> int:
    if rule.prefilter is not None:
        literal = isinstance(rule.prefilter, str)
        rows = rows[rows.index.str.contains(rule.prefilter, regex=not literal)]
    rows = rows[rows.index.str.contains(rule.pattern, regex=True)]
    is_valid = rule.is_valid
    if is_valid is None:
        return int(rows.sum())
    found = [
        any(is_valid(match.group()) for match in rule.pattern.finditer(text))
        for text in rows.index.tolist()
    ]
    return int(rows[found].sum())


def pii_message(hits: Collection[PiiHit]) -> str:
    """One line naming each column, rule and row count, never the personal data itself."""
    found = "; ".join(hit.describe() for hit in hits)
    return (
        f"personal data found: {found}; remove or mask it at the source, or declare the "
        "column in data.pii_allowed_columns if it is meant to be there"
    )


# --- Wording -------------------------------------------------------------------------------


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _name(column: object) -> str:
    return f"column {str(column)!r}"


def _short(value: object) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 40 else text[:37] + "..."
