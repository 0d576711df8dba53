"""Device address assignment as libvirt's qemu_domain_address.c does it, for i440fx and q35 machines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory
from virtstack.virt.xml.devices.address import Address
from virtstack.virt.xml.devices.chardev import CharDev, Serial
from virtstack.virt.xml.devices.controller import Controller, ControllerModel, ControllerTarget
from virtstack.virt.xml.devices.disk import Disk, disk_index
from virtstack.virt.xml.devices.hostdev import Hostdev, Hub, Redirdev
from virtstack.virt.xml.devices.misc import Input
from virtstack.virt.xml.domain import DomainDef

Error = error_factory(ErrorDomain.QEMU)
DomError = error_factory(ErrorDomain.DOMAIN)

# Device models that QEMU exposes as PCI Express endpoints (they go behind a pcie-root-port on q35).
PCIE_NET_MODELS = {"virtio", "virtio-transitional", "virtio-non-transitional", "e1000e", "igb"}
DRIVE_UNITS = {"ide": (4, 2, 2), "sata": (6, 1, 6)}


def assign_drive_addresses(defn: DomainDef) -> None:
    """virDomainDiskDefAssignAddress: IDE/SATA/SCSI/FDC disks get controller/bus/unit from their name."""
    for d in defn.devices.disks:
        if d.address is not None or d.target is None or d.target.dev is None:
            continue
        bus = d.bus
        idx = disk_index(d.target.dev)
        if idx < 0:
            continue
        if bus == "ide":
            d.address = Address.drive(idx // 4, (idx % 4) // 2, 0, idx % 2)
        elif bus == "sata":
            d.address = Address.drive(idx // 6, 0, 0, idx % 6)
        elif bus == "fdc":
            d.address = Address.drive(0, 0, 0, idx)
        elif bus == "scsi":
            ctl_model = next(
                (c.model for c in defn.devices.controllers if c.type == "scsi" and (c.index or 0) == idx // 7), None
            )
            if ctl_model == "virtio-scsi":
                d.address = Address.drive(0, 0, 0, idx)
            else:
                d.address = Address.drive(idx // 7, 0, 0, idx % 7)


def assign_virtio_serial(defn: DomainDef) -> None:
    """Virtio channels take ports 1.. on controller 0 bus 0 (port 0 is for a virtconsole, which gets no
    address in the XML)."""
    used: set[tuple[int, int]] = set()
    devs: list[CharDev] = [c for c in defn.devices.channels if c.target and c.target.type == "virtio"]
    for c in devs:
        if c.address is not None and c.address.type == "virtio-serial" and c.address.port is not None:
            used.add((c.address.controller or 0, int(c.address.port)))
    for c in devs:
        if c.address is None:
            c.address = Address(type="virtio-serial", controller=0, bus=0)
        if c.address.port is None:
            port = 1
            while (c.address.controller or 0, port) in used:
                port += 1
            c.address.port = str(port)
            used.add((c.address.controller or 0, port))


# root ports of each USB controller model (virDomainUSBAddressControllerModelToPorts); hubs have 8
USB_PORTS = {
    "piix3-uhci": 2, "piix4-uhci": 2, "vt82c686b-uhci": 2, "pci-ohci": 3, "ehci": 6, "ich9-ehci1": 6,
    "nec-xhci": 4, "qemu-xhci": 4, "qusb1": 4, "qusb2": 4,
}
HUB_PORTS = 8


def _free_usb_ports(root: int, hubs: list[str]) -> list[str]:
    """Ports in libvirt's search order: the controller's own ports, then each hub's."""
    ports = [str(p) for p in range(1, root + 1)]
    for hub in hubs:
        ports += [f"{hub}.{p}" for p in range(1, HUB_PORTS + 1)]
    return ports


def assign_usb(defn: DomainDef) -> None:
    """USB devices take the first free port: hubs first, then disks, host devices, redirections, inputs."""
    usb = [c for c in defn.devices.controllers if c.type == "usb" and c.model != "none" and (c.index or 0) == 0]
    if not usb:
        return
    root = max(
        (c.ports or USB_PORTS.get(c.model or "", 0) for c in usb if not (c.model or "").startswith("ich9-uhci")),
        default=2,
    )
    used: set[str] = set()
    items: list[Disk | Input | Serial | Hostdev | Redirdev | Hub] = list(defn.devices.hubs)
    items += [d for d in defn.devices.disks if d.bus == "usb"]
    items += [h for h in defn.devices.hostdevs if h.type == "usb"]
    items += list(defn.devices.redirdevs)
    items += [i for i in defn.devices.inputs if i.bus == "usb"]
    items += [s for s in defn.devices.serials if s.target is not None and s.target.type == "usb-serial"]
    for it in items:
        if it.address is not None and it.address.type == "usb" and it.address.port:
            used.add(str(it.address.port))
    # qemuDomainUSBAddressAddHubs: when the devices without a port outnumber all ports of the USB
    # controllers and hubs, libvirt adds enough hubs (each takes one port and offers 8) first
    needing = sum(1 for it in items if not (it.address is not None and it.address.type == "usb" and it.address.port))
    available = sum(
        c.ports or USB_PORTS.get(c.model or "", 0)
        for c in defn.devices.controllers
        if c.type == "usb" and c.model != "none"
    ) + HUB_PORTS * len(defn.devices.hubs)
    if needing > available:
        new_hubs = [Hub(type="usb") for _ in range(-(-(needing - available + 1) // (HUB_PORTS - 1)))]
        n_old = len(defn.devices.hubs)
        defn.devices.hubs.extend(new_hubs)
        items = [*items[:n_old], *new_hubs, *items[n_old:]]
    hubs: list[str] = []
    for it in items:
        if it.address is None:
            port = next((p for p in _free_usb_ports(root, hubs) if p not in used), None)
            if port is None:
                raise DomError(ErrorCode.XML_ERROR, "No free USB ports")
            it.address = Address(type="usb", bus=0, port=port)
            used.add(port)
        if isinstance(it, Hub) and it.address is not None and it.address.port:
            hubs.append(str(it.address.port))


@dataclass
class _Bus:
    """One PCI bus: which slot/functions are taken and what may plug into it."""

    index: int
    model: str
    used: dict[int, set[int]] = field(default_factory=dict)

    @property
    def slots(self) -> range:
        if self.model in ("pcie-root-port", "pcie-switch-downstream-port", "pcie-switch-upstream-port"):
            return range(0, 1)
        if self.model == "dmi-to-pci-bridge":
            return range(0, 32)
        return range(1, 32)

    def take(self, slot: int, function: int) -> None:
        self.used.setdefault(slot, set()).add(function)

    def free_slot(self) -> int | None:
        for s in self.slots:
            if s not in self.used:
                return s
        return None


# controllers that may only sit on a particular kind of bus: model -> the parent bus models that accept it
PARENT_MODELS = {
    "pci-expander-bus": ("pci-root",),
    "pcie-expander-bus": ("pcie-root",),
    "dmi-to-pci-bridge": ("pcie-root", "pcie-expander-bus"),
    "pcie-root-port": ("pcie-root", "pcie-expander-bus"),
}


def _check_plugs(defn: DomainDef, buses: dict[int, _Bus]) -> None:
    """virDomainPCIAddressFlagsCompatible for controllers the user placed themselves."""
    for c in defn.devices.controllers:
        a = c.address
        allowed = PARENT_MODELS.get(c.model or "")
        if c.type != "pci" or a is None or a.type != "pci" or allowed is None:
            continue
        parent = buses.get(int(a.bus or 0))
        if parent is not None and parent.model not in allowed:
            raise DomError(
                ErrorCode.XML_ERROR,
                f"The device at PCI address {a.domain or 0:04x}:{int(a.bus or 0):02x}:{a.slot or 0:02x}."
                f"{a.function or 0:x} cannot be plugged into the PCI controller with index='{parent.index}'. "
                f"It requires a controller that accepts a {c.model}.",
            )


class PCIAssigner:
    """Hands out PCI addresses the way libvirt does: reserved chipset slots first, then devices in order."""

    def __init__(self, defn: DomainDef) -> None:
        from virtstack.virt.drivers.qemu.defaults import is_q35

        self.defn = defn
        self.q35 = is_q35(defn)
        self.buses: dict[int, _Bus] = {}
        self.auto_ports = 0
        self.added: list[Controller] = []  # controllers this pass had to create, in creation order
        # bus-0 slots that hold only pcie-root-ports: libvirt packs further root ports into their free functions
        self.port_slots: set[int] = set()
        others: set[int] = set()
        for c in defn.devices.controllers:
            if c.address is not None and c.address.type == "pci" and not c.address.bus and c.address.slot:
                (self.port_slots if c.model == "pcie-root-port" else others).add(c.address.slot)
        self.port_slots -= others
        self.user_max_index = max((c.index or 0 for c in defn.devices.controllers if c.type == "pci"), default=0)
        for addr in self._all_addresses():
            if addr.type == "pci" and not addr.bus and not addr.slot and not addr.function and not addr.domain:
                addr.type = None  # an all-zero PCI address asks libvirt to pick one
        for c in defn.devices.controllers:
            if c.type == "pci" and c.index is not None:
                self.buses[c.index] = _Bus(c.index, c.model or "")
        if 0 not in self.buses:
            self.buses[0] = _Bus(0, "pcie-root" if self.q35 else "pci-root")
        self.buses[0].take(0, 0)  # host bridge
        for addr in self._all_addresses():
            if addr.type == "pci":
                bus = self.buses.get(int(addr.bus or 0))
                if bus is None:
                    raise DomError(ErrorCode.XML_ERROR,
                                   f"Could not find PCI controller with index '{addr.bus}' required for device at "
                                   f"PCI address '{addr.domain or 0:04x}:{int(addr.bus or 0):02x}:"
                                   f"{addr.slot or 0:02x}.{addr.function or 0:x}'")
                bus.take(addr.slot or 0, addr.function or 0)
        _check_plugs(defn, self.buses)

    def _all_addresses(self) -> list[Address]:
        devs = self.defn.devices
        out: list[Address] = []
        items: list[object] = [
            *devs.disks, *devs.controllers, *devs.interfaces, *devs.videos, *devs.rngs, *devs.inputs,
            *devs.watchdogs, *devs.serials, *devs.channels, *devs.consoles, *devs.sounds, devs.vsock,
            *devs.hostdevs, *devs.filesystems, *devs.shmems,
        ]
        if devs.memballoon is not None:
            items.append(devs.memballoon)
        for it in items:
            a = getattr(it, "address", None)
            if isinstance(a, Address):
                out.append(a)
        return out

    def reserve(self, slot: int, function: int) -> Address | None:
        """A fixed chipset address on bus 0, or None if something already sits there."""
        bus = self.buses[0]
        if function in bus.used.get(slot, set()):
            return None
        bus.take(slot, function)
        return Address.pci(0, slot, function)

    def _new_root_port(self) -> _Bus:
        """Add a pcie-root-port on bus 0, packing 8 functions a slot like libvirt."""
        root = self.buses[0]
        slot, fn = self._root_port_slot(root)
        idx = max(self.buses) + 1
        ctl = Controller(type="pci", index=idx, model="pcie-root-port",
                         model_name=ControllerModel(name="pcie-root-port"),
                         target=ControllerTarget(chassis=idx, port=(slot << 3) | fn),
                         address=Address.pci(0, slot, fn, True if fn == 0 else None))
        root.take(slot, fn)
        self.defn.devices.controllers.append(ctl)
        self.added.append(ctl)
        bus = _Bus(idx, "pcie-root-port")
        self.buses[idx] = bus
        self.auto_ports += 1
        return bus

    def _new_pci_bridge_bus(self) -> _Bus:
        """q35 has no conventional PCI slots of its own: add a root port with a pcie-to-pci-bridge behind it."""
        port = self._new_root_port()
        port.take(0, 0)
        idx = max(self.buses) + 1
        ctl = Controller(type="pci", index=idx, model="pcie-to-pci-bridge",
                         model_name=ControllerModel(name="pcie-pci-bridge"), address=Address.pci(port.index, 0, 0))
        self.defn.devices.controllers.append(ctl)
        self.added.append(ctl)
        bus = _Bus(idx, "pcie-to-pci-bridge")
        self.buses[idx] = bus
        return bus

    def _root_port_slot(self, root: _Bus) -> tuple[int, int]:
        """First bus-0 slot (ascending) that is empty or holds only root ports, and its first free function."""
        for slot in root.slots:
            taken = root.used.get(slot, set())
            if taken and slot not in self.port_slots:
                continue
            for fn in range(8):
                if fn not in taken:
                    self.port_slots.add(slot)
                    return slot, fn
        raise Error(ErrorCode.INTERNAL_ERROR, "No more available PCI slots")

    def next_address(self, pcie: bool, *, bridge: bool = False) -> Address:
        """A free slot for a device: behind a new root port on q35 for PCIe devices, else a bus-0/bridge slot.

        Conventional endpoints prefer hotpluggable pci-bridges; a pci-bridge itself (`bridge`) prefers the
        dmi-to-pci-bridge, as libvirt's bus flags arrange.
        """
        if self.q35 and pcie:
            for bus in sorted(self.buses.values(), key=lambda b: b.index):
                if bus.model == "pcie-root-port" and not bus.used:
                    bus.take(0, 0)
                    return Address.pci(bus.index, 0, 0)
            bus = self._new_root_port()
            bus.take(0, 0)
            return Address.pci(bus.index, 0, 0)
        rank = {"dmi-to-pci-bridge": 0} if bridge else {"pci-bridge": 0, "pcie-to-pci-bridge": 0, "dmi-to-pci-bridge": 1}
        order = sorted(self.buses.values(), key=lambda b: (rank.get(b.model, 2), b.index))
        if not self.q35:
            order.sort(key=lambda b: b.index)
        for bus in order:
            if self.q35 and bus.model not in ("pci-bridge", "pcie-to-pci-bridge", "dmi-to-pci-bridge"):
                continue
            if not self.q35 and bus.model not in ("pci-root", "pci-bridge"):
                continue
            slot = bus.free_slot()
            if slot is not None:
                bus.take(slot, 0)
                return Address.pci(bus.index, slot, 0)
        if self.q35:
            bus = self._new_pci_bridge_bus()
            slot = bus.free_slot()
            assert slot is not None
            bus.take(slot, 0)
            return Address.pci(bus.index, slot, 0)
        raise Error(ErrorCode.INTERNAL_ERROR, "No more available PCI slots")


ICH9_FUNCTIONS = {"ich9-ehci1": 7, "ich9-uhci1": 0, "ich9-uhci2": 1, "ich9-uhci3": 2}


def _assign_ich9_group(a: PCIAssigner, controllers: list[Controller], index: int) -> None:
    """An EHCI controller and its UHCI companions share one slot: EHCI at function 7, UHCIs at 0-2."""
    group = [c for c in controllers if c.type == "usb" and (c.index or 0) == index and c.model in ICH9_FUNCTIONS]
    first = a.next_address(pcie=False)
    bus = a.buses[int(first.bus or 0)]
    for c in group:
        if c.address is None:
            fn = ICH9_FUNCTIONS[c.model or ""]
            bus.take(first.slot or 0, fn)
            c.address = Address.pci(int(first.bus or 0), first.slot or 0, fn)


def assign_pci(defn: DomainDef) -> None:
    """qemuDomainAssignPCIAddresses: a dry run finds which buses must be added (root ports, bridges); they
    are added to the definition first, then every device is placed for real, as libvirt does."""
    before = _AddressSnapshot(defn)
    added = _assign_pci_pass(defn)
    if not added:
        return  # no bus to add: the real pass would place every device the same way
    before.restore()
    for made in added:
        ctl = Controller(type="pci", index=made.index, model=made.model, model_name=made.model_name)
        if made.model == "pcie-root-port":
            ctl.target = ControllerTarget(chassis=made.index)
        defn.devices.controllers.append(ctl)
    _assign_pci_pass(defn)


class _AddressSnapshot:
    """What a PCI placement pass may change (each device's address, a controller's target, the controllers
    it appends), kept so a dry run can be undone: much cheaper than copying every device, and this runs on
    every define."""

    def __init__(self, defn: DomainDef) -> None:
        devs = defn.devices
        self.controllers = devs.controllers
        self.controller_count = len(devs.controllers)
        self.saved: list[tuple[object, str, Any, dict[str, Any] | None]] = []
        for it in [*devs.disks, *devs.controllers, *devs.interfaces, *devs.videos, *devs.rngs, *devs.inputs,
                   *devs.watchdogs, *devs.serials, *devs.channels, *devs.consoles, *devs.sounds, *devs.hostdevs,
                   *devs.filesystems, *devs.shmems, devs.memballoon, devs.vsock]:
            if it is not None:
                self._keep(it, "address")
        for c in devs.controllers:
            self._keep(c, "target")

    def _keep(self, owner: object, attr: str) -> None:
        value = getattr(owner, attr, None)
        self.saved.append((owner, attr, value, dict(vars(value)) if value is not None else None))

    def restore(self) -> None:
        del self.controllers[self.controller_count:]
        for owner, attr, value, state in self.saved:
            setattr(owner, attr, value)
            if value is not None and state is not None:
                vars(value).clear()
                vars(value).update(state)


def _assign_pci_pass(defn: DomainDef) -> list[Controller]:
    """One placement pass; returns the controllers it had to create."""
    a = PCIAssigner(defn)
    devs = defn.devices
    for it in [*devs.disks, *devs.controllers, *devs.interfaces, *devs.videos, *devs.rngs, *devs.inputs,
               *devs.watchdogs, *devs.sounds, *devs.serials, *devs.hostdevs, *devs.filesystems, *devs.shmems,
               devs.memballoon, devs.vsock]:
        if it is not None and it.address is not None and it.address.type is None:
            it.address = None
    # chipset built-ins
    for c in devs.controllers:
        if c.address is not None:
            continue
        if not a.q35:
            if c.type == "ide" and c.index == 0:
                c.address = a.reserve(1, 1)
            elif c.type == "usb" and c.index == 0 and c.model in ("piix3-uhci", None):
                c.address = a.reserve(1, 2)
        else:
            if c.type == "sata" and c.index == 0:
                c.address = a.reserve(0x1F, 2)
            elif c.type == "usb" and c.model and c.model.startswith("ich9-") and c.index in (0, 1):
                fn = {"ich9-ehci1": 7, "ich9-uhci1": 0, "ich9-uhci2": 1, "ich9-uhci3": 2}[c.model]
                c.address = a.reserve(0x1D if c.index == 0 else 0x1A, fn)
            elif c.type == "pci" and c.model == "dmi-to-pci-bridge":
                c.address = a.reserve(0x1E, 0)
    if not a.q35:
        a.buses[0].take(1, 0)  # PIIX3 ISA bridge
    else:
        a.buses[0].take(0x1F, 0)  # ICH9 LPC
        a.buses[0].take(0x1F, 3)  # SMBus
    # primary video sits at a fixed slot (2 on i440fx, 1 on q35)
    if devs.videos and devs.videos[0].address is None and devs.videos[0].model and devs.videos[0].model.type != "none":
        v = devs.videos[0]
        assert v.model is not None
        if v.model.type in ("cirrus", "vga", "qxl", "virtio", "bochs", "vmvga"):
            v.address = a.reserve(1 if a.q35 else 2, 0)
    for c in list(devs.controllers):
        if c.type == "pci" and c.address is None and c.model not in ("pci-root", "pcie-root"):
            pcie = c.model in ("pcie-root-port", "pcie-switch-upstream-port", "pcie-to-pci-bridge")
            if c.model == "pcie-root-port":
                root = a.buses[0]
                slot, fn = a._root_port_slot(root)
                root.take(slot, fn)
                c.address = Address.pci(0, slot, fn, True if fn == 0 else None)
            else:
                c.address = a.next_address(
                    pcie and a.q35 and c.model != "pcie-root-port", bridge=c.model == "pci-bridge"
                )
        if c.type == "pci" and c.model == "pcie-root-port" and c.target is not None and c.target.port is None \
                and c.address is not None:
            c.target.port = ((c.address.slot or 0) << 3) | (c.address.function or 0)
    for fs in devs.filesystems:
        if fs.address is None and fs.type == "mount":
            fs.address = a.next_address(pcie=True)
    for n in devs.interfaces:
        if n.address is None and n.type not in ("hostdev",):
            n.address = a.next_address(pcie=(n.model or "") in PCIE_NET_MODELS)
    for snd in devs.sounds:
        if snd.address is None and snd.model == "ich9" and a.q35:
            snd.address = a.reserve(0x1B, 0)  # the ICH9 HDA sits at its chipset slot
        if snd.address is None and snd.model in ("es1370", "ac97", "ich6", "ich9", "ich7"):
            snd.address = a.next_address(pcie=False)
    for c in devs.controllers:
        if c.address is not None or c.type in ("pci", "ide", "fdc", "ccid"):
            continue
        if c.type == "usb" and c.model == "none":
            continue
        if c.type == "usb" and c.model in ICH9_FUNCTIONS:
            _assign_ich9_group(a, devs.controllers, c.index or 0)
            continue
        pcie = (c.type in ("virtio-serial", "scsi") and (c.model or "virtio").startswith("virtio")) or (
            c.type == "usb" and c.model in ("qemu-xhci", "nec-xhci")) or c.type == "sata"
        c.address = a.next_address(pcie=pcie)
    for d in devs.disks:
        if d.address is None and d.bus == "virtio":
            d.address = a.next_address(pcie=True)
    for h in devs.hostdevs:
        if h.address is None and h.type in ("pci", "mdev") and h.mode == "subsystem":
            h.address = a.next_address(pcie=True)
    for n in devs.interfaces:
        if n.address is None and n.type == "hostdev":
            n.address = a.next_address(pcie=True)  # an SR-IOV VF is a host device
    mb = devs.memballoon
    if mb is not None and mb.address is None and mb.model not in ("none", None):
        mb.address = a.next_address(pcie=True)
    for r in devs.rngs:
        if r.address is None:
            r.address = a.next_address(pcie=True)
    for w in devs.watchdogs:
        if w.address is None and w.model == "i6300esb":
            w.address = a.next_address(pcie=False)
    for v in devs.videos:
        if v.address is None and v.model is not None and v.model.type not in ("none", "ramfb"):
            v.address = a.next_address(pcie=v.model.type == "virtio")
    for i in devs.inputs:
        if i.address is None and i.bus == "virtio":
            i.address = a.next_address(pcie=True)
    for sh in devs.shmems:
        if sh.address is None:
            sh.address = a.next_address(pcie=False)
    for s in devs.serials:
        if s.address is None and s.target is not None and s.target.type == "pci-serial":
            s.address = a.next_address(pcie=False)
    if devs.vsock is not None and devs.vsock.address is None:
        devs.vsock.address = a.next_address(pcie=True)
    if a.q35 and a.auto_ports and a.user_max_index <= 0:
        a._new_root_port()  # libvirt leaves one spare root port for hotplug
    _set_multifunction(a._all_addresses())
    return a.added


def _set_multifunction(addrs: list[Address]) -> None:
    """Function 0 of a slot whose other functions are in use must say multifunction='on'."""
    used: dict[tuple[int, int], set[int]] = {}
    for ad in addrs:
        if ad.type == "pci":
            used.setdefault((int(ad.bus or 0), ad.slot or 0), set()).add(ad.function or 0)
    for ad in addrs:
        if (
            ad.type == "pci"
            and (ad.function or 0) == 0
            and ad.multifunction is None
            and len(used.get((int(ad.bus or 0), ad.slot or 0), set())) > 1
        ):
            ad.multifunction = True


def assign_dimm_slots(defn: DomainDef) -> None:
    """Hot-pluggable DIMMs take the lowest free slot."""
    used = {m.address.slot or 0 for m in defn.devices.memories if m.address is not None}
    for m in defn.devices.memories:
        if m.address is None and m.model in ("dimm", "nvdimm"):
            slot = next(s for s in range(len(defn.devices.memories) + len(used) + 1) if s not in used)
            m.address = Address(type="dimm", slot=slot)
            used.add(slot)


def assign_addresses(defn: DomainDef, *, usb: bool = True) -> None:
    """All address kinds, in libvirt's order."""
    assign_drive_addresses(defn)
    assign_dimm_slots(defn)
    assign_virtio_serial(defn)
    assign_pci(defn)
    if usb:
        assign_usb(defn)
