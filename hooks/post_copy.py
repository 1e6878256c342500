"""After a copy: lock the dependencies when the registry answers, then make the first git commit.

Runs in the new project's directory as a list-form Copier task (no shell), reading what it needs
from the answers file rather than from its command line.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

LOCK_TIMEOUT_SECONDS = 300
ANSWERS_FILE = Path(".copier-answers.yml")


def say(message: str) -> None:
    """Print a line of progress where Copier prints its own."""
    print(f"  {message}", file=sys.stderr, flush=True)


def uv_command() -> list[str] | None:
    """How to run uv here: from PATH, or as a module of the interpreter running Copier."""
    found = shutil.which("uv")
    if found:
        return [found]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    return None


def lock() -> bool:
    """Write uv.lock; say plainly what to run later when it cannot be written now."""
    uv = uv_command()
    if uv is None:
        say("uv is not installed, so uv.lock was not written. Install uv, then run: uv lock")
        return False
    say("resolving dependencies into uv.lock ...")
    try:
        result = subprocess.run(
            [*uv, "lock", "--quiet"],
            capture_output=True,
            text=True,
            timeout=LOCK_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        result = None
    if result is None or result.returncode != 0:
        reason = (
            "timed out" if result is None else (result.stderr.strip().splitlines() or ["?"])[-1]
        )
        say(f"could not write uv.lock ({reason}).")
        say("When the package registry is reachable, run: uv lock && git add uv.lock && git commit")
        return False
    return True


def git(*args: str) -> subprocess.CompletedProcess[str]:
    """Run git in the project, capturing its output."""
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def first_commit() -> None:
    """Initialise git (unless the project is already inside a work tree) and commit everything."""
    if shutil.which("git") is None:
        say("git is not installed: initialise a repository before running `copier update`.")
        return
    if git("rev-parse", "--is-inside-work-tree").returncode != 0:
        git("init", "--quiet", "--initial-branch=main")
    if git("rev-parse", "--verify", "--quiet", "HEAD").returncode == 0:
        say(
            "the project sits in an existing git history: review and commit the new files yourself."
        )
        return
    identity: list[str] = []
    if not git("config", "user.email").stdout.strip():
        answers = yaml.safe_load(ANSWERS_FILE.read_text(encoding="utf-8")) or {}
        identity = [
            "-c",
            f"user.name={answers.get('author_name', 'ML Team')}",
            "-c",
            f"user.email={answers.get('author_email', 'ml-team@example.com')}",
        ]
    git("add", "--all")
    committed = git(*identity, "commit", "--quiet", "--no-verify", "-m", "Start the project")
    if committed.returncode != 0:
        say(f"git commit failed: {committed.stderr.strip()}")
    else:
        say("initialised git and made the first commit")


def main() -> int:
    """Lock, then commit, so the first commit holds uv.lock whenever it could be written."""
    lock()
    first_commit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
