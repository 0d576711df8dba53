"""Vm: memory slots and vCPU creation on the real /dev/kvm."""

from __future__ import annotations

import os

import pytest

from virtstack.kvm.errors import KvmError
from virtstack.kvm.system import Kvm

pytestmark = pytest.mark.skipif(
    not os.access("/dev/kvm", os.R_OK | os.W_OK), reason="/dev/kvm is absent or not accessible here"
)


def test_memory_slot_is_written_by_guest_address() -> None:
    with Kvm() as kvm, kvm.create_vm() as vm:
        slot = vm.add_memory(0x10000, 0x4000)
        slot.write(0x10010, b"\xf4")
        assert slot.host[0x10] == 0xF4
        with pytest.raises(ValueError):
            slot.write(0x14000 - 1, b"\x00\x00")
        with pytest.raises(ValueError):
            slot.write(0xFFFF, b"\x00")
        assert [s.slot for s in vm.slots] == [0]
    assert vm.fd == -1 and slot.host.closed


def test_unaligned_memory_is_refused_before_the_kernel_sees_it() -> None:
    with Kvm() as kvm, kvm.create_vm() as vm:
        with pytest.raises(ValueError):
            vm.add_memory(0x100, 0x1000)
        with pytest.raises(ValueError):
            vm.add_memory(0, 100)


def test_overlapping_slot_is_refused_by_the_kernel() -> None:
    with Kvm() as kvm, kvm.create_vm() as vm:
        vm.add_memory(0, 0x2000)
        with pytest.raises(KvmError) as info:
            vm.add_memory(0x1000, 0x2000)
        assert info.value.ioctl == "KVM_SET_USER_MEMORY_REGION"


def test_duplicate_vcpu_id_is_refused_by_the_kernel() -> None:
    with Kvm() as kvm, kvm.create_vm() as vm:
        vm.create_vcpu(0)
        with pytest.raises(KvmError) as info:
            vm.create_vcpu(0)
        assert info.value.ioctl == "KVM_CREATE_VCPU"
