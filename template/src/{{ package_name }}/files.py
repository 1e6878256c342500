"""Write files so that a crash never leaves half of one behind."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def write_atomic(path: Path, content: bytes) -> Path:
    """Write content to a temporary file beside path, then move it into place in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes a private file; keep the mode a replaced file had, else an ordinary one.
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).chmod(mode)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside path, moved into place only when the block ends without error.

    For output written piece by piece (too large to hold as bytes): write to the yielded path;
    an exception or interrupt removes it and leaves path as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    staged = Path(temporary)
    try:
        yield staged
        with staged.open("rb+") as stream:
            os.fsync(stream.fileno())
        staged.chmod(mode)
        staged.replace(path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def png(figure: Figure) -> bytes:
    """A matplotlib figure as PNG bytes, at the resolution it was made with."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi="figure")
    return buffer.getvalue()
