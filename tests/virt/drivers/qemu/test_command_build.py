"""The domain -> argv builder on hand-written definitions (no QEMU needed)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from virtstack.virt.drivers.qemu.capabilities import CpuModel, MachineType, QemuCaps
from virtstack.virt.drivers.qemu.command import FdRequest, RuntimeContext, build_command, xml_to_native
from virtstack.virt.drivers.qemu.config import QemuDriverConfig
from virtstack.virt.drivers.qemu.defaults import apply_qemu_defaults
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError
from virtstack.virt.xml.domain import parse_domain


@pytest.fixture()
def hand_caps() -> QemuCaps:
    """A QEMU 7.2 described by hand: enough for the builder, independent of the host."""
    return QemuCaps(
        emulator="/usr/bin/qemu-system-x86_64",
        version=(7, 2, 0),
        machines=[
            MachineType("pc-i440fx-7.2", "pc", True, 255),
            MachineType("pc-q35-7.2", "q35", False, 288),
        ],
        cpu_models=[CpuModel("qemu64"), CpuModel("Haswell")],
        qom_types=frozenset({"virtio-blk-pci", "memory-backend-ram"}),
        accelerators=("kvm", "tcg"),
    )


BASE = """<domain type='qemu'>
  <name>vm1</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='KiB'>219100</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='{machine}'>hvm</type><boot dev='hd'/></os>
  {features}
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    {devices}
  </devices>
</domain>"""


def domain(devices: str = "", *, machine: str = "pc", features: str = "<features><acpi/></features>") -> str:
    return BASE.format(devices=devices, machine=machine, features=features)


def opts(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == name]


def devices(argv: list[str]) -> list[dict[str, object]]:
    return [json.loads(v) for v in opts(argv, "-device")]


def test_minimal_domain_has_libvirts_skeleton(hand_caps: QemuCaps) -> None:
    cmd = xml_to_native(domain(), hand_caps, QemuDriverConfig.system())
    argv = cmd.argv
    assert argv[0] == "/usr/bin/qemu-system-x86_64"
    assert argv[1:4] == ["-name", "guest=vm1,debug-threads=on", "-S"]
    assert opts(argv, "-machine") == ["pc-i440fx-7.2,usb=off,dump-guest-core=off,memory-backend=pc.ram"]
    assert opts(argv, "-accel") == ["tcg"]
    assert opts(argv, "-m") == ["214"]  # 219100 KiB rounded up to whole MiB
    assert json.loads(opts(argv, "-object")[1])["size"] == 214 * 1024 * 1024
    assert opts(argv, "-smp") == ["2,sockets=2,cores=1,threads=1"]
    assert opts(argv, "-chardev")[0] == (
        "socket,id=charmonitor,path=/var/lib/libvirt/qemu/domain--1-vm1/monitor.sock,server=on,wait=off"
    )
    assert "-no-acpi" not in argv and "-no-shutdown" in argv
    assert argv[-4:] == ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
                         "-msg", "timestamp=on"]  # fmt: skip
    assert cmd.env["HOME"] == "/var/lib/libvirt/qemu/domain--1-vm1"
    assert list(cmd.env)[:2] == ["LC_ALL", "PATH"]


def test_disk_chain_and_boot_index(hand_caps: QemuCaps) -> None:
    xml = domain(
        """<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>
             <source file='/img/top.qcow2'/>
             <backingStore type='file'><format type='raw'/><source file='/img/base.raw'/></backingStore>
             <target dev='vda' bus='virtio'/></disk>
           <disk type='file' device='cdrom'><source file='/img/cd.iso'/><target dev='hdc' bus='ide'/>
             <readonly/></disk>"""
    )
    argv = xml_to_native(xml, hand_caps, QemuDriverConfig.system()).argv
    blockdevs = [json.loads(v) for v in opts(argv, "-blockdev")]
    names = [b["node-name"] for b in blockdevs]
    # numbered from the last disk backwards, base of a chain before its top
    assert names == ["libvirt-3-storage", "libvirt-3-format", "libvirt-2-storage", "libvirt-2-format",
                     "libvirt-1-storage", "libvirt-1-format"]  # fmt: skip
    top = blockdevs[3]
    assert top["backing"] == "libvirt-3-format" and top["cache"] == {"direct": True, "no-flush": False}
    assert blockdevs[5]["read-only"] is True
    devs = {d["id"]: d for d in devices(argv)}
    assert devs["virtio-disk0"]["drive"] == "libvirt-2-format"
    assert devs["virtio-disk0"]["bootindex"] == 1 and devs["virtio-disk0"]["write-cache"] == "on"
    assert devs["ide0-1-0"]["driver"] == "ide-cd" and "bootindex" not in devs["ide0-1-0"]


def test_option_values_are_comma_escaped(hand_caps: QemuCaps) -> None:
    xml = domain("<serial type='file'><source path='/tmp/a,b.log'/><target port='0'/></serial>")
    argv = xml_to_native(
        xml.replace("<name>vm1</name>", "<name>vm,1</name>"), hand_caps, QemuDriverConfig.system()
    ).argv
    assert opts(argv, "-name") == ["guest=vm,,1,debug-threads=on"]
    assert "file,id=charserial0,path=/tmp/a,,b.log" in opts(argv, "-chardev")


def test_domxml_to_native_turns_nics_into_taps_but_a_start_keeps_user_networking(hand_caps: QemuCaps) -> None:
    xml = domain(
        "<interface type='user'><mac address='52:54:00:11:22:33'/><model type='virtio'/></interface>"
    )
    native = xml_to_native(xml, hand_caps, QemuDriverConfig.system())
    assert json.loads(opts(native.argv, "-netdev")[0])["type"] == "tap"
    defn = parse_domain(xml)
    apply_qemu_defaults(defn, hand_caps)
    config = QemuDriverConfig.system()
    runtime = RuntimeContext.for_domain("vm1", 7, config, monitor_fd=33)
    started = build_command(defn, hand_caps, config, runtime)
    assert opts(started.argv, "-netdev") == ['{"type":"user","id":"hostnet0"}']
    assert "socket,id=charmonitor,fd=33,server=on,wait=off" in opts(started.argv, "-chardev")
    assert started.pass_fds == [33]
    assert started.env["HOME"] == "/var/lib/libvirt/qemu/domain-7-vm1"
    [nic] = [d for d in devices(started.argv) if d["id"] == "net0"]
    assert (nic["driver"], nic["netdev"], nic["mac"]) == ("virtio-net-pci", "hostnet0", "52:54:00:11:22:33")


def test_build_is_pure(hand_caps: QemuCaps, tmp_path: object) -> None:
    defn = parse_domain(domain())
    apply_qemu_defaults(defn, hand_caps)
    config = QemuDriverConfig.harness()
    runtime = RuntimeContext.for_domain("vm1", -1, config)
    first = build_command(defn, hand_caps, config, runtime)
    second = build_command(defn, hand_caps, config, runtime)
    assert first == second


@pytest.mark.parametrize(
    ("devices_xml", "message"),
    [
        ("<disk type='dir' device='disk'><driver name='qemu' type='fat'/><source dir='/x'/><target dev='vda' bus='virtio'/><readonly/></disk>",
         "unsupported configuration: 'dir' disk type is not supported by the 'blockdev' storage backend"),
        ("<serial type='nmdm'><target port='0'/></serial>",
         "unsupported configuration: Unsupported char device type 'nmdm'"),
    ],
)  # fmt: skip
def test_unsupported_definitions_are_libvirt_errors(
    hand_caps: QemuCaps, devices_xml: str, message: str
) -> None:
    with pytest.raises(VirtError) as e:
        xml_to_native(domain(devices_xml), hand_caps, QemuDriverConfig.system())
    assert e.value.code == ErrorCode.CONFIG_UNSUPPORTED and e.value.domain == ErrorDomain.QEMU
    assert e.value.message == message


def test_unknown_cpu_model_is_rejected(hand_caps: QemuCaps) -> None:
    xml = domain().replace("<devices>", "<cpu><model>NoSuchCPU</model></cpu><devices>")
    with pytest.raises(VirtError) as e:
        xml_to_native(xml, hand_caps, QemuDriverConfig.system())
    assert e.value.code == ErrorCode.CONFIG_UNSUPPORTED


def _native(xml: str, caps: QemuCaps, prepare: Callable[[RuntimeContext], None] | None = None) -> list[str]:
    return xml_to_native(xml, caps, QemuDriverConfig.system(), prepare=prepare).argv


def test_chardev_paths_become_fds_when_the_driver_opens_them(hand_caps: QemuCaps) -> None:
    xml = domain(
        """<serial type='unix'><source mode='bind' path='/run/s.sock'/><target port='0'/></serial>
           <serial type='file'><source path='/var/log/s1.log'/><log file='/var/log/s1.txt' append='off'/>
             <target port='1'/></serial>"""
    )
    assert "socket,id=charserial0,path=/run/s.sock,server=on,wait=off" in opts(
        _native(xml, hand_caps), "-chardev"
    )
    requests: list[FdRequest] = []

    def prepare(runtime: RuntimeContext) -> None:
        def open_fd(req: FdRequest) -> int:
            requests.append(req)
            return 40 + len(requests)

        runtime.open_fd = open_fd

    argv = _native(xml, hand_caps, prepare)
    assert [(r.purpose, r.path, r.kind) for r in requests] == [
        ("charserial0", "/run/s.sock", "unix-listen"),
        ("serial1-source", "/var/log/s1.log", "file-append"),
        ("serial1-log", "/var/log/s1.txt", "file-append"),
    ]
    assert "socket,id=charserial0,fd=41,server=on,wait=off" in opts(argv, "-chardev")
    assert opts(argv, "-add-fd") == ["set=0,fd=42,opaque=serial1-source", "set=1,fd=43,opaque=serial1-log"]
    assert xml_to_native(xml, hand_caps, QemuDriverConfig.system(), prepare=prepare).pass_fds == [44, 45, 46]
    assert "file,id=charserial1,path=/dev/fdset/0,append=on,logfile=/dev/fdset/1,logappend=on" in opts(
        argv, "-chardev"
    )


def test_undefined_secret_is_not_found_and_a_defined_one_is_refused(hand_caps: QemuCaps) -> None:
    uuid = "0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f"
    xml = domain(
        f"""<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
             <source file='/img/enc.qcow2'><encryption format='luks'><secret type='passphrase' uuid='{uuid}'/>
             </encryption></source><target dev='vda' bus='virtio'/></disk>"""
    )
    with pytest.raises(VirtError) as e:
        _native(xml, hand_caps)
    assert (e.value.code, e.value.domain) == (ErrorCode.NO_SECRET, ErrorDomain.SECRET)
    assert e.value.message == f"Secret not found: no secret with matching uuid '{uuid}'"
    with pytest.raises(VirtError) as e:
        _native(xml, hand_caps, lambda rt: rt.secrets.add(uuid))
    assert e.value.code == ErrorCode.CONFIG_UNSUPPORTED  # never started without its key


def test_firmware_autoselection_needs_descriptors(hand_caps: QemuCaps) -> None:
    xml = domain().replace("<os>", "<os firmware='efi'>")
    with pytest.raises(VirtError) as e:
        _native(xml, hand_caps, lambda rt: setattr(rt, "firmware_descriptors", []))
    assert e.value.code == ErrorCode.OPERATION_FAILED
    assert e.value.message == "operation failed: Unable to find any firmware to satisfy 'efi'"


def test_gl_display_uses_the_hosts_render_node(hand_caps: QemuCaps) -> None:
    xml = domain("<graphics type='egl-headless'/>")
    argv = _native(xml, hand_caps, lambda rt: setattr(rt, "render_node", "/dev/dri/renderD129"))
    assert "egl-headless,rendernode=/dev/dri/renderD129" in opts(argv, "-display")


def test_vhost_user_nic_gets_its_socket_chardev(hand_caps: QemuCaps) -> None:
    xml = domain(
        """<interface type='vhostuser'><mac address='52:54:00:ee:96:6b'/>
             <source type='unix' path='/tmp/vhost0.sock' mode='server'/><model type='virtio'/></interface>"""
    )
    argv = xml_to_native(xml, hand_caps, QemuDriverConfig.system(), pretend_ethernet=False).argv
    assert "socket,id=charnet0,path=/tmp/vhost0.sock,server=on" in opts(argv, "-chardev")
    assert opts(argv, "-netdev") == ['{"type":"vhost-user","chardev":"charnet0","id":"hostnet0"}']


def test_disks_are_ordered_like_libvirt_and_floppy_boot_goes_to_the_fdc(hand_caps: QemuCaps) -> None:
    xml = domain(
        """<disk type='file' device='disk'><source file='/b'/><target dev='vdb' bus='virtio'/></disk>
           <disk type='file' device='floppy'><source file='/f1'/><target dev='fdb' bus='fdc'/></disk>
           <disk type='file' device='disk'><source file='/a'/><target dev='vda' bus='virtio'/></disk>
           <disk type='file' device='floppy'><source file='/f0'/><target dev='fda' bus='fdc'/></disk>"""
    ).replace("<boot dev='hd'/>", "<boot dev='fd'/><boot dev='hd'/>")
    argv = _native(xml, hand_caps)
    files = [json.loads(b)["filename"] for b in opts(argv, "-blockdev") if '"filename"' in b]
    assert files == ["/a", "/b", "/f0", "/f1"]
    assert "isa-fdc.bootindexA=1" in opts(argv, "-global")
    assert {d["id"]: d.get("bootindex") for d in devices(argv) if "drive" in d}["virtio-disk0"] == 2


def test_clock_in_a_timezone_or_with_an_offset(hand_caps: QemuCaps) -> None:
    tz = domain().replace("<devices>", "<clock offset='timezone' timezone='Europe/Paris'/><devices>")
    cmd = xml_to_native(tz, hand_caps, QemuDriverConfig.system())
    assert opts(cmd.argv, "-rtc") == ["base=localtime"] and cmd.env["TZ"] == "Europe/Paris"
    var = domain().replace("<devices>", "<clock offset='variable' adjustment='3600' basis='utc'/><devices>")
    argv = _native(var, hand_caps, lambda rt: setattr(rt, "now", 1_700_000_000.0))
    assert opts(argv, "-rtc") == ["base=2023-11-14T23:13:20"]  # 2023-11-14T22:13:20Z plus one hour


def test_network_disk_protocol_nodes(hand_caps: QemuCaps) -> None:
    xml = domain(
        """<disk type='network' device='disk'><driver name='qemu' type='raw'/>
             <source protocol='iscsi' name='iqn.1992-01.com.example:storage/1'><host name='example.org' port='6000'/>
             </source><target dev='vda' bus='virtio'/></disk>
           <disk type='network' device='disk'><driver name='qemu' type='raw'/>
             <source protocol='nbd' name='bar'><host transport='unix' socket='/run/nbd.sock'/></source>
             <target dev='vdb' bus='virtio'/></disk>
           <disk type='network' device='disk'><driver name='qemu' type='raw'/>
             <source protocol='gluster' name='Volume2/Image'><host name='gl.example.org'/></source>
             <target dev='vdc' bus='virtio'/></disk>"""
    )
    blockdevs = [json.loads(b) for b in opts(_native(xml, hand_caps), "-blockdev")]
    nodes = [b for b in blockdevs if b["node-name"].endswith("-storage")]
    assert nodes[0] == {"driver": "iscsi", "portal": "example.org:6000", "target": "iqn.1992-01.com.example:storage",
                        "lun": 1, "transport": "tcp", "node-name": "libvirt-3-storage", "auto-read-only": True,
                        "discard": "unmap"}  # fmt: skip
    assert nodes[1]["server"] == {"type": "unix", "path": "/run/nbd.sock"} and nodes[1]["export"] == "bar"
    assert nodes[2]["server"] == [{"type": "inet", "host": "gl.example.org", "port": "24007"}]
    assert (nodes[2]["volume"], nodes[2]["path"], nodes[2]["debug"]) == ("Volume2", "Image", 4)
