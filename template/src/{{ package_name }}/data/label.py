"""Label: ask a person for the target of records that have none, and keep every answer at once.

A record is identified by its content (`record_key`: a hash of every cell but the target), so
the labels file stays valid when rows are reordered, and identical records share one label.
The labels file is a CSV with the columns `record_key,row,label,labelled_at`, where `row` counts
data rows from 1 and an empty label marks a record that was skipped. Each answer is appended and
synced to disk before the next question, so an interrupted session loses nothing it confirmed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Literal

import questionary
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config import Contract, Settings
from ..errors import ProjectError
from .collect import raw_records_path

LABELS_FILE = Path("interim") / "labels.csv"
LABELS_HEADER = ("record_key", "row", "label", "labelled_at")
HEADER_LINE = ",".join(LABELS_HEADER)
# Cells that mean "no target yet", compared after stripping and lower-casing.
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none"})
VALUE_WIDTH = 40


class LabelError(ProjectError):
    """Records or labels cannot be read, or an answer is not a label for this task."""


class Action(Enum):
    """Answers that are not a label."""

    SKIP = "skip"
    QUIT = "quit"


Answer = str | Action
Stop = Literal["done", "limit", "quit", "interrupt"]


@dataclass(frozen=True)
class Row:
    """One record waiting for its label."""

    number: int
    key: str
    values: dict[str, str]


Asker = Callable[[Row, int, int], Answer]


@dataclass
class Session:
    """What one labelling session did and what is left."""

    source: Path
    asked: int = 0
    labelled: int = 0
    skipped: int = 0
    remaining: int = 0
    stop: Stop = "done"

    def summary(self) -> str:
        """One line for the person at the terminal: what was done and how to go on."""
        done = f"{self.labelled:,} labelled this session, {self.remaining:,} remain"
        if self.stop in ("interrupt", "quit"):
            verb = "interrupted" if self.stop == "interrupt" else "stopped"
            return f"{verb}: {done}; run `label` again to resume"
        if self.stop == "limit":
            return f"limit reached: {done}"
        if self.remaining:
            return f"done: {done}, all skipped; ask again with --revisit-skipped"
        if self.asked == 0:
            return f"nothing to label: every record of {self.source} has a label"
        return f"done: {self.labelled:,} labelled this session; every record has a label"


def default_source(settings: Settings) -> Path:
    """The raw records collect wrote from the contract's source (no target when unlabelled)."""
    return raw_records_path(settings.load_contract(), settings.raw_dir)


def default_labels_file(settings: Settings) -> Path:
    """Where hand labels are kept: data/interim/labels.csv."""
    return settings.path(settings.data_dir) / LABELS_FILE


def record_key(values: Mapping[str, str]) -> str:
    """A stable key for a record: the same cells give the same key, whatever the column order."""
    canonical = json.dumps(dict(values), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def read_unlabelled(source: Path, target: str) -> list[Row]:
    """The rows of a CSV file that have no target: all of them when there is no target column.

    Cells are kept as the text in the file, so keys and display do not depend on type guessing.

    Raises:
        LabelError: The file is missing, is not CSV, or a row has the wrong number of cells.
    """
    rows = []
    try:
        with source.open(newline="", encoding="utf-8") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            if header is None:
                raise LabelError(f"{source}: empty file, expected a header row")
            if len(set(header)) != len(header):
                raise LabelError(f"{source}: line 1: column names repeat")
            number = 0
            for cells in reader:
                if not cells:
                    continue
                number += 1
                if len(cells) != len(header):
                    raise LabelError(
                        f"{source}: line {reader.line_num}: {len(cells)} cells, "
                        f"the header has {len(header)}"
                    )
                values = dict(zip(header, cells, strict=True))
                if values.pop(target, "").strip().lower() in MISSING_MARKERS:
                    rows.append(Row(number, record_key(values), values))
    except FileNotFoundError:
        raise LabelError(f"{source}: not found; run `collect` first or pass --source") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LabelError(f"{source}: cannot read it as CSV ({error})") from None
    return rows


def read_labels(path: Path) -> dict[str, str]:
    """Every record's latest answer, by record key; an empty label means it was skipped.

    A last line cut short by a crash was never confirmed to the person, so it is ignored.

    Raises:
        LabelError: The file cannot be read or a line is not a label entry.
    """
    try:
        text = _confirmed(path.read_bytes()).decode("utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise LabelError(f"{path}: cannot read the labels ({error})") from None
    lines = text.splitlines()
    if not lines:
        return {}
    if lines[0] != HEADER_LINE:
        raise LabelError(f"{path}: line 1: expected the header {HEADER_LINE}")
    labels = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = _entry(line)
        if fields is None:
            raise LabelError(
                f"{path}: line {number}: expected {HEADER_LINE} "
                "(row a number, labelled_at an ISO time with its UTC offset)"
            )
        labels[fields[0]] = fields[2]
    return labels


def _entry(line: str) -> list[str] | None:
    fields = next(csv.reader([line]), [])
    if len(fields) != len(LABELS_HEADER) or not fields[1].isdigit():
        return None
    try:
        labelled_at = datetime.fromisoformat(fields[3])
    except ValueError:
        return None
    return fields if labelled_at.tzinfo is not None else None


def _confirmed(content: bytes) -> bytes:
    """The labels file's content without a last line that a crash cut short."""
    if not content or content.endswith(b"\n"):
        return content
    start = content.rfind(b"\n") + 1
    last = content[start:].decode("utf-8", errors="replace")
    complete = last == HEADER_LINE if start == 0 else _entry(last) is not None
    return content if complete else content[:start]


def rows_to_ask(rows: Sequence[Row], labels: Mapping[str, str], revisit_skipped: bool) -> list[Row]:
    """The rows still without a label, each record once; skipped ones only when revisiting."""
    seen: set[str] = set()
    todo = []
    for row in rows:
        answer = labels.get(row.key)
        waiting = answer is None or (answer == "" and revisit_skipped)
        if waiting and row.key not in seen:
            seen.add(row.key)
            todo.append(row)
    return todo


def label_options(contract: Contract) -> list[tuple[str, str]]:
    """The labels a person picks from, as (shown, stored) pairs; none for regression."""
    task = contract.task
    if task.type == "binary_classification":
        return [(task.positive_class or "positive", "1"), (task.negative_class or "negative", "0")]
    if task.type == "anomaly_detection":
        return [("anomaly", "1"), ("normal", "0")]
    if task.type == "multiclass_classification":
        return [(name, name) for name in task.classes or []]
    return []


def parse_label(text: str, contract: Contract) -> str:
    """The stored label for what a person typed: a finite number, or a class shown or stored.

    Raises:
        LabelError: The text is not a label for this task.
    """
    answer = text.strip()
    options = label_options(contract)
    if not options:
        try:
            value = float(answer)
        except ValueError:
            raise LabelError(f"{answer!r} is not a number") from None
        if not math.isfinite(value):
            raise LabelError(f"{answer!r} is not a finite number")
        return repr(value)
    for shown, stored in options:
        if answer in (shown, stored):
            return stored
    names = ", ".join(shown for shown, _ in options)
    raise LabelError(f"{answer!r} is not one of {names}")


def parse_answer(text: str, contract: Contract) -> Answer:
    """A label, or skip (`s`, `skip`) or quit (`q`, `quit`) when the text is no label."""
    try:
        return parse_label(text, contract)
    except LabelError:
        word = text.strip().lower()
        for action in Action:
            if word in (action.value, action.value[0]):
                return action
        raise


def append_label(path: Path, row: Row, label: str, labelled_at: datetime) -> None:
    """Append one answer to the labels file and sync it to disk before returning.

    A last line that a crash cut short is removed first, so the file stays readable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags, 0o644)
    try:
        before = _start_of_next_entry(descriptor)
        buffer = io.StringIO(before)
        buffer.seek(0, io.SEEK_END)
        entry = (row.key, row.number, label, labelled_at.isoformat(timespec="seconds"))
        csv.writer(buffer, lineterminator="\n").writerow(entry)
        content = buffer.getvalue().encode("utf-8")
        while content:
            content = content[os.write(descriptor, content) :]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if before.startswith(HEADER_LINE) and os.name == "posix":
        _sync_directory(path.parent)


def _start_of_next_entry(descriptor: int) -> str:
    """What to write before an entry: the header in a new file, a line break after a bare line.

    A last line that a crash cut short is truncated away.
    """
    size = os.fstat(descriptor).st_size
    if size:
        os.lseek(descriptor, size - 1, os.SEEK_SET)
        if os.read(descriptor, 1) == b"\n":
            return ""
    os.lseek(descriptor, 0, os.SEEK_SET)
    content = b""
    while len(content) < size:
        chunk = os.read(descriptor, size - len(content))
        if not chunk:
            break
        content += chunk
    kept = _confirmed(content)
    if len(kept) < len(content):
        os.ftruncate(descriptor, len(kept))
    if not kept:
        return HEADER_LINE + "\n"
    return "" if kept.endswith(b"\n") else "\n"


def _sync_directory(folder: Path) -> None:
    # A new file's name is only durable once its directory is synced too.
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def label_records(
    source: Path,
    labels_file: Path,
    target: str,
    ask: Asker,
    limit: int | None = None,
    revisit_skipped: bool = False,
) -> Session:
    """Ask for the label of each record of source that has none yet, keeping every answer.

    Args:
        source: CSV file of records; rows with an empty target, or all rows without one.
        labels_file: Labels file to resume from and append to.
        target: Name of the target column.
        ask: Shows a row and returns the answer; called with the row, its position in this
            session from 1, and the number of rows to ask about. Ctrl-C ends the session.
        limit: Ask about at most this many records.
        revisit_skipped: Ask again about records skipped in earlier sessions.

    Returns:
        What the session did and how many records remain without a label.
    """
    rows = read_unlabelled(source, target)
    todo = rows_to_ask(rows, read_labels(labels_file), revisit_skipped)
    session = Session(source)
    try:
        for position, row in enumerate(todo, start=1):
            if limit is not None and session.asked >= limit:
                session.stop = "limit"
                break
            answer = ask(row, position, len(todo))
            if answer is Action.QUIT:
                session.stop = "quit"
                break
            session.asked += 1
            if answer is Action.SKIP:
                append_label(labels_file, row, "", datetime.now(UTC))
                session.skipped += 1
            else:
                append_label(labels_file, row, answer, datetime.now(UTC))
                session.labelled += 1
    except KeyboardInterrupt:
        session.stop = "interrupt"
    labels = read_labels(labels_file)
    session.remaining = len(rows_to_ask(rows, labels, revisit_skipped=True))
    return session


def terminal_asker(contract: Contract, console: Console) -> Asker:
    """Ask in the terminal: show the record's cells, then offer the task's labels, skip and quit.

    Raises:
        LabelError: When called without a terminal to ask in.
    """
    options = label_options(contract)
    target = contract.task.target
    question = f"{target}?"

    def ask(row: Row, position: int, total: int) -> Answer:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise LabelError("label asks a person: run it in a terminal")
        if position > 1:
            console.print()
        elif not options:
            console.print(Text(f"Type each {target} as a number, s to skip, q to quit.", "dim"))
        console.print(
            Text.assemble(
                (f"row {row.number}", "bold"), (f" · {position:,} of {total:,} to label", "dim")
            )
        )
        console.print(_record_view(row.values, console.width))
        try:
            if options:
                return _select(question, options)
            text = questionary.text(
                question, validate=lambda typed: _problem(typed, contract)
            ).unsafe_ask()
        except EOFError:  # Ctrl-D
            return Action.QUIT
        return parse_answer(str(text), contract)

    return ask


def _record_view(values: Mapping[str, str], width: int) -> Table:
    """The record as one header line and one value line, or one line per cell if too wide."""
    names = [_printable(name) for name in values]
    cells = [_printable(value) for value in values.values()]
    shown = [Text(cell, "bold") if cell else Text("(empty)", "dim") for cell in cells]
    needed = sum(max(len(name), len(cell), 7) + 2 for name, cell in zip(names, cells, strict=True))
    if needed <= width:
        table = Table(box=None, pad_edge=False, header_style="dim", padding=(0, 2, 0, 0))
        for name in names:
            table.add_column(name, no_wrap=True)
        table.add_row(*shown)
        return table
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    for name, cell in zip(names, shown, strict=True):
        table.add_row(name, cell)
    return table


def _printable(text: str) -> str:
    # Cells come from files anyone may have written: never send their control codes to the tty.
    shown = "".join(char if char.isprintable() else "\N{REPLACEMENT CHARACTER}" for char in text)
    if len(shown) > VALUE_WIDTH:
        return shown[: VALUE_WIDTH - 1] + "\N{HORIZONTAL ELLIPSIS}"
    return shown


def _select(question: str, options: list[tuple[str, str]]) -> Answer:
    choices = [questionary.Choice(shown, value=stored) for shown, stored in options]
    choices.append(questionary.Choice("skip", value=Action.SKIP, shortcut_key="s"))
    choices.append(questionary.Choice("quit", value=Action.QUIT, shortcut_key="q"))
    shortcuts = len(options) <= 9
    picked = questionary.select(
        question,
        choices=choices,
        use_shortcuts=shortcuts,
        use_jk_keys=False,
        instruction="(arrows or keys, then enter)" if shortcuts else "(arrows, then enter)",
    ).unsafe_ask()
    if isinstance(picked, Action):
        return picked
    return str(picked)


def _problem(typed: str, contract: Contract) -> bool | str:
    try:
        parse_answer(typed, contract)
    except LabelError as error:
        return f"{error}; type a number, s to skip or q to quit"
    return True
