"""The ctypes mirrors match <linux/kvm.h> (x86_64): sizes, offsets and ioctl numbers."""

from __future__ import annotations

import ctypes

from virtstack.kvm import abi

# Values printed by a C program compiled against linux-libc-dev's <linux/kvm.h> (sizeof, _IO* macros).
EXPECTED_IOCTLS = {
    "KVM_GET_API_VERSION": 0xAE00,
    "KVM_CREATE_VM": 0xAE01,
    "KVM_CHECK_EXTENSION": 0xAE03,
    "KVM_GET_VCPU_MMAP_SIZE": 0xAE04,
    "KVM_CREATE_VCPU": 0xAE41,
    "KVM_SET_USER_MEMORY_REGION": 0x4020AE46,
    "KVM_RUN": 0xAE80,
    "KVM_GET_REGS": 0x8090AE81,
    "KVM_SET_REGS": 0x4090AE82,
    "KVM_GET_SREGS": 0x8138AE83,
    "KVM_SET_SREGS": 0x4138AE84,
}


def test_struct_sizes_match_the_kernel_headers() -> None:
    assert ctypes.sizeof(abi.KvmRegs) == 144
    assert ctypes.sizeof(abi.KvmSegment) == 24
    assert ctypes.sizeof(abi.KvmDtable) == 16
    assert ctypes.sizeof(abi.KvmSregs) == 312
    assert ctypes.sizeof(abi.KvmUserspaceMemoryRegion) == 32
    assert ctypes.sizeof(abi.KvmRunExit) == 256


def test_kvm_run_layout() -> None:
    assert abi.KvmRun.exit_reason.offset == 8
    assert abi.KvmRun.cr8.offset == 16
    assert abi.KvmRun.exit.offset == 32
    assert abi.KvmRunIo.port.offset == 2
    assert abi.KvmRunIo.data_offset.offset == 8


def test_ioctl_table_matches_the_c_macros() -> None:
    table = {ioctl.name: ioctl.number for ioctl in abi.IOCTLS}
    assert table == EXPECTED_IOCTLS
    assert len(set(table.values())) == len(table)


def test_exit_reasons_are_the_kernel_numbers() -> None:
    assert abi.ExitReason.IO == 2
    assert abi.ExitReason.HLT == 5
    assert abi.ExitReason.SHUTDOWN == 8
    assert abi.ExitReason.FAIL_ENTRY == 9
    assert abi.ExitReason.INTERNAL_ERROR == 17
    assert abi.ExitReason.SYSTEM_EVENT == 24
