"""Kvm opens the real /dev/kvm, checks the API version and answers capability queries."""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

import pytest

from virtstack.kvm import abi
from virtstack.kvm.errors import KvmError
from virtstack.kvm.system import Kvm

needs_kvm = pytest.mark.skipif(
    not os.access("/dev/kvm", os.R_OK | os.W_OK), reason="/dev/kvm is absent or not accessible here"
)
KVM_CAP_USER_MEMORY = 3  # linux/kvm.h


@needs_kvm
def test_open_and_query() -> None:
    with Kvm() as kvm:
        assert kvm.fd >= 0
        assert kvm.vcpu_mmap_size() >= ctypes.sizeof(abi.KvmRun)
        assert kvm.check_extension(KVM_CAP_USER_MEMORY) > 0
    assert kvm.fd == -1


def test_missing_device_names_the_step_and_errno(tmp_path: Path) -> None:
    with pytest.raises(KvmError) as info:
        Kvm(str(tmp_path / "kvm"))
    assert info.value.errno == errno.ENOENT
    assert info.value.ioctl == f"open {tmp_path / 'kvm'}"


def test_a_non_kvm_device_fails_the_version_check() -> None:
    with pytest.raises(KvmError) as info:
        Kvm("/dev/null")
    assert info.value.ioctl == "KVM_GET_API_VERSION" and info.value.errno == errno.ENOTTY
