"""Vm: a KVM VM fd (guest memory slots backed by anonymous mmaps, vCPU creation)."""

from __future__ import annotations

import ctypes
import mmap
import os
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from virtstack.kvm import abi
from virtstack.kvm.errors import KvmError
from virtstack.kvm.ioctl import ioctl
from virtstack.kvm.vcpu import Vcpu

if TYPE_CHECKING:
    from virtstack.kvm.system import Kvm


@dataclass
class MemorySlot:
    """One KVM memory slot: guest-physical range and the host mapping that backs it."""

    slot: int
    guest_phys_addr: int
    host: mmap.mmap

    @property
    def size(self) -> int:
        return len(self.host)

    def write(self, guest_addr: int, data: bytes) -> None:
        """Copy `data` into guest memory at a guest-physical address inside this slot."""
        offset = guest_addr - self.guest_phys_addr
        if offset < 0 or offset + len(data) > self.size:
            raise ValueError(f"{guest_addr:#x}+{len(data)} is outside slot {self.slot}")
        self.host[offset : offset + len(data)] = data


class Vm:
    """A VM created by Kvm.create_vm(); owns its memory slots and vCPUs and closes them with itself."""

    def __init__(self, kvm: Kvm, fd: int) -> None:
        self.kvm = kvm
        self.fd = fd
        self.slots: list[MemorySlot] = []
        self.vcpus: list[Vcpu] = []

    def add_memory(self, guest_phys_addr: int, size: int) -> MemorySlot:
        """mmap `size` bytes of anonymous memory and map them at `guest_phys_addr` (page-aligned)."""
        if size <= 0 or size % mmap.PAGESIZE or guest_phys_addr % mmap.PAGESIZE:
            raise ValueError("guest memory must be whole pages at a page-aligned address")
        host = mmap.mmap(-1, size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        view = ctypes.c_char.from_buffer(host)
        address = ctypes.addressof(view)
        del view  # release the buffer export, or the mmap could never be closed
        slot = MemorySlot(len(self.slots), guest_phys_addr, host)
        region = abi.KvmUserspaceMemoryRegion(slot=slot.slot, flags=0, guest_phys_addr=guest_phys_addr,
                                              memory_size=size, userspace_addr=address)  # fmt: skip
        try:
            ioctl(self.fd, abi.KVM_SET_USER_MEMORY_REGION, region)
        except KvmError:
            host.close()
            raise
        self.slots.append(slot)
        return slot

    def create_vcpu(self, vcpu_id: int = 0) -> Vcpu:
        """KVM_CREATE_VCPU and map its kvm_run page."""
        fd = ioctl(self.fd, abi.KVM_CREATE_VCPU, vcpu_id)
        try:
            vcpu = Vcpu(fd, vcpu_id, self.kvm.vcpu_mmap_size())
        except BaseException:
            os.close(fd)
            raise
        self.vcpus.append(vcpu)
        return vcpu

    def close(self) -> None:
        """Close vCPUs, then the VM fd, then unmap guest memory (the kernel drops its references first)."""
        for vcpu in self.vcpus:
            vcpu.close()
        self.vcpus.clear()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for slot in self.slots:
            slot.host.close()
        self.slots.clear()

    def __enter__(self) -> Vm:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
