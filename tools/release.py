"""The template's releases: their notes from CHANGELOG.md, and publishing them on GitHub.

    python3 tools/release.py notes v0.3.0   print a release's notes as CHANGELOG.md has them
    python3 tools/release.py publish        create every recorded release GitHub lacks

`publish` runs in .github/workflows/release.yml with the `gh` command line and a token that
may write contents. It reads releases.toml (version and commit, in history order) and, for
each version without a GitHub release, creates one whose tag points at the recorded commit
and whose text is the version's CHANGELOG.md section. Standard library only.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASES = ROOT / "releases.toml"
CHANGELOG = ROOT / "CHANGELOG.md"
HEADING = re.compile(r"^## (v\d+\.\d+\.\d+)\b", re.MULTILINE)


class ReleaseError(RuntimeError):
    """The record or the changelog cannot give what a release needs."""


def recorded() -> list[dict[str, str]]:
    """The releases in releases.toml, in history order; an empty record is an error."""
    releases = tomllib.loads(RELEASES.read_text(encoding="utf-8")).get("release", [])
    if not releases:
        raise ReleaseError(f"{RELEASES.name} records no release")
    return [{"version": str(r["version"]), "commit": str(r["commit"])} for r in releases]


def notes(version: str, changelog: str | None = None) -> str:
    """The CHANGELOG.md section of one version, without its heading."""
    text = CHANGELOG.read_text(encoding="utf-8") if changelog is None else changelog
    headings = list(HEADING.finditer(text))
    for index, heading in enumerate(headings):
        if heading.group(1) == version:
            end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
            body = text[heading.end() : end].split("\n", 1)[-1].strip()
            if not body:
                raise ReleaseError(f"{CHANGELOG.name}: the section of {version} is empty")
            return body + "\n"
    raise ReleaseError(f"{CHANGELOG.name} has no section '## {version}'")


def published(version: str) -> bool:
    """Whether GitHub already has a release of that version."""
    found = subprocess.run(
        ["gh", "release", "view", version], capture_output=True, text=True, check=False
    )
    return found.returncode == 0


def publish() -> list[str]:
    """Create each recorded release GitHub lacks; what was done, one line each."""
    done = []
    for release in recorded():
        version, commit = release["version"], release["commit"]
        if published(version):
            done.append(f"{version}: already published")
            continue
        create = ["gh", "release", "create", version, "--target", commit, "--title", version]
        subprocess.run([*create, "--notes", notes(version)], check=True)
        done.append(f"{version}: published at {commit[:12]}")
    return done


def main(argv: list[str] | None = None) -> int:
    """Print a release's notes, or publish the recorded releases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("notes", help="print a release's notes").add_argument("version")
    commands.add_parser("publish", help="create every recorded release GitHub lacks")
    args = parser.parse_args(argv)
    try:
        lines = [notes(args.version).rstrip("\n")] if args.command == "notes" else publish()
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
