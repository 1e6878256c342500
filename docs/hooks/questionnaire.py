"""MkDocs hook: the questionnaire reference page, written from copier.yml at every build.

The page cannot drift from the questionnaire because it is never written by hand: each
question's type, help, default, choices and condition are read from copier.yml, and the
banner comments (``# --- Plan ---``) give the sections, in the order Copier asks them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PAGE = "reference/questionnaire.md"
BANNER = re.compile(r"^# --- (?P<section>[^-].*?) -+\s*$")
QUESTION = re.compile(r"^(?P<name>[a-z][a-z0-9_]*):")
JINJA = re.compile(r"\{\{|\{%")
SHORT_EXPRESSION = 100


def _copier_yml(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent / "copier.yml"


def sections(text: str) -> list[tuple[str, list[str]]]:
    """Question names per banner section, in file order."""
    found: list[tuple[str, list[str]]] = [("Before the first section", [])]
    for line in text.splitlines():
        banner = BANNER.match(line)
        if banner:
            found.append((banner["section"].strip(), []))
            continue
        question = QUESTION.match(line)
        if question:
            found[-1][1].append(question["name"])
    return [(title, names) for title, names in found if names]


def _inline(text: str) -> str:
    """One line of text that is safe inside Markdown prose."""
    flat = " ".join(str(text).split())
    return flat.replace("<", "&lt;").replace("|", "\\|")


def _code(text: str) -> str:
    flat = " ".join(str(text).split())
    fence = "``" if "`" in flat else "`"
    return f"{fence} {flat} {fence}" if fence == "``" else f"`{flat}`"


def _condition(spec: dict[str, Any]) -> str:
    when = spec.get("when", True)
    if when is True:
        return "always"
    text = str(when).strip()
    inner = text.removeprefix("{{").removesuffix("}}").strip()
    return f"when {_code(inner)}"


def _default(spec: dict[str, Any]) -> str:
    if "default" not in spec:
        return "none"
    value = spec["default"]
    if isinstance(value, str) and JINJA.search(value):
        flat = " ".join(value.split())
        if len(flat) <= SHORT_EXPRESSION:
            return f"computed from earlier answers: {_code(flat)}"
        return "computed from earlier answers (a Jinja expression in copier.yml)"
    if isinstance(value, list) and len(value) > 8:
        return f"a list of {len(value)} names (see copier.yml)"
    return _code(value if isinstance(value, str) else yaml.safe_dump(value).strip())


def _choices(spec: dict[str, Any]) -> list[str]:
    choices = spec.get("choices")
    if isinstance(choices, dict):
        return [f"{_code(value)}: {_inline(label)}" for label, value in choices.items()]
    if isinstance(choices, list):
        return [_code(value) for value in choices]
    return []


def _help(spec: dict[str, Any]) -> str:
    text = _inline(spec.get("help", ""))
    # Help texts name earlier answers with Jinja; show those parts as code, not markup.
    return re.sub(r"\{\{.*?\}\}|\{%.*?%\}", lambda part: _code(part.group(0)), text)


def render(text: str) -> str:
    """The reference page's Markdown for the text of copier.yml."""
    questions = yaml.safe_load(text)
    lines = [
        "# Questionnaire reference",
        "",
        "Generated from `copier.yml` at every build of this site, in the order Copier asks;",
        "[the questionnaire](../questions.md) explains where each answer lands and what is",
        "derived from it. Values hidden from the prompt (`when: false`) are computed from",
        "earlier answers and are listed last in their section.",
        "",
    ]
    for title, names in sections(text):
        asked = [name for name in names if questions.get(name, {}).get("when", True) is not False]
        hidden = [name for name in names if name not in asked]
        lines += [f"## {title}", ""]
        for name in asked:
            spec = questions[name]
            lines += [f"### `{name}`", "", _help(spec), ""]
            lines.append(f"- type: `{spec.get('type', 'str')}`; asked: {_condition(spec)}")
            lines.append(f"- default: {_default(spec)}")
            if "validator" in spec:
                lines.append("- checked by a validator before any file is written")
            choices = _choices(spec)
            if choices:
                lines.append("- choices:")
                lines += [f"    - {choice}" for choice in choices]
            lines.append("")
        if hidden:
            lines += ["Computed, not asked:", ""]
            lines += [f"- `{name}`: {_help(questions[name])}" for name in hidden]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated reference page to the site's files."""
    content = render(_copier_yml(config).read_text(encoding="utf-8"))
    files.append(File.generated(config, PAGE, content=content))
    return files


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Rebuild when copier.yml changes while `mkdocs serve` runs."""
    config.watch.append(str(_copier_yml(config)))
    return config
