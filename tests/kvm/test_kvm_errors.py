"""KvmError names the failed ioctl and keeps the kernel's errno."""

from __future__ import annotations

import errno
import os

import pytest

from virtstack.kvm import abi
from virtstack.kvm.errors import KvmError
from virtstack.kvm.ioctl import ioctl


def test_message_names_ioctl_and_errno() -> None:
    err = KvmError("KVM_CREATE_VM", errno.ENOMEM)
    assert err.errno == errno.ENOMEM
    assert err.ioctl == "KVM_CREATE_VM"
    assert err.errno_name == "ENOMEM"
    assert str(err) == f"KVM_CREATE_VM failed: {os.strerror(errno.ENOMEM)}"
    assert isinstance(err, OSError)


def test_detail_without_errno() -> None:
    err = KvmError("KVM_RUN", 0, "expected IO exit, got HLT")
    assert str(err) == "KVM_RUN failed: unexpected result (expected IO exit, got HLT)"


def test_real_ioctl_on_a_non_kvm_fd_raises_with_the_kernel_errno() -> None:
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        with pytest.raises(KvmError) as info:
            ioctl(fd, abi.KVM_GET_API_VERSION)
    finally:
        os.close(fd)
    assert info.value.ioctl == "KVM_GET_API_VERSION"
    assert info.value.errno == errno.ENOTTY
