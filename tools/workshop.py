r"""Run the workshop's checkpoints in order, as a participant would, in a scratch directory.

A checkpoint is a fenced ``bash`` block in docs/workshop/NN-*.md preceded by an HTML comment
(invisible on the rendered page) that names it and says what its output must show::

    <!-- checkpoint id=copy fast expect='threshold: 0\.1667' -->
    ```bash
    uvx copier copy --trust --defaults --vcs-ref HEAD "$TEMPLATE" churn
    ```

Attributes, shell-quoted: ``id`` (required, unique in its module), ``expect`` (a regular
expression the output must match; repeatable), ``reject`` (one it must not match;
repeatable), ``exit`` (the exit status expected, 0 unless said), ``timeout`` (seconds, 900
unless said) and the flag ``fast`` (part of the subset the template's test suite runs).

Blocks run one after another with ``bash -eo pipefail`` in one workspace; each starts in the
directory where the previous one ended, as in a participant's terminal. ``$WORKSHOP`` is the
workspace and ``$TEMPLATE`` where the template is cloned from (this checkout by default).
The last line printed is ``N checkpoints passed, M failed``; the exit status is 1 when a
checkpoint failed or none ran.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "docs" / "workshop"
MARKED_BLOCK = re.compile(
    r"^<!--\s*checkpoint\b(?P<attributes>[^\n]*?)-->\s*\n"
    r"```(?:bash|sh|shell)\s*\n(?P<body>.*?)\n```",
    flags=re.MULTILINE | re.DOTALL,
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
DEFAULT_TIMEOUT = 900
TAIL_LINES = 40


@dataclass
class Checkpoint:
    """One marked block of a module and what its output must show."""

    module: str
    name: str
    script: str
    expect: list[str] = field(default_factory=list)
    reject: list[str] = field(default_factory=list)
    exit_status: int = 0
    timeout: int = DEFAULT_TIMEOUT
    fast: bool = False

    @property
    def label(self) -> str:
        """Module and id, as printed and as --only matches them."""
        return f"{self.module}/{self.name}"


def parse_module(path: Path) -> list[Checkpoint]:
    """The checkpoints of one module page, in page order."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in MARKED_BLOCK.finditer(text):
        checkpoint = Checkpoint(module=path.stem, name="", script=match["body"])
        for word in shlex.split(match["attributes"]):
            key, _, value = word.partition("=")
            if key == "id":
                checkpoint.name = value
            elif key == "expect":
                checkpoint.expect.append(value)
            elif key == "reject":
                checkpoint.reject.append(value)
            elif key == "exit":
                checkpoint.exit_status = int(value)
            elif key == "timeout":
                checkpoint.timeout = int(value)
            elif key == "fast" and not value:
                checkpoint.fast = True
            else:
                raise ValueError(f"{path.name}: unknown checkpoint attribute {word!r}")
        if not checkpoint.name:
            raise ValueError(f"{path.name}: a checkpoint without an id before {match['body']!r}")
        for pattern in (*checkpoint.expect, *checkpoint.reject):
            re.compile(pattern)
        found.append(checkpoint)
    names = [checkpoint.name for checkpoint in found]
    if len(names) != len(set(names)):
        raise ValueError(f"{path.name}: checkpoint ids repeat: {names}")
    return found


def all_checkpoints(modules: Path = MODULES) -> list[Checkpoint]:
    """Every checkpoint of the workshop, module by module (files named NN-*.md)."""
    return [
        checkpoint
        for path in sorted(modules.glob("[0-9][0-9]-*.md"))
        for checkpoint in parse_module(path)
    ]


def participant_environment(workspace: Path, template: str) -> dict[str, str]:
    """The environment of a participant's shell: no venv of ours, no colours, no downloads."""
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env.update(
        WORKSHOP=str(workspace),
        TEMPLATE=template,
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="160",
        UV_PYTHON_DOWNLOADS="never",
        PYTHONUNBUFFERED="1",
    )
    for role in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{role}_NAME", "Workshop Participant")
        env.setdefault(f"GIT_{role}_EMAIL", "participant@localhost")
    return env


def run(checkpoint: Checkpoint, workspace: Path, env: dict[str, str]) -> tuple[list[str], str]:
    """Run one checkpoint; return what went wrong (nothing when it passed) and its output."""
    cwd_file = workspace / ".checkpoint-cwd"
    start = cwd_file.read_text(encoding="utf-8").strip() if cwd_file.exists() else str(workspace)
    script = (
        f"trap 'pwd > {shlex.quote(str(cwd_file))}' EXIT\n"
        f"cd {shlex.quote(start)}\n"
        f"{checkpoint.script}\n"
    )
    process = subprocess.Popen(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    problems = []
    try:
        raw, _ = process.communicate(timeout=checkpoint.timeout)
    except subprocess.TimeoutExpired:
        _stop_group(process.pid)
        raw, _ = process.communicate()
        problems.append(f"still running after {checkpoint.timeout} s")
    # A server a block started in the background and did not stop goes with the block.
    _stop_group(process.pid)
    output = ANSI.sub("", raw.decode("utf-8", errors="replace"))
    if not problems and process.returncode != checkpoint.exit_status:
        problems.append(f"exit status {process.returncode}, expected {checkpoint.exit_status}")
    for pattern in checkpoint.expect:
        if not re.search(pattern, output, flags=re.MULTILINE):
            problems.append(f"no match in the output for {pattern!r}")
    for pattern in checkpoint.reject:
        if re.search(pattern, output, flags=re.MULTILINE):
            problems.append(f"the output matches {pattern!r}, which it must not")
    return problems, output


def _stop_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    time.sleep(0.5)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the chosen checkpoints, print the tally."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the checkpoints marked fast")
    parser.add_argument("--only", help="only checkpoints whose module/id contains this text")
    parser.add_argument("--list", action="store_true", help="list the checkpoints, run none")
    parser.add_argument("--template", default=str(ROOT), help="where the template is cloned from")
    parser.add_argument("--workspace", type=Path, help="run here (kept) instead of a temp dir")
    parser.add_argument("--show", action="store_true", help="print every checkpoint's output")
    options = parser.parse_args(argv)

    chosen = [
        checkpoint
        for checkpoint in all_checkpoints()
        if (checkpoint.fast or not options.fast)
        and (options.only is None or options.only in checkpoint.label)
    ]
    if options.list:
        for checkpoint in chosen:
            print(f"{checkpoint.label}{'  (fast)' if checkpoint.fast else ''}")
        return 0
    with tempfile.TemporaryDirectory(prefix="workshop-") as scratch:
        workspace = (options.workspace or Path(scratch)).resolve()
        workspace.mkdir(parents=True, exist_ok=True)
        env = participant_environment(workspace, options.template)
        print(f"workspace: {workspace}", flush=True)
        failed = 0
        began = time.monotonic()
        for checkpoint in chosen:
            started = time.monotonic()
            problems, output = run(checkpoint, workspace, env)
            took = time.monotonic() - started
            print(f"{'FAIL' if problems else 'ok  '} {checkpoint.label} ({took:.1f} s)", flush=True)
            if options.show and not problems:
                print("\n".join(f"     | {line}" for line in output.rstrip().splitlines()))
            if problems:
                failed += 1
                for problem in problems:
                    print(f"     {problem}")
                tail = output.rstrip().splitlines()[-TAIL_LINES:]
                print("\n".join(f"     | {line}" for line in tail), flush=True)
        print(f"total: {time.monotonic() - began:.0f} s")
    passed = len(chosen) - failed
    print(f"{passed} checkpoints passed, {failed} failed")
    return 1 if failed or not chosen else 0


if __name__ == "__main__":
    sys.exit(main())
