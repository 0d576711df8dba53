"""The QEMU driver's post-parse defaults and PCI address assignment (i440fx and q35)."""

from __future__ import annotations

import re

import pytest

from virtstack.virt.drivers.qemu.capabilities import CpuModel, MachineType, QemuCaps
from virtstack.virt.drivers.qemu.defaults import apply_qemu_defaults, generate_mac
from virtstack.virt.errors import ErrorCode, VirtError
from virtstack.virt.xml.domain import DomainDef, format_domain, parse_domain


def caps(version: str = "7.2", *, probed: bool = True) -> QemuCaps:
    """A hand-made capability set: the defaults must follow whatever the probe reported."""
    cpu = "qemu64-x86_64-cpu"
    return QemuCaps(
        emulator="/usr/bin/qemu-system-x86_64",
        version=(7, 2, 0),
        machines=[
            MachineType(f"pc-i440fx-{version}", alias="pc", is_default=True, default_cpu_type=cpu),
            MachineType(f"pc-q35-{version}", alias="q35", default_cpu_type=cpu),
            MachineType("pc-i440fx-2.1", default_cpu_type=cpu),
        ],
        cpu_models=[CpuModel("qemu64")] if probed else [],
        qom_types=frozenset({"piix3-usb-uhci", "qemu-xhci", "cirrus-vga", "pcie-root-port"}) if probed else frozenset(),
    )


def define(devices: str = "", machine: str = "pc", extra: str = "", c: QemuCaps | None = None) -> DomainDef:
    d = parse_domain(
        f"<domain type='qemu'><name>t</name><memory>65536</memory><os><type machine='{machine}'>hvm</type></os>"
        f"{extra}<devices>{devices}</devices></domain>"
    )
    apply_qemu_defaults(d, c or caps())
    return d


def pci(addr: object) -> tuple[int, int, int]:
    return (int(addr.bus), addr.slot, addr.function)  # type: ignore[attr-defined]


def test_machine_alias_follows_the_capabilities() -> None:
    assert define().os.type.machine == "pc-i440fx-7.2"  # type: ignore[union-attr]
    assert define(c=caps("9.9")).os.type.machine == "pc-i440fx-9.9"  # type: ignore[union-attr]
    assert define(machine="q35").os.type.machine == "pc-q35-7.2"  # type: ignore[union-attr]
    assert define(machine="pc-i440fx-2.1").os.type.machine == "pc-i440fx-2.1"  # type: ignore[union-attr]


def test_unknown_machine_is_rejected() -> None:
    with pytest.raises(VirtError) as info:
        define(machine="virt")
    assert info.value.code == ErrorCode.CONFIG_UNSUPPORTED
    assert "does not support machine type 'virt'" in str(info.value)


def test_uuid_cpu_boot_and_audio_defaults() -> None:
    d = define()
    assert d.uuid is not None and d.uuid.version == 4
    out = format_domain(d, inactive=True, secure=True)
    assert "<cpu mode='custom' match='exact' check='none'>\n    <model fallback='forbid'>qemu64</model>" in out
    assert "<boot dev='hd'/>" in out
    assert "<audio id='1' type='none'/>" in out


def test_i440fx_chipset_addresses() -> None:
    d = define("<disk type='file'><source file='/a'/><target dev='hda'/></disk>"
               "<disk type='file'><source file='/b'/><target dev='vda'/></disk>"
               "<interface type='user'/><graphics type='vnc'/>")
    ctl = {(c.type, c.index): c for c in d.devices.controllers}
    assert ctl[("usb", 0)].model == "piix3-uhci" and pci(ctl[("usb", 0)].address) == (0, 1, 2)
    assert pci(ctl[("ide", 0)].address) == (0, 1, 1)
    assert ctl[("pci", 0)].model == "pci-root"
    assert pci(d.devices.videos[0].address) == (0, 2, 0)  # primary video is always 00:02.0
    assert pci(d.devices.interfaces[0].address) == (0, 3, 0)  # then NICs, controllers, disks, balloon
    assert pci(d.devices.disks[1].address) == (0, 4, 0)
    assert d.devices.memballoon is not None and pci(d.devices.memballoon.address) == (0, 5, 0)
    hda = d.devices.disks[0].address
    assert hda is not None and (hda.type, hda.controller, hda.unit) == ("drive", 0, 0)
    assert [(i.type, i.bus) for i in d.devices.inputs] == [("mouse", "ps2"), ("keyboard", "ps2")]


def test_q35_puts_pcie_devices_behind_root_ports() -> None:
    d = define("<disk type='file'><source file='/a'/><target dev='vda'/></disk>", machine="q35")
    ports = [c for c in d.devices.controllers if c.model == "pcie-root-port"]
    # usb (qemu-xhci), disk, balloon each get a port, plus one spare for hotplug
    assert [p.index for p in ports] == [1, 2, 3, 4]
    assert [pci(p.address) for p in ports] == [(0, 1, 0), (0, 1, 1), (0, 1, 2), (0, 1, 3)]
    assert ports[0].address.multifunction is True  # type: ignore[union-attr]
    assert [p.target.port for p in ports] == [0x8, 0x9, 0xA, 0xB]  # type: ignore[union-attr]
    sata = next(c for c in d.devices.controllers if c.type == "sata")
    assert pci(sata.address) == (0, 0x1F, 2)
    assert pci(d.devices.disks[0].address) == (2, 0, 0)


def test_generated_mac_has_qemu_prefix() -> None:
    d = define("<interface type='user'/>")
    mac = d.devices.interfaces[0].mac
    assert mac is not None and re.fullmatch(r"52:54:00(:[0-9a-f]{2}){3}", mac.address or "")
    assert re.fullmatch(r"52:54:00(:[0-9a-f]{2}){3}", generate_mac())


def test_console_implies_serial() -> None:
    out = format_domain(define("<console type='pty'/>"), inactive=True)
    assert "<serial type='pty'>\n      <target type='isa-serial' port='0'>\n        <model name='isa-serial'/>" in out
    assert "<console type='pty'>\n      <target type='serial' port='0'/>" in out


@pytest.mark.parametrize(
    "devices,message",
    [
        ("<controller type='pci' index='1' model='pci-bridge'/><controller type='pci' index='1' model='pci-bridge'/>",
         "XML error: Multiple 'pci' controllers with index '1'"),
        ("<disk type='file'><source file='/a'/><target dev='vdb1'/></disk>",
         "unsupported configuration: invalid disk target 'vdb1', partitions can't appear in disk targets"),
        ("<disk type='file'><source file='/a'/><target dev='hda'/><address type='pci' slot='5'/></disk>",
         "unsupported configuration: Invalid address type 'pci' for the disk 'hda' with the bus type 'ide'"),
    ],
)
def test_driver_level_rejections(devices: str, message: str) -> None:
    with pytest.raises(VirtError) as info:
        define(devices)
    assert str(info.value) == message


def test_defaults_that_need_the_probe_are_skipped_without_it() -> None:
    """Without device/CPU information (libvirt's DO_TEST_NOCAPS) no USB model, CPU model or xhci is invented."""
    d = define("<controller type='usb' index='0'/><video/><graphics type='vnc'/>", c=caps(probed=False))
    assert d.cpu is None
    usb = next(c for c in d.devices.controllers if c.type == "usb")
    assert usb.model is None and pci(usb.address) == (0, 1, 2)
    assert d.devices.videos[0].model is not None and d.devices.videos[0].model.type == "vga"
    q = define(machine="q35", c=caps(probed=False))
    assert not any(c.type == "usb" for c in q.devices.controllers)
