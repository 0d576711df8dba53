"""Character devices: <serial>, <console>, <channel>, <parallel> share one source/target scheme."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from virtstack.virt.errors import ErrorCode
from virtstack.virt.xml.base import ONOFF, UINT, Ctx, XMLError, XMLModel, attr, cattr, child, children, enum
from virtstack.virt.xml.devices.address import Address, Alias

CHR_TYPES = (
    "null", "vc", "pty", "dev", "file", "pipe", "stdio", "udp", "tcp", "unix", "spicevmc", "spiceport",
    "nmdm", "qemu-vdagent", "dbus",
)


@dataclass
class Clipboard(XMLModel):
    TAG = "clipboard"
    copypaste: str | None = attr("copypaste", enum("yes", "no"))


@dataclass
class Mouse(XMLModel):
    TAG = "mouse"
    mode: str | None = attr("mode", enum("server", "client"))


@dataclass
class ChrSource(XMLModel):
    """One <source>; udp has two (bind and connect)."""

    TAG = "source"
    mode: str | None = attr("mode", enum("bind", "connect"))
    path: str | None = attr("path")
    host: str | None = attr("host")
    service: str | None = attr("service")
    channel: str | None = attr("channel")
    append: bool | None = attr("append", ONOFF)
    tls: str | None = attr("tls", enum("yes", "no"))
    clipboard: Clipboard | None = child("clipboard", Clipboard)
    mouse: Mouse | None = child("mouse", Mouse)


@dataclass
class ChrTarget(XMLModel):
    """<target type port|name|address>; serials carry a <model name>."""

    TAG = "target"
    type: str | None = attr("type")
    name: str | None = attr("name")
    state: str | None = attr("state", enum("connected", "disconnected"), live=True)
    address: str | None = attr("address")
    port: int | None = attr("port", UINT)
    model: str | None = cattr("model", "name")


@dataclass
class Log(XMLModel):
    TAG = "log"
    file: str | None = attr("file")
    append: bool | None = attr("append", ONOFF)


@dataclass
class CharDev(XMLModel):
    """Fields common to every character device."""

    type: str | None = attr(
        "type", enum(*CHR_TYPES, error="unknown type presented to host for character device: {}")
    )
    tty: str | None = attr("tty", live=True)
    sources: list[ChrSource] = children("source", ChrSource)
    protocol: str | None = cattr("protocol", "type")
    log: Log | None = child("log", Log)
    target: ChrTarget | None = child("target", ChrTarget)
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)

    def validate(self) -> None:
        if self.type is None:
            self.type = "pty"
        if len(self.sources) > 1 and self.type != "udp":  # udp alone has a bind and a connect side
            raise XMLError(ErrorCode.XML_ERROR, "only one source element is allowed for character device")
        if self.type == "tcp" and self.protocol is None:
            self.protocol = "raw"

    def shown(self, ctx: Ctx) -> CharDev:
        hide_sources = ctx.inactive and self.type == "pty" and bool(self.sources)  # QEMU picks the pty at start
        hide_protocol = self.type != "tcp" and self.protocol is not None  # libvirt keeps it for TCP only
        if not (hide_sources or hide_protocol):
            return self
        return dataclasses.replace(
            self,
            sources=[] if hide_sources else self.sources,
            protocol=None if hide_protocol else self.protocol,
        )


@dataclass
class Serial(CharDev):
    TAG = "serial"


@dataclass
class Console(CharDev):
    TAG = "console"


@dataclass
class Channel(CharDev):
    TAG = "channel"


@dataclass
class Parallel(CharDev):
    TAG = "parallel"
