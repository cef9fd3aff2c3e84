"""Atomic file writes: an artefact is either complete or absent, never half-written."""
from __future__ import annotations

import os
import pathlib
import tempfile


def write_text(path: str | os.PathLike, text: str) -> pathlib.Path:
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | os.PathLike, data: bytes) -> pathlib.Path:
    path = pathlib.Path(path)
    if path.is_dir():
        from harness.errors import HarnessError

        raise HarnessError(f"'{path}' is a directory; give a file name to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Same directory as the target so os.replace never crosses a file system.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        from harness.errors import HarnessError

        raise HarnessError(f"cannot write '{path}' ({exc.strerror or exc}); choose a writable place") from None
    # mkstemp makes the file private (0600); an artefact gets the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
