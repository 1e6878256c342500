"""Write files so that a crash never leaves half of one behind."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
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


def create_whole(path: Path, make: Callable[[Path], object]) -> bool:
    """Make path with make(staged) on a file beside it, then link it into place if still absent.

    For a file that another process may open or make at the same moment (an SQLite database
    whose tables take seconds to create): whoever sees path sees all of it, and when two
    processes make it at once the first one's is kept and the other's thrown away.

    Returns:
        Whether this call's file is the one in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    staged = Path(temporary)
    try:
        make(staged)
        with staged.open("rb+") as stream:
            os.fsync(stream.fileno())
        staged.chmod(0o644)
        try:
            os.link(staged, path)  # fails if path exists: never replaces another's file
        except FileExistsError:
            return False
        except OSError:
            # No hard links on this file system (FAT, some shares): a move, which replaces a
            # file made in the last instant only.
            if path.exists():
                return False
            staged.replace(path)
        return True
    finally:
        # A file still held open elsewhere cannot be removed on Windows: it is a stray copy.
        with suppress(OSError):
            staged.unlink(missing_ok=True)


def png(figure: Figure) -> bytes:
    """A matplotlib figure as PNG bytes, at the resolution it was made with."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi="figure")
    return buffer.getvalue()
