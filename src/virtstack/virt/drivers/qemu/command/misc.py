"""Small devices and process policy: input, balloon, RNG, watchdog, panic, -sandbox, -msg."""

from __future__ import annotations

from typing import Any

from virtstack.virt.drivers.qemu.command.aliases import alias_of
from virtstack.virt.drivers.qemu.command.chardev import chardev_backend
from virtstack.virt.drivers.qemu.command.context import BuildContext, unsupported
from virtstack.virt.drivers.qemu.command.controllers import usb_address_props
from virtstack.virt.drivers.qemu.command.model import FdRequest
from virtstack.virt.xml.devices.chardev import CharDev


def build_inputs(ctx: BuildContext) -> None:
    for inp in ctx.defn.devices.inputs:
        bus = inp.bus or ("ps2" if inp.type in ("mouse", "keyboard") else "usb")
        if bus == "ps2":
            continue  # the i8042 of the PC machine provides them
        alias = alias_of(inp)
        props: dict[str, Any]
        if bus == "usb":
            driver = {"mouse": "usb-mouse", "tablet": "usb-tablet", "keyboard": "usb-kbd"}.get(inp.type or "")
            if driver is None:
                raise unsupported(f"unsupported input device type '{inp.type}' on bus usb")
            props = {"driver": driver, "id": alias, **usb_address_props(ctx, inp.address)}
        elif bus == "virtio":
            driver = {"mouse": "virtio-mouse-pci", "tablet": "virtio-tablet-pci",
                      "keyboard": "virtio-keyboard-pci", "passthrough": "virtio-input-host-pci"}.get(inp.type or "")  # fmt: skip
            if driver is None:
                raise unsupported(f"unsupported input device type '{inp.type}' on bus virtio")
            if inp.type == "passthrough":
                props = {
                    "driver": driver,
                    **ctx.virtio_options(inp.driver),
                    "id": alias,
                    "evdev": inp.source or "",
                }
                props.update(ctx.pci_props(inp.address))
                ctx.device(props)
                continue
            props = {
                "driver": driver,
                **ctx.virtio_options(inp.driver),
                "id": alias,
                **ctx.pci_props(inp.address),
            }
        else:
            raise unsupported(f"unsupported input bus '{bus}'")
        ctx.device(props)


_SOUND_DRIVERS = {
    "sb16": "sb16",
    "es1370": "ES1370",
    "ac97": "AC97",
    "ich6": "intel-hda",
    "ich9": "ich9-intel-hda",
    "ich7": "intel-hda",
    "usb": "usb-audio",
}
_CODECS = {"duplex": "hda-duplex", "micro": "hda-micro", "output": "hda-output"}


def build_sounds(ctx: BuildContext) -> None:
    """Sound cards; HDA controllers get one -device per codec on their bus."""
    for snd in ctx.defn.devices.sounds:
        alias = alias_of(snd)
        audio = f"audio{snd.audio}" if snd.audio is not None else ctx.audio_id
        if snd.model == "pcspk":
            raise unsupported("the PC speaker sound model is not supported by this driver")
        driver = _SOUND_DRIVERS.get(snd.model or "")
        if driver is None:
            raise unsupported(f"sound card model '{snd.model}' is not supported by this driver")
        props: dict[str, Any] = {"driver": driver, "id": alias}
        hda = snd.model in ("ich6", "ich9", "ich7")
        if not hda and audio is not None:
            props["audiodev"] = audio
        props.update(ctx.pci_props(snd.address))
        ctx.device(props)
        if hda:
            codecs = [c.type or "duplex" for c in snd.codecs] or ["duplex"]
            for n, codec in enumerate(codecs):
                cprops: dict[str, Any] = {
                    "driver": _CODECS[codec],
                    "id": f"{alias}-codec{n}",
                    "bus": f"{alias}.0",
                    "cad": n,
                }
                if audio is not None:
                    cprops["audiodev"] = audio
                ctx.device(cprops)


def reject_unsupported_devices(ctx: BuildContext) -> None:
    """Devices that need host helpers this driver does not run are refused up front."""
    devs = ctx.defn.devices
    if devs.tpms:
        raise unsupported("TPM devices are not supported by this driver")
    for kind, present in (
        ("filesystem", devs.filesystems), ("smartcard", devs.smartcards), ("host device", devs.hostdevs),
        ("USB redirection", devs.redirdevs), ("shared memory", devs.shmems), ("memory", devs.memories),
        ("IOMMU", devs.iommu),
    ):  # fmt: skip
        if present:  # never dropped silently: a command without them would be a different machine
            raise unsupported(f"{kind} devices are not supported by this driver")
    for disk in devs.disks:
        if disk.transient:
            raise unsupported("transient disks are not supported by this driver")


def build_hubs(ctx: BuildContext) -> None:
    """<hub type='usb'>: a usb-hub on its USB port (libvirt adds them itself when ports run out)."""
    for hub in ctx.defn.devices.hubs:
        ctx.device({"driver": "usb-hub", "id": alias_of(hub), **usb_address_props(ctx, hub.address)})


def build_vsock(ctx: BuildContext) -> None:
    vs = ctx.defn.devices.vsock
    if vs is None:
        return
    if ctx.runtime.open_fd is None:
        raise unsupported("vsock devices need /dev/vhost-vsock opened by the driver")
    alias = alias_of(vs)
    fd = ctx.open_fd(FdRequest(alias, "/dev/vhost-vsock", "vhost-vsock"))
    cid = vs.cid.address if vs.cid is not None and vs.cid.address is not None else 3
    driver = {"virtio-transitional": "vhost-vsock-pci-transitional",
              "virtio-non-transitional": "vhost-vsock-pci-non-transitional"}.get(vs.model or "", "vhost-vsock-pci")  # fmt: skip
    props: dict[str, Any] = {"driver": driver, "id": alias, "guest-cid": cid, "vhostfd": str(fd)}
    props.update(ctx.pci_props(vs.address))
    ctx.device(props)


def build_watchdogs(ctx: BuildContext) -> None:
    """The watchdog device plus -watchdog-action ('dump' is a pause libvirt turns into a dump itself)."""
    dogs = ctx.defn.devices.watchdogs
    if len(dogs) > 1:
        raise unsupported("only a single watchdog device is supported")
    for wd in dogs:
        if wd.model == "i6300esb":
            ctx.device({"driver": "i6300esb", "id": alias_of(wd), **ctx.pci_props(wd.address)})
        elif wd.model == "ib700":
            ctx.device({"driver": "ib700", "id": alias_of(wd)})
        else:
            raise unsupported(f"watchdog model '{wd.model}' is not supported for x86")
        action = wd.action or "reset"
        ctx.add("-watchdog-action", "pause" if action == "dump" else action)


def build_balloon(ctx: BuildContext) -> None:
    bal = ctx.defn.devices.memballoon
    if bal is None or bal.model in (None, "none"):
        return
    driver = {
        "virtio": "virtio-balloon-pci",
        "virtio-transitional": "virtio-balloon-pci-transitional",
        "virtio-non-transitional": "virtio-balloon-pci-non-transitional",
    }.get(bal.model)
    if driver is None:
        raise unsupported(
            f"Memory balloon device type '{bal.model}' is not supported by this version of qemu"
        )
    props: dict[str, Any] = {"driver": driver, **ctx.virtio_options(bal.driver), "id": alias_of(bal)}
    if bal.autodeflate is not None:
        props["deflate-on-oom"] = bal.autodeflate
    if bal.free_page_reporting is not None:
        props["free-page-reporting"] = bal.free_page_reporting
    props.update(ctx.pci_props(bal.address))
    ctx.device(props)


def build_rngs(ctx: BuildContext) -> None:
    for rng in ctx.defn.devices.rngs:
        backend = rng.backend
        alias = alias_of(rng)
        obj_id = f"obj{alias}"
        if backend is None or backend.model == "random":
            ctx.obj(
                {
                    "qom-type": "rng-random",
                    "id": obj_id,
                    "filename": (backend.path if backend else None) or "/dev/random",  # libvirt's default source
                }
            )
        elif backend.model == "builtin":
            ctx.obj({"qom-type": "rng-builtin", "id": obj_id})
        elif backend.model == "egd":
            source = CharDev(type=backend.type, sources=list(backend.sources), protocol=backend.protocol)
            ctx.add("-chardev", chardev_backend(ctx, source, f"char{alias}"))
            ctx.obj({"qom-type": "rng-egd", "id": obj_id, "chardev": f"char{alias}"})
        driver = {
            "virtio": "virtio-rng-pci",
            "virtio-transitional": "virtio-rng-pci-transitional",
            "virtio-non-transitional": "virtio-rng-pci-non-transitional",
        }[rng.model or "virtio"]
        props: dict[str, Any] = {
            "driver": driver,
            **ctx.virtio_options(rng.driver),
            "rng": obj_id,
            "id": alias,
        }
        if rng.rate is not None and rng.rate.bytes is not None:
            props["max-bytes"] = rng.rate.bytes
            props["period"] = rng.rate.period or 1000
        props.update(ctx.pci_props(rng.address))
        ctx.device(props)


def build_vmcoreinfo(ctx: BuildContext) -> None:
    feats = ctx.defn.features
    if feats is not None and feats.vmcoreinfo is not None and feats.vmcoreinfo.state:
        ctx.device({"driver": "vmcoreinfo"})


def build_panics(ctx: BuildContext) -> None:
    for p in ctx.defn.devices.panics:
        if p.model in (None, "isa"):
            props: dict[str, Any] = {"driver": "pvpanic"}
            if p.address is not None and p.address.iobase is not None:
                props["ioport"] = p.address.iobase
            ctx.device(props)
        elif p.model == "hyperv":
            continue  # a CPU feature, not a device
        else:
            raise unsupported(f"unsupported panic model '{p.model}'")


def build_sandbox(ctx: BuildContext) -> None:
    if ctx.config.seccomp_sandbox == 1:
        ctx.add("-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny")


def build_msg(ctx: BuildContext) -> None:
    if ctx.config.log_timestamp:
        ctx.add("-msg", "timestamp=on")
