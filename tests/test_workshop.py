"""The workshop's fast checkpoints pass as a participant would run them.

The full run, every module, is `uv run nox -s workshop` (6 to 8 minutes on 2 busy cores); the suite
runs the subset marked `fast` (modules 1 and 2: clone, copy, contract, pipeline, serve), so
that a template change that breaks the first hour of the workshop breaks the build.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import uv_environment
from tools.workshop import parse_module

ROOT = Path(__file__).resolve().parent.parent


def test_a_marked_block_is_parsed_with_its_expectations(tmp_path: Path) -> None:
    """Attributes are shell-quoted; expect and reject repeat; exit and fast are read."""
    module = tmp_path / "01-sample.md"
    module.write_text(
        "Some prose.\n\n"
        "<!-- checkpoint id=one fast exit=1 expect='a b' expect='c\\.d' reject=boom -->\n"
        "```bash\necho hello\nfalse\n```\n\n"
        "```bash\necho 'not a checkpoint'\n```\n",
        encoding="utf-8",
    )
    [checkpoint] = parse_module(module)
    assert checkpoint.label == "01-sample/one"
    assert checkpoint.expect == ["a b", "c\\.d"]
    assert checkpoint.reject == ["boom"]
    assert checkpoint.exit_status == 1
    assert checkpoint.fast
    assert checkpoint.script == "echo hello\nfalse"


def test_an_unknown_attribute_is_refused(tmp_path: Path) -> None:
    """A typo in a marker fails loudly rather than checking nothing."""
    module = tmp_path / "02-typo.md"
    module.write_text("<!-- checkpoint id=x expcet=y -->\n```bash\ntrue\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expcet"):
        parse_module(module)


@pytest.mark.e2e
def test_fast_checkpoints_pass() -> None:
    """Modules 1 and 2 run green from a clone of this repository's committed HEAD."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "workshop.py"), "--fast"],
        cwd=ROOT,
        env=uv_environment(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    last = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert last.endswith(" checkpoints passed, 0 failed"), last
