"""Atomic file writes: a reader sees the old content or the new one, never half of either."""

from __future__ import annotations

import itertools
import os


def write_atomic(path: str | os.PathLike[str], data: bytes | str, mode: int = 0o600) -> None:
    """Write `data` to `path` through a temp file in the same directory, fsync, then rename over.

    Like libvirt's virFileRewrite, the directory itself is not fsynced: the rename is atomic, and a
    crash at worst leaves the previous complete version, at the cost of one journal commit less a write.
    The temp name carries pid and a counter (unique without tempfile's random names: this runs on every
    define); O_EXCL still refuses a name someone else holds.
    """
    target = os.fspath(path)
    payload = data.encode() if isinstance(data, str) else data
    head, name = os.path.split(target)
    while True:
        tmp = os.path.join(head, f".{name}.{os.getpid()}.{next(_counter)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
            break
        except FileExistsError:
            continue
    try:
        try:
            os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        remove_if_exists(tmp)
        raise


_counter = itertools.count()


def remove_if_exists(path: str | os.PathLike[str]) -> bool:
    """Unlink `path`; True if it existed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
