"""Guest NICs: a -netdev host backend and its -device front end per <interface>."""

from __future__ import annotations

from typing import Any

from virtstack.virt.drivers.qemu.command.aliases import alias_of
from virtstack.virt.drivers.qemu.command.context import BuildContext, unsupported
from virtstack.virt.drivers.qemu.command.escape import json_arg, qemu_opt
from virtstack.virt.drivers.qemu.command.model import FdRequest
from virtstack.virt.xml.devices.interface import Interface

_NIC_DRIVERS = {
    "virtio": "virtio-net-pci",
    "virtio-transitional": "virtio-net-pci-transitional",
    "virtio-non-transitional": "virtio-net-pci-non-transitional",
}


def build_interfaces(ctx: BuildContext, bootindex: dict[int, int]) -> None:
    for i, iface in enumerate(ctx.defn.devices.interfaces):
        if iface.type == "vhostuser":
            src = iface.source
            if src is None or not src.path:
                raise unsupported("Missing source path for vhost-user interface")
            chardev = f"socket,id=char{alias_of(iface)},path={qemu_opt(src.path)}"
            if src.mode == "server":
                chardev += ",server=on"
            ctx.add("-chardev", chardev)
        ctx.add("-netdev", json_arg(_netdev(ctx, iface, i)))
        ctx.device(_nic(ctx, iface, bootindex.get(i)))


def _netdev(ctx: BuildContext, iface: Interface, i: int) -> dict[str, Any]:
    """The host side; its id is "host" + the NIC's alias. `i` (position) keys the pre-opened tap fd."""
    alias = alias_of(iface)
    hostid = f"host{alias}"
    kind = iface.type
    if kind == "user":
        return {"type": "user", "id": hostid}
    if kind in ("ethernet", "network", "bridge", "direct"):
        fd = ctx.runtime.fds.get(f"tap:net{i}")
        if fd is None:
            raise unsupported(f"interface type '{kind}' needs a tap device opened by the driver")
        ctx.use_fd(fd)
        return {"type": "tap", "fd": str(fd), "id": hostid}
    if kind == "vhostuser":
        props: dict[str, Any] = {"type": "vhost-user", "chardev": f"char{alias}"}
        if iface.driver is not None and iface.driver.queues and iface.driver.queues > 1:
            props["queues"] = iface.driver.queues
        props["id"] = hostid
        return props
    if kind == "vdpa":
        dev = iface.source.dev if iface.source and iface.source.dev else None
        if dev is None:
            raise unsupported("Missing source device for vdpa interface")
        if ctx.runtime.open_fd is None:
            raise unsupported("interface type 'vdpa' needs its device opened by the driver")
        fd = ctx.open_fd(FdRequest(f"{alias}-vdpa", dev, "vdpa"))
        set_id = ctx.next_fdset
        ctx.next_fdset += 1
        ctx.add("-add-fd", f"set={set_id},fd={fd},opaque={alias}-vdpa")
        return {"type": "vhost-vdpa", "vhostdev": f"/dev/fdset/{set_id}", "id": hostid}
    if kind in ("server", "client", "mcast", "udp"):
        src = iface.source
        addr = src.address if src and src.address else ""
        port = src.port if src and src.port is not None else 0
        key = {"server": "listen", "client": "connect", "mcast": "mcast", "udp": "udp"}[kind]
        return {"type": "socket", key: f"{addr}:{port}", "id": hostid}
    raise unsupported(f"interface type '{kind}' is not supported by this driver")


def _nic(ctx: BuildContext, iface: Interface, bootindex: int | None) -> dict[str, Any]:
    model = iface.model or "rtl8139"
    driver = _NIC_DRIVERS.get(model, model)
    props: dict[str, Any] = {"driver": driver}
    drv = iface.driver
    if driver.startswith("virtio-net"):
        props.update(ctx.virtio_options(drv))
        if drv is not None and drv.txmode is not None:
            props["tx"] = "bh" if drv.txmode == "iothread" else "timer"
    if driver.startswith("virtio-net") and drv is not None:
        if drv.ioeventfd is not None:
            props["ioeventfd"] = drv.ioeventfd
        if drv.event_idx is not None:
            props["event_idx"] = drv.event_idx
        if drv.rx_queue_size is not None:
            props["rx_queue_size"] = drv.rx_queue_size
        if drv.tx_queue_size is not None:
            props["tx_queue_size"] = drv.tx_queue_size
    if iface.mtu is not None and iface.mtu.size is not None:
        props["host_mtu"] = iface.mtu.size
    alias = alias_of(iface)
    props["netdev"] = f"host{alias}"
    props["id"] = alias
    if iface.mac is not None and iface.mac.address:
        props["mac"] = iface.mac.address
    if bootindex is not None:
        props["bootindex"] = bootindex
    props.update(ctx.pci_props(iface.address))
    if iface.acpi is not None and iface.acpi.index is not None:
        props["acpi-index"] = iface.acpi.index
    rom = iface.rom
    if rom is not None:
        if rom.enabled == "no":
            props["romfile"] = ""
        else:
            if rom.bar is not None:
                props["rombar"] = 1 if rom.bar else 0
            if rom.file is not None:
                props["romfile"] = rom.file
    return props


def to_pretend_ethernet(iface: Interface) -> Interface:
    """What `virsh domxml-to-native` builds from: every NIC becomes a plain tap (type ethernet).

    libvirt rebuilds each <interface> keeping only the MAC, model and address, so per-device boot
    order, ACPI index, driver tuning and ROM settings are dropped.
    """
    return Interface(type="ethernet", mac=iface.mac, model=iface.model, address=iface.address)
