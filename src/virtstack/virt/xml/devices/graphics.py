"""<graphics>: VNC, SPICE, SDL, egl-headless, dbus displays with their listen addresses."""

from __future__ import annotations

from dataclasses import dataclass

from virtstack.virt.errors import ErrorCode
from virtstack.virt.xml.base import INT, XMLError, XMLModel, attr, cattr, child, children, enum

GRAPHICS_TYPES = ("sdl", "vnc", "rdp", "desktop", "spice", "egl-headless", "dbus")


@dataclass
class Listen(XMLModel):
    TAG = "listen"
    type: str | None = attr("type", enum("address", "network", "socket", "none"))
    address: str | None = attr("address")
    network: str | None = attr("network")
    socket: str | None = attr("socket")


@dataclass
class SpiceChannel(XMLModel):
    TAG = "channel"
    name: str | None = attr("name")
    mode: str | None = attr("mode", enum("any", "secure", "insecure"))


@dataclass
class Gl(XMLModel):
    TAG = "gl"
    enable: str | None = attr("enable", enum("yes", "no"))
    rendernode: str | None = attr("rendernode")


@dataclass
class Graphics(XMLModel):
    """Spice sub-elements are written in libvirt's order: channel, image, jpeg, zlib, playback, streaming..."""

    TAG = "graphics"
    type: str | None = attr("type", enum(*GRAPHICS_TYPES), required=True)
    port: int | None = attr("port", INT)
    tls_port: int | None = attr("tlsPort", INT)
    autoport: str | None = attr("autoport", enum("yes", "no"))
    websocket: int | None = attr("websocket", INT)
    listen: str | None = attr("listen")
    socket: str | None = attr("socket")
    keymap: str | None = attr("keymap")
    share_policy: str | None = attr("sharePolicy", enum("allow-exclusive", "force-shared", "ignore"))
    default_mode: str | None = attr("defaultMode", enum("any", "secure", "insecure"))
    passwd: str | None = attr("passwd", secret=True)
    passwd_valid_to: str | None = attr("passwdValidTo", secret=True)
    connected: str | None = attr("connected", enum("keep", "disconnect", "fail"))
    display: str | None = attr("display")
    xauth: str | None = attr("xauth")
    fullscreen: str | None = attr("fullscreen", enum("yes", "no"))
    listens: list[Listen] = children("listen", Listen)
    channels: list[SpiceChannel] = children("channel", SpiceChannel)
    image: str | None = cattr("image", "compression")
    jpeg: str | None = cattr("jpeg", "compression")
    zlib: str | None = cattr("zlib", "compression")
    playback: str | None = cattr("playback", "compression")
    streaming: str | None = cattr("streaming", "mode")
    mouse: str | None = cattr("mouse", "mode")
    clipboard: str | None = cattr("clipboard", "copypaste")
    filetransfer: str | None = cattr("filetransfer", "enable")
    gl: Gl | None = child("gl", Gl)

    def validate(self) -> None:
        if self.gl is not None and self.gl.enable is None and self.type in ("spice", "sdl"):
            # only egl-headless takes a bare <gl rendernode=...>
            raise XMLError(ErrorCode.XML_ERROR, "Missing required attribute 'enable' in element 'gl'")
