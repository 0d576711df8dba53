"""choose_accel(): probes once per boot, caches in a file keyed by boot id, maps to the domain type."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from virtstack.kvm import accel
from virtstack.kvm.probe import ProbeResult

needs_kvm = pytest.mark.skipif(
    not os.access("/dev/kvm", os.R_OK | os.W_OK), reason="/dev/kvm is absent or not accessible here"
)


@pytest.fixture(autouse=True)
def _fresh_memo() -> Iterator[None]:
    accel.forget()
    yield
    accel.forget()


def _write(cache: Path, result: ProbeResult, boot: str, device: str = "/dev/kvm") -> None:
    cache.write_text(json.dumps({"boot_id": boot, "device": device, "result": result.to_json()}))


@needs_kvm
def test_first_call_probes_and_writes_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "probe.json"
    result = accel.probe_cached(cache=cache)
    assert result.usable
    data = json.loads(cache.read_text())
    assert data["boot_id"] == accel.boot_id() != ""
    assert ProbeResult.from_json(data["result"]) == result
    expected = "kvm" if result.fast else "tcg"
    assert accel.choose_accel(cache=cache) == expected
    assert accel.choose_domain_type(cache=cache) == ("kvm" if result.fast else "qemu")


def test_cache_of_this_boot_is_trusted(tmp_path: Path) -> None:
    cache = tmp_path / "probe.json"
    _write(cache, ProbeResult(True, True, True, loop_ns=0.3, reason="cached"), accel.boot_id())
    assert accel.choose_accel(cache=cache) == "kvm"
    assert accel.choose_domain_type(cache=cache) == "kvm"


def test_cache_of_another_boot_is_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "probe.json"
    _write(cache, ProbeResult(True, True, True, reason="old boot"), "not-this-boot")
    result = accel.probe_cached(cache=cache, device=str(tmp_path / "no-kvm"))
    assert not result.available
    # the stale file was replaced by this boot's answer for that device
    assert json.loads(cache.read_text())["boot_id"] == accel.boot_id()


def test_no_kvm_means_tcg_and_domain_type_qemu(tmp_path: Path) -> None:
    cache = tmp_path / "probe.json"
    missing = str(tmp_path / "kvm")
    assert accel.choose_accel(cache=cache, device=missing) == "tcg"
    assert accel.choose_domain_type(cache=cache, device=missing) == "qemu"


def test_memo_answers_without_reading_the_file_again(tmp_path: Path) -> None:
    cache = tmp_path / "probe.json"
    _write(cache, ProbeResult(True, True, False, reason="slow"), accel.boot_id())
    assert accel.choose_accel(cache=cache) == "tcg"
    _write(cache, ProbeResult(True, True, True, reason="changed"), accel.boot_id())
    assert accel.choose_accel(cache=cache) == "tcg"
    assert accel.probe_cached(cache=cache, refresh=False).reason == "slow"


def test_corrupt_cache_is_reprobed(tmp_path: Path) -> None:
    cache = tmp_path / "probe.json"
    cache.write_text("{not json")
    result = accel.probe_cached(cache=cache, device=str(tmp_path / "kvm"))
    assert not result.available
    assert json.loads(cache.read_text())["result"]["available"] is False


def test_default_cache_path_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(accel.CACHE_ENV, str(tmp_path / "x.json"))
    assert accel.default_cache_path() == tmp_path / "x.json"
    monkeypatch.delenv(accel.CACHE_ENV)
    if os.geteuid() == 0:
        assert accel.default_cache_path() == Path("/run/virtstack/kvm-probe.json")


def test_a_timed_out_probe_is_not_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A KVM_RUN that hangs cannot be produced on demand; stand in for the probe's timeout answer.
    cut_off = ProbeResult(True, False, False, reason="probe did not finish within 2.0 s")
    assert not cut_off.definitive
    monkeypatch.setattr(accel, "probe", lambda device: cut_off)
    cache = tmp_path / "probe.json"
    assert accel.choose_accel(cache=cache) == "tcg"
    assert not cache.exists()
