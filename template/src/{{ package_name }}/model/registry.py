"""Registry: models kept in MLflow, loaded by alias and checked against their recorded hash.

A model is registered in four steps, and an alias only ever points at a finished one:

1. its files (the baseline's JSON, or a trained candidate's skops file and metadata) are written
   to a scratch folder and hashed (SHA-256 over every file's name and content);
2. an MLflow run is created and the files are logged as its `model` artifact;
3. a model version is created from that artifact with the hash, the model's kind and the
   contract's decisions as version tags;
4. only when the version is READY and its tags read back is it returned; `set_alias` checks the
   same before it moves `champion` or `challenger` to it.

Loading downloads the artifact again, refuses it when its hash differs from the recorded one,
rebuilds the model by its kind and sets its version number. A project's default registry is
the SQLite file mlflow.db with artifacts under mlartifacts/; MLFLOW_TRACKING_URI (or the
contract's registry.tracking_uri) points it at a tracking server instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess  # nosec B404 # git only, with fixed arguments (git_commit)
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..config import Contract, Settings
from ..errors import ModelFileError
from ..files import create_whole, write_atomic
from .baseline import Baseline
from .evaluate import Model

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)
ARTIFACT_PATH = "model"
EXPORT_FILE = "registered.json"
BASELINE_FILE = "baseline.json"
HASH_TAG = "sha256"
KIND_TAG = "model_kind"
DECISIONS_TAG = "decisions"
READY_SECONDS = 60.0

# Our calls fail fast when the registry does not answer; a user's own values win.
HTTP_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


class RegistryError(ModelFileError):
    """The registry does not answer or refused a request.

    A ModelFileError too: a service that cannot reach its registry has no model to serve, and
    says why instead of failing.
    """


class StaleModelError(ModelFileError):
    """A registered model was built for other decisions than the contract's current ones."""


def model_digest(directory: Path) -> str:
    """SHA-256 over the name and content of every file below directory, in name order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode("ascii") + b"\n")
    return digest.hexdigest()


def write_model(model: Model, directory: Path) -> list[Path]:
    """Write a model's files into directory: the baseline as JSON, a candidate its own way."""
    if isinstance(model, Baseline):
        # In the order the baseline holds its points: it adds them up in that order, and another
        # order could change its scores in the last bit, so that a reloaded baseline would no
        # longer be recognised as the one registered.
        content = json.dumps(model.to_dict(), indent=2) + "\n"
        return [write_atomic(directory / BASELINE_FILE, content.encode("utf-8"))]
    from .train import Candidate

    if not isinstance(model, Candidate):
        raise ModelFileError(f"cannot store a model of kind {model.kind!r}")
    return model.save(directory)


def read_model(directory: Path, kind: str) -> Model:
    """Rebuild a model of the given kind from the files write_model wrote."""
    if kind == "baseline":
        path = directory / BASELINE_FILE
        try:
            return Baseline.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelFileError(f"{path}: not a readable baseline ({error})") from None
    from .train import Candidate

    return Candidate.load(directory)


def contract_decisions(contract: Contract) -> dict[str, Any]:
    """The contract's decisions a registered model is built for."""
    return {
        "threshold": contract.decision.threshold,
        "quantile": contract.decision.quantile,
        "classes": contract.task.classes,
    }


def _check_decisions(recorded: Mapping[str, Any], contract: Contract, where: str) -> None:
    for key, planned in contract_decisions(contract).items():
        if recorded.get(key) != planned:
            raise StaleModelError(
                f"{where}: built for {key} {recorded.get(key)!r} but the contract says "
                f"{planned!r}; run the pipeline again"
            )


def _verified(directory: Path, recorded: str, where: str) -> None:
    actual = model_digest(directory)
    if actual != recorded:
        raise ModelFileError(
            f"{where}: the model files do not match the hash recorded at registration "
            f"(sha256 {actual[:12]}… instead of {recorded[:12]}…); refusing a tampered or "
            "corrupt model"
        )


def shown_uri(uri: str) -> str:
    """The URI without a password, for messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _reason(error: Exception) -> str:
    """The useful part of an MLflow or HTTP error, on one line."""
    text = str(error)
    found = re.search(r"\[Errno -?\d+\] [^\"')\]]+|Read timed out|timed out", text)
    if found:
        return found.group(0).strip()
    return text.strip().splitlines()[0][:200] if text.strip() else type(error).__name__


@contextlib.contextmanager
def _fast_http() -> Iterator[None]:
    """MLflow's HTTP settings for our calls only: no retries, a short timeout, no telemetry."""
    added = {key: value for key, value in HTTP_ENVIRONMENT.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def replace_directory(directory: Path, fill: Callable[[Path], object]) -> Path:
    """Fill a scratch folder beside directory, then swap it in, so no half-written folder stays.

    Args:
        directory: The folder to create or replace.
        fill: Writes the new content into the folder it is given.

    Returns:
        The directory.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    old = directory.with_name(f".{directory.name}.old")
    try:
        fill(scratch)
        scratch.chmod(0o755)
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            directory.rename(old)
        scratch.rename(directory)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return directory


def git_commit(directory: Path) -> str | None:
    """The commit checked out in directory, or None outside a git repository."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        result = subprocess.run(  # noqa: S603 - fixed arguments, no shell  # nosec B603
            [git, "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def make_store(database: Path) -> None:
    """Create an embedded MLflow store's tables in the SQLite file database (empty or new).

    MLflow creates them on a store's first use, one schema migration after another, which
    takes seconds: the registry makes a new store on a file beside its own and links it into
    place whole (files.create_whole), so that no other process (the suites beside the pipeline
    in `uv run nox`, a server started beside a first pipeline) opens half a schema and
    migrates it too.
    """
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as Models
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as Runs
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{database}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # The first call of each side creates its tables: the tracking store's, then the registry's.
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)
    # MLflow keeps an engine per URI with the file open; close it, or Windows keeps the file.
    for store in (Runs, Models):
        engine = getattr(store, "_engine_map", {}).pop(uri, None)
        if engine is not None:
            engine.dispose()


class Registry:
    """The project's MLflow model registry: register, alias, load and export models."""

    def __init__(self, settings: Settings, contract: Contract) -> None:
        """Point at the registry the settings and contract name; nothing is contacted yet."""
        self.settings = settings
        self.contract = contract
        self.uri = settings.tracking_uri(contract)
        self.name = contract.registry.model_name
        self._client: MlflowClient | None = None

    @property
    def where(self) -> str:
        """The registry and model name, for messages."""
        return f"{shown_uri(self.uri)} model {self.name!r}"

    def _local_database(self) -> Path | None:
        """The SQLite file of an embedded registry, or None for any other registry."""
        prefix = "sqlite:///"
        return Path(self.uri.removeprefix(prefix)) if self.uri.startswith(prefix) else None

    def exists(self) -> bool:
        """Whether there can be anything registered: False for an embedded store not made yet."""
        database = self._local_database()
        return database is None or database.exists()

    @contextlib.contextmanager
    def _calls(self, doing: str) -> Iterator[MlflowClient]:
        """A client whose failures become one RegistryError line saying what was being done."""
        from mlflow.exceptions import MlflowException

        with _fast_http():
            try:
                yield self._connect()
            # requests' errors are OSErrors: a server that does not answer lands here too.
            except (MlflowException, OSError) as error:
                raise RegistryError(
                    f"{shown_uri(self.uri)}: cannot {doing} ({_reason(error)}); check that the "
                    "registry answers, or unset MLFLOW_TRACKING_URI to use the embedded one"
                ) from None

    def _connect(self) -> MlflowClient:
        if self._client is None:
            # MLflow announces every schema migration of a new SQLite store at INFO level.
            logging.getLogger("mlflow").setLevel(logging.WARNING)
            logging.getLogger("alembic").setLevel(logging.WARNING)
            from mlflow.tracking import MlflowClient

            database = self._local_database()
            if database is not None and not database.exists():
                create_whole(database, make_store)
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def _experiment_id(self, client: MlflowClient) -> str:
        experiment_name = self.contract.project.slug
        found = client.get_experiment_by_name(experiment_name)
        if found is not None:
            return str(found.experiment_id)
        location = None
        if urlsplit(self.uri).scheme.split("+")[0] in DATABASE_SCHEMES:
            location = self.settings.path(Path("mlartifacts")).resolve().as_uri()
        # A tracking server chooses (and proxies) its own artifact store.
        return str(client.create_experiment(experiment_name, artifact_location=location))

    def log_run(
        self,
        run_name: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        artifacts: Mapping[str, Path] | None = None,
    ) -> str:
        """Record one finished run (a training trial, say) and return its id.

        Args:
            run_name: The run's name in the MLflow UI.
            params: Parameters, logged as text.
            metrics: Numbers; NaN is logged as it is.
            tags: Tags such as the data manifest hash and the git commit.
            artifacts: Files or folders to keep with the run, by artifact path.
        """
        from mlflow.entities import Metric, Param, RunTag

        with self._calls(f"record the run {run_name!r}") as client:
            run = client.create_run(self._experiment_id(client), run_name=run_name)
            run_id = str(run.info.run_id)
            status = "FAILED"
            try:
                stamp = int(time.time() * 1000)
                client.log_batch(
                    run_id,
                    metrics=[
                        Metric(key, float(value), stamp, 0)
                        for key, value in (metrics or {}).items()
                    ],
                    params=[Param(key, str(value)[:6000]) for key, value in (params or {}).items()],
                    tags=[RunTag(key, value) for key, value in (tags or {}).items()],
                )
                for artifact_path, path in (artifacts or {}).items():
                    if path.is_dir():
                        client.log_artifacts(run_id, str(path), artifact_path)
                    else:
                        client.log_artifact(run_id, str(path), artifact_path)
                status = "FINISHED"
            finally:
                with contextlib.suppress(Exception):
                    client.set_terminated(run_id, status)
        return run_id

    def register(self, model: Model, *, tags: Mapping[str, str]) -> int:
        """Register a model as a new version and return its number; no alias is touched.

        Args:
            model: The baseline or a trained candidate.
            tags: Kept on the run and on the version (data manifest hash, git commit, metrics).

        Returns:
            The new version number, READY, with its hash recorded.
        """
        with tempfile.TemporaryDirectory(prefix="model-") as scratch:
            folder = Path(scratch) / ARTIFACT_PATH
            write_model(model, folder)
            digest = model_digest(folder)
            version_tags = {
                **tags,
                HASH_TAG: digest,
                KIND_TAG: model.kind,
                DECISIONS_TAG: json.dumps(contract_decisions(self.contract), sort_keys=True),
            }
            run_id = self.log_run(
                f"register {model.kind}", tags=version_tags, artifacts={ARTIFACT_PATH: folder}
            )
        with self._calls(f"register a version of {self.name!r}") as client:
            self._ensure_registered_model(client)
            run = client.get_run(run_id)
            created = client.create_model_version(
                self.name,
                source=f"{run.info.artifact_uri}/{ARTIFACT_PATH}",
                run_id=run_id,
                tags=version_tags,
            )
            version = int(created.version)
            try:
                self._wait_ready(client, version, digest)
            except RegistryError:
                with contextlib.suppress(Exception):
                    client.delete_model_version(self.name, str(version))
                raise
        model.version = version
        return version

    def _ensure_registered_model(self, client: MlflowClient) -> None:
        from mlflow.exceptions import MlflowException

        try:
            client.get_registered_model(self.name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            client.create_registered_model(
                self.name, description=f"{self.contract.project.name}: {self.contract.project.goal}"
            )

    def _wait_ready(self, client: MlflowClient, version: int, digest: str) -> ModelVersion:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            found = client.get_model_version(self.name, str(version))
            if found.status == "READY":
                if found.tags.get(HASH_TAG) != digest:
                    raise RegistryError(
                        f"{self.where} version {version}: its hash was not recorded"
                    )
                return found
            if found.status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
                raise RegistryError(
                    f"{self.where} version {version}: registration did not finish "
                    f"({found.status}: {found.status_message or 'no reason given'})"
                )
            time.sleep(0.5)

    def set_alias(self, alias: str, version: int) -> None:
        """Point alias at a version, after checking that it is READY with its hash recorded."""
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias {alias!r}; use one of {', '.join(ALIASES)}")
        with self._calls(f"set the alias {alias!r}") as client:
            found = client.get_model_version(self.name, str(version))
            if found.status != "READY" or HASH_TAG not in found.tags:
                raise RegistryError(
                    f"{self.where} version {version} is not ready to be {alias} ({found.status})"
                )
            client.set_registered_model_alias(self.name, alias, str(version))

    def remove_alias(self, alias: str) -> None:
        """Take an alias off whichever version holds it (nothing happens when none does)."""
        if self.version_of(alias) is None:
            return
        with self._calls(f"remove the alias {alias!r}") as client:
            client.delete_registered_model_alias(self.name, alias)

    def version_of(self, alias: str) -> int | None:
        """The version an alias points at, or None when it points nowhere yet."""
        found = self._by_alias(alias)
        return None if found is None else int(found.version)

    def _by_alias(self, alias: str) -> ModelVersion | None:
        if not self.exists():
            return None
        from mlflow.exceptions import MlflowException

        with self._calls(f"read the alias {alias!r}") as client:
            try:
                return client.get_model_version_by_alias(self.name, alias)
            except MlflowException as error:
                if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    return None
                raise

    def latest_version(self) -> int | None:
        """The newest registered version, with or without an alias; None before the first."""
        if not self.exists():
            return None
        with self._calls(f"list the versions of {self.name!r}") as client:
            versions = client.search_model_versions(f"name = '{self.name}'")
        return max((int(found.version) for found in versions), default=None)

    def load_version(self, version: int) -> Model:
        """One registered version, its files checked against the recorded hash (see load)."""
        with self._calls(f"read version {version} of {self.name!r}") as client:
            found = client.get_model_version(self.name, str(version))
        with tempfile.TemporaryDirectory(prefix="model-") as scratch:
            folder = self._download(found, Path(scratch))
            return self._rebuild(found, folder)

    def _version(self, alias: str) -> ModelVersion:
        found = self._by_alias(alias)
        if found is None:
            raise ModelFileError(f"{self.where}: no {alias} registered yet; run the pipeline first")
        return found

    def load(self, alias: str = CHAMPION) -> Model:
        """The model an alias points at, its files checked against the recorded hash.

        Raises:
            ModelFileError: Nothing holds the alias, the files do not match their hash, or the
                model was built for other decisions than the contract's (StaleModelError).
            RegistryError: The registry does not answer.
        """
        found = self._version(alias)
        with tempfile.TemporaryDirectory(prefix="model-") as scratch:
            folder = self._download(found, Path(scratch))
            return self._rebuild(found, folder)

    def _download(self, found: ModelVersion, destination: Path) -> Path:
        with self._calls(f"download version {found.version} of {self.name!r}") as client:
            local = client.download_artifacts(str(found.run_id), ARTIFACT_PATH, str(destination))
        return Path(local)

    def _rebuild(self, found: ModelVersion, folder: Path) -> Model:
        where = f"{self.where} version {found.version}"
        recorded = found.tags.get(HASH_TAG)
        if not recorded:
            raise ModelFileError(f"{where}: no hash was recorded, so it is not trusted")
        _verified(folder, recorded, where)
        _check_decisions(json.loads(found.tags.get(DECISIONS_TAG, "{}")), self.contract, where)
        model = read_model(folder, found.tags.get(KIND_TAG, ""))
        model.version = int(found.version)
        return model

    def export(self, alias: str, directory: Path) -> Path:
        """Copy the model an alias points at into directory, with its hash, for a container.

        The folder holds `model/` (the artifact) and `registered.json` (name, version, kind,
        hash, decisions); a folder already there is replaced in one step once the copy is
        checked.

        Returns:
            The export folder.
        """
        found = self._version(alias)

        def fill(scratch: Path) -> None:
            folder = self._download(found, scratch)
            if folder != scratch / ARTIFACT_PATH:
                folder.rename(scratch / ARTIFACT_PATH)
            self._rebuild(found, scratch / ARTIFACT_PATH)
            record = {
                "model_name": self.name,
                "version": int(found.version),
                "alias": alias,
                KIND_TAG: found.tags[KIND_TAG],
                HASH_TAG: found.tags[HASH_TAG],
                DECISIONS_TAG: json.loads(found.tags.get(DECISIONS_TAG, "{}")),
            }
            content = json.dumps(record, indent=2, sort_keys=True) + "\n"
            write_atomic(scratch / EXPORT_FILE, content.encode("utf-8"))

        return replace_directory(directory, fill)


def load_exported(directory: Path, contract: Contract) -> Model:
    """Load a model that `export` wrote, checked against its recorded hash and the contract."""
    record_file = directory / EXPORT_FILE
    try:
        record: dict[str, Any] = json.loads(record_file.read_text(encoding="utf-8"))
        recorded, kind, version = record[HASH_TAG], record[KIND_TAG], int(record["version"])
        decisions = record[DECISIONS_TAG]
    except FileNotFoundError:
        raise ModelFileError(
            f"{record_file}: not found; fill the folder with the export-model command"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelFileError(f"{record_file}: not a readable export record ({error})") from None
    where = f"{directory} (version {version})"
    _verified(directory / ARTIFACT_PATH, recorded, where)
    _check_decisions(decisions, contract, where)
    model = read_model(directory / ARTIFACT_PATH, kind)
    model.version = version
    return model


def load_champion(settings: Settings, contract: Contract) -> Model:
    """The model to serve: the exported folder settings.model_dir if set, else the champion."""
    if settings.model_dir is not None:
        return load_exported(settings.path(settings.model_dir), contract)
    return Registry(settings, contract).load(CHAMPION)
