"""Domain definition -> QEMU command line, as libvirt 9.0 builds it for QEMU 7.2 (pure functions)."""

from virtstack.virt.drivers.qemu.command.build import build_command, xml_to_native
from virtstack.virt.drivers.qemu.command.model import FdRequest, QemuCommand, RuntimeContext

__all__ = ["FdRequest", "QemuCommand", "RuntimeContext", "build_command", "xml_to_native"]
