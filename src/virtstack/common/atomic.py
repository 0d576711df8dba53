"""Atomic file writes: a reader sees the old content or the new one, never half of either."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], data: bytes | str, mode: int = 0o600) -> None:
    """Write `data` to `path` through a temp file in the same directory, fsync, then rename over.

    Like libvirt's virFileRewrite, the directory itself is not fsynced: the rename is atomic, and a
    crash at worst leaves the previous complete version, at the cost of one journal commit less a write.
    """
    target = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def remove_if_exists(path: str | os.PathLike[str]) -> bool:
    """Unlink `path`; True if it existed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
