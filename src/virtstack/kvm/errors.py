"""KvmError: a failed KVM call, naming the ioctl (or step) and carrying the kernel's errno."""

from __future__ import annotations

import errno as errno_mod
import os


class KvmError(OSError):
    """A KVM ioctl or /dev/kvm operation failed; `ioctl` names it, `errno` says why."""

    def __init__(self, ioctl: str, err: int, detail: str = "") -> None:
        self.ioctl = ioctl
        self.detail = detail
        message = f"{ioctl} failed: {os.strerror(err) if err else 'unexpected result'}"
        if detail:
            message += f" ({detail})"
        super().__init__(err, message)

    def __str__(self) -> str:
        return str(self.args[1])

    @property
    def errno_name(self) -> str:
        """Symbolic errno ('ENOENT') for logs and probe reasons."""
        return errno_mod.errorcode.get(self.errno or 0, str(self.errno))
