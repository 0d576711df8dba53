"""What the user sees and hears: -audiodev, graphics (-vnc, -spice, -display) and video adapters."""

from __future__ import annotations

import ipaddress
from typing import Any

from virtstack.virt.drivers.qemu.command import host
from virtstack.virt.drivers.qemu.command.aliases import alias_of
from virtstack.virt.drivers.qemu.command.context import BuildContext, unsupported
from virtstack.virt.drivers.qemu.command.escape import json_arg, qemu_opt
from virtstack.virt.errors import ErrorCode
from virtstack.virt.xml.devices.graphics import Graphics
from virtstack.virt.xml.devices.video import Video

_VIDEO_PRIMARY = {"vga": "VGA", "cirrus": "cirrus-vga", "vmvga": "vmware-svga", "qxl": "qxl-vga",
                  "virtio": "virtio-vga", "bochs": "bochs-display", "ramfb": "ramfb"}  # fmt: skip
_VIDEO_SECONDARY = {"qxl": "qxl", "virtio": "virtio-gpu-pci", "bochs": "bochs-display", "vga": "VGA"}


def build_audio(ctx: BuildContext) -> None:
    for audio in ctx.defn.devices.audios:
        aid = f"audio{audio.id or 1}"
        if ctx.audio_id is None:
            ctx.audio_id = aid
        ctx.add("-audiodev", json_arg({"id": aid, "driver": audio.type}))


#: graphics types QEMU can show only once per domain
_ONCE_GRAPHICS = ("sdl", "vnc", "spice", "egl-headless", "dbus")


def build_graphics(ctx: BuildContext) -> None:
    graphics = ctx.defn.devices.graphics
    for g in graphics:  # libvirt resolves GL render nodes while preparing, before this check
        wants_gl = g.type == "egl-headless" or (g.type == "spice" and g.gl is not None and g.gl.enable == "yes")
        if wants_gl and (g.gl is None or not g.gl.rendernode):
            host.render_node(ctx)
    types = [g.type for g in graphics]
    if any(types.count(t) > 1 for t in _ONCE_GRAPHICS):
        raise unsupported("only 1 graphics device of each type (sdl, vnc, spice, headless, dbus) is supported")
    for i, g in enumerate(graphics):
        if g.type == "vnc":
            ctx.add("-vnc", _vnc(ctx, g))
            if g.keymap:
                ctx.add("-k", g.keymap)
        elif g.type == "spice":
            ctx.add("-spice", _spice(ctx, g, i in ctx.runtime.allocated_tls_graphics))
        elif g.type == "sdl":
            parts = ["sdl"]
            if g.gl is not None and g.gl.enable is not None:
                parts.append(f"gl={'on' if g.gl.enable == 'yes' else 'off'}")
            ctx.add("-display", ",".join(parts))
        elif g.type == "egl-headless":
            node = g.gl.rendernode if g.gl is not None and g.gl.rendernode else host.render_node(ctx)
            parts = ["egl-headless", f"rendernode={qemu_opt(node)}"]
            ctx.add("-display", ",".join(parts))
        else:
            raise unsupported(f"unsupported graphics type '{g.type}'")


def pretend_graphics_ports(defn: Any, spice_tls: bool, auto_socket: bool) -> set[int]:
    """What libvirt's port allocation does for a command that is only printed (domxml-to-native):
    auto-ported VNC shows display 0; an auto-ported SPICE listening on an address gets 5901 for the
    plain port and 5902 for the TLS port, each only when its channels (or the default mode) need it.
    Listens on sockets or nothing allocate no port, nor does an address-less listen that qemu.conf's
    spice_auto_unix_socket turns into a socket. Returns the indexes of graphics given a TLS port."""
    allocated: set[int] = set()
    for i, g in enumerate(defn.devices.graphics):
        if g.type != "spice" or not g.listens or g.listens[0].type not in ("address", "network"):
            continue
        first = g.listens[0]
        if auto_socket and first.type == "address" and not first.address and g.listen is None:
            continue
        legacy_auto = g.port == -1 and g.tls_port == -1
        if g.autoport != "yes" and not legacy_auto:
            if g.port == -1:
                g.port = 5901
            if g.tls_port == -1:
                g.tls_port = 5902
                allocated.add(i)
            continue
        g.port = g.tls_port = 0  # autoport ignores ports written in the XML
        modes = [ch.mode for ch in g.channels]
        need_tls = "secure" in modes
        need_plain = "insecure" in modes
        default = g.default_mode or "any"
        if default == "secure":
            need_tls = True
        elif default == "insecure":
            need_plain = True
        else:
            need_tls = need_tls or spice_tls
            need_plain = True
        if need_plain:
            g.port = 5901
        if need_tls:
            g.tls_port = 5902
            allocated.add(i)
    return allocated


def _listen_address(g: Graphics, default: str, auto_socket: bool) -> tuple[str | None, str | None]:
    """(address, socket) of the first <listen>; an address listen without an address takes qemu.conf's
    listen address, or a socket in the domain's directory when qemu.conf asks for auto unix sockets."""
    for lst in g.listens:
        if lst.type == "socket":
            return None, lst.socket or ""
        if lst.type == "none":
            return None, None
        if lst.type == "address":
            if lst.address:
                return lst.address, None
            return (None, "") if auto_socket else (default, None)
    if g.listen is None and auto_socket:
        return None, ""
    return (g.listen or default), None


def _host(addr: str) -> str:
    """A listen address as a QEMU option value: IPv6 in brackets, commas doubled."""
    try:
        if isinstance(ipaddress.ip_address(addr), ipaddress.IPv6Address):
            return f"[{addr}]"
    except ValueError:
        pass
    return qemu_opt(addr)


def _vnc(ctx: BuildContext, g: Graphics) -> str:
    addr, sock = _listen_address(g, ctx.config.vnc_listen, ctx.config.vnc_auto_unix_socket)
    if sock is not None:
        parts = [f"vnc=unix:{qemu_opt(sock or ctx.runtime.lib_dir + '/vnc.sock')}"]
    elif addr is None:
        parts = ["none"]
    else:
        auto = g.autoport == "yes" or g.port in (None, -1)
        display = 0 if auto else (g.port or 5900) - 5900
        parts = [f"{_host(addr)}:{display}"]
        if g.websocket:  # -1 (auto) stays -1 on a printed command line: only a real start allocates
            parts.append(f"websocket={g.websocket}")
    if g.share_policy is not None:
        parts.append(f"share={g.share_policy}")
    if g.passwd is not None or ctx.config.vnc_password is not None:
        parts.append("password=on")
    if ctx.config.vnc_tls:
        parts.append("tls-creds=vnc-tls-creds0")
    if ctx.config.vnc_sasl:
        parts.append("sasl=on")
    if ctx.audio_id is not None:
        parts.append(f"audiodev={ctx.audio_id}")
    return ",".join(parts)


def _spice(ctx: BuildContext, g: Graphics, tls_allocated: bool = False) -> str:
    cfg = ctx.config
    addr, sock = _listen_address(g, cfg.spice_listen, cfg.spice_auto_unix_socket)
    if addr == cfg.spice_listen and not g.listens and g.listen is None:
        addr = None  # no listen given at all: QEMU's default, libvirt writes no addr=
    parts: list[str] = []
    if sock is not None:
        parts += ["unix", f"addr={qemu_opt(sock or ctx.runtime.lib_dir + '/spice.sock')}"]
    else:
        port = g.port if g.port is not None and g.port > 0 else None
        tls_port = g.tls_port if g.tls_port is not None and g.tls_port > 0 else None
        if port is not None or tls_port is None:
            parts.append(f"port={port or 0}")
        if tls_port is not None:
            if not cfg.spice_tls and not tls_allocated:
                raise unsupported("spice TLS port set in XML configuration, but TLS is disabled in qemu.conf")
            parts.append(f"tls-port={tls_port}")
        if addr:
            parts.append(f"addr={_host(addr) if ':' not in addr else qemu_opt(addr)}")
    if g.passwd is None and cfg.spice_password is None:
        parts.append("disable-ticketing=on")
    if g.mouse is not None:
        parts.append(f"agent-mouse={'off' if g.mouse == 'server' else 'on'}")
    if cfg.spice_sasl:
        parts.append("sasl=on")
    tls_in_use = g.tls_port is not None and g.tls_port > 0
    if tls_in_use:
        parts.append(f"x509-dir={qemu_opt(cfg.spice_tls_x509_cert_dir)}")
    for opt, val in (("image-compression", g.image), ("jpeg-wan-compression", g.jpeg),
                     ("zlib-glz-wan-compression", g.zlib), ("playback-compression", g.playback),
                     ("streaming-video", g.streaming)):  # fmt: skip
        if val is not None:
            parts.append(f"{opt}={val}")
    if g.default_mode == "secure":
        parts.append("tls-channel=default")
    elif g.default_mode == "insecure":
        parts.append("plaintext-channel=default")
    for ch in g.channels:
        if ch.mode == "secure":
            parts.append(f"tls-channel={ch.name}")
        elif ch.mode == "insecure":
            parts.append(f"plaintext-channel={ch.name}")
    if g.clipboard == "no":
        parts.append("disable-copy-paste=on")
    if g.filetransfer == "no":
        parts.append("disable-agent-file-xfer=on")
    if g.gl is not None and g.gl.enable == "yes":
        parts.append("gl=on")
        parts.append(f"rendernode={qemu_opt(g.gl.rendernode or host.render_node(ctx))}")
    parts.append("seamless-migration=on")
    return ",".join(parts)


def build_videos(ctx: BuildContext) -> None:
    for i, video in enumerate(ctx.defn.devices.videos):
        props = _video(ctx, video, i)
        if props is not None:
            ctx.device(props)


def _video(ctx: BuildContext, video: Video, i: int) -> dict[str, Any] | None:
    m = video.model
    vtype = m.type if m and m.type else "cirrus"
    if vtype == "none":
        return None
    primary = i == 0
    driver = (_VIDEO_PRIMARY if primary else _VIDEO_SECONDARY).get(vtype)
    if driver is None:
        raise unsupported(f"video type {vtype} is not supported with QEMU")
    if vtype == "virtio" and video.driver is not None and video.driver.name == "vhostuser":
        if not host.vhost_user_gpu_descriptors():
            raise host.QemuError(ErrorCode.OPERATION_FAILED, "Unable to find a satisfying vhost-user-gpu")
        raise unsupported("vhost-user video needs a vhost-user-gpu helper this driver does not run")
    accel = m.acceleration if m is not None else None
    if vtype == "virtio" and accel is not None and accel.accel3d == "yes":
        driver = "virtio-vga-gl" if primary else "virtio-gpu-gl-pci"
    props: dict[str, Any] = {"driver": driver, "id": alias_of(video)}
    if vtype == "qxl":
        props["max_outputs"] = m.heads if m and m.heads else 1
        if m is not None and m.ram is not None:
            props["ram_size"] = m.ram * 1024
        if m is not None and m.vram is not None:
            props["vram_size"] = m.vram * 1024
        props["vram64_size_mb"] = (m.vram64 or 0) // 1024 if m else 0
        if m is not None and m.vgamem is not None:
            props["vgamem_mb"] = m.vgamem // 1024
    elif vtype == "virtio":
        props["max_outputs"] = m.heads if m and m.heads else 1
    elif vtype in ("vga", "vmvga") and m is not None and m.vram is not None:
        props["vgamem_mb"] = m.vram // 1024
    elif vtype == "bochs" and m is not None and m.vram is not None:
        props["vgamem"] = m.vram * 1024
    props.update(ctx.pci_props(video.address))
    if video.acpi is not None and video.acpi.index is not None:
        props["acpi-index"] = video.acpi.index
    return props
