"""Vcpu: registers round-trip and run() returns typed exits, on the real /dev/kvm with tiny real-mode code."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from virtstack.kvm import abi
from virtstack.kvm.errors import KvmError
from virtstack.kvm.system import Kvm
from virtstack.kvm.vcpu import Vcpu
from virtstack.kvm.vm import MemorySlot

pytestmark = pytest.mark.skipif(
    not os.access("/dev/kvm", os.R_OK | os.W_OK), reason="/dev/kvm is absent or not accessible here"
)

CODE_ADDR = 0x1000


@dataclass
class Machine:
    memory: MemorySlot
    cpu: Vcpu

    def load(self, code: bytes) -> None:
        """Put `code` at CODE_ADDR and point the vCPU at it."""
        self.memory.write(CODE_ADDR, code)
        regs = self.cpu.get_regs()
        regs.rip, regs.rflags = CODE_ADDR, 0x2
        self.cpu.set_regs(regs)


@pytest.fixture
def machine() -> Iterator[Machine]:
    """A real-mode vCPU with CS flattened to base 0 and 16 KiB of memory at 0."""
    with Kvm() as kvm, kvm.create_vm() as vm:
        memory = vm.add_memory(0, 0x4000)
        cpu = vm.create_vcpu(0)
        sregs = cpu.get_sregs()
        sregs.cs.base, sregs.cs.selector = 0, 0
        cpu.set_sregs(sregs)
        yield Machine(memory, cpu)


def test_registers_round_trip(machine: Machine) -> None:
    regs = machine.cpu.get_regs()
    regs.rax, regs.rbx, regs.rip = 0x1234, 0xABCD, 0x2000
    machine.cpu.set_regs(regs)
    again = machine.cpu.get_regs()
    assert (again.rax, again.rbx, again.rip) == (0x1234, 0xABCD, 0x2000)
    assert machine.cpu.get_sregs().cs.base == 0


def test_out_then_hlt_give_typed_exits(machine: Machine) -> None:
    machine.load(bytes([0xB0, 0x5A, 0xE6, 0x42, 0xF4]))  # mov al, 0x5a ; out 0x42, al ; hlt
    first = machine.cpu.run()
    assert first.reason == abi.ExitReason.IO
    assert (first.port, first.direction, first.size) == (0x42, abi.KVM_EXIT_IO_OUT, 1)
    assert first.describe() == "IO port 0x42"
    assert machine.cpu.get_regs().rax & 0xFF == 0x5A
    second = machine.cpu.run()
    assert second.reason == abi.ExitReason.HLT and second.describe() == "HLT"


def test_port_read_is_an_in_exit(machine: Machine) -> None:
    machine.load(bytes([0xE4, 0x61, 0xF4]))  # in al, 0x61 ; hlt
    exit_ = machine.cpu.run()
    assert (exit_.reason, exit_.port, exit_.direction) == (abi.ExitReason.IO, 0x61, abi.KVM_EXIT_IO_IN)


def test_run_after_close_names_kvm_run(machine: Machine) -> None:
    machine.cpu.close()
    with pytest.raises(KvmError) as info:
        machine.cpu.run()
    assert info.value.ioctl == "KVM_RUN"


def test_kvm_run_releases_the_gil(machine: Machine) -> None:
    """A vCPU thread blocked in KVM_RUN must not stall Python code in other threads."""
    import threading
    import time

    from virtstack.kvm import probe

    measured = probe.probe()
    assert measured.loop_ns is not None
    guest_s = 0.6
    iterations = min(int(guest_s * 1e9 / measured.loop_ns), (1 << 31) - 1)
    machine.memory.write(probe.LOOP_ADDR, probe.LOOP_CODE)
    regs = machine.cpu.get_regs()
    regs.rip, regs.rcx, regs.rflags = probe.LOOP_ADDR, iterations, 0x2
    machine.cpu.set_regs(regs)
    exits: list[object] = []
    run_s: list[float] = []

    def vcpu_body() -> None:
        start = time.perf_counter()
        exits.append(machine.cpu.run())
        run_s.append(time.perf_counter() - start)

    vcpu_thread = threading.Thread(target=vcpu_body)
    longest_gap, last = 0.0, time.perf_counter()
    vcpu_thread.start()
    while vcpu_thread.is_alive():
        now = time.perf_counter()
        longest_gap, last = max(longest_gap, now - last), now
    vcpu_thread.join()
    assert exits and getattr(exits[0], "port", None) == probe.LOOP_DONE_PORT
    assert run_s[0] > 0.1, "the guest loop was too short to tell"
    # Holding the GIL in KVM_RUN would freeze this loop for the whole guest run.
    assert longest_gap < run_s[0] / 2, f"main thread stalled {longest_gap * 1000:.0f} ms of a {run_s[0] * 1000:.0f} ms KVM_RUN"
