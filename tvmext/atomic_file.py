"""Write files atomically: a temporary file beside the target, renamed when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from tvmext.errors import TvmextError


def current_umask() -> int:
    """The process's umask (reading it means setting it: set back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_folder(path: str) -> str:
    """The folder ``path`` would be written to; an error naming ``path`` if it is missing."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise TvmextError(f"cannot write {path!r}: folder {folder!r} does not exist")
    return folder


@contextlib.contextmanager
def atomic_output(path: str, *, executable: bool = False) -> Iterator[str]:
    """Yield a temporary path to write; on success it becomes ``path`` (with the usual
    permissions), on failure it is removed. A missing folder is an error naming ``path``."""
    folder = check_folder(path)
    fd, tmp = tempfile.mkstemp(suffix=os.path.splitext(path)[1], prefix=".tvmext-", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, (0o777 if executable else 0o666) & ~current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
