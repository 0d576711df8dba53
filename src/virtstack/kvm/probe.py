"""Is /dev/kvm usable *and fast*? Runs a hand-assembled real-mode loop in a one-vCPU VM and times it.

Why: on nested hosts (e.g. the PVM module on these CI machines) /dev/kvm exists and works but boots a
guest far slower than TCG would (the loop below runs ~1000x slower than on hardware), so "KVM present"
is not a reason to use it. The probe times two
things a booting guest does constantly — plain instructions and exits to the VMM — and calls KVM fast
only when both are near hardware speed. The whole probe runs under a wall-clock budget: iteration
counts grow only as far as the previous run predicts they fit, and the caller never waits longer than
`timeout_s` even if the kernel misbehaves (the measurement runs in a daemon thread).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from virtstack.kvm import abi
from virtstack.kvm.errors import KvmError
from virtstack.kvm.system import KVM_DEVICE, Kvm
from virtstack.kvm.vcpu import Vcpu
from virtstack.kvm.vm import Vm

GUEST_MEMORY_SIZE = 0x10000
"""64 KiB at guest-physical 0: enough for the code below and a real-mode stack."""

LOOP_ADDR = 0x1000
LOOP_DONE_PORT = 0x10
# Real mode (16-bit), entered with ECX = iterations:
#   1000: 66 49     dec ecx          ; 0x66 = operand-size prefix -> 32-bit ECX in 16-bit code
#   1002: 75 FC     jnz 0x1000       ; rel8 -4, back to the dec
#   1004: E6 10     out 0x10, al     ; KVM_EXIT_IO: the loop is done
#   1006: F4        hlt              ; KVM_EXIT_HLT on re-entry (no in-kernel irqchip)
LOOP_CODE = bytes([0x66, 0x49, 0x75, 0xFC, 0xE6, LOOP_DONE_PORT, 0xF4])

EXIT_ADDR = 0x1010
EXIT_PORT = 0x11
#   1010: E6 11     out 0x11, al     ; one KVM_EXIT_IO per KVM_RUN
#   1012: EB FC     jmp 0x1010       ; rel8 -4: on re-entry, exit again
EXIT_CODE = bytes([0xE6, EXIT_PORT, 0xEB, 0xFC])

FAST_LOOP_NS = 2.0
"""Hardware runs `dec ecx; jnz` at about one iteration per cycle (<0.5 ns); 2 ns leaves room for a slow
host while any instruction-emulating hypervisor is 100x past it."""

FAST_EXIT_NS = 50_000.0
"""A port-I/O exit to userspace and back costs ~1-5 us on bare metal and tens of us nested on VMX/SVM;
a booting Linux takes thousands of exits a second, so beyond 50 us it loses to TCG."""

DEFAULT_BUDGET_S = 0.3
DEFAULT_TIMEOUT_S = 2.0
_RUN_TARGET_S = 0.02
_MAX_ITERATIONS = 1 << 31
_REPEATS = 3
TIMEOUT_REASON = "probe did not finish within"


@dataclass(frozen=True)
class ProbeResult:
    """What the probe found. `fast` implies `usable` implies `available`; `reason` says why not."""

    available: bool
    usable: bool
    fast: bool
    loop_ns: float | None = None
    iterations_per_second: float | None = None
    exit_ns: float | None = None
    iterations: int = 0
    exits: int = 0
    elapsed_s: float = 0.0
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        """A plain dict for caches and reports."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ProbeResult:
        """Inverse of to_json; unknown keys are ignored so old caches stay readable."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})  # type: ignore[arg-type]

    @property
    def definitive(self) -> bool:
        """False when the probe was cut off by its timeout: worth asking again, not worth caching."""
        return not self.reason.startswith(TIMEOUT_REASON)

    def summary(self) -> str:
        """One line for logs and `python -m virtstack.kvm.probe`."""
        if not self.usable:
            return f"kvm: {'unusable' if self.available else 'unavailable'}: {self.reason}"
        verdict = "fast" if self.fast else "slow"
        return (
            f"kvm: {verdict}: loop {self.loop_ns:.3g} ns/iteration ({self.iterations_per_second:.3g}/s), "
            f"exit {(self.exit_ns or 0) / 1000:.3g} us; {self.reason}"
        )


class _ProbeVm:
    """A one-vCPU VM with one memory slot, in real mode, holding LOOP_CODE and EXIT_CODE."""

    def __init__(self, kvm: Kvm) -> None:
        self.vm: Vm = kvm.create_vm()
        try:
            slot = self.vm.add_memory(0, GUEST_MEMORY_SIZE)
            slot.write(LOOP_ADDR, LOOP_CODE)
            slot.write(EXIT_ADDR, EXIT_CODE)
            self.vcpu: Vcpu = self.vm.create_vcpu(0)
            sregs = self.vcpu.get_sregs()
            # Reset state is real mode with CS at the reset vector (base 0xffff0000); flatten CS to 0.
            sregs.cs.base = 0
            sregs.cs.selector = 0
            self.vcpu.set_sregs(sregs)
        except BaseException:
            self.vm.close()
            raise

    def close(self) -> None:
        self.vm.close()

    def _enter(self, rip: int, rcx: int = 0) -> None:
        regs = self.vcpu.get_regs()
        regs.rip, regs.rcx, regs.rflags = rip, rcx, 0x2  # bit 1 of RFLAGS is reserved, always 1
        self.vcpu.set_regs(regs)

    def _run_expect(self, reason: abi.ExitReason, port: int | None = None) -> None:
        got = self.vcpu.run()
        if got.reason != reason or (port is not None and got.port != port):
            raise KvmError("KVM_RUN", 0, f"expected {reason.name} exit, got {got.describe()}")

    def time_loop(self, iterations: int) -> float:
        """Seconds for `iterations` rounds of dec/jnz, from KVM_RUN to the closing port write."""
        self._enter(LOOP_ADDR, iterations)
        start = time.perf_counter()
        self._run_expect(abi.ExitReason.IO, LOOP_DONE_PORT)
        elapsed = time.perf_counter() - start
        self._run_expect(abi.ExitReason.HLT)
        return elapsed

    def time_exits(self, count: int) -> float:
        """Seconds for `count` KVM_RUN calls that each take one port-I/O exit."""
        self._enter(EXIT_ADDR)
        start = time.perf_counter()
        for _ in range(count):
            self._run_expect(abi.ExitReason.IO, EXIT_PORT)
        return time.perf_counter() - start


def _measure(device: str, budget_s: float) -> ProbeResult:
    start = time.perf_counter()
    try:
        kvm = Kvm(device)
    except KvmError as exc:
        return ProbeResult(False, False, False, elapsed_s=time.perf_counter() - start, reason=str(exc))
    try:
        vm = _ProbeVm(kvm)
        try:
            iterations, loop_s = _calibrate(vm.time_loop, 1000, _MAX_ITERATIONS, start, budget_s)
            exits, exit_s = _calibrate(vm.time_exits, 10, 10_000, start, budget_s)
        finally:
            vm.close()
    except (KvmError, OSError) as exc:
        return ProbeResult(True, False, False, elapsed_s=time.perf_counter() - start, reason=str(exc))
    finally:
        kvm.close()
    return _verdict(iterations, loop_s, exits, exit_s, time.perf_counter() - start)


def _verdict(iterations: int, loop_s: float, exits: int, exit_s: float, elapsed_s: float) -> ProbeResult:
    """Turn raw timings into a ProbeResult; fast only if both costs are within hardware limits."""
    loop_ns = loop_s * 1e9 / iterations
    exit_ns = exit_s * 1e9 / exits
    fast = loop_ns <= FAST_LOOP_NS and exit_ns <= FAST_EXIT_NS
    if fast:
        reason = "runs at hardware speed"
    else:
        slow = []
        if loop_ns > FAST_LOOP_NS:
            slow.append(f"loop {loop_ns:.3g} ns/iteration > {FAST_LOOP_NS} ns")
        if exit_ns > FAST_EXIT_NS:
            slow.append(f"exit {exit_ns / 1000:.3g} us > {FAST_EXIT_NS / 1000:.0f} us")
        reason = f"slow ({', '.join(slow)}); use TCG"
    return ProbeResult(
        available=True, usable=True, fast=fast, loop_ns=loop_ns, iterations_per_second=1e9 / loop_ns,
        exit_ns=exit_ns, iterations=iterations, exits=exits, elapsed_s=elapsed_s, reason=reason,
    )  # fmt: skip


def _calibrate(
    timed: Callable[[int], float], first: int, ceiling: int, start: float, budget_s: float
) -> tuple[int, float]:
    """Grow the count until one run takes ~_RUN_TARGET_S or the next would overrun the budget.

    Then repeat that run while the budget allows and keep the fastest: a run the host scheduler
    interrupted is slower, never faster. Returns (count, seconds) of the largest count; its per-unit
    cost is the least distorted by fixed entry/exit costs.
    """

    def fits(seconds: float) -> bool:  # keep half of what is left for the other measurement
        return seconds <= (budget_s - (time.perf_counter() - start)) / 2

    count = first
    seconds = timed(count)
    while seconds < _RUN_TARGET_S and count < ceiling:
        per_unit = max(seconds, 1e-7) / count
        wanted = min(ceiling, max(count * 2, int(_RUN_TARGET_S / per_unit)), count * 1000)
        if not fits(wanted * per_unit):
            break
        count, seconds = wanted, timed(wanted)
    for _ in range(_REPEATS - 1):
        if not fits(seconds):
            break
        seconds = min(seconds, timed(count))
    return count, seconds


def probe(device: str = KVM_DEVICE, *, budget_s: float = DEFAULT_BUDGET_S,
          timeout_s: float = DEFAULT_TIMEOUT_S) -> ProbeResult:  # fmt: skip
    """Run the probe now (no cache). Returns within `timeout_s` whatever the kernel does."""
    if not os.path.exists(device):
        return ProbeResult(False, False, False, reason=f"{device} does not exist")
    box: list[ProbeResult] = []

    def worker() -> None:
        box.append(_measure(device, budget_s))

    thread = threading.Thread(target=worker, name="kvm-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not box:
        return ProbeResult(True, False, False, elapsed_s=timeout_s,
                           reason=f"{TIMEOUT_REASON} {timeout_s} s")  # fmt: skip
    return box[0]


def main(argv: list[str] | None = None) -> int:
    """`python -m virtstack.kvm.probe [--json] [--cached] [--device PATH]`: run the probe and print it."""
    parser = argparse.ArgumentParser(prog="python -m virtstack.kvm.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=KVM_DEVICE)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--cached", action="store_true",
                        help="answer as choose_accel() does: this boot's cached result if there is one")  # fmt: skip
    args = parser.parse_args(argv)
    if args.cached:
        from virtstack.kvm.accel import probe_cached

        result = probe_cached(device=args.device)
    else:
        result = probe(args.device)
    accel = "kvm" if result.usable and result.fast else "tcg"
    print(json.dumps({**result.to_json(), "accel": accel}) if args.json else f"{result.summary()} -> {accel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
