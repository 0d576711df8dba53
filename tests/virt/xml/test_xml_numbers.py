"""Numbers in domain XML are read the way libvirt reads them (strtoull rules, LLONG_MAX bytes of memory).

Expected answers were taken from the real libvirt 9.0 (`virsh -c test:///default define`).
"""

from __future__ import annotations

import pytest

from virtstack.virt.errors import ErrorCode, VirtError
from virtstack.virt.xml.domain import parse_domain


def _domain(memory: str = "1024", vcpu: str = "1", unit: str = "") -> str:
    unit_attr = f" unit='{unit}'" if unit else ""
    return (
        f"<domain type='qemu'><name>t</name><memory{unit_attr}>{memory}</memory><vcpu>{vcpu}</vcpu>"
        "<os><type>hvm</type></os></domain>"
    )


@pytest.mark.parametrize(
    ("memory", "unit", "kib"),
    [("+5", "", 5), ("9007199254740991", "", 9007199254740991), ("2", "MiB", 2048)],
)
def test_accepted_memory(memory: str, unit: str, kib: int) -> None:
    assert parse_domain(_domain(memory=memory, unit=unit)).memory_kib == kib


@pytest.mark.parametrize("memory", ["99999999999999999999999", "1_024", "-1", "0x10", "\u0661\u0662"])
def test_memory_that_is_not_a_number(memory: str) -> None:
    with pytest.raises(VirtError) as err:
        parse_domain(_domain(memory=memory))
    assert err.value.code == ErrorCode.XML_ERROR
    assert str(err.value) == f"XML error: Invalid value '{memory}' for element or attribute './memory[1]'"


@pytest.mark.parametrize(("memory", "unit"), [("9007199254740992", ""), ("9007199254740991", "MiB")])
def test_memory_past_llong_max_bytes_overflows(memory: str, unit: str) -> None:
    with pytest.raises(VirtError) as err:
        parse_domain(_domain(memory=memory, unit=unit))
    assert err.value.code == ErrorCode.OVERFLOW
    assert str(err.value) == f"numerical overflow: value too large: {memory}{unit}"


@pytest.mark.parametrize("vcpu", ["-1", "1_0", "99999999999"])
def test_vcpu_count_must_be_an_unsigned_int(vcpu: str) -> None:
    with pytest.raises(VirtError) as err:
        parse_domain(_domain(vcpu=vcpu))
    assert str(err.value) == "XML error: maximum vcpus count must be an integer"


@pytest.mark.parametrize(("vcpu", "count"), [(" 2", 2), ("+3", 3)])
def test_vcpu_count_leading_blank_and_plus(vcpu: str, count: int) -> None:
    assert parse_domain(_domain(vcpu=vcpu)).vcpu.count == count
