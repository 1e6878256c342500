"""Command line: one command per lifecycle stage, defaults from the contract and settings.

Stage modules are imported inside their commands, so `--help` answers without loading pandas
or scikit-learn.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from .config import Contract, Settings
from .errors import ModelFileError, ProjectError

if TYPE_CHECKING:
    from .data.columns import Schema
    from .data.rows import Rows as DataRows
    from .model.evaluate import Evaluation
    from .model.gate import Verdict
    from .model.train import Candidate

app = typer.Typer(
    help="Run the ML product's lifecycle: collect data, train, evaluate, register, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


class Project:
    """The settings and the contract of one command-line call, each built once, when first used.

    Built lazily, so that `--help` and commands that do not need the contract never read it,
    and a problem with either is reported by the command that needed it, in one line.
    """

    def __init__(self) -> None:
        """Start with neither read."""
        self._settings: Settings | None = None
        self._contract: Contract | None = None

    @property
    def settings(self) -> Settings:
        """The run-time settings (environment and .env)."""
        if self._settings is None:
            self._settings = Settings()
        return self._settings

    @property
    def contract(self) -> Contract:
        """The planning contract the settings point at."""
        if self._contract is None:
            self._contract = self.settings.load_contract()
        return self._contract


@app.callback()
def _start(ctx: typer.Context) -> None:
    """Run the ML product's lifecycle: collect data, train, evaluate, register, serve."""
    ctx.ensure_object(Project)


def _project(ctx: typer.Context) -> Project:
    """The settings and contract of this call, shared by the group and every command."""
    return ctx.ensure_object(Project)


Rows = Annotated[
    int | None,
    typer.Option(
        min=10,
        max=100_000_000,
        help="Demo records to collect.",
        show_default="contract data.demo_rows",
    ),
]
Seed = Annotated[
    int | None,
    typer.Option(help="Seed of the demo source.", show_default="contract data.seed"),
]


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one red line and exit code 1, never a traceback."""
    try:
        yield
    except (ProjectError, ValueError) as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _show(evaluation: Evaluation, label: str = "") -> None:
    colour = "green" if evaluation.passes_gate else "yellow"
    prefix = f"{label}: " if label else ""
    console.print(f"[{colour}]{prefix}{evaluation.gate_summary()}[/]", highlight=False)
    console.print(f"expected cost per record: {evaluation.expected_cost:.4f}", highlight=False)


@app.command("collect")
def collect_command(ctx: typer.Context, rows: Rows = None, seed: Seed = None) -> None:
    """Collect raw records into data/raw from the contract's source (demo, csv, parquet, sql)."""
    from .data.collect import collect

    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        with console.status("collecting"):
            paths = collect(
                contract,
                settings.raw_dir,
                rows or contract.data.demo_rows,
                contract.data.seed if seed is None else seed,
                project_dir=settings.project_dir,
                database_url=settings.database_url,
            )
        for path in paths:
            console.print(f"raw data: {path}", highlight=False)


@app.command("label")
def label_command(
    ctx: typer.Context,
    source: Annotated[
        Path | None,
        typer.Option(
            help="CSV of records to label: the rows with an empty target, or every row when it "
            "has no target column. Defaults to the raw records collect wrote in data/raw.",
        ),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="Labels file to resume from and append to. Defaults to data/interim/labels.csv.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Ask about at most N records this session.")
    ] = None,
    revisit_skipped: Annotated[
        bool, typer.Option("--revisit-skipped", help="Ask again about records skipped before.")
    ] = False,
) -> None:
    """Label records by hand, one at a time; each answer is saved at once, Ctrl-C resumes later."""
    from .data.label import default_labels_file, default_source, label_records, terminal_asker

    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        session = label_records(
            source or default_source(settings),
            labels or default_labels_file(settings),
            contract.task.target,
            terminal_asker(contract, console),
            limit,
            revisit_skipped,
        )
    console.print(session.summary(), highlight=False, soft_wrap=True)
    if session.stop == "interrupt":
        raise typer.Exit(130)


@app.command("curate")
def curate_command(ctx: typer.Context) -> None:
    """Clean the raw records into data/interim/curated.csv: duplicates, missing values, PII."""
    from .data.collect import read_records
    from .data.curate import curate
    from .files import write_atomic

    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        with console.status("curating"):
            curated, report = curate(read_records(contract, settings.raw_dir), contract)
            target = settings.path(settings.data_dir) / "interim" / "curated.csv"
            write_atomic(target, curated.to_csv(index=False).encode("utf-8"))
        console.print(report.summary(), highlight=False, soft_wrap=True)
        console.print(f"curated records: {target}", highlight=False)


@app.command("validate")
def validate_command(ctx: typer.Context) -> None:
    """Check the raw records: schema, statistics log, missing values and drift alerts."""
    from .data.collect import raw_records_path, read_records
    from .data.validate import validate
    from .pipeline import read_reference

    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        with console.status("validating"):
            report = validate(
                read_records(contract, settings.raw_dir),
                contract,
                reference=read_reference(settings.reference_file),
                stats_log=settings.stats_log,
                source=raw_records_path(contract, settings.raw_dir).name,
            )
        console.print(report.summary(), highlight=False, soft_wrap=True)
        console.print(f"statistics log: {settings.stats_log}", highlight=False)


@app.command("explore")
def explore_command(ctx: typer.Context) -> None:
    """Write a data report with plots to reports/explore/: distributions, target, missing values."""
    from .data.collect import read_records
    from .data.explore import explore

    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        with console.status("drawing plots"):
            report = explore(
                read_records(contract, settings.raw_dir),
                contract,
                settings.path(settings.reports_dir) / "explore",
            )
        console.print(f"data report with plots: {report}", highlight=False)


schema_app = typer.Typer(
    help=(
        "The feature schema, src/<package>/schema.py, that every stage reads: infer it from "
        "data, or check data against it."
    ),
    no_args_is_help=True,
)
app.add_typer(schema_app, name="schema")

SchemaSource = Annotated[
    Path | None,
    typer.Argument(
        help="CSV or Parquet file to read. Default: the contract's data.path or data.query.",
        show_default=False,
    ),
]
SchemaQuery = Annotated[
    str | None,
    typer.Option(help="SQL query to read instead of a file, on the settings' database_url."),
]


@schema_app.command("infer")
def schema_infer_command(
    ctx: typer.Context,
    source: SchemaSource = None,
    query: SchemaQuery = None,
    write: Annotated[
        bool, typer.Option("--write", help="Replace the schema file with the inferred schema.")
    ] = False,
    positive: Annotated[
        str | None,
        typer.Option(
            help="Binary classification and anomaly detection: the target's value that means "
            "positive.",
            show_default="the schema's, else the positive_value answer, else 1, true or yes",
        ),
    ] = None,
    rows: Annotated[
        int, typer.Option(min=100, max=100_000_000, help="Most rows to read (a spread sample).")
    ] = 100_000,
) -> None:
    """Infer the feature schema from data: types, ranges, categories, and which columns are inputs.

    Without a schema file, the inferred schema is printed and written. With one, what differs
    is printed, one line each (new, missing and retyped columns, changed categories and
    ranges), and the file is replaced only with --write. A target, id-like, free-text, constant
    or empty column is not a model input; the schema says why in a comment.
    """
    from .data.infer import Profiler, differences, schema_source
    from .files import write_atomic

    with _clear_errors():
        settings, contract = _project(ctx).settings, _project(ctx).contract
        schema_file = Path(__file__).resolve().with_name("schema.py")
        existing, broken = None, ""
        if schema_file.exists():
            try:
                existing = _schema()
            except (ValueError, ProjectError) as error:
                if not write:
                    raise ValueError(f"{error}: fix it, or replace it with --write") from None
                broken = str(error)
        data = _schema_rows(settings, contract, source, query, rows)
        likely = [_positive_of(existing), _answer(settings, "positive_value")]
        profiler = Profiler(
            data.columns,
            target=contract.task.target,
            task=contract.task.type,
            sensitive=contract.fairness.sensitive_features,
            positive=positive,
            likely_positive=[value for value in likely if value],
            classes=contract.task.classes or (),
            labelled=contract.data.availability != "unlabelled",
        )
        with console.status(f"reading {data.shown}"):
            for chunk in data.chunks:
                profiler.add(chunk, text=data.text)
        inferred = profiler.result(rows_total=data.total, source=data.shown)
        text = schema_source(inferred, command=f"uv run {contract.project.slug}")
        console.print(f"inferred from {data.shown}: {inferred.summary()}", highlight=False)
        for warning in inferred.warnings:
            console.print(f"[yellow]note:[/] {warning}", highlight=False, soft_wrap=True)
        if broken:
            console.print(f"[yellow]replacing it:[/] {broken}", highlight=False, soft_wrap=True)
        elif existing is None:
            typer.echo(text, nl=False)
        else:
            changes = differences(existing, inferred)
            for line in changes:
                typer.echo(line)
            if not changes:
                console.print(f"{_schema_file_shown()} already fits the data: no differences")
                return
            if not write:
                console.print(f"to replace {_schema_file_shown()}, run this again with --write")
                return
        write_atomic(schema_file, text.encode("utf-8"))
        console.print(f"[green]wrote {_schema_file_shown()}[/]", highlight=False)


@schema_app.command("check")
def schema_check_command(
    ctx: typer.Context, source: SchemaSource = None, query: SchemaQuery = None
) -> None:
    """Check data against the feature schema: one line per problem, exit code 1 if any.

    Every row is read. The problems: a model input or the target missing, a column the schema
    does not declare, values that are not numbers or outside their range, values not among a
    category's, labels not among the target's values, missing values the schema does not
    allow.
    """
    from .data.conform import check_rows

    with _clear_errors():
        settings, contract = _project(ctx).settings, _project(ctx).contract
        schema = _schema()
        data = _schema_rows(settings, contract, source, query, None)
        reinfer = "schema infer" + (f" {source}" if source else " --query ..." if query else "")
        with console.status(f"checking {data.shown}"):
            result = check_rows(
                schema,
                data.columns,
                data.chunks,
                labelled=contract.data.availability != "unlabelled",
                schema_file=_schema_file_shown(),
                reinfer=f"uv run {contract.project.slug} {reinfer} --write",
            )
    for problem in result.problems:
        typer.echo(problem)
    count = len(result.problems)
    colour = "bold red" if count else "green"
    verdict = f"{count} problem{'' if count == 1 else 's'}" if count else "no problems"
    console.print(f"[{colour}]checked {result.rows:,} rows of {data.shown}: {verdict}[/]")
    if count:
        raise typer.Exit(1)


baseline_app = typer.Typer(
    help="The baseline's rules (model/baseline.py, yours): choose them from data.",
    no_args_is_help=True,
)
app.add_typer(baseline_app, name="baseline")

RULE_ROWS = 20_000


@baseline_app.command("rules")
def baseline_rules_command(
    ctx: typer.Context,
    source: SchemaSource = None,
    query: SchemaQuery = None,
    write: Annotated[
        bool, typer.Option("--write", help="Replace the rules between the baseline's markers.")
    ] = False,
) -> None:
    """Choose the baseline's rules from data and print them; --write puts them in baseline.py.

    Classification: the one to three conditions that raise the positive rate (or the class)
    most on enough rows; regression: a rule on the most informative column at the cost
    quantile; anomaly detection: robust z-scores of the numeric columns. Each rule carries a
    comment with the numbers behind it. Only the lines between the edit markers change.
    """
    from .data.columns import load
    from .files import write_atomic
    from .model.rules import read_block, replace_block, rules_block

    with _clear_errors():
        settings, contract = _project(ctx).settings, _project(ctx).contract
        schema = load()
        data = _schema_rows(settings, contract, source, query, RULE_ROWS)
        with console.status(f"reading {data.shown}"):
            rows = [
                dict(zip(data.columns, row, strict=False)) for chunk in data.chunks for row in chunk
            ]
        decision = contract.decision.quantile if contract.task.type == "regression" else None
        block = rules_block(
            contract.task.type,
            rows,
            target=contract.task.target,
            numeric=[column.name for column in schema.inputs if column.numeric],
            categorical={
                column.name: column.categories
                for column in schema.inputs
                if column.kind == "category"
            },
            target_values=schema.target.values,
            decision=decision if decision is not None else contract.decision.threshold,
        )
        baseline_file = Path(__file__).resolve().parent / "model" / "baseline.py"
        text = baseline_file.read_text(encoding="utf-8")
        if read_block(text, str(baseline_file)) == block:
            console.print("model/baseline.py already holds these rules")
            return
        typer.echo(block, nl=False)
        if not write:
            console.print("to put them in model/baseline.py, run this again with --write")
            return
        write_atomic(baseline_file, replace_block(text, block, str(baseline_file)).encode("utf-8"))
        console.print(f"[green]wrote the rules into {baseline_file.name}[/]", highlight=False)


def _schema_file_shown() -> str:
    """The schema file as people find it in the project."""
    from .data.columns import SCHEMA_FILE

    return SCHEMA_FILE.format(package=__package__)


def _schema() -> Schema:
    """The project's schema; any error in the user's module is one ValueError line."""
    from .data.columns import SchemaError, load

    try:
        return load()
    except SchemaError:
        raise
    except Exception as error:  # the module is the user's: any error may come out of it
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{_schema_file_shown()} does not load ({reason})") from None


def _schema_rows(
    settings: Settings,
    contract: Contract,
    source: Path | None,
    query: str | None,
    limit: int | None,
) -> DataRows:
    """The rows of the file or query given, else of the contract's data source."""
    from .data.rows import file_rows, query_rows

    if source is not None and query is not None:
        raise typer.BadParameter("give a file or --query, not both")
    if query is not None:
        return query_rows(settings.database_url, query, limit)
    if source is not None:
        return file_rows(source, limit)
    spec = contract.data
    if spec.source == "sql":
        return query_rows(settings.database_url, spec.query or "", limit)
    if spec.source in ("csv", "parquet") and spec.path is not None:
        return file_rows(settings.path(spec.path), limit)
    raise ValueError(
        f"ml_contract.yaml data.source is {spec.source}: give a CSV or Parquet file, or --query"
    )


def _positive_of(schema: Schema | None) -> str:
    """The value a schema's binary target takes for positive, as text ("" without one)."""
    values = schema.target.values if schema is not None else ()
    return str(values[1]) if len(values) == 2 else ""


def _answer(settings: Settings, question: str) -> str:
    """An answer recorded in .copier-answers.yml ("" when there is none)."""
    import yaml

    path = settings.path(Path(".copier-answers.yml"))
    try:
        answers = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return ""
    value = answers.get(question) if isinstance(answers, dict) else None
    return str(value) if value is not None else ""


def _candidate_dir(settings: Settings) -> Path:
    """Where `train` leaves the best candidate for `evaluate` and `register`."""
    return settings.path(settings.models_dir) / "candidate"


def _show_verdict(verdict: Verdict, passed: str) -> None:
    if verdict.passed:
        console.print(f"[green]{passed}[/]", highlight=False)
    for reason in verdict.reasons:
        console.print(f"[bold red]gate:[/] {reason}", highlight=False, soft_wrap=True)


@app.command("train")
def train_command(ctx: typer.Context, seed: Seed = None) -> None:
    """Train candidate models on the collected data; every trial is an MLflow run."""
    from .model.registry import Registry, replace_directory
    from .pipeline import curated_splits, train_candidate

    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        with console.status("training") as status:
            candidate = train_candidate(
                settings,
                contract,
                Registry(settings, contract),
                curated_splits(settings, contract),
                seed=contract.data.seed if seed is None else seed,
                step=lambda stage: status.update(f"{stage} ..."),
            )
            replace_directory(_candidate_dir(settings), candidate.save)
        console.print(f"best candidate: {candidate.kind}", highlight=False)
        console.print(f"saved in: {_candidate_dir(settings)}", highlight=False)


def _trained(settings: Settings) -> Candidate:
    from .model.train import Candidate

    folder = _candidate_dir(settings)
    if not folder.exists():
        raise ModelFileError(f"{folder}: no trained candidate; run `train` first")
    return Candidate.load(folder)


@app.command("evaluate")
def evaluate_command(ctx: typer.Context) -> None:
    """Evaluate the trained candidate, the baseline and the champion; write the model card.

    Without a trained candidate only the champion is evaluated.
    """
    from .model.evaluate import evaluate, write_report
    from .model.registry import load_champion
    from .pipeline import curated_splits, fit_baseline, judge

    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        champion = load_champion(settings, contract)
        with console.status("evaluating") as status:
            splits = curated_splits(settings, contract)
            if not _candidate_dir(settings).exists():
                evaluation = evaluate(champion, splits.test, contract)
                report = write_report(evaluation, contract, settings.path(settings.reports_dir))
                judgement = None
            else:
                judgement = judge(
                    settings,
                    contract,
                    _trained(settings),
                    fit_baseline(contract, splits),
                    champion,
                    splits,
                    step=lambda stage: status.update(f"{stage} ..."),
                )
        if judgement is None:
            _show(evaluation)
            console.print(f"report: {report}", highlight=False)
            return
        _show(judgement.candidate, "candidate")
        _show(judgement.baseline, "baseline")
        if judgement.champion is not None:
            _show(judgement.champion, f"champion (version {judgement.champion.model_version})")
        console.print(judgement.fairness.summary(), highlight=False, soft_wrap=True)
        _show_verdict(judgement.challenger, "the candidate may become challenger")
        console.print(f"report: {judgement.report}", highlight=False)
        console.print(f"model card: {judgement.card}", highlight=False)


@app.command("register")
def register_command(ctx: typer.Context) -> None:
    """Register the trained candidate; it becomes challenger only if it passes the gate.

    The gate: the primary metric meets the contract's gate and beats the baseline, and the
    fairness metric is within its tolerance. A failed gate exits with code 1 and the reasons;
    the version stays registered without an alias.
    """
    from .model.registry import CHAMPION, Registry
    from .pipeline import curated_splits, fit_baseline, judge, lineage

    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        registry = Registry(settings, contract)
        candidate = _trained(settings)
        with console.status("judging the candidate") as status:
            splits = curated_splits(settings, contract)
            champion = registry.load(CHAMPION) if registry.version_of(CHAMPION) else None
            judgement = judge(
                settings,
                contract,
                candidate,
                fit_baseline(contract, splits),
                champion,
                splits,
                step=lambda stage: status.update(f"{stage} ..."),
            )
            status.update("registering ...")
            tags = {"stage": "candidate", **lineage(settings)}
            version = registry.register(candidate, tags=tags)
            if judgement.challenger.passed:
                registry.set_alias("challenger", version)
        console.print(f"registered {registry.where} version {version}", highlight=False)
        _show_verdict(judgement.challenger, f"version {version} is now the challenger")
    if not judgement.challenger.passed:
        raise typer.Exit(1)


@app.command("promote")
def promote_command(ctx: typer.Context) -> None:
    """Make the challenger champion if it beats the champion; otherwise exit 1 with the reasons.

    "Beats": the primary metric is strictly better on the test data; a tie keeps the champion.
    """
    from .model.evaluate import evaluate
    from .model.gate import promotion_verdict
    from .model.registry import CHALLENGER, CHAMPION, Registry
    from .pipeline import curated_splits, promote

    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        registry = Registry(settings, contract)
        with console.status("comparing the challenger with the champion"):
            challenger = registry.load(CHALLENGER)
            champion = registry.load(CHAMPION)
            splits = curated_splits(settings, contract)
            verdict = promotion_verdict(
                evaluate(challenger, splits.test, contract),
                evaluate(champion, splits.test, contract),
            )
            if verdict.passed:
                promote(settings, registry, challenger.version, splits)
        _show_verdict(verdict, f"version {challenger.version} is now the champion")
    if not verdict.passed:
        raise typer.Exit(1)


@app.command("export-model")
def export_model_command(
    ctx: typer.Context,
    alias: Annotated[
        str, typer.Option(help="Which registered model to export: champion or challenger.")
    ] = "champion",
    directory: Annotated[
        Path | None,
        typer.Option(help="Folder to fill (replaced if it exists).", show_default="models/export"),
    ] = None,
) -> None:
    """Copy a registered model and its hash into a folder that serves without the registry.

    Point the service at it with the model_dir setting, the environment variable
    <PACKAGE>_MODEL_DIR (the container image does).
    """
    from .model.registry import Registry

    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        target = directory or settings.path(settings.models_dir) / "export"
        with console.status("exporting"):
            folder = Registry(settings, contract).export(alias, target)
        console.print(f"exported {alias}: {folder}", highlight=False)


@app.command("pipeline")
def pipeline_command(ctx: typer.Context, rows: Rows = None, seed: Seed = None) -> None:
    """Run every stage: collect, curate, validate, explore, train, evaluate, register, promote.

    On the first run the baseline is registered as version 1 and made champion. A trained
    candidate becomes challenger only if it meets the contract's gate, beats the baseline and
    passes the fairness check, and champion only if it also beats the champion. When a gate
    refuses it, the champion stays, the reports and model card are still written, and the
    command exits with code 1 and says which number missed and by how much.

    Beating means a strictly better primary metric on the test split; a tie keeps the model in
    place. A candidate that decides exactly as the champion is not registered again, so running
    the pipeline twice on the same data changes nothing and exits 0.
    """
    from .pipeline import run_pipeline

    with _clear_errors():
        settings = _project(ctx).settings
        with console.status("starting") as status:
            result = run_pipeline(
                settings, rows, seed, step=lambda stage: status.update(f"{stage} ...")
            )
        console.print(result.curation.summary(), highlight=False, soft_wrap=True)
        console.print(result.validation.summary(), highlight=False, soft_wrap=True)
        judgement = result.judgement
        if judgement is not None:
            _show(judgement.candidate, "candidate")
        _show(result.baseline, "baseline")
        if judgement is not None:
            if judgement.champion is not None:
                version = judgement.champion.model_version
                _show(judgement.champion, f"champion before this run (version {version})")
            console.print(judgement.fairness.summary(), highlight=False, soft_wrap=True)
        for note in result.notes:
            console.print(note, highlight=False, soft_wrap=True)
        console.print(f"data report with plots: {result.exploration}", highlight=False)
        console.print(f"data statistics log: {settings.stats_log}", highlight=False)
        console.print(f"evaluation report: {result.report}", highlight=False)
        if judgement is not None:
            console.print(f"model card: {judgement.card}", highlight=False)
        if result.candidate_version is not None:
            console.print(f"candidate registered as version {result.candidate_version}")
        console.print(f"champion: version {result.champion_version}", highlight=False)
        for reason in result.reasons:
            console.print(f"[bold red]gate:[/] {reason}", highlight=False, soft_wrap=True)
        console.print("serve it with: uv run nox -s serve", highlight=False)
    if not result.passed:
        raise typer.Exit(1)


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(help="Interface to listen on.", show_default="settings host, 127.0.0.1"),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port.", show_default="settings port, 8000"),
    ] = None,
) -> None:
    """Serve the champion over HTTP: POST /predict, GET /health/live and /health/ready.

    The server's limits come from ml_contract.yaml serving (see app/server.py): connections
    beyond max_connections are answered 503, idle connections close after keep_alive_seconds,
    request heads over 16 KiB are refused, a head and a body must each arrive within
    body_timeout_seconds.
    """
    import uvicorn

    from .app.feedback import FeedbackStore, store_url
    from .app.server import server_options
    from .model.registry import load_champion

    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        # Refuse to start a service that could never become ready; the error says what to do.
        load_champion(settings, contract)
        FeedbackStore(
            store_url(settings), target=contract.task.target, ledger=settings.store_ledger
        ).close()
    uvicorn.run(
        f"{__package__}.app.api:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        **server_options(contract.serving),
    )


@app.command("feedback")
def feedback_command(
    ctx: typer.Context,
    new_store: Annotated[
        bool,
        typer.Option(
            "--new-store",
            help="Start an empty store where a store this project created has gone missing.",
        ),
    ] = False,
) -> None:
    """Summarise the prediction and feedback store: predictions logged, feedback received."""
    from .app.feedback import FeedbackStore, MissingStoreError, store_url

    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        url, ledger = store_url(settings), settings.store_ledger
        try:
            store = FeedbackStore(url, target=contract.task.target, ledger=ledger)
        except MissingStoreError:
            if not new_store:
                raise
            FeedbackStore(url, target=contract.task.target).forget(ledger)
            store = FeedbackStore(url, target=contract.task.target, ledger=ledger)
            console.print("[yellow]started an empty prediction store[/]", highlight=False)
        try:
            counts = store.counts()
        finally:
            store.close()
    console.print(
        f"{store.shown}: {counts['predictions']} predictions logged, "
        f"{counts['feedback']} feedback answers on {counts['labelled']} of them",
        highlight=False,
        soft_wrap=True,
    )
    if counts["labelled"]:
        console.print(
            "collect them as labelled data with data.source: feedback in ml_contract.yaml",
            highlight=False,
        )


@app.command("score")
def score_command(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the records with prediction, score and model_version: a .csv "
            "or .parquet file, replaced only when the run ends.",
        ),
    ],
    source: Annotated[
        Path | None,
        typer.Argument(help="CSV or Parquet file of records to score.", show_default=False),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(help="SQL query to score instead of a file, on the settings' database_url."),
    ] = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option(min=1, help="Rows read and scored at a time.", show_default="100000"),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Stop at the first bad row instead of listing it in a rejects file."
        ),
    ] = False,
) -> None:
    """Score a file or a query with the champion, in chunks; bad rows go to OUTPUT.rejects.csv."""
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from .model.registry import load_champion
    from .model.score import DEFAULT_CHUNK_ROWS, Chunk, file_chunks, query_chunks, score

    if (source is None) == (query is None):
        raise typer.BadParameter("give either a file to score or --query, not both")
    with _clear_errors():
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        if source is not None and source.resolve() == output.resolve():
            raise ValueError(f"{output}: the output would overwrite the input; choose another")
        model = load_champion(settings, contract)
        rows = chunk_rows or DEFAULT_CHUNK_ROWS
        if source is not None:
            chunks, shown = file_chunks(source, rows), source.name
        else:
            chunks, shown = query_chunks(settings.database_url, query or "", rows), "the query"
        columns = (
            TextColumn("scoring"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rows]:,} rows"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("scoring", total=None, rows=0)

            def advance(chunk: Chunk, rows_read: int) -> None:
                progress.update(task, completed=chunk.done, total=chunk.total, rows=rows_read)

            result = score(
                chunks, model, contract, output, source=shown, strict=strict, progress=advance
            )
        console.print(result.summary(), highlight=False, soft_wrap=True)
        for line in result.first_rejects:
            console.print(f"[yellow]rejected[/] {line}", highlight=False, soft_wrap=True)


MONITOR_EXIT_CODES = (
    "Exit codes: 0 no drift; 1 drift past the contract's data.drift_limit (retrain); "
    "3 too few logged predictions in the window to judge; 4 an error such as a missing "
    "reference; 2 a usage error."
)


@app.command("monitor", epilog=MONITOR_EXIT_CODES)
def monitor_command(
    ctx: typer.Context,
    since: Annotated[
        datetime | None,
        typer.Option(help="Start of the window, UTC unless a zone is given.", show_default=False),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(help="End of the window (excluded), UTC.", show_default="now"),
    ] = None,
    last: Annotated[
        str | None,
        typer.Option(
            help="The window as a length back from now: 30m, 24h, 7d. Not with --since.",
            show_default="24h unless --since or --until is given",
        ),
    ] = None,
    min_rows: Annotated[
        int, typer.Option(min=1, help="Fewest logged predictions worth measuring.")
    ] = 500,
) -> None:
    """Compare the logged predictions of a window with the training reference: PSI per feature.

    Writes reports/monitor/report.md with a plot, and metrics.prom for Prometheus.
    """
    from .app.feedback import FeedbackStore, store_url
    from .model.registry import load_champion
    from .model.score import score_frame
    from .monitor.drift import TooFewPredictionsError, monitor, write_report
    from .pipeline import read_reference

    if last is not None and since is not None:
        raise typer.BadParameter("give --since or --last, not both")
    window_end = _utc(until)
    window_start = _utc(since)
    if since is None and until is None:
        window_start = datetime.now(UTC) - _duration(last or "24h")
    elif last is not None:
        window_start = (window_end or datetime.now(UTC)) - _duration(last)
    try:
        settings = _project(ctx).settings
        contract = _project(ctx).contract
        features = read_reference(settings.reference_file)
        if features is None:
            raise ValueError(f"{settings.reference_file}: no training reference; run the pipeline")
        model = load_champion(settings, contract)
        store = FeedbackStore(store_url(settings))
        try:
            window = store.predictions_frame(window_start, window_end)
        finally:
            store.close()
        with console.status("measuring drift"):
            reference = score_frame(features, model, contract)
            report = monitor(window, reference, contract, min_rows=min_rows)
            path = write_report(
                report,
                window,
                reference,
                contract,
                settings.path(settings.reports_dir) / "monitor",
                since=window_start,
                until=window_end,
            )
    except TooFewPredictionsError as error:
        console.print(f"[yellow]{error}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(3) from None
    except (ProjectError, ValueError) as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(4) from None
    colour = "green" if report.within_limit else "bold red"
    first, *details = report.summary()
    console.print(f"[{colour}]{first}[/]", highlight=False, soft_wrap=True)
    for line in details:
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"drift report: {path}", highlight=False, soft_wrap=True)
    if not report.within_limit:
        raise typer.Exit(1)


def _utc(moment: datetime | None) -> datetime | None:
    """A time given without a zone is UTC, as the prediction log stores it."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _duration(text: str) -> timedelta:
    """30m, 24h or 7d as a length of time."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        raise typer.BadParameter(
            f"{text!r} is not a length such as 30m, 24h or 7d", param_hint="--last"
        )
    return timedelta(**{units[unit]: int(number)})
