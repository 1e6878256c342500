"""MkDocs hook: a bar chart under every table of figures in the benchmarks page.

The Markdown tables stay the source: at build time each table with right-aligned (numeric)
columns is read, and an SVG drawn with matplotlib is placed after it, one panel per numeric
column, since the columns carry different units. Nothing is stored; the plots follow the
tables whenever someone edits them.
"""

from __future__ import annotations

import base64
import io
import re

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

PAGES = {"benchmarks.md"}
NUMBER = re.compile(r"^\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)\s*[A-Za-z%\u00d7]*\s*$")
LABEL_LIMIT = 48
MAX_PANELS = 4


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _number(cell: str) -> float | None:
    match = NUMBER.match(cell)
    return float(match.group(1).replace(",", "")) if match else None


def _label(cell: str) -> str:
    text = re.sub(r"[`*]", "", cell)
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"


def series(table: list[str]) -> tuple[list[str], list[tuple[str, list[float | None]]]]:
    """Row labels and the numeric columns (right-aligned, with at least one number)."""
    header, rule, *rows = (_cells(line) for line in table)
    numeric = [index for index, cell in enumerate(rule) if cell.endswith(":") and index > 0]
    labels = [_label(row[0]) for row in rows]
    columns = []
    for index in numeric[:MAX_PANELS]:
        values = [_number(row[index]) if index < len(row) else None for row in rows]
        if any(value is not None for value in values):
            columns.append((header[index], values))
    return labels, columns


def _figure(value: float) -> str:
    """A number as the tables write it: thousands separated, no exponent."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def svg(labels: list[str], columns: list[tuple[str, list[float | None]]]) -> str:
    """One horizontal bar panel per column, as SVG text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "copier-mlops", "font.size": 10})
    height = 1.0 + 0.36 * len(labels)
    figure, axes = plt.subplots(
        1, len(columns), figsize=(2.4 * len(columns) + 3.2, height), sharey=True, squeeze=False
    )
    positions = range(len(labels))
    for axis, (title, values) in zip(axes[0], columns, strict=True):
        axis.barh(positions, [value or 0 for value in values], color="#3f51b5")
        for position, value in zip(positions, values, strict=True):
            text = " n/a" if value is None else f" {_figure(value)}"
            axis.text(value or 0, position, text, va="center", fontsize=8, color="#333333")
        axis.set_title(title)
        axis.margins(x=0.25)
        axis.xaxis.set_major_locator(MaxNLocator(4))
        axis.xaxis.set_major_formatter(FuncFormatter(lambda tick, _: _figure(tick)))
        axis.spines[["top", "right"]].set_visible(False)
    # The panels share the y axis: inverting it once puts the first row on top in all of them.
    axes[0][0].invert_yaxis()
    axes[0][0].set_yticks(list(positions), labels)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    return buffer.getvalue()


def with_plots(markdown: str) -> str:
    """The page's Markdown with an image after each table that has figures."""
    out: list[str] = []
    table: list[str] = []

    def flush() -> None:
        out.extend(table)
        if len(table) > 2 and re.fullmatch(r"\|?[\s:|-]+\|?", table[1].strip()):
            labels, columns = series(table)
            if columns and labels:
                encoded = base64.b64encode(svg(labels, columns).encode("utf-8")).decode("ascii")
                names = ", ".join(title for title, _ in columns)
                out.extend(
                    [
                        "",
                        f'<img class="bench-plot" alt="bar chart of {names}" '
                        f'src="data:image/svg+xml;base64,{encoded}">',
                        "",
                    ]
                )
        table.clear()

    for line in markdown.splitlines():
        if line.lstrip().startswith("|"):
            table.append(line)
            continue
        if table:
            flush()
        out.append(line)
    if table:
        flush()
    return "\n".join(out) + "\n"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Draw the plots for the pages that hold benchmark tables."""
    if page.file.src_uri in PAGES:
        return with_plots(markdown)
    return markdown
