"""Migrations that `copier update` runs from copier.yml's _migrations, one operation per call.

Each is idempotent: running it again, or on a project where it already happened, changes
nothing. Paths are given literally in copier.yml; `{package}` stands for the project's package
name, read from the answers file, so no answer ever passes through a shell or a command line.

    migrate.py rename OLD NEW   move a file users own to its new name, keeping its history
    migrate.py add PATH...      bring a user-owned file that is new in this release (one the
                                project already has is kept if it has what the release imports)
    migrate.py schema RECORDS DEMO SCHEMA
                                write the feature schema from a record class users edited

User-owned files are excluded from `copier update` so that it never touches them; that also
means one that is new in a release would never arrive. `add` closes the gap: run as an `after`
migration of that release, it renders the new version with the project's answers and copies in
each listed file the project does not have yet. A file the user already has, or has since
deleted in a later release, is not touched: the migration runs once, when the update crosses
the release that introduced the file.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import yaml

ANSWERS_FILE = Path(".copier-answers.yml")
TEMPLATE_ROOT = Path(__file__).resolve().parents[1]


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


# Copier runs migrations from its own temporary clone of the template, removed after the
# update; a render kept in that clone's .git folder serves every migration of one update.
COPIER_CLONE_PREFIX = "copier._vcs.clone."


def render_release(answers: dict[str, object], destination: Path) -> None:
    """Render the release this script belongs to with the project's answers, tasks skipped.

    An update that crosses several releases runs several migrations that need the same
    render: the first one keeps it in Copier's temporary clone and the others copy it.
    """
    data = {key: value for key, value in answers.items() if not key.startswith("_")}
    cache = None
    if TEMPLATE_ROOT.name.startswith(COPIER_CLONE_PREFIX) and (TEMPLATE_ROOT / ".git").is_dir():
        key = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
        cache = TEMPLATE_ROOT / ".git" / "copier-mlops-renders" / key[:16]
        if cache.is_dir():
            shutil.copytree(cache, destination, dirs_exist_ok=True)
            return
    import copier  # the interpreter running the migration is Copier's own

    # Copier has already said it when the template has uncommitted changes; once is enough.
    warnings.filterwarnings("ignore", category=copier.errors.DirtyLocalWarning)
    copier.run_copy(
        str(TEMPLATE_ROOT),
        destination,
        data=data,
        vcs_ref="HEAD" if (TEMPLATE_ROOT / ".git").exists() else None,
        defaults=True,
        overwrite=True,
        quiet=True,
        unsafe=True,
        skip_tasks=True,
    )
    if cache is not None:
        shutil.copytree(destination, cache, dirs_exist_ok=True)


def add(paths: list[Path], answers: dict[str, object]) -> list[str]:
    """Copy each file of the release that the project lacks; keep one it has if it still fits.

    A Python module the project already has is kept when it defines every name the release's
    own code imports from it (its interface). One that does not, written by the team before
    the release made the path user-owned, would break every check: it is moved aside to
    `<name>_own.py` and the release's version takes its place, both staged for review.
    """
    present = [path for path in paths if path.exists()]
    if len(present) == len(paths) and not any(path.suffix == ".py" for path in present):
        return [f"nothing to add: {path} is already there" for path in paths]
    messages: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        rendered = Path(scratch) / "release"
        render_release(answers, rendered)
        for path in paths:
            if not (rendered / path).is_file():
                raise MigrationError(f"{path} is not a file of this release; nothing was added")
        for path in paths:
            if not path.exists():
                install(rendered / path, path)
                messages.append(f"added {path}, new in this release and yours from now on")
                continue
            defined = defined_names(path)
            lacking = [] if defined is None else sorted(interface(rendered, path) - defined)
            if not lacking:
                messages.append(f"kept your {path}: it has what the release's code imports")
                continue
            aside = path.with_name(f"{path.stem}_own{path.suffix}")
            if aside.exists():
                raise MigrationError(
                    f"{path} lacks {', '.join(lacking)} and {aside} already exists: merge "
                    f"{path} into the release's version by hand, then update again"
                )
            rename(path, aside)
            install(rendered / path, path)
            messages.append(
                f"your {path} lacked {', '.join(lacking)}, which the release's code imports: it "
                f"is now {aside} and the release's version is in its place; move what you need "
                f"from {aside.name} into it, then delete {aside.name}"
            )
    return messages


def install(source: Path, path: Path) -> None:
    """Copy a file of the rendered release into the project and stage it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, path)
    subprocess.run(["git", "add", "--", str(path)], check=False, capture_output=True)


def interface(release: Path, module: Path) -> set[str]:
    """The names the release's other Python files import from `module` (a path under src/).

    Relative imports are resolved against each file's package, so `from .candidates import X`
    in src/pkg/model/train.py counts for src/pkg/model/candidates.py.
    """
    if module.suffix != ".py" or module.parts[:1] != ("src",):
        return set()
    dotted = ".".join(module.with_suffix("").parts[1:])
    names: set[str] = set()
    for file in release.rglob("*.py"):
        relative = file.relative_to(release)
        if relative == module:
            continue
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        package = relative.parent.parts[1:] if relative.parts[:1] == ("src",) else ()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and _imported_module(node, package) == dotted:
                names |= {alias.name for alias in node.names if alias.name != "*"}
    return names


def _imported_module(node: ast.ImportFrom, package: tuple[str, ...]) -> str | None:
    """The dotted module an import names, with a relative one resolved against `package`."""
    if node.level == 0:
        return node.module
    if not package or node.level > len(package):
        return None
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def defined_names(path: Path) -> set[str] | None:
    """Names a module defines at its top level (inside top-level if/try blocks too).

    A module that cannot be parsed defines nothing; one with `from x import *` or a module
    `__getattr__` could define anything: None, taken to define whatever is asked of it.
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return set()
    names: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            if node.name == "__getattr__":
                return None
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {
                leaf.id
                for target in targets
                for leaf in ast.walk(target)
                if isinstance(leaf, ast.Name)
            }
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if any(alias.name == "*" for alias in node.names):
                return None
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.If | ast.Try | ast.With):
            pending.extend(node.body)
            pending.extend(getattr(node, "orelse", []))
            pending.extend(getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                pending.extend(handler.body)
    return names


def schema(records: Path, demo: Path, target: Path, answers: dict[str, object]) -> str:
    """Before v0.3.0's update: keep the fields of an edited record class as the feature schema.

    Up to v0.2.0 the columns lived in app/records.py (template-owned, replaced by the update)
    and data/demo.py. A project whose Record still holds the demo's columns gets the demo's
    schema from the `add` migration after the update; one whose Record was edited keeps its
    fields here, written to the user-owned schema module before records.py is replaced.
    """
    if target.exists():
        return f"nothing to write: {target} is already there"
    if not records.is_file():
        return f"nothing to write: {records} is not there"
    fields = _record_fields(records.read_text(encoding="utf-8"))
    if not fields:
        return f"nothing to write: {records} has no Record class with fields"
    demo_columns = _demo_columns(demo.read_text(encoding="utf-8")) if demo.is_file() else set()
    if {field["name"] for field in fields} == demo_columns:
        return f"{records} holds the demo's columns: the release's schema will be added"
    sensitive = str(answers.get("sensitive_features", "")).split(",")
    lines = [
        '"""The data\'s columns: the one place that lists them (written from app/records.py)."""',
        "",
        "from __future__ import annotations",
        "",
        "from .data.columns import Column, Schema, Target",
        "",
        "SCHEMA = Schema(",
        f"    target={_target(answers)},",
        "    columns=(",
    ]
    for field in fields:
        role = ', role="sensitive"' if field["name"] in {name.strip() for name in sensitive} else ""
        extras = "".join(
            f", {key}={field[key]!r}"
            for key in ("minimum", "maximum", "categories", "description")
            if key in field
        )
        lines.append(f"        Column({field['name']!r}, {field['kind']!r}{role}{extras}),")
    lines += ["    ),", ")", ""]
    target.write_text("\n".join(lines), encoding="utf-8")
    subprocess.run(["git", "add", "--", str(target)], check=False, capture_output=True)
    return f"wrote {target} from the fields of {records}: review it, it is yours from now on"


def _record_fields(source: str) -> list[dict[str, object]]:
    """Name, kind, range, categories and description of each field of `class Record`."""
    fields: list[dict[str, object]] = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.ClassDef) and node.name == "Record"):
            continue
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                fields.append({"name": item.target.id, **_field_facts(item)})
    return fields


def _field_facts(item: ast.AnnAssign) -> dict[str, object]:
    annotation = ast.unparse(item.annotation)
    facts: dict[str, object] = {"kind": "number"}
    if annotation.startswith("Literal["):
        values = ast.literal_eval(annotation.removeprefix("Literal"))
        facts = {
            "kind": "category",
            "categories": tuple(values) if isinstance(values, tuple | list) else (values,),
        }
    elif annotation.startswith("int"):
        facts["kind"] = "integer"
    if isinstance(item.value, ast.Call):
        names = {"ge": "minimum", "le": "maximum", "description": "description"}
        for keyword in item.value.keywords:
            if keyword.arg in names:
                try:
                    facts[names[keyword.arg]] = ast.literal_eval(keyword.value)
                except ValueError:
                    continue
    return facts


def _demo_columns(source: str) -> set[str]:
    """The columns an old demo module generated: NUMERIC_FEATURES and CATEGORIES' keys."""
    found: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("NUMERIC_FEATURES", "CATEGORIES"):
                with_values = ast.literal_eval(node.value)
                found |= set(with_values)
    return found


def _target(answers: dict[str, object]) -> str:
    name = str(answers.get("target_name", "target"))
    task = answers.get("task_type")
    if task == "multiclass_classification":
        labels = tuple(label.strip() for label in str(answers.get("class_labels", "")).split(","))
        return f"Target({name!r}, values={labels!r})"
    if task in ("binary_classification", "anomaly_detection"):
        return f"Target({name!r}, values=(0, 1))"
    return f"Target({name!r})"


def main(argv: list[str] | None = None) -> int:
    """Run one migration operation in the current directory, the project being updated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    renaming = commands.add_parser("rename", help="move a user-owned file to its new name")
    renaming.add_argument("old")
    renaming.add_argument("new")
    adding = commands.add_parser("add", help="bring user-owned files new in this release")
    adding.add_argument("paths", nargs="+")
    schema_from = commands.add_parser("schema", help="keep an edited Record as the schema")
    schema_from.add_argument("records")
    schema_from.add_argument("demo")
    schema_from.add_argument("schema")
    args = parser.parse_args(argv)
    answers = yaml.safe_load(ANSWERS_FILE.read_text(encoding="utf-8")) or {}
    try:
        if args.command == "rename":
            messages = [rename(project_path(args.old, answers), project_path(args.new, answers))]
        elif args.command == "schema":
            paths = [project_path(path, answers) for path in (args.records, args.demo, args.schema)]
            messages = [schema(*paths, answers)]
        else:
            messages = add([project_path(path, answers) for path in args.paths], answers)
    except MigrationError as error:
        print(f"  migration stopped: {error}", file=sys.stderr)
        return 1
    for message in messages:
        print(f"  {message}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
