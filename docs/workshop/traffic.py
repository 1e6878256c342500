"""Send rows of a CSV file to a running service's POST /predict, optionally shifted.

The workshop's module 8 uses it to play a week of users whose inputs have moved:

    python traffic.py URL data/raw/demo.csv --drop churned --shift monthly_charges=40

Standard library only, so it runs with any Python 3.11 and needs no install.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import urllib.request
from pathlib import Path


def typed(text: str) -> int | float | str | None:
    """A CSV cell as the JSON value a record carries: a number when it reads as one."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def shifted(record: dict[str, object], shifts: dict[str, float]) -> dict[str, object]:
    """The record with each named numeric column moved by its amount."""
    moved = dict(record)
    for column, amount in shifts.items():
        value = moved.get(column)
        if isinstance(value, int | float):
            total = value + amount
            moved[column] = int(total) if isinstance(value, int) and amount.is_integer() else total
    return moved


def post(url: str, body: dict[str, object]) -> dict[str, object]:
    """POST one JSON body and return the JSON answer."""
    request = urllib.request.Request(  # noqa: S310 — the URL is the participant's own service
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        return json.load(answer)


def main(argv: list[str] | None = None) -> int:
    """Read the rows, shift them, send them in batches, say how many were answered."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", help="the service's base URL, e.g. http://127.0.0.1:8765")
    parser.add_argument("csv", type=Path, help="rows to send, with a header line")
    parser.add_argument("--drop", action="append", default=[], help="a column not to send")
    parser.add_argument("--rows", type=int, default=600, help="how many rows to send")
    parser.add_argument("--batch", type=int, default=100, help="rows per request")
    parser.add_argument(
        "--shift", action="append", default=[], help="COLUMN=AMOUNT added to a numeric column"
    )
    options = parser.parse_args(argv)
    shifts = {}
    for item in options.shift:
        column, _, amount = item.partition("=")
        shifts[column] = float(amount)

    with options.csv.open(newline="", encoding="utf-8") as stream:
        rows = [
            {key: typed(value) for key, value in row.items() if key not in options.drop}
            for _, row in zip(range(options.rows), csv.DictReader(stream), strict=False)
        ]
    answered = 0
    for start in range(0, len(rows), options.batch):
        records = [shifted(row, shifts) for row in rows[start : start + options.batch]]
        answer = post(f"{options.service.rstrip('/')}/predict", {"records": records})
        answered += len(answer.get("predictions", []))
    moved = ", ".join(f"{column} {amount:+g}" for column, amount in shifts.items()) or "none"
    print(f"sent {len(rows)} records, {answered} answered; shift: {moved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
