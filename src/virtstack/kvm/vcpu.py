"""Vcpu: a KVM vCPU fd — registers, and run() returning a typed exit read from the shared kvm_run page."""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
from dataclasses import dataclass

from virtstack.kvm import abi
from virtstack.kvm.errors import KvmError
from virtstack.kvm.ioctl import ioctl


@dataclass(frozen=True)
class VcpuExit:
    """Why KVM_RUN returned: the reason plus the fields that reason defines (port for I/O exits)."""

    reason: abi.ExitReason | int
    port: int | None = None
    direction: int | None = None
    size: int | None = None
    detail: str = ""

    def describe(self) -> str:
        name = self.reason.name if isinstance(self.reason, abi.ExitReason) else f"exit reason {self.reason}"
        if self.port is not None:
            return f"{name} port {self.port:#x}"
        return f"{name} {self.detail}".strip()


class Vcpu:
    """One vCPU: created by Vm.create_vcpu(); run() blocks in KVM_RUN with the GIL released."""

    def __init__(self, fd: int, vcpu_id: int, mmap_size: int) -> None:
        if mmap_size < ctypes.sizeof(abi.KvmRun):
            raise KvmError("KVM_GET_VCPU_MMAP_SIZE", 0, f"run area of {mmap_size} bytes is too small")
        self.fd = fd
        self.id = vcpu_id
        self._page = mmap.mmap(fd, mmap_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._run: abi.KvmRun | None = abi.KvmRun.from_buffer(self._page)

    def get_regs(self) -> abi.KvmRegs:
        regs = abi.KvmRegs()
        ioctl(self.fd, abi.KVM_GET_REGS, regs)
        return regs

    def set_regs(self, regs: abi.KvmRegs) -> None:
        ioctl(self.fd, abi.KVM_SET_REGS, regs)

    def get_sregs(self) -> abi.KvmSregs:
        sregs = abi.KvmSregs()
        ioctl(self.fd, abi.KVM_GET_SREGS, sregs)
        return sregs

    def set_sregs(self, sregs: abi.KvmSregs) -> None:
        ioctl(self.fd, abi.KVM_SET_SREGS, sregs)

    def run(self) -> VcpuExit:
        """Enter the guest until the next exit to userspace."""
        ioctl(self.fd, abi.KVM_RUN)
        return self.last_exit()

    def last_exit(self) -> VcpuExit:
        """Decode the exit described by the kvm_run page."""
        run = self._run
        if run is None:
            raise KvmError("KVM_RUN", 0, "vCPU is closed")
        code = run.exit_reason
        try:
            reason: abi.ExitReason | int = abi.ExitReason(code)
        except ValueError:
            reason = code
        if code == abi.ExitReason.IO:
            io = run.exit.io
            return VcpuExit(reason, port=io.port, direction=io.direction, size=io.size)
        if code == abi.ExitReason.INTERNAL_ERROR:
            return VcpuExit(reason, detail=f"suberror {run.exit.internal.suberror}")
        if code == abi.ExitReason.FAIL_ENTRY:
            return VcpuExit(reason, detail=f"hardware reason {run.exit.fail_entry.hardware_entry_failure_reason:#x}")
        return VcpuExit(reason)

    def close(self) -> None:
        self._run = None  # drop the ctypes view before unmapping
        if not self._page.closed:
            with contextlib.suppress(BufferError):
                self._page.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
