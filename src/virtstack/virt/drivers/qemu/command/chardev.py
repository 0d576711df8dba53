"""Character devices: the -chardev backend and the guest device for serials, parallels, channels, consoles."""

from __future__ import annotations

from typing import Any

from virtstack.virt.drivers.qemu.command.aliases import alias_of, controller_alias
from virtstack.virt.drivers.qemu.command.context import BuildContext, unsupported
from virtstack.virt.drivers.qemu.command.escape import qemu_opt
from virtstack.virt.drivers.qemu.command.model import FdRequest
from virtstack.virt.drivers.qemu.config import short_name
from virtstack.virt.xml.devices.chardev import CharDev, ChrSource


def chardev_backend(ctx: BuildContext, dev: CharDev, chr_id: str) -> str:
    """The -chardev value for one device's source (qemuBuildChrChardevStr).

    With `runtime.open_fd`, listening unix sockets become `fd=N` and files are passed through
    `-add-fd` fd sets (always appending: libvirt truncates the file itself when asked to).
    """
    kind = dev.type or "pty"
    srcs = dev.sources
    src = srcs[0] if srcs else None
    path = qemu_opt(src.path) if src and src.path else None
    parts: list[str]
    if kind in ("null", "vc", "pty", "stdio"):
        parts = [kind, f"id={chr_id}"]
    elif kind == "dev":
        parts = ["tty", f"id={chr_id}", f"path={path or ''}"]
    elif kind == "file":
        fdset = _fdset(ctx, f"{_dev_alias(chr_id)}-source", src.path if src and src.path else "")
        if fdset is not None:
            parts = ["file", f"id={chr_id}", f"path={fdset}", "append=on"]
        else:
            parts = ["file", f"id={chr_id}", f"path={path or ''}"]
            if src is not None and src.append is not None:
                parts.append(f"append={'on' if src.append else 'off'}")
    elif kind == "pipe":
        parts = ["pipe", f"id={chr_id}", f"path={path or ''}"]
    elif kind == "udp":
        connect = next((s for s in srcs if s.mode in (None, "connect")), None)
        bind = next((s for s in srcs if s.mode == "bind"), None)
        parts = [
            "udp", f"id={chr_id}",
            f"host={qemu_opt(connect.host or '' if connect else '')}",
            f"port={qemu_opt(connect.service or '' if connect else '')}",
            f"localaddr={qemu_opt(bind.host or '' if bind else '')}",
            f"localport={qemu_opt(bind.service or '0' if bind else '0')}",
        ]  # fmt: skip
    elif kind == "tcp":
        parts = [
            "socket",
            f"id={chr_id}",
            f"host={qemu_opt(src.host or '' if src else '')}",
            f"port={qemu_opt(src.service or '' if src else '')}",
        ]
        if dev.protocol == "telnet":
            parts.append("telnet=on")
        if src is not None and src.mode == "bind":
            parts += ["server=on", "wait=off"]
    elif kind == "unix":
        if path is None:
            auto = _auto_unix_path(ctx, dev)
            _record_path(dev, src, auto)
            path = qemu_opt(auto)
        # a unix source listens only in mode='bind' (or with no path, where libvirt makes one up)
        listen = src is None or src.mode == "bind" or (src.mode is None and not src.path)
        if listen and ctx.runtime.open_fd is not None:
            raw = src.path if src and src.path else _auto_unix_path(ctx, dev)
            fd = ctx.open_fd(FdRequest(chr_id, raw, "unix-listen"))
            parts = ["socket", f"id={chr_id}", f"fd={fd}"]
        else:
            parts = ["socket", f"id={chr_id}", f"path={path}"]
        if listen:
            parts += ["server=on", "wait=off"]
    elif kind == "spicevmc":
        parts = ["spicevmc", f"id={chr_id}", "name=vdagent"]
    elif kind == "spiceport":
        parts = ["spiceport", f"id={chr_id}", f"name={qemu_opt(src.channel or '' if src else '')}"]
    elif kind == "qemu-vdagent":
        parts = ["qemu-vdagent", f"id={chr_id}", "name=vdagent"]
        if src is not None and src.clipboard is not None and src.clipboard.copypaste is not None:
            parts.append(f"clipboard={'on' if src.clipboard.copypaste == 'yes' else 'off'}")
        if src is not None and src.mouse is not None and src.mouse.mode is not None:
            parts.append(f"mouse={'on' if src.mouse.mode == 'client' else 'off'}")
    else:
        raise unsupported(f"Unsupported char device type '{kind}'")
    if dev.log is not None and dev.log.file:
        fdset = _fdset(ctx, f"{_dev_alias(chr_id)}-log", dev.log.file)
        if fdset is not None:
            parts += [f"logfile={fdset}", "logappend=on"]
        else:
            parts.append(f"logfile={qemu_opt(dev.log.file)}")
            if dev.log.append is not None:
                parts.append(f"logappend={'on' if dev.log.append else 'off'}")
    return ",".join(parts)


def _dev_alias(chr_id: str) -> str:
    return chr_id.removeprefix("char")


def _fdset(ctx: BuildContext, purpose: str, path: str) -> str | None:
    """Pass `path` as an fd set (`-add-fd set=N,fd=M,opaque=...`); None when paths are used."""
    if ctx.runtime.open_fd is None:
        return None
    fd = ctx.open_fd(FdRequest(purpose, path, "file-append"))
    set_id = ctx.next_fdset
    ctx.next_fdset += 1
    ctx.add("-add-fd", f"set={set_id},fd={fd},opaque={purpose}")
    return f"/dev/fdset/{set_id}"


def _record_path(dev: CharDev, src: ChrSource | None, path: str) -> None:
    """The made-up socket path shows in the definition the domain runs with, as libvirt's
    qemuDomainPrepareChannel writes it (<source mode='bind' path='...'/>)."""
    if src is None:
        dev.sources = [ChrSource(mode="bind", path=path)]
    else:
        src.path = path
        src.mode = src.mode or "bind"


def _auto_unix_path(ctx: BuildContext, dev: CharDev) -> str:
    """A bind-mode unix channel without a path gets one under the channel target dir."""
    name = dev.target.name if dev.target and dev.target.name else "channel"
    dom = f"domain-{ctx.runtime.dom_id}-{short_name(ctx.defn.name or '')}"
    return f"{ctx.config.channel_target_dir}/{dom}/{name}"


def build_serials(ctx: BuildContext) -> None:
    for i, ser in enumerate(ctx.defn.devices.serials):
        alias = alias_of(ser)
        ctx.add("-chardev", chardev_backend(ctx, ser, f"char{alias}"))
        ctx.device(_serial_device(ctx, ser, alias, i))


def _serial_device(ctx: BuildContext, ser: CharDev, alias: str, i: int) -> dict[str, Any]:
    tgt = ser.target
    ttype = tgt.type if tgt and tgt.type else "isa-serial"
    model = tgt.model if tgt and tgt.model else None
    port = tgt.port if tgt and tgt.port is not None else i
    chardev = f"char{alias}"
    if ttype == "isa-debug" or model == "isa-debugcon":
        props: dict[str, Any] = {"driver": "isa-debugcon", "chardev": chardev, "id": alias}
        if ser.address is not None and ser.address.iobase is not None:
            props["iobase"] = ser.address.iobase
        return props
    if ttype in ("isa-serial", "isa") or model == "isa-serial":
        return {"driver": "isa-serial", "chardev": chardev, "id": alias, "index": port}
    if ttype == "usb-serial" or model == "usb-serial":
        return {"driver": "usb-serial", "chardev": chardev, "id": alias}
    if ttype == "pci-serial" or model == "pci-serial":
        return {"driver": "pci-serial", "chardev": chardev, "id": alias, **ctx.pci_props(ser.address)}
    raise unsupported(f"unsupported serial target type '{ttype}'")


def build_parallels(ctx: BuildContext) -> None:
    for par in ctx.defn.devices.parallels:
        alias = alias_of(par)
        ctx.add("-chardev", chardev_backend(ctx, par, f"char{alias}"))
        ctx.device({"driver": "isa-parallel", "chardev": f"char{alias}", "id": alias})


def _virtio_serial_props(ctx: BuildContext, dev: CharDev) -> dict[str, Any]:
    """ "bus" (the controller's alias) and "nr" of a virtio-serial address."""
    addr = dev.address
    if addr is None or addr.type != "virtio-serial":
        return {}
    ctl = controller_alias(ctx, "virtio-serial", addr.controller or 0)
    return {"bus": f"{ctl}.{int(addr.bus or 0)}", "nr": int(addr.port or 0)}


def build_channels(ctx: BuildContext) -> None:
    for ch in ctx.defn.devices.channels:
        alias = alias_of(ch)
        tgt = ch.target
        ttype = tgt.type if tgt and tgt.type else "virtio"
        if ttype != "virtio":
            raise unsupported(f"unsupported channel target type '{ttype}'")
        ctx.add("-chardev", chardev_backend(ctx, ch, f"char{alias}"))
        props: dict[str, Any] = {"driver": "virtserialport", **_virtio_serial_props(ctx, ch)}
        props["chardev"] = f"char{alias}"
        props["id"] = alias
        if tgt is not None and tgt.name:
            props["name"] = tgt.name
        elif ch.type == "spicevmc":
            props["name"] = "com.redhat.spice.0"
        ctx.device(props)


def build_consoles(ctx: BuildContext) -> None:
    """Consoles other than the one that only mirrors serial0 (<console target type='serial'>)."""
    for i, con in enumerate(ctx.defn.devices.consoles):
        ttype = con.target.type if con.target and con.target.type else "serial"
        if ttype == "serial":
            if i == 0:
                continue
            raise unsupported("Only the first console can be a serial port")
        if ttype != "virtio":
            raise unsupported(f"unsupported console target type {ttype}")
        alias = alias_of(con)
        ctx.add("-chardev", chardev_backend(ctx, con, f"char{alias}"))
        props: dict[str, Any] = {"driver": "virtconsole"}
        props["chardev"] = f"char{alias}"
        props["id"] = alias
        ctx.device(props)
