"""State shared by the command-line builders while one argv is assembled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from virtstack.virt.drivers.qemu.capabilities import QemuCaps
from virtstack.virt.drivers.qemu.command.escape import json_arg
from virtstack.virt.drivers.qemu.command.model import FdRequest, RuntimeContext
from virtstack.virt.drivers.qemu.config import QemuDriverConfig
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError, error_factory
from virtstack.virt.xml.devices.address import Address
from virtstack.virt.xml.domain import DomainDef

Error = error_factory(ErrorDomain.QEMU)


def unsupported(detail: str) -> VirtError:
    """libvirt's VIR_ERR_CONFIG_UNSUPPORTED from the QEMU driver."""
    return Error(ErrorCode.CONFIG_UNSUPPORTED, detail)


@dataclass
class BuildContext:
    """The inputs plus the argv under construction; builders append to `args` in libvirt's order."""

    defn: DomainDef
    caps: QemuCaps
    config: QemuDriverConfig
    runtime: RuntimeContext
    args: list[str] = field(default_factory=list)
    # alias of the PCI controller for each bus index ("pci.0", "pcie.0", "pci.1", ...)
    pci_bus_alias: dict[int, str] = field(default_factory=dict)
    audio_id: str | None = None
    next_fdset: int = 0
    # descriptors QEMU must inherit (monitor, taps, chardev sockets/files), in the order used
    pass_fds: list[int] = field(default_factory=list)
    # environment additions some options need (e.g. TZ for a clock in a named timezone)
    env: dict[str, str] = field(default_factory=dict)

    def open_fd(self, request: FdRequest) -> int:
        """Ask the runtime for a descriptor (see RuntimeContext.open_fd) and remember to pass it."""
        assert self.runtime.open_fd is not None
        fd = self.runtime.open_fd(request)
        self.use_fd(fd)
        return fd

    def use_fd(self, fd: int) -> None:
        if fd not in self.pass_fds:
            self.pass_fds.append(fd)

    def add(self, *words: str) -> None:
        self.args.extend(words)

    def device(self, props: dict[str, Any]) -> None:
        """-device in JSON syntax (QEMU 7.2 accepts it and libvirt 9.0 uses it)."""
        self.add("-device", json_arg(props))

    def obj(self, props: dict[str, Any]) -> None:
        self.add("-object", json_arg(props))

    @staticmethod
    def virtio_options(driver: Any) -> dict[str, Any]:
        """The virtio transport options of a <driver> element, in libvirt's order (qemuBuildVirtioDevProps)."""
        props: dict[str, Any] = {}
        for attr, key in (("iommu", "iommu_platform"), ("ats", "ats"), ("packed", "packed"),
                          ("page_per_vq", "page-per-vq")):  # fmt: skip
            value = getattr(driver, attr, None) if driver is not None else None
            if value is not None:
                props[key] = value
        return props

    @property
    def machine(self) -> str:
        os_ = self.defn.os
        return (os_.type.machine if os_ and os_.type and os_.type.machine else "") or ""

    @property
    def is_q35(self) -> bool:
        return self.machine == "q35" or self.machine.startswith("pc-q35")

    @property
    def is_i440fx(self) -> bool:
        m = self.machine
        return m == "pc" or m.startswith(("pc-i440fx", "pc-0.", "pc-1."))

    def pci_props(self, addr: Address | None) -> dict[str, Any]:
        """ "bus"/"addr" (and "multifunction") of a PCI address, as libvirt writes them."""
        if addr is None or addr.type != "pci":
            return {}
        bus = int(addr.bus or 0)
        props: dict[str, Any] = {"bus": self.pci_bus_alias.get(bus, f"pci.{bus}")}
        if addr.multifunction is not None:
            props["multifunction"] = addr.multifunction
        slot = addr.slot or 0
        fn = addr.function or 0
        props["addr"] = f"0x{slot:x}" if fn == 0 else f"0x{slot:x}.0x{fn:x}"
        return props
