"""The capabilities XML: built from the real QEMU probe and host facts, valid against capability.rng."""

from __future__ import annotations

from lxml import etree

from virtstack.virt.drivers.qemu.capabilities import MachineType, QemuCaps
from virtstack.virt.xml.capabilities import (
    HostFacts,
    build_capabilities,
    format_capabilities,
    host_facts,
    parse_capabilities,
)


def test_real_host_and_qemu_validate(qemu_caps, capability_schema) -> None:  # type: ignore[no-untyped-def]
    xml = format_capabilities(build_capabilities(qemu_caps, host_facts()))
    doc = etree.fromstring(xml.encode())
    assert capability_schema.validate(doc), capability_schema.error_log.last_error
    machines = {m.text: m.get("canonical") for m in doc.iterfind("guest/arch/machine")}
    assert machines["pc"] == qemu_caps.canonical_machine("pc")
    assert machines["q35"] == qemu_caps.canonical_machine("q35")
    assert machines[qemu_caps.canonical_machine("pc")] is None
    assert doc.findtext("guest/arch/emulator") == qemu_caps.emulator
    assert xml.startswith("<capabilities>\n\n  <host>\n")


def test_kvm_domain_type_only_when_usable() -> None:
    caps = QemuCaps(emulator="/usr/bin/qemu-system-x86_64", version=(7, 2, 0),
                    machines=[MachineType("pc-i440fx-7.2", alias="pc", is_default=True, max_cpus=255)])
    facts = HostFacts(uuid="3d1219c7-c4c5-404a-aa1f-6d2a48adfda4", cpu_vendor="AMD", cores=4, memory_kib=1 << 20)
    slow = etree.fromstring(format_capabilities(build_capabilities(caps, facts)).encode())
    assert [d.get("type") for d in slow.iterfind("guest/arch/domain")] == ["qemu"]
    facts.kvm_usable = True
    fast = etree.fromstring(format_capabilities(build_capabilities(caps, facts)).encode())
    assert [d.get("type") for d in fast.iterfind("guest/arch/domain")] == ["qemu", "kvm"]
    assert fast.find("host/cpu/topology").get("cores") == "4"
    assert fast.findtext("host/uuid") == "3d1219c7-c4c5-404a-aa1f-6d2a48adfda4"
    assert len(fast.findall("host/topology/cells/cell/cpus/cpu")) == 4


def test_round_trip(qemu_caps) -> None:  # type: ignore[no-untyped-def]
    xml = format_capabilities(build_capabilities(qemu_caps, host_facts()))
    assert format_capabilities(parse_capabilities(xml)) == xml
