"""After every `copier update`: bring uv.lock in line with the updated pyproject.toml.

Runs from copier.yml as a migration without a version, which Copier runs after each update,
once the user's changes have been merged back (tasks run earlier, before that merge, so a lock
written there would miss the user's own dependencies). The project's CI runs `uv run --locked`,
which refuses a lock that does not match pyproject.toml.

The lock is left unstaged beside the rest of the update for the user to review and commit.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from post_copy import run_uv, say, uv_command  # the hook folder is not a package

PYPROJECT = Path("pyproject.toml")
LOCK = Path("uv.lock")
CONFLICT_MARKERS = ("<<<<<<< ", ">>>>>>> ")


def refresh_lock() -> str:
    """Lock again when the project has a lock; one line on what happened or what to run."""
    if not LOCK.exists():
        return "no uv.lock in the project: run `uv lock` and commit it (CI runs uv with --locked)"
    text = PYPROJECT.read_text(encoding="utf-8") if PYPROJECT.exists() else ""
    if any(marker in text for marker in CONFLICT_MARKERS):
        return "pyproject.toml has conflicts: resolve them, then run `uv lock` and commit uv.lock"
    uv = uv_command()
    if uv is None:
        return "uv is not installed, so uv.lock was not refreshed: install uv, then run `uv lock`"
    before = LOCK.read_bytes()
    failure = run_uv([*uv, "lock", "--quiet"])
    if failure is not None:
        return (
            f"could not refresh uv.lock ({failure}); when the package registry is reachable, "
            "run `uv lock` and commit uv.lock with the update"
        )
    if LOCK.read_bytes() == before:
        return "uv.lock already matches pyproject.toml"
    return "refreshed uv.lock for the updated pyproject.toml: commit it with the update"


def main() -> int:
    """Never fails the update: a lock that cannot be written is reported, not fatal."""
    say(refresh_lock())
    return 0


if __name__ == "__main__":
    sys.exit(main())
