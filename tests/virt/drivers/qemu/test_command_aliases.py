"""Device aliases (libvirt's qemuAssignDeviceAliases): the names the builder records on the definition,
the QEMU ids it derives from them, and a differential check of the live XML against the real libvirtd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from virtstack.testing.guest import Guest, domain_xml
from virtstack.testing.servers import start_libvirtd, start_virtstackd, unavailable_reason
from virtstack.virt.drivers.qemu.capabilities import CpuModel, MachineType, QemuCaps
from virtstack.virt.drivers.qemu.command import RuntimeContext, build_command
from virtstack.virt.drivers.qemu.command.aliases import assign_aliases
from virtstack.virt.drivers.qemu.command.context import BuildContext
from virtstack.virt.drivers.qemu.config import QemuDriverConfig
from virtstack.virt.drivers.qemu.defaults import apply_qemu_defaults
from virtstack.virt.xml.domain import DomainDef, format_domain, parse_domain


@pytest.fixture()
def hand_caps() -> QemuCaps:
    """A QEMU 7.2 described by hand, independent of the host."""
    return QemuCaps(
        emulator="/usr/bin/qemu-system-x86_64",
        version=(7, 2, 0),
        machines=[MachineType("pc-i440fx-7.2", "pc", True, 255), MachineType("pc-q35-7.2", "q35", False, 288)],
        cpu_models=[CpuModel("qemu64")],
        qom_types=frozenset({"virtio-blk-pci", "memory-backend-ram"}),
        accelerators=("kvm", "tcg"),
    )


def _defn(devices: str, caps: QemuCaps, machine: str = "pc") -> DomainDef:
    xml = f"""<domain type='qemu'><name>vm1</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
      <memory unit='KiB'>219100</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='{machine}'>hvm</type></os>
      <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>{devices}</devices></domain>"""
    defn = parse_domain(xml)
    apply_qemu_defaults(defn, caps)
    return defn


def _assigned(defn: DomainDef, caps: QemuCaps) -> DomainDef:
    config = QemuDriverConfig.harness()
    assign_aliases(BuildContext(defn=defn, caps=caps, config=config, runtime=RuntimeContext.for_domain("vm1", -1, config)))
    return defn


def _names(devs: list[object]) -> list[str | None]:
    return [d.alias.name if d.alias is not None else None for d in devs]  # type: ignore[attr-defined]


def _qemu_ids(defn: DomainDef, caps: QemuCaps) -> list[str]:
    config = QemuDriverConfig.harness()
    argv = build_command(defn, caps, config, RuntimeContext.for_domain("vm1", -1, config)).argv
    return [json.loads(argv[i + 1]).get("id") for i, a in enumerate(argv[:-1]) if a == "-device"]


DISKS = """
<disk type='file' device='disk'><source file='/i/a'/><target dev='vdb' bus='virtio'/></disk>
<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>
<disk type='file' device='disk'><source file='/i/b'/><target dev='sda' bus='scsi'/></disk>
<disk type='file' device='disk'><source file='/i/c'/><target dev='sdb' bus='scsi'/>
  <address type='drive' controller='1' bus='0' target='2' unit='0'/></disk>
<controller type='scsi' index='1' model='virtio-scsi'/>
"""


def test_controllers_and_disks_on_i440fx(hand_caps: QemuCaps) -> None:
    defn = _assigned(_defn(DISKS, hand_caps), hand_caps)
    devs = defn.devices
    disks = {d.target.dev: d.alias.name for d in devs.disks if d.target and d.alias}
    # lsilogic (the default SCSI model) is addressed without target; virtio-scsi with it
    assert disks == {"vdb": "virtio-disk1", "hdc": "ide0-1-0", "sda": "scsi0-0-0", "sdb": "scsi1-0-2-0"}
    ctls = {(c.type, c.index): c.alias.name for c in devs.controllers if c.alias}
    assert ctls[("pci", 0)] == "pci.0"
    assert ctls[("usb", 0)] == "usb"
    assert ctls[("ide", 0)] == "ide"
    assert (ctls[("scsi", 0)], ctls[("scsi", 1)]) == ("scsi0", "scsi1")
    ids = _qemu_ids(defn, hand_caps)
    assert {"virtio-disk1", "ide0-1-0", "scsi0-0-0", "scsi1-0-2-0", "scsi0", "scsi1", "usb"} <= set(ids)


def test_sata_and_pcie_root_on_q35(hand_caps: QemuCaps) -> None:
    xml = """<disk type='file' device='disk'><source file='/i/a'/><target dev='sda' bus='sata'/></disk>
      <controller type='sata' index='1'/>
      <disk type='file' device='disk'><source file='/i/b'/><target dev='sdb' bus='sata'/>
        <address type='drive' controller='1' bus='0' target='0' unit='3'/></disk>"""
    defn = _assigned(_defn(xml, hand_caps, machine="q35"), hand_caps)
    assert _names(list(defn.devices.disks)) == ["sata0-0-0", "sata1-0-3"]
    ctls = {(c.type, c.index): c.alias.name for c in defn.devices.controllers if c.alias}
    assert (ctls[("pci", 0)], ctls[("sata", 0)], ctls[("sata", 1)]) == ("pcie.0", "ide", "sata1")
    config = QemuDriverConfig.harness()
    argv = build_command(defn, hand_caps, config, RuntimeContext.for_domain("vm1", -1, config)).argv
    buses = {d["id"]: d.get("bus") for d in (json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-device")}
    assert (buses["sata0-0-0"], buses["sata1-0-3"]) == ("ide.0", "sata1.3")


def test_console_on_serial_inputs_and_singletons(hand_caps: QemuCaps) -> None:
    xml = """<serial type='pty'/><serial type='pty'/><console type='pty'><target type='serial'/></console>
      <console type='pty'><target type='virtio'/></console>
      <controller type='usb' index='0' model='piix3-uhci'/><input type='tablet' bus='usb'/><memballoon model='virtio'/>
      <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
      <video><model type='vga'/></video><watchdog model='i6300esb'/>"""
    defn = _assigned(_defn(xml, hand_caps), hand_caps)
    devs = defn.devices
    assert _names(list(devs.serials)) == ["serial0", "serial1"]
    assert _names(list(devs.consoles)) == ["serial0", "console1"]  # the first console is serial0 itself
    assert _names(list(devs.inputs)) == ["input0", "input1", "input2"]  # tablet, then the implicit PS/2 pair
    assert devs.memballoon is not None and devs.memballoon.alias is not None
    assert devs.memballoon.alias.name == "balloon0"
    assert (_names(list(devs.rngs)), _names(list(devs.videos)), _names(list(devs.watchdogs))) == (
        ["rng0"], ["video0"], ["watchdog0"]
    )
    ids = _qemu_ids(defn, hand_caps)
    assert {"serial0", "serial1", "console1", "input0", "balloon0", "rng0", "video0", "watchdog0"} <= set(ids)


def test_user_alias_is_kept_used_as_id_and_named_by_its_devices(hand_caps: QemuCaps) -> None:
    xml = """<controller type='usb' index='0' model='piix3-uhci'><alias name='ua-hub'/></controller>
      <input type='tablet' bus='usb'><alias name='ua-tablet'/></input>
      <interface type='user'><model type='virtio'/><alias name='ua-nic'/></interface>
      <interface type='user'><model type='virtio'/></interface>
      <serial type='pty'><alias name='ua-ser'/></serial>"""
    defn = _assigned(_defn(xml, hand_caps), hand_caps)
    devs = defn.devices
    assert _names(list(devs.interfaces)) == ["ua-nic", "net0"]
    assert _names(list(devs.serials)) == ["ua-ser"]
    config = QemuDriverConfig.harness()
    argv = build_command(defn, hand_caps, config, RuntimeContext.for_domain("vm1", -1, config)).argv
    devices = {d["id"]: d for d in (json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-device")}
    assert devices["ua-tablet"]["bus"] == "ua-hub.0"  # a USB device names its controller by alias
    assert devices["ua-nic"]["netdev"] == "hostua-nic"
    assert devices["ua-ser"]["chardev"] == "charua-ser"
    assert "ua-hub" in devices
    # inactive XML keeps user aliases only
    inactive = format_domain(defn, inactive=True)
    assert "ua-nic" in inactive and "net0" not in inactive


def test_existing_aliases_are_not_reused(hand_caps: QemuCaps) -> None:
    xml = """<interface type='user'><alias name='net1'/></interface><interface type='user'/>
      <rng model='virtio'><backend model='random'>/dev/urandom</backend><alias name='rng3'/></rng>
      <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"""
    defn = _assigned(_defn(xml, hand_caps), hand_caps)
    assert _names(list(defn.devices.interfaces)) == ["net1", "net2"]
    assert _names(list(defn.devices.rngs)) == ["rng3", "rng4"]


# -- differential: the live XML of a running guest against the real libvirtd -----------------------------

EXTRA_DEVICES = """
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{image}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'>
      <alias name='ua-usb'/>
    </controller>
    <interface type='user'>
      <model type='virtio'/>
    </interface>
    <channel type='pty'>
      <target type='virtio' name='org.virtstack.test.0'/>
    </channel>
    <input type='tablet' bus='usb'/>
    <video>
      <model type='vga'/>
    </video>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
    <memballoon model='virtio'/>
"""


def _guest_xml(guest: Guest, image: Path) -> str:
    xml = domain_xml("aliases", guest, domain_type="qemu")
    xml = xml.replace("    <memballoon model='none'/>\n", "")
    return xml.replace("  </devices>", EXTRA_DEVICES.format(image=image) + "  </devices>")


def _alias_pairs(xml: str) -> set[tuple[str, str]]:
    """(path of the device element, alias name) for every <alias> of the XML."""
    root = etree.fromstring(xml.encode())
    tree = root.getroottree()
    pairs = set()
    for alias in root.iter("alias"):
        device = alias.getparent()
        assert device is not None
        pairs.add((tree.getpath(device), alias.get("name") or ""))
    return pairs


def _live_aliases(uri: str, xml: str) -> set[tuple[str, str]]:
    import libvirt

    conn = libvirt.open(uri)
    try:
        dom = conn.defineXML(xml)
        try:
            dom.create()
            try:
                return _alias_pairs(dom.XMLDesc(0))
            finally:
                dom.destroy()
        finally:
            dom.undefine()
    finally:
        conn.close()


@pytest.mark.qemu
@pytest.mark.slow
def test_live_aliases_match_real_libvirtd(guest: Guest, tmp_path: Path) -> None:
    pytest.importorskip("libvirt")
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"real libvirtd unavailable: {reason}")
    image = tmp_path / "vda.img"
    image.write_bytes(b"\0" * (1 << 20))
    xml = _guest_xml(guest, image)
    oracle = start_libvirtd()
    try:
        expected = _live_aliases(oracle.uri("qemu:///system"), xml)
    finally:
        oracle.stop()
    ours = start_virtstackd(guests=True)
    try:
        got = _live_aliases(ours.uri("qemu:///system"), xml)
    finally:
        ours.stop()
    assert ("/domain/devices/console", "serial0") in expected
    assert sorted(got) == sorted(expected)
