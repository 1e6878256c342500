"""MkDocs hook: the site's changelog page is the repository's CHANGELOG.md, read at build time."""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PAGE = "changelog.md"


def _changelog(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent / "CHANGELOG.md"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add CHANGELOG.md to the site as changelog.md, without a copy in docs/."""
    content = _changelog(config).read_text(encoding="utf-8")
    files.append(File.generated(config, PAGE, content=content))
    return files


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Rebuild when CHANGELOG.md changes while `mkdocs serve` runs."""
    config.watch.append(str(_changelog(config)))
    return config
