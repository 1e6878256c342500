"""Registry: where the served model is kept, checked against the contract when it is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import Contract, Settings
from ..errors import ModelFileError
from ..files import write_atomic
from .baseline import Baseline


def save_champion(model: Baseline, path: Path) -> Path:
    """Store the model as the champion the service loads."""
    content = json.dumps({"kind": model.kind, "model": model.to_dict()}, indent=2) + "\n"
    return write_atomic(path, content.encode("utf-8"))


def load_champion(settings: Settings, contract: Contract) -> Baseline:
    """Load the champion, refusing a file that is unreadable or planned for other decisions."""
    path = settings.champion_file
    try:
        stored: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        model = Baseline.from_dict(stored["model"])
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no model yet; run the pipeline first") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelFileError(f"{path}: not a readable model file ({error})") from None
    planned = Baseline.from_contract(contract).to_dict()
    for key in ("threshold", "quantile", "classes"):
        if key in planned and planned[key] != stored["model"].get(key):
            raise ModelFileError(
                f"{path}: built for {key} {stored['model'].get(key)!r} but the contract says "
                f"{planned[key]!r}; run the pipeline again"
            )
    return model
