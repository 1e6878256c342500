"""Hostile answers are refused before any file is written, or land in every file exactly."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import Render, render_project

HOSTILE = [
    'He said "stop": now',
    "it's a 'quote'",
    "{{ 7 * 7 }} {% if true %}x{% endif %} {# c #}",
    "${{ github.token }}",
    "line one\nline two",
    "tab\there",
    "carriage\rreturn",
    "nul\x00byte",
    "bell\x07",
    "del\x7f",
    "next\x85line",
    "separator\u2028line",
    "bom\ufeff",
    "back\\slash \\n \\u0041",
    "../../etc/passwd",
    "a/b\\c",
    "🚀 émoji ünïcode 漢字",
    "x" * 300,
    "y" * 301,
    "yes",
    "no",
    "null",
    "~",
    "- x",
    "? key",
    ": colon",
    "# not a comment",
    "&anchor *alias !tag %directive @at `tick`",
    "0x1F",
    "1e3",
    "true",
    '"""triple"""',
    "[1, 2]",
    "{a: b}",
    "",
    "   ",
    "ends with space ",
]

FREE_TEXT = [
    "project_name",
    "project_description",
    "business_goal",
    "business_metric",
    "author_name",
]
IDENTIFIERS = ["project_slug", "package_name", "positive_class", "author_email"]
# Column names are as the data has them: any one line of printable text, quoted wherever written.
COLUMN_NAMES = ["target_name"]


def where_it_lands(project: Path, question: str) -> list[object]:
    """Every place the answer to `question` is written in the project, parsed back."""
    contract = yaml.safe_load((project / "ml_contract.yaml").read_text(encoding="utf-8"))
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    places: dict[str, list[object]] = {
        "project_name": [contract["project"]["name"]],
        "project_slug": [contract["project"]["slug"], pyproject["project"]["name"]],
        "project_description": [pyproject["project"]["description"]],
        "business_goal": [contract["project"]["goal"]],
        "business_metric": [contract["metrics"]["business_metric"]],
        "author_name": [pyproject["project"]["authors"][0]["name"]],
        "author_email": [pyproject["project"]["authors"][0]["email"]],
        "target_name": [contract["task"]["target"]],
        "positive_class": [contract["task"]["positive_class"]],
        "package_name": [next(path.name for path in (project / "src").iterdir() if path.is_dir())],
    }
    return [*places[question], answers[question]]


# The project's name is where the slug's default comes from, and the slug is where the
# package's comes from. The slug is asked alone, so that the package's default meets the
# hostile text; every other question takes it together with the name (the slug left to its
# default from the name), in one copy instead of one each.
DERIVED_FROM = ["project_slug"]
TOGETHER = [q for q in FREE_TEXT + IDENTIFIERS + COLUMN_NAMES if q not in DERIVED_FROM]


def refused_by(destination: Path, answers: dict[str, str]) -> str:
    """The question a copy with `answers` refuses (nothing may be written), or "" if it copies."""
    try:
        render_project(destination, answers)
    except ValueError as error:
        refusal = str(error)
        named = re.search(r"question '([a-z_]+)'", refusal)
        assert named, f"a refusal that names no question: {refusal}"
        assert not any(destination.glob("*")), "files were written before the refusal"
        return named.group(1)
    return ""


def assert_lands_exactly(project: Path, questions: list[str], answer: str) -> None:
    """Every place each question's answer is written holds the answer, byte for byte."""
    for question in questions:
        landed = where_it_lands(project, question)
        assert all(value == answer for value in landed), (question, landed)
        if question in FREE_TEXT[:3]:
            assert answer in (project / "README.md").read_text(encoding="utf-8"), question


@pytest.mark.parametrize("answer", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_answer_is_refused_or_round_trips(tmp_path: Path, answer: str) -> None:
    """For every question, a validator stops the copy with nothing written, or every file holds it.

    The questions not derived from one another take the answer together; one a copy refuses is
    set aside (and asked alone, when the refusal could have come from the company it kept) and
    the rest are copied again, until they all land or all are refused.
    """
    destinations = (tmp_path / f"project-{n}" for n in range(100))
    groups = [[question] for question in DERIVED_FROM] + [list(TOGETHER)]
    while groups:
        questions = groups.pop()
        destination = next(destinations)
        question = refused_by(destination, dict.fromkeys(questions, answer))
        if not question:
            assert_lands_exactly(destination, questions, answer)
            continue
        assert question in questions, f"{question} refused, but it was not asked"
        rest = [other for other in questions if other != question]
        if rest:
            groups += [rest, [question]]


@pytest.mark.parametrize(
    "answer", ["line one\nline two", "tab\there", "nul\x00byte", "separator\u2028line", "y" * 301]
)
def test_free_text_refuses_what_cannot_be_one_line(render: Render, answer: str) -> None:
    """Control characters, line separators and overlong text are refused with a clear message."""
    with pytest.raises(ValueError, match=r"printable text|at most"):
        render(business_goal=answer)


@pytest.mark.parametrize("question", IDENTIFIERS)
@pytest.mark.parametrize("answer", ["../x", "a/b", "{{ x }}", "x\n", "x y", "ünï"])
def test_identifiers_refuse_paths_templates_and_spaces(
    render: Render, question: str, answer: str
) -> None:
    """Identifiers end up in paths, code and manifests: all outside their alphabet is refused."""
    with pytest.raises(ValueError, match=f"question '{question}'"):
        render(**{question: answer})
