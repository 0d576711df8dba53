"""Kvm: the /dev/kvm system fd (API version, capability checks, VM creation)."""

from __future__ import annotations

import os
from types import TracebackType

from virtstack.kvm import abi
from virtstack.kvm.errors import KvmError
from virtstack.kvm.ioctl import ioctl
from virtstack.kvm.vm import Vm

KVM_DEVICE = "/dev/kvm"


class Kvm:
    """An open /dev/kvm whose API version has been checked; closes on `with` exit."""

    def __init__(self, device: str = KVM_DEVICE) -> None:
        self.device = device
        try:
            self.fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise KvmError(f"open {device}", exc.errno or 0) from exc
        try:
            version = ioctl(self.fd, abi.KVM_GET_API_VERSION)
            if version != abi.KVM_API_VERSION:
                raise KvmError("KVM_GET_API_VERSION", 0, f"version {version}, need {abi.KVM_API_VERSION}")
        except BaseException:
            os.close(self.fd)
            raise

    def check_extension(self, cap: int) -> int:
        """KVM_CHECK_EXTENSION: 0 if the capability is absent, else its (often boolean) value."""
        return ioctl(self.fd, abi.KVM_CHECK_EXTENSION, cap)

    def vcpu_mmap_size(self) -> int:
        """Bytes to mmap from each vCPU fd: struct kvm_run plus the PIO data page(s)."""
        return ioctl(self.fd, abi.KVM_GET_VCPU_MMAP_SIZE)

    def create_vm(self) -> Vm:
        """KVM_CREATE_VM with the default machine type."""
        return Vm(self, ioctl(self.fd, abi.KVM_CREATE_VM, 0))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Kvm:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
