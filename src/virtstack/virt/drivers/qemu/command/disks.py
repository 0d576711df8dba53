"""Disks: -blockdev storage/format node pairs (base of the chain first) and the guest -device."""

from __future__ import annotations

import grp
import pwd
import re
from dataclasses import dataclass
from typing import Any

from virtstack.virt.drivers.qemu.command.aliases import alias_of, controller_alias, find_controller
from virtstack.virt.drivers.qemu.command.context import BuildContext, unsupported
from virtstack.virt.drivers.qemu.command.controllers import usb_address_props
from virtstack.virt.drivers.qemu.command.escape import json_arg, qemu_opt
from virtstack.virt.xml.devices.disk import BackingStore, Disk
from virtstack.virt.xml.devices.source import Host, StorageSource

# cache mode -> (direct, no-flush, guest write cache)
_CACHE = {
    "none": (True, False, True),
    "writethrough": (False, False, False),
    "writeback": (False, False, True),
    "directsync": (True, False, False),
    "unsafe": (False, True, True),
}
_BACKING_FORMATS = {"qcow2", "qcow", "qed", "vmdk", "cow", "vhd", "vpc"}


@dataclass
class Layer:
    """One image of a disk's chain, top first, with the node-name index libvirt gives it."""

    type: str
    source: StorageSource | None
    format: str
    index: int = 0
    has_backing_info: bool = False  # the XML said what lies below (an image or the end)


def disk_index(dev: str) -> int:
    """virDiskNameToIndex: 'vda' -> 0, 'sdaa' -> 26."""
    m = re.match(r"^(?:fd|hd|vd|sd|xvd|ubd)([a-z]+)$", dev)
    if not m:
        return 0
    idx = 0
    for ch in m.group(1):
        idx = idx * 26 + (ord(ch) - ord("a") + 1)
    return idx - 1


def chain_of(disk: Disk) -> list[Layer]:
    fmt = (disk.driver.type if disk.driver and disk.driver.type else None) or "raw"
    top = Layer(disk.type or "file", disk.source, fmt, has_backing_info=disk.backing is not None)
    layers = [top]
    b: BackingStore | None = disk.backing
    while b is not None and b.type is not None:
        bfmt = (b.format.type if b.format and b.format.type else None) or "raw"
        layers.append(Layer(b.type, b.source, bfmt, has_backing_info=True))
        b = b.backing
    return layers


def assign_node_indexes(disks: list[Disk]) -> list[list[Layer]]:
    """libvirt numbers images across all disks from the last disk's top layer up to the first disk's base.

    An empty drive (a CD-ROM without media) still takes a number though it gets no -blockdev.
    """
    chains = [chain_of(d) if d.bus != "sd" else [] for d in disks]
    n = 0
    for chain in reversed(chains):
        for layer in chain:
            n += 1
            layer.index = n
    return chains


def _is_empty(disk: Disk) -> bool:
    src = disk.source
    if disk.type == "network":
        return src is None or not src.protocol
    return src is None or not (src.file or src.dev or src.dir or src.volume)


def build_disks(ctx: BuildContext, bootindex: dict[int, int]) -> None:
    """Disks in `ctx.defn.devices.disks` order (already sorted like libvirt's); `bootindex` by position."""
    disks = ctx.defn.devices.disks
    chains = assign_node_indexes(disks)
    fdc: dict[str, Any] = {}
    for i, disk in enumerate(disks):
        if disk.bus == "fdc":
            addr = disk.address
            letter = "A" if addr is None or (addr.unit or 0) == 0 else "B"
            if bootindex.get(i) is not None:
                fdc[f"bootindex{letter}"] = bootindex[i]
    if ctx.is_q35 and any(d.bus == "fdc" for d in disks):
        ctx.device({"driver": "isa-fdc", **fdc})
    else:
        for key, value in fdc.items():
            ctx.add("-global", f"isa-fdc.{key}={value}")
    for i, (disk, chain) in enumerate(zip(disks, chains, strict=True)):
        if disk.bus == "sd":
            _legacy_sd_drive(ctx, disk)
            continue
        empty = _is_empty(disk)
        if not empty:
            for layer_no in range(len(chain) - 1, -1, -1):
                layer = chain[layer_no]
                below = chain[layer_no + 1] if layer_no + 1 < len(chain) else None
                _blockdev_pair(ctx, disk, layer, below, top=layer_no == 0)
        drive = None if empty else f"libvirt-{chain[0].index}-format"
        if drive is not None and disk.driver is not None and disk.driver.copy_on_read:
            dev = disk.target.dev if disk.target and disk.target.dev else ""
            cor = f"libvirt-CoR-{dev}"
            ctx.add(
                "-blockdev",
                json_arg({"driver": "copy-on-read", "node-name": cor, "file": drive, "discard": "unmap"}),
            )
            drive = cor
        ctx.device(_disk_device(ctx, disk, drive, bootindex.get(i)))


def _legacy_sd_drive(ctx: BuildContext, disk: Disk) -> None:
    """SD cards have no -device form in QEMU; libvirt still uses -drive if=sd for them."""
    src = disk.source
    path = (src.file or src.dev) if src is not None else None
    if disk.type not in ("file", "block") or not path:
        raise unsupported("only file and block SD card disks are supported")
    fmt = (disk.driver.type if disk.driver and disk.driver.type else None) or "raw"
    dev = disk.target.dev if disk.target and disk.target.dev else ""
    ctx.add("-drive", f"file={qemu_opt(path)},format={fmt},if=sd,index={disk_index(dev)}")


def _cache(disk: Disk) -> tuple[bool, bool, bool] | None:
    mode = disk.driver.cache if disk.driver else None
    if mode in (None, "default"):
        return None
    return _CACHE[mode]


def _blockdev_pair(ctx: BuildContext, disk: Disk, layer: Layer, below: Layer | None, top: bool) -> None:
    name = f"libvirt-{layer.index}"
    storage = _storage_props(ctx, disk, layer)
    storage["node-name"] = f"{name}-storage"
    cache = _cache(disk)
    if cache is not None:
        storage["cache"] = {"direct": cache[0], "no-flush": cache[1]}
    storage["auto-read-only"] = True
    storage["discard"] = "unmap"
    ctx.add("-blockdev", json_arg(storage))
    readonly = not top or disk.readonly or disk.device == "cdrom"
    fmt: dict[str, Any] = {"node-name": f"{name}-format", "read-only": readonly}
    if top and disk.driver and disk.driver.discard:
        fmt["discard"] = disk.driver.discard
    if top and disk.driver and disk.driver.detect_zeroes:
        dz = disk.driver.detect_zeroes
        if dz == "unmap" and disk.driver.discard != "unmap":
            dz = "on"
        fmt["detect-zeroes"] = dz
    if cache is not None:  # after discard/detect-zeroes, as libvirt orders the format node
        fmt["cache"] = {"direct": cache[0], "no-flush": cache[1]}
    if layer.format in ("iso", "cow", "none"):
        raise unsupported(f"storage format '{layer.format}' is not supported")
    fmt["driver"] = layer.format
    fmt["file"] = f"{name}-storage"
    if layer.format in _BACKING_FORMATS and (below is not None or layer.has_backing_info):
        fmt["backing"] = f"libvirt-{below.index}-format" if below is not None else None
    ctx.add("-blockdev", json_arg(fmt))


def _storage_props(ctx: BuildContext, disk: Disk, layer: Layer) -> dict[str, Any]:
    src = layer.source
    assert src is not None
    aio = disk.driver.io if disk.driver else None
    if layer.type in ("file", "block"):
        path = src.file if layer.type == "file" else src.dev
        if path is None:
            raise unsupported("disk source path is missing")
        if layer.type == "file":
            driver = "file"
        elif disk.device == "cdrom" and ctx.runtime.is_cdrom(path):
            driver = "host_cdrom"
        else:
            driver = "host_device"
        props: dict[str, Any] = {"driver": driver, "filename": path}
        if aio:
            props["aio"] = aio
        return props
    if layer.type == "network":
        return _network_props(ctx, src, f"libvirt-{layer.index}-storage")
    if layer.type == "dir":
        raise unsupported("'dir' disk type is not supported by the 'blockdev' storage backend")
    if layer.type == "volume":
        raise unsupported("storage pools are not supported by this driver")
    raise unsupported(f"unsupported disk type '{layer.type}'")


def _id_number(value: str | None, group: bool) -> int:
    """<identity user|group>: '+N' is a number, anything else a name looked up on this host."""
    if not value:
        return 0
    if value.startswith("+") or value.isdigit():
        return int(value.lstrip("+"))
    try:
        return grp.getgrnam(value).gr_gid if group else pwd.getpwnam(value).pw_uid
    except KeyError:
        raise unsupported(f"unknown {'group' if group else 'user'} '{value}'") from None


def _server(h: Host, default_port: int | None) -> dict[str, Any]:
    if h.transport == "unix":
        return {"type": "unix", "path": h.socket}
    port = h.port or default_port
    return {"type": "inet", "host": h.name, **({"port": str(port)} if port else {})}


def storage_tls(ctx: BuildContext, node: str) -> str:
    """The -object tls-creds-x509 a TLS-enabled network disk refers to (qemu.conf nbd/default TLS dir)."""
    creds = f"obj{node}_tls0"
    verify = ctx.config.default_tls_x509_verify
    ctx.obj({"qom-type": "tls-creds-x509", "id": creds, "dir": ctx.config.default_tls_x509_cert_dir,
             "endpoint": "client", "verify-peer": verify})  # fmt: skip
    return creds


def _network_props(ctx: BuildContext, src: StorageSource, node: str) -> dict[str, Any]:
    proto = src.protocol
    hosts = src.hosts
    if proto == "nbd":
        props: dict[str, Any] = {"driver": "nbd"}
        if hosts:
            props["server"] = _server(hosts[0], 10809)
        if src.name:
            props["export"] = src.name
        if src.tls:
            props["tls-creds"] = storage_tls(ctx, node)
            if src.tls_hostname:
                props["tls-hostname"] = src.tls_hostname
        return props
    if proto == "nfs":
        h = hosts[0] if hosts else None
        props = {"driver": "nfs", "server": {"host": h.name if h else "", "type": "inet"}, "path": src.name}
        if src.identity is not None:
            props["user"] = _id_number(src.identity.user, group=False)
            props["group"] = _id_number(src.identity.group, group=True)
        return props
    if proto == "gluster":
        volume, _, path = (src.name or "").lstrip("/").partition("/")
        if not volume or not path:
            raise unsupported(f"missing volume name or file name in gluster source path '{src.name}'")
        servers = [_server(h, 24007) for h in hosts]
        return {"driver": "gluster", "volume": volume, "path": path, "server": servers, "debug": 4}
    if proto == "iscsi":
        h = hosts[0] if hosts else None
        name = src.name or ""
        target, sep, lun = name.rpartition("/")
        if not sep or not lun.isdigit():
            target, lun = name, "0"
        host = h.name or "" if h else ""
        portal = (
            f"[{host}]:{h.port or 3260}"
            if h and ":" in host
            else f"{host}:{h.port if h and h.port else 3260}"
        )
        return {"driver": "iscsi", "portal": portal, "target": target, "lun": int(lun), "transport": "tcp"}
    if proto == "rbd":
        pool, _, image = (src.name or "").partition("/")
        props = {"driver": "rbd", "pool": pool, "image": image}
        if src.snapshot is not None and src.snapshot.name:
            props["snapshot"] = src.snapshot.name
        if src.config is not None and src.config.file:
            props["conf"] = src.config.file
        if hosts:
            props["server"] = [
                {"host": h.name, "port": str(h.port)} if h.port else {"host": h.name} for h in hosts
            ]
        return props
    if proto in ("http", "https", "ftp", "ftps"):
        h = hosts[0] if hosts else None
        port = f":{h.port}" if h and h.port else ""
        url = f"{proto}://{h.name if h else ''}{port}/{(src.name or '').lstrip('/')}"
        if src.query:
            url += f"?{src.query}"
        return {"driver": proto, "url": url}
    raise unsupported(f"network disk protocol '{proto}' is not supported by this driver")


def network_storage(ctx: BuildContext, src: StorageSource, node: str) -> dict[str, Any]:
    """The protocol node of a network source (also used for NVRAM on NBD/iSCSI)."""
    return _network_props(ctx, src, node)


def _disk_device(ctx: BuildContext, disk: Disk, drive: str | None, bootindex: int | None) -> dict[str, Any]:
    bus = disk.bus
    alias = alias_of(disk)
    addr = disk.address
    props: dict[str, Any] = {}
    cdrom = disk.device == "cdrom"
    if bus == "virtio":
        props["driver"] = "virtio-blk-pci"
        drv = disk.driver
        props.update(ctx.virtio_options(drv))
        if drv is not None:
            if drv.iothread is not None:
                props["iothread"] = f"iothread{drv.iothread}"
            if drv.ioeventfd is not None:
                props["ioeventfd"] = drv.ioeventfd
            if drv.event_idx is not None:
                props["event_idx"] = drv.event_idx
            if drv.queues is not None:
                props["num-queues"] = drv.queues
            if drv.queue_size is not None:
                props["queue-size"] = drv.queue_size
        props.update(ctx.pci_props(addr))
        if disk.acpi is not None and disk.acpi.index is not None:
            props["acpi-index"] = disk.acpi.index
    elif bus in ("ide", "sata"):
        props["driver"] = "ide-cd" if cdrom else "ide-hd"
        c = addr.controller or 0 if addr else 0
        b = int(addr.bus or 0) if addr else 0
        u = addr.unit or 0 if addr else 0
        if bus == "ide":
            # the built-in PIIX IDE is not on the command line, so QEMU's own name is used for it
            ctl = "ide" if ctx.is_i440fx else controller_alias(ctx, "ide", c)
            props["bus"] = f"{ctl}.{b}"
            props["unit"] = u
        else:
            ctl = "ide" if ctx.is_q35 and c == 0 else controller_alias(ctx, "sata", c)
            props["bus"] = f"{ctl}.{u}"
    elif bus == "scsi":
        props.update(_scsi_props(ctx, disk, alias))
    elif bus == "fdc":
        props["driver"] = "floppy"
        props["unit"] = addr.unit or 0 if addr else 0
    elif bus == "usb":
        props["driver"] = "usb-storage"
        props.update(usb_address_props(ctx, addr))
    else:
        raise unsupported(f"disk bus '{bus}' is not supported by this driver")
    if drive is not None:
        props["drive"] = drive
    props["id"] = alias
    if bootindex is not None and bus != "fdc":
        props["bootindex"] = bootindex
    bio = disk.blockio
    if bio is not None and bio.logical_block_size is not None:
        props["logical_block_size"] = bio.logical_block_size
    if bio is not None and bio.physical_block_size is not None:
        props["physical_block_size"] = bio.physical_block_size
    if bio is not None and bio.discard_granularity is not None:
        props["discard_granularity"] = bio.discard_granularity
    if disk.wwn:
        props["wwn"] = int(disk.wwn, 16)
    tgt = disk.target
    if tgt is not None and tgt.rotation_rate is not None:
        props["rotation_rate"] = tgt.rotation_rate
    if disk.vendor:
        props["vendor"] = disk.vendor
    if disk.product:
        props["product"] = disk.product
    if bus == "usb":
        props["removable"] = bool(tgt is not None and tgt.removable)
    cache = _cache(disk)
    if cache is not None:  # floppies too
        props["write-cache"] = "on" if cache[2] else "off"
    geo = disk.geometry
    if geo is not None:
        for key in ("cyls", "heads", "secs"):
            if getattr(geo, key) is not None:
                props[key] = getattr(geo, key)
        if geo.trans is not None:
            props["bios-chs-trans"] = geo.trans
    if disk.serial:
        props["serial"] = disk.serial.replace("\\", "\\\\").replace(" ", "\\ ")
    drv = disk.driver
    wpolicy = drv.error_policy if drv and drv.error_policy not in (None, "default") else None
    rpolicy = drv.rerror_policy if drv and drv.rerror_policy not in (None, "default") else None
    if rpolicy is None and wpolicy not in (None, "enospace"):
        rpolicy = wpolicy
    if wpolicy is not None:
        props["werror"] = "enospc" if wpolicy == "enospace" else wpolicy
    if rpolicy is not None:
        props["rerror"] = rpolicy
    return props


def _scsi_model(ctx: BuildContext, index: int) -> str | None:
    ctl = find_controller(ctx, "scsi", index)
    return ctl.model if ctl is not None else None


def _scsi_props(ctx: BuildContext, disk: Disk, alias: str) -> dict[str, Any]:
    addr = disk.address
    c = addr.controller or 0 if addr else 0
    b = int(addr.bus or 0) if addr else 0
    t = addr.target or 0 if addr else 0
    u = addr.unit or 0 if addr else 0
    model = _scsi_model(ctx, c)
    if disk.device == "lun":
        driver = "scsi-block"
    elif disk.device == "cdrom":
        driver = "scsi-cd"
    else:
        driver = "scsi-hd"
    props: dict[str, Any] = {"driver": driver}
    if model == "lsilogic":  # libvirt keeps the old bus/scsi-id form for this model alone
        if t != 0:
            raise unsupported("target must be 0 for controller model 'lsilogic'")
        props.update({"bus": f"{controller_alias(ctx, 'scsi', c)}.{b}", "scsi-id": u})
    else:
        props.update({"bus": f"{controller_alias(ctx, 'scsi', c)}.0", "channel": b, "scsi-id": t, "lun": u})
    if driver != "scsi-block":
        props["device_id"] = f"drive-{alias}"
    return props
