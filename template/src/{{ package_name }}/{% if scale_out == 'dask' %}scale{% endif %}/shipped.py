"""The champion sent to Dask workers: its exported files, loaded once per worker, hash-checked.

The client exports the champion as `export-model` does (or reads the model_dir folder) and
sends the files once to every worker. Each worker process writes them to a scratch folder and
loads them with `model.registry.load_exported`, which refuses files whose hash differs from the
recorded one or a model built for other decisions than the contract's; the loaded model is kept
for every later partition of the run.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..config import Contract, Settings
from ..model.evaluate import Model
from ..model.registry import CHAMPION, EXPORT_FILE, Registry, load_exported

_LOADED: dict[str, Model] = {}
_LOADING = threading.Lock()


@dataclass(frozen=True)
class ShippedModel:
    """An exported model folder as bytes: relative path -> content."""

    files: dict[str, bytes]
    version: int

    def load(self, contract: Contract) -> Model:
        """The model, loaded and hash-checked on the first call in this process, then kept."""
        key = _key(self)
        with _LOADING:
            if key not in _LOADED:
                with tempfile.TemporaryDirectory(prefix="shipped-model-") as scratch:
                    folder = Path(scratch)
                    for name, content in self.files.items():
                        path = folder / name
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(content)
                    _LOADED[key] = load_exported(folder, contract)
            return _LOADED[key]


def _key(shipped: ShippedModel) -> str:
    # The export record holds the artifact's hash: the same record means the same model.
    return hashlib.sha256(shipped.files[EXPORT_FILE]).hexdigest()


def ship(settings: Settings, contract: Contract) -> ShippedModel:
    """The model to score with, as files: the model_dir folder if set, else the champion's."""
    if settings.model_dir is not None:
        folder = settings.path(settings.model_dir)
        model = load_exported(folder, contract)
        return ShippedModel(_read_folder(folder), int(model.version))
    with tempfile.TemporaryDirectory(prefix="champion-") as scratch:
        folder = Registry(settings, contract).export(CHAMPION, Path(scratch) / "export")
        model = load_exported(folder, contract)
        return ShippedModel(_read_folder(folder), int(model.version))


def _read_folder(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
