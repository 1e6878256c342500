"""MkDocs hook: the project's site, assembled at build time from the files the project keeps.

Nothing is copied into docs/. The README becomes the home page, ml_contract.yaml a page
with the gates it sets, and the reports the pipeline writes (model card, evaluation, data,
drift) become pages under their own paths in reports/, with their figures beside them. A
report that does not exist yet is a page naming the command that writes it, so the strict
build passes on a fresh project as well as after the pipeline has run.

Raw HTML in any page is shown as text and links may only use http, https or mailto: the
reports quote the data and the answers given when the project was made, and neither may put
a script into the site.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

import yaml
from markdown import Markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor
from markupsafe import Markup
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.project")

CONTRACT = "ml_contract.yaml"
# Pages made from files outside docs/: their place in the site and in the project.
MADE_FROM = {"index.md": "README.md", "contract.md": CONTRACT}
# The reports, each under its path in the project: what it is and the command that writes it.
REPORTS = {
    "reports/model_card.md": ("model card", "uv run nox -s pipeline"),
    "reports/evaluation.md": ("evaluation report", "uv run nox -s pipeline"),
    "reports/explore/report.md": ("data report", "uv run nox -s pipeline"),
    "reports/monitor/report.md": (
        "drift report",
        "uv run {slug} monitor  # once the service has logged predictions",
    ),
}
FIGURES = (".png", ".svg")
LINK_SCHEMES = {"http", "https", "mailto"}
# A link or image, or a code span (left alone): whichever starts first on the line.
LINK = re.compile(
    r"(?P<image>!?)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)(?P<title>[^)\n]*)\)"
    r"|(?P<code>`+)[^`\n]*(?P=code)"
)
FENCE = re.compile(r"^\s*(```|~~~)")


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Show raw HTML as text, allow only web and mail links, escape the site's name."""
    config.markdown_extensions.append(_SafeMarkdown())
    # The theme prints the name into every page as it is.
    config.site_name = Markup.escape(config.site_name)
    return config


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    """Add the README, the contract, the reports and their figures as pages and files."""
    root = Path(config.config_file_path).parent
    contract = _load_contract(root / CONTRACT)
    pages = {
        "index.md": (root / "README.md").read_text(encoding="utf-8"),
        "contract.md": contract_page(contract, (root / CONTRACT).read_text(encoding="utf-8")),
    }
    slug = str(contract.get("project", {}).get("slug", "<project>"))
    for page, (what, command) in REPORTS.items():
        report = root / page
        if report.is_file():
            pages[page] = report.read_text(encoding="utf-8")
        else:
            pages[page] = missing_report_page(what, page, command.format(slug=slug))
    for uri, content in pages.items():
        _add(files, File.generated(config, uri, content=content))
    reports = root / "reports"
    for figure in sorted(reports.rglob("*")) if reports.is_dir() else []:
        if figure.suffix.lower() in FIGURES and figure.is_file():
            uri = figure.relative_to(root).as_posix()
            _add(files, File.generated(config, uri, abs_src_path=str(figure)))
    return files


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Point links between the project's files at their pages; unlink files with no page."""
    uri = page.file.src_uri
    return relink(markdown, MADE_FROM.get(uri, uri if uri in REPORTS else f"docs/{uri}"), files)


def _add(files: Files, file: File) -> None:
    if files.get_file_from_path(file.src_uri) is not None:
        log.warning(f"docs/{file.src_uri} hides the page the build makes there: rename it")
        return
    files.append(file)


def _load_contract(path: Path) -> dict[str, Any]:
    try:
        contract = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise PluginError(f"cannot read {path.name}: {error}") from error
    if not isinstance(contract, dict):
        raise PluginError(f"{path.name} is not a mapping of sections")
    return contract


def missing_report_page(what: str, path: str, command: str) -> str:
    """The page standing in for a report that has not been written yet."""
    return (
        f"# No {what} yet\n\n"
        f"The {what} appears here once `{path}` exists. This command writes it:\n\n"
        f"```bash\n{command}\n```\n\n"
        "Then build the site again: `uv run nox -s docs`.\n"
    )


def contract_page(contract: dict[str, Any], text: str) -> str:
    """The contract as a table of the gates it sets, followed by the file itself."""
    fence = "`" * max(3, *(len(run) + 1 for run in re.findall(r"`+", text)))
    rows = [f"| {_cell(gate)} | {_cell(value)} | {acts} |" for gate, value, acts in gates(contract)]
    return "\n".join(
        [
            "# The contract",
            "",
            f"`{CONTRACT}` holds the planning answers, and every stage reads its gates from it.",
            "Change an answer with `copier update --data key=value`, so that everything derived",
            "from it follows.",
            "",
            "## Gates",
            "",
            "| gate | value | where it acts |",
            "|---|---|---|",
            *rows,
            "",
            f"## {CONTRACT}",
            "",
            f"{fence}yaml",
            text.rstrip("\n"),
            fence,
            "",
        ]
    )


def gates(contract: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Each gate the contract sets: its name, its value and where it acts."""
    section = {name: contract.get(name) or {} for name in contract}
    metrics, costs = section.get("metrics", {}), section.get("costs", {})
    decision, fairness = section.get("decision", {}), section.get("fairness", {})
    data, serving = section.get("data", {}), section.get("serving", {})
    delivery = section.get("delivery", {})
    rows = []
    if "gate" in metrics:
        sign = "≥" if metrics.get("greater_is_better", True) else "≤"
        rows.append(
            (
                "metric gate",
                f"{metrics.get('primary')} {sign} {metrics['gate']}",
                "the pipeline promotes only a candidate that passes it and beats the champion",
            )
        )
    if costs:
        rows.append(
            (
                "cost of errors",
                ", ".join(f"{name.replace('_', ' ')} {cost}" for name, cost in costs.items()),
                "evaluation: a candidate may not raise the expected cost per record",
            )
        )
    if decision.get("threshold") is not None:
        rows.append(
            (
                "decision threshold",
                f"act on scores ≥ {decision['threshold']}",
                "the baseline; a trained model acts at its threshold of least expected cost",
            )
        )
    if decision.get("quantile") is not None:
        rows.append(
            (
                "predicted quantile",
                str(decision["quantile"]),
                "every model predicts it; the expected cost is the pinball loss there",
            )
        )
    if "tolerance" in fairness:
        groups = ", ".join(str(feature) for feature in fairness.get("sensitive_features") or [])
        rows.append(
            (
                "fairness",
                f"{fairness.get('metric')} ≤ {fairness['tolerance']} across {groups or '-'}",
                "the bias gate: `nox -s bias` and the pipeline's promotion",
            )
        )
    if "max_missing_rate" in data:
        rows.append(
            (
                "missing values",
                f"≤ {_percent(data['max_missing_rate'])} per column",
                "curate and validate",
            )
        )
    if "drift_limit" in data:
        rows.append(
            (
                "drift",
                f"PSI ≤ {data['drift_limit']} per feature and prediction",
                "validate and `monitor`: the trigger to retrain",
            )
        )
    if "latency_p95_ms" in serving:
        checks = [
            "`nox -s load`" if serving.get("mode") != "batch" else "",
            "the canary analysis" if delivery.get("deployment") == "kubernetes" else "",
            "the alerts in deploy/monitoring/",
        ]
        rows.append(
            (
                "serving",
                f"p95 ≤ {serving['latency_p95_ms']} ms at {serving.get('throughput_rps')} "
                f"requests/s, failures ≤ {_percent(serving.get('max_failure_ratio', 0))}",
                ", ".join(filter(None, checks)),
            )
        )
    if delivery.get("deployment") == "kubernetes" and delivery.get("canary_steps"):
        steps = " → ".join(f"{step}%" for step in delivery["canary_steps"])
        rows.append(("canary steps", steps, "the Argo Rollout in deploy/k8s/"))
    return rows


def _percent(share: float) -> str:
    return format(share * 100, "g") + "%"


def _cell(value: str) -> str:
    """Text for a table cell: Markdown's own characters lose their meaning."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>])", r"\\\1", value)


def relink(markdown: str, source: str, files: Files) -> str:
    """Links in `markdown` (the text of the project file `source`) pointed at the site's pages.

    A link to a project file that has a page goes to the page; a link to any other file
    becomes its text, since the site does not hold it. Code is left as it is.
    """
    site_uri = _site_uri(source)
    lines, in_fence = [], False
    for line in markdown.split("\n"):
        if FENCE.match(line):
            in_fence = not in_fence
        if not in_fence:
            line = LINK.sub(lambda link: _relinked(link, source, site_uri, files), line)
        lines.append(line)
    return "\n".join(lines)


def _relinked(link: re.Match[str], source: str, site_uri: str, files: Files) -> str:
    target = link["target"]
    if target is None:
        return link[0]
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith(("#", "/")):
        return link[0]
    path = posixpath.normpath(posixpath.join(posixpath.dirname(source), parts.path))
    page = _site_uri(path)
    if files.get_file_from_path(page) is None:
        return link["text"]
    relative = posixpath.relpath(page, posixpath.dirname(site_uri) or ".")
    anchor = f"#{parts.fragment}" if parts.fragment else ""
    return f"{link['image']}[{link['text']}]({relative}{anchor}{link['title']})"


def _site_uri(path: str) -> str:
    """Where the project file at `path` is in the site (docs/ is the site's root)."""
    made = {source: uri for uri, source in MADE_FROM.items()}
    if path in made:
        return made[path]
    return path.removeprefix("docs/") if path.startswith("docs/") else path


class _LinkSchemes(Treeprocessor):
    """Turns links and images with a scheme other than http, https or mailto into text."""

    def run(self, root: Element) -> None:
        for element in root.iter():
            key = {"a": "href", "img": "src"}.get(element.tag)
            scheme = urlsplit(element.get(key, "")).scheme.lower() if key else ""
            if key and scheme and scheme not in LINK_SCHEMES:
                text = element.get("alt", "") if element.tag == "img" else ""
                element.attrib.clear()
                element.tag = "span"
                element.text = (element.text or "") + text


class _SafeMarkdown(Extension):
    """Raw HTML shown as text; links limited to safe schemes."""

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 - Python-Markdown's name
        """Drop the raw HTML parsers and check every link before MkDocs resolves it."""
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_LinkSchemes(md), "project_link_schemes", 2)
