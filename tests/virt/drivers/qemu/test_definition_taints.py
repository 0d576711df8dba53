"""Why a run is tainted: libvirt's flags, in libvirt's order, from the definition and QEMU's user."""

from __future__ import annotations

from virtstack.virt.drivers.qemu.definition import TAINT_MESSAGES, taint_flags
from virtstack.virt.xml.domain import parse_domain

BASE = """<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>t</name><memory>65536</memory><os><type>hvm</type></os>
  <devices>{devices}</devices>{extra}
</domain>"""


def _flags(devices: str = "", extra: str = "", *, root: bool = False) -> list[str]:
    return taint_flags(parse_domain(BASE.format(devices=devices, extra=extra)), qemu_runs_as_root=root)


def test_a_plain_domain_run_unprivileged_is_clean() -> None:
    assert _flags() == []


def test_root_qemu_is_high_privileges() -> None:
    assert _flags(root=True) == ["high-privileges"]


def test_raw_disk_io_is_high_privileges_too() -> None:
    disk = "<disk type='file' device='lun' rawio='yes'><source file='/x'/><target dev='sda' bus='scsi'/></disk>"
    assert _flags(disk) == ["high-privileges"]


def test_host_cdrom_and_custom_argv_in_libvirts_order() -> None:
    cdrom = "<disk type='block' device='cdrom'><source dev='/dev/sr0'/><target dev='hdc' bus='ide'/></disk>"
    argv = "<qemu:commandline><qemu:arg value='-no-reboot'/></qemu:commandline>"
    assert _flags(cdrom, argv, root=True) == ["custom-argv", "high-privileges", "cdrom-passthrough"]
    assert [TAINT_MESSAGES[f] for f in _flags(cdrom)] == ["use of host cdrom passthrough"]


def test_a_cdrom_image_file_or_empty_commandline_taints_nothing() -> None:
    iso = "<disk type='file' device='cdrom'><source file='/x.iso'/><target dev='hdc' bus='ide'/></disk>"
    assert _flags(iso, "<qemu:commandline/>") == []
