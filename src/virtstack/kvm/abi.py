"""The KVM userspace ABI: ctypes mirrors of <linux/kvm.h> structs (x86) and one table of ioctl numbers.

Rules of this file: data only, no calls into the kernel. Layouts follow linux/kvm.h and
arch/x86/include/uapi/asm/kvm.h (stable ABI since KVM_API_VERSION 12); the test suite checks each size.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from enum import IntEnum

KVM_API_VERSION = 12
"""The only API version Linux has shipped since 2.6.22; anything else is refused."""

# KVM_CHECK_EXTENSION capability numbers (linux/kvm.h)
KVM_CAP_NR_VCPUS = 9
"""The recommended maximum number of vCPUs per VM."""
KVM_CAP_MAX_VCPUS = 66
"""The hard maximum number of vCPUs per VM."""

KVMIO = 0xAE
"""The ioctl 'type' byte of every KVM ioctl (Documentation/userspace-api/ioctl/ioctl-number.rst)."""

# asm-generic/ioctl.h: nr 8 bits, type 8 bits, size 14 bits, direction 2 bits.
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (KVMIO << 8) | nr


class KvmUserspaceMemoryRegion(ctypes.Structure):
    """struct kvm_userspace_memory_region: maps host memory at a guest-physical address."""

    _fields_ = [
        ("slot", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("guest_phys_addr", ctypes.c_uint64),
        ("memory_size", ctypes.c_uint64),
        ("userspace_addr", ctypes.c_uint64),
    ]


class KvmRegs(ctypes.Structure):
    """struct kvm_regs (x86): general-purpose registers, rip and rflags."""

    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
            "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
            "rip", "rflags",
        )
    ]  # fmt: skip


class KvmSegment(ctypes.Structure):
    """struct kvm_segment (x86): a segment register with its hidden descriptor cache."""

    _fields_ = [
        ("base", ctypes.c_uint64),
        ("limit", ctypes.c_uint32),
        ("selector", ctypes.c_uint16),
        ("type", ctypes.c_uint8),
        ("present", ctypes.c_uint8),
        ("dpl", ctypes.c_uint8),
        ("db", ctypes.c_uint8),
        ("s", ctypes.c_uint8),
        ("l", ctypes.c_uint8),
        ("g", ctypes.c_uint8),
        ("avl", ctypes.c_uint8),
        ("unusable", ctypes.c_uint8),
        ("padding", ctypes.c_uint8),
    ]


class KvmDtable(ctypes.Structure):
    """struct kvm_dtable (x86): GDTR/IDTR."""

    _fields_ = [
        ("base", ctypes.c_uint64),
        ("limit", ctypes.c_uint16),
        ("padding", ctypes.c_uint16 * 3),
    ]


KVM_NR_INTERRUPTS = 256


class KvmSregs(ctypes.Structure):
    """struct kvm_sregs (x86): segment, descriptor-table and control registers."""

    _fields_ = [
        ("cs", KvmSegment),
        ("ds", KvmSegment),
        ("es", KvmSegment),
        ("fs", KvmSegment),
        ("gs", KvmSegment),
        ("ss", KvmSegment),
        ("tr", KvmSegment),
        ("ldt", KvmSegment),
        ("gdt", KvmDtable),
        ("idt", KvmDtable),
        ("cr0", ctypes.c_uint64),
        ("cr2", ctypes.c_uint64),
        ("cr3", ctypes.c_uint64),
        ("cr4", ctypes.c_uint64),
        ("cr8", ctypes.c_uint64),
        ("efer", ctypes.c_uint64),
        ("apic_base", ctypes.c_uint64),
        ("interrupt_bitmap", ctypes.c_uint64 * ((KVM_NR_INTERRUPTS + 63) // 64)),
    ]


class KvmRunIo(ctypes.Structure):
    """kvm_run.io: the port access that caused KVM_EXIT_IO; data sits at data_offset in the run page."""

    _fields_ = [
        ("direction", ctypes.c_uint8),
        ("size", ctypes.c_uint8),
        ("port", ctypes.c_uint16),
        ("count", ctypes.c_uint32),
        ("data_offset", ctypes.c_uint64),
    ]


class KvmRunFailEntry(ctypes.Structure):
    """kvm_run.fail_entry: the hardware's reason for refusing VM entry (KVM_EXIT_FAIL_ENTRY)."""

    _fields_ = [("hardware_entry_failure_reason", ctypes.c_uint64), ("cpu", ctypes.c_uint32)]


class KvmRunInternal(ctypes.Structure):
    """kvm_run.internal: KVM_EXIT_INTERNAL_ERROR details (suberror 1 = emulation failure)."""

    _fields_ = [
        ("suberror", ctypes.c_uint32),
        ("ndata", ctypes.c_uint32),
        ("data", ctypes.c_uint64 * 16),
    ]


class KvmRunExit(ctypes.Union):
    """The exit-reason union of struct kvm_run; the kernel reserves 256 bytes for it."""

    _fields_ = [
        ("io", KvmRunIo),
        ("fail_entry", KvmRunFailEntry),
        ("internal", KvmRunInternal),
        ("padding", ctypes.c_char * 256),
    ]


class KvmRun(ctypes.Structure):
    """The head of struct kvm_run, the page shared with the kernel that describes each exit."""

    _fields_ = [
        ("request_interrupt_window", ctypes.c_uint8),
        ("immediate_exit", ctypes.c_uint8),
        ("padding1", ctypes.c_uint8 * 6),
        ("exit_reason", ctypes.c_uint32),
        ("ready_for_interrupt_injection", ctypes.c_uint8),
        ("if_flag", ctypes.c_uint8),
        ("flags", ctypes.c_uint16),
        ("cr8", ctypes.c_uint64),
        ("apic_base", ctypes.c_uint64),
        ("exit", KvmRunExit),
    ]


class ExitReason(IntEnum):
    """KVM_EXIT_* (linux/kvm.h): why KVM_RUN returned to userspace."""

    UNKNOWN = 0
    EXCEPTION = 1
    IO = 2
    HYPERCALL = 3
    DEBUG = 4
    HLT = 5
    MMIO = 6
    IRQ_WINDOW_OPEN = 7
    SHUTDOWN = 8
    FAIL_ENTRY = 9
    INTR = 10
    SET_TPR = 11
    TPR_ACCESS = 12
    NMI = 16
    INTERNAL_ERROR = 17
    SYSTEM_EVENT = 24
    X86_RDMSR = 29
    X86_WRMSR = 30
    X86_BUS_LOCK = 33
    NOTIFY = 37


KVM_EXIT_IO_IN = 0
KVM_EXIT_IO_OUT = 1


@dataclass(frozen=True)
class Ioctl:
    """One KVM ioctl: its name (for errors) and request number."""

    name: str
    number: int


def _io(name: str, nr: int) -> Ioctl:
    return Ioctl(name, _ioc(_IOC_NONE, nr, 0))


def _ior(name: str, nr: int, struct: type[ctypes.Structure]) -> Ioctl:
    return Ioctl(name, _ioc(_IOC_READ, nr, ctypes.sizeof(struct)))


def _iow(name: str, nr: int, struct: type[ctypes.Structure]) -> Ioctl:
    return Ioctl(name, _ioc(_IOC_WRITE, nr, ctypes.sizeof(struct)))


# The one table of ioctls this layer uses (linux/kvm.h); names match the C macros.
KVM_GET_API_VERSION = _io("KVM_GET_API_VERSION", 0x00)
KVM_CREATE_VM = _io("KVM_CREATE_VM", 0x01)
KVM_CHECK_EXTENSION = _io("KVM_CHECK_EXTENSION", 0x03)
KVM_GET_VCPU_MMAP_SIZE = _io("KVM_GET_VCPU_MMAP_SIZE", 0x04)
KVM_CREATE_VCPU = _io("KVM_CREATE_VCPU", 0x41)
KVM_SET_USER_MEMORY_REGION = _iow("KVM_SET_USER_MEMORY_REGION", 0x46, KvmUserspaceMemoryRegion)
KVM_RUN = _io("KVM_RUN", 0x80)
KVM_GET_REGS = _ior("KVM_GET_REGS", 0x81, KvmRegs)
KVM_SET_REGS = _iow("KVM_SET_REGS", 0x82, KvmRegs)
KVM_GET_SREGS = _ior("KVM_GET_SREGS", 0x83, KvmSregs)
KVM_SET_SREGS = _iow("KVM_SET_SREGS", 0x84, KvmSregs)

IOCTLS: tuple[Ioctl, ...] = (
    KVM_GET_API_VERSION,
    KVM_CREATE_VM,
    KVM_CHECK_EXTENSION,
    KVM_GET_VCPU_MMAP_SIZE,
    KVM_CREATE_VCPU,
    KVM_SET_USER_MEMORY_REGION,
    KVM_RUN,
    KVM_GET_REGS,
    KVM_SET_REGS,
    KVM_GET_SREGS,
    KVM_SET_SREGS,
)
