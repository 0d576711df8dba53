"""The capability probe against the real QEMU binary, and its disk cache."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from virtstack.virt.drivers.qemu.capabilities import MachineType, QemuCaps, probe_qemu_caps
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError

QEMU = "/usr/bin/qemu-system-x86_64"
needs_qemu = pytest.mark.skipif(not shutil.which(QEMU), reason=f"{QEMU} is not installed")


@needs_qemu
def test_probe_reports_real_binary_facts(tmp_path: Path) -> None:
    caps = probe_qemu_caps(QEMU, cache_dir=tmp_path)
    assert caps.version[:2] == (7, 2)
    assert caps.version_int == caps.version[0] * 1_000_000 + caps.version[1] * 1000 + caps.version[2]
    default = caps.default_machine()
    assert default is not None and default.alias == "pc" and default.name.startswith("pc-i440fx-")
    assert caps.canonical_machine("q35").startswith("pc-q35-")
    assert caps.canonical_machine("pc-i440fx-2.1") == "pc-i440fx-2.1"
    assert "tcg" in caps.accelerators
    assert any(c.name == "qemu64" for c in caps.cpu_models)
    assert caps.has_type("virtio-blk-pci") and "bootindex" in caps.device_props["virtio-blk-pci"]
    assert "machine.hpet" not in caps.flags  # the 7.2 release: libvirt still uses -no-hpet
    # the host CPU TCG emulates (always probed) and each model's blockers, for host-model CPUs
    tcg = caps.host_cpu_props["tcg"]
    assert isinstance(tcg["family"], int) and tcg.get("sse2") is True
    assert "qemu64" in caps.cpu_blockers["tcg"]


@needs_qemu
def test_cache_is_used_while_binary_unchanged(tmp_path: Path) -> None:
    first = probe_qemu_caps(QEMU, cache_dir=tmp_path)
    [cache_file] = list(tmp_path.iterdir())
    stored = json.loads(cache_file.read_text())
    stored["caps"]["version"] = [1, 2, 3]  # prove the next answer comes from the file
    cache_file.write_text(json.dumps(stored))
    cached = probe_qemu_caps(QEMU, cache_dir=tmp_path)
    assert cached.version == (1, 2, 3)
    assert cached.machines == first.machines and cached.qom_types == first.qom_types


@needs_qemu
def test_stale_cache_is_reprobed(tmp_path: Path) -> None:
    probe_qemu_caps(QEMU, cache_dir=tmp_path)
    [cache_file] = list(tmp_path.iterdir())
    stored = json.loads(cache_file.read_text())
    stored["caps"]["version"] = [1, 2, 3]
    stored["key"]["mtime_ns"] -= 1  # as if the binary had been replaced since
    cache_file.write_text(json.dumps(stored))
    assert probe_qemu_caps(QEMU, cache_dir=tmp_path).version[:2] == (7, 2)


def test_missing_binary_is_a_libvirt_error(tmp_path: Path) -> None:
    with pytest.raises(VirtError) as e:
        probe_qemu_caps(str(tmp_path / "no-such-qemu"), cache_dir=tmp_path)
    assert e.value.code == ErrorCode.INTERNAL_ERROR and e.value.domain == ErrorDomain.QEMU
    assert "no-such-qemu" in e.value.message


def test_broken_binary_is_a_libvirt_error(tmp_path: Path) -> None:
    fake = tmp_path / "qemu"
    fake.write_text("#!/bin/sh\necho 'qemu: cannot start' >&2\nexit 1\n")
    os.chmod(fake, 0o755)
    with pytest.raises(VirtError) as e:
        probe_qemu_caps(str(fake), cache_dir=tmp_path / "cache")
    assert "cannot start" in e.value.message


def test_hand_built_caps_round_trip_json() -> None:
    caps = QemuCaps(
        emulator="/x",
        version=(7, 2, 50),
        machines=[MachineType("pc-q35-7.2", "q35", False, 288)],
        qom_types=frozenset({"pcie-root-port"}),
        flags=frozenset({"machine.hpet"}),
    )
    again = QemuCaps.from_json(json.loads(json.dumps(caps.to_json())))
    assert again == caps
    assert again.machine("q35") == caps.machines[0]
