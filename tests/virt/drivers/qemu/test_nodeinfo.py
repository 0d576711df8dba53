"""Host facts shared by the QEMU driver's entry points: the kernel's CPU lists and libvirt's cpumaps."""

from __future__ import annotations

import pytest

from virtstack.virt.drivers.qemu.nodeinfo import cpumap_bytes, parse_cpu_list


@pytest.mark.parametrize(
    ("text", "cpus"), [("0-3,8\n", [0, 1, 2, 3, 8]), ("0\n", [0]), ("", []), ("2-3,5-6", [2, 3, 5, 6])]
)
def test_parse_cpu_list(text: str, cpus: list[int]) -> None:
    assert parse_cpu_list(text.strip()) == cpus


def test_cpumap_bytes_sets_one_bit_per_cpu_and_drops_cpus_past_the_map() -> None:
    assert cpumap_bytes({0, 1}, 1) == b"\x03"
    assert cpumap_bytes([0, 2, 9], 2) == b"\x05\x02"
    assert cpumap_bytes({0, 9, 17}, 2) == b"\x01\x02"
    assert cpumap_bytes(set(), 3) == b"\0\0\0"
    assert cpumap_bytes([], 0) == b""
