"""Device models of the domain XML, one element family a module; `Devices` is the <devices> element."""

from __future__ import annotations

from dataclasses import dataclass

from virtstack.virt.xml.base import XMLModel, child, children, ctext
from virtstack.virt.xml.devices.chardev import Channel, Console, Parallel, Serial
from virtstack.virt.xml.devices.controller import Controller
from virtstack.virt.xml.devices.disk import Disk
from virtstack.virt.xml.devices.graphics import Graphics
from virtstack.virt.xml.devices.hostdev import Filesystem, Hostdev, Hub, Redirdev
from virtstack.virt.xml.devices.interface import Interface
from virtstack.virt.xml.devices.misc import (
    IOMMU,
    RNG,
    TPM,
    Audio,
    Input,
    MemBalloon,
    MemoryDevice,
    Panic,
    Shmem,
    Smartcard,
    Sound,
    VSock,
    Watchdog,
)
from virtstack.virt.xml.devices.video import Video


@dataclass
class Devices(XMLModel):
    """<devices>: libvirt writes each kind together, in this order, whatever the input order."""

    TAG = "devices"
    emulator: str | None = ctext("emulator")
    disks: list[Disk] = children("disk", Disk)
    controllers: list[Controller] = children("controller", Controller)
    filesystems: list[Filesystem] = children("filesystem", Filesystem)
    interfaces: list[Interface] = children("interface", Interface)
    smartcards: list[Smartcard] = children("smartcard", Smartcard)
    serials: list[Serial] = children("serial", Serial)
    parallels: list[Parallel] = children("parallel", Parallel)
    consoles: list[Console] = children("console", Console)
    channels: list[Channel] = children("channel", Channel)
    inputs: list[Input] = children("input", Input)
    tpms: list[TPM] = children("tpm", TPM)
    graphics: list[Graphics] = children("graphics", Graphics)
    sounds: list[Sound] = children("sound", Sound)
    audios: list[Audio] = children("audio", Audio)
    videos: list[Video] = children("video", Video)
    hostdevs: list[Hostdev] = children("hostdev", Hostdev)
    redirdevs: list[Redirdev] = children("redirdev", Redirdev)
    hubs: list[Hub] = children("hub", Hub)
    watchdogs: list[Watchdog] = children("watchdog", Watchdog)
    memballoon: MemBalloon | None = child(
        "memballoon", MemBalloon, only_one="only a single memory balloon device is supported"
    )
    rngs: list[RNG] = children("rng", RNG)
    panics: list[Panic] = children("panic", Panic)
    shmems: list[Shmem] = children("shmem", Shmem)
    memories: list[MemoryDevice] = children("memory", MemoryDevice)
    iommu: IOMMU | None = child("iommu", IOMMU)
    vsock: VSock | None = child("vsock", VSock)


__all__ = [
    "IOMMU",
    "RNG",
    "TPM",
    "Audio",
    "Channel",
    "Console",
    "Controller",
    "Devices",
    "Disk",
    "Filesystem",
    "Graphics",
    "Hostdev",
    "Hub",
    "Input",
    "Interface",
    "MemBalloon",
    "MemoryDevice",
    "Panic",
    "Parallel",
    "Redirdev",
    "Serial",
    "Shmem",
    "Smartcard",
    "Sound",
    "VSock",
    "Video",
    "Watchdog",
]
