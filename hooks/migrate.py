"""Migrations that `copier update` runs from copier.yml's _migrations, one operation per call.

Each is idempotent: running it again, or on a project where it already happened, changes
nothing. Paths are given literally in copier.yml; `{package}` stands for the project's package
name, read from the answers file, so no answer ever passes through a shell or a command line.

    migrate.py rename OLD NEW   move a file users own to its new name, keeping its history
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ANSWERS_FILE = Path(".copier-answers.yml")


class MigrationError(RuntimeError):
    """The project is in a state the migration must not guess about."""


def project_path(pattern: str, answers: dict[str, object]) -> Path:
    """A path inside the project, with `{package}` filled in and no way out of the project."""
    path = Path(pattern.replace("{package}", str(answers.get("package_name", ""))))
    if path.is_absolute() or ".." in path.parts:
        raise MigrationError(f"{pattern}: migrations only touch paths inside the project")
    return path


def is_tracked(path: Path) -> bool:
    """Whether git tracks the file, so that a rename should go through git to keep history."""
    result = subprocess.run(
        ["git", "ls-files", "--error-unmatch", "--", str(path)],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def rename(old: Path, new: Path) -> str:
    """Move old to new once; never overwrite a file that is already at the new name."""
    if not old.exists():
        return f"nothing to rename: {old} is not there ({new} {'is' if new.exists() else 'is not'})"
    if new.exists():
        raise MigrationError(
            f"both {old} and {new} exist: merge them by hand, delete {old}, and update again"
        )
    new.parent.mkdir(parents=True, exist_ok=True)
    if is_tracked(old):
        subprocess.run(["git", "mv", "--", str(old), str(new)], check=True, capture_output=True)
    else:
        old.rename(new)
    return f"renamed {old} to {new}"


def main(argv: list[str] | None = None) -> int:
    """Run one migration operation in the current directory, the project being updated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    renaming = commands.add_parser("rename", help="move a user-owned file to its new name")
    renaming.add_argument("old")
    renaming.add_argument("new")
    args = parser.parse_args(argv)
    answers = yaml.safe_load(ANSWERS_FILE.read_text(encoding="utf-8")) or {}
    try:
        message = rename(project_path(args.old, answers), project_path(args.new, answers))
    except MigrationError as error:
        print(f"  migration stopped: {error}", file=sys.stderr)
        return 1
    print(f"  {message}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
