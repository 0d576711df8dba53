"""The speed probe against the real /dev/kvm of this machine, plus its verdict rules."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from virtstack.kvm import probe as probe_mod
from virtstack.kvm.probe import FAST_EXIT_NS, FAST_LOOP_NS, ProbeResult, probe

needs_kvm = pytest.mark.skipif(
    not os.access("/dev/kvm", os.R_OK | os.W_OK), reason="/dev/kvm is absent or not accessible here"
)
PVM_HOST = Path("/sys/module/kvm_pvm").exists()


@needs_kvm
def test_real_probe_runs_the_loop_and_reports_consistently() -> None:
    start = time.monotonic()
    result = probe()
    wall = time.monotonic() - start
    assert result.available and result.usable, result.reason
    assert result.loop_ns is not None and result.loop_ns > 0
    assert result.exit_ns is not None and result.exit_ns > 0
    assert result.iterations >= 1000 and result.exits >= 10
    assert result.iterations_per_second == pytest.approx(1e9 / result.loop_ns)
    assert result.fast == (result.loop_ns <= FAST_LOOP_NS and result.exit_ns <= FAST_EXIT_NS)
    assert wall < probe_mod.DEFAULT_TIMEOUT_S + 2.0  # the hard bound holds (slack for a loaded machine)
    print(result.summary())


@needs_kvm
@pytest.mark.skipif(not PVM_HOST, reason="not a kvm_pvm host")
def test_probe_calls_the_nested_pvm_module_slow() -> None:
    result = probe()
    assert result.usable
    assert not result.fast
    assert result.reason.startswith("slow")


def test_missing_device_is_unavailable(tmp_path: Path) -> None:
    result = probe(str(tmp_path / "kvm"))
    assert (result.available, result.usable, result.fast) == (False, False, False)
    assert "does not exist" in result.reason


def test_a_device_that_is_not_kvm_is_unusable_with_the_ioctl_named() -> None:
    result = probe("/dev/null")
    assert not result.usable and not result.fast
    assert "KVM_GET_API_VERSION failed" in result.reason


def test_verdict_fast_needs_both_loop_and_exit_fast() -> None:
    fast = probe_mod._verdict(10_000_000, 0.003, 1000, 0.002, 0.1)
    assert fast.fast and fast.reason == "runs at hardware speed"
    assert fast.loop_ns == pytest.approx(0.3)
    slow_exit = probe_mod._verdict(10_000_000, 0.003, 100, 0.02, 0.1)
    assert not slow_exit.fast and "exit 200 us" in slow_exit.reason
    slow_loop = probe_mod._verdict(10_000, 0.012, 1000, 0.002, 0.1)
    assert not slow_loop.fast and "loop 1.2e+03 ns/iteration" in slow_loop.reason


def test_caller_is_released_after_the_timeout_even_if_kvm_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    # A KVM_RUN that never returns cannot be produced on demand; stand in for it with a blocked worker.
    release = threading.Event()

    def hung(device: str, budget_s: float) -> ProbeResult:
        release.wait(10)
        return ProbeResult(True, True, True)

    monkeypatch.setattr(probe_mod, "_measure", hung)
    start = time.monotonic()
    result = probe("/dev/null", timeout_s=0.2)
    release.set()
    assert time.monotonic() - start < 3.0  # returned long before the hung run (10 s) would have
    assert not result.usable and "did not finish within 0.2 s" in result.reason


def test_result_round_trips_through_json() -> None:
    result = ProbeResult(True, True, False, loop_ns=5.0, iterations_per_second=2e8, reason="x")
    assert ProbeResult.from_json({**result.to_json(), "future_field": 1}) == result


def test_calibration_repeats_and_keeps_the_fastest_run() -> None:
    calls: list[int] = []
    durations = iter([0.001, 0.03, 0.05, 0.02])

    def timed(count: int) -> float:
        calls.append(count)
        return next(durations)

    count, seconds = probe_mod._calibrate(timed, 1000, 1 << 31, time.perf_counter(), budget_s=10.0)
    assert calls == [1000, 20000, 20000, 20000]
    assert (count, seconds) == (20000, 0.02)


def test_calibration_stops_growing_at_the_budget() -> None:
    calls: list[int] = []

    def timed(count: int) -> float:
        calls.append(count)
        return count * 1e-6  # 1 us per unit: 20 ms target would need 20000 units

    count, _ = probe_mod._calibrate(timed, 1000, 1 << 31, time.perf_counter(), budget_s=0.005)
    assert set(calls) == {1000} and count == 1000  # repeated, never grown past the budget


def test_command_line_prints_the_verdict_and_accel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert probe_mod.main(["--device", str(tmp_path / "kvm")]) == 0
    assert capsys.readouterr().out.strip() == f"kvm: unavailable: {tmp_path / 'kvm'} does not exist -> tcg"
    assert probe_mod.main(["--device", str(tmp_path / "kvm"), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"accel": "tcg"' in out and '"available": false' in out
