"""ioctl(2) through ctypes: releases the GIL while the kernel works, turns failures into KvmError."""

from __future__ import annotations

import ctypes
import ctypes.util

from virtstack.kvm.abi import Ioctl
from virtstack.kvm.errors import KvmError

# CDLL (not PyDLL) drops the GIL around every foreign call, so a vCPU thread blocked in KVM_RUN does
# not stall the rest of the process.
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.ioctl.restype = ctypes.c_int
_libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]


def ioctl(fd: int, request: Ioctl, arg: ctypes.Structure | int | None = None) -> int:
    """Issue `request` on `fd`; `arg` is a struct (passed by pointer), an integer, or nothing."""
    pointer: ctypes.c_void_p | None
    if isinstance(arg, ctypes.Structure):
        pointer = ctypes.c_void_p(ctypes.addressof(arg))
    elif arg is None:
        pointer = None
    else:
        pointer = ctypes.c_void_p(arg)
    result = int(_libc.ioctl(fd, request.number, pointer))
    if result < 0:
        raise KvmError(request.name, ctypes.get_errno())
    return result
