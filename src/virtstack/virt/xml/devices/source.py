"""Storage sources (<source> of disks, nvram and backing stores) and their auth/encryption parts."""

from __future__ import annotations

from dataclasses import dataclass

from virtstack.virt.errors import ErrorCode
from virtstack.virt.xml.base import (
    STR,
    UINT,
    YESNO,
    Error,
    XMLModel,
    attr,
    child,
    children,
    ctext,
    enum,
    hexfmt,
)

SECRET_USAGE_TYPES = ("none", "volume", "ceph", "iscsi", "tls", "vtpm", "passphrase")


@dataclass
class Secret(XMLModel):
    """<secret type usage|uuid/>: reference to a libvirt secret object."""

    TAG = "secret"
    type: str | None = attr("type")
    usage: str | None = attr("usage")
    uuid: str | None = attr("uuid")


@dataclass
class Auth(XMLModel):
    """<auth username><secret/></auth>."""

    TAG = "auth"
    username: str | None = attr("username")
    secret: Secret | None = child("secret", Secret)

    def validate(self) -> None:
        st = self.secret.type if self.secret else None
        if st is None:
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "unknown secret type '<null>'")
        if st not in ("iscsi", "ceph"):
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"unknown secret type '{st}'")


@dataclass
class Encryption(XMLModel):
    """<encryption format engine><secret/>*</encryption>."""

    TAG = "encryption"
    format: str | None = attr("format", enum("default", "qcow", "luks", "luks2", "luks-any"), required=True)
    engine: str | None = attr("engine", enum("default", "qemu", "librbd"))
    secrets: list[Secret] = children("secret", Secret)


@dataclass
class SecLabel(XMLModel):
    """Per-source <seclabel model relabel><label/></seclabel>."""

    TAG = "seclabel"
    model: str | None = attr("model")
    relabel: bool | None = attr("relabel", YESNO)
    label: str | None = ctext("label")


@dataclass
class Host(XMLModel):
    """<host name port | transport socket/> of a network source."""

    TAG = "host"
    name: str | None = attr("name")
    port: int | None = attr("port", UINT)
    transport: str | None = attr("transport", enum("tcp", "unix", "rdma"))
    socket: str | None = attr("socket")


@dataclass
class Snapshot(XMLModel):
    TAG = "snapshot"
    name: str | None = attr("name")


@dataclass
class Config(XMLModel):
    TAG = "config"
    file: str | None = attr("file")


@dataclass
class Identity(XMLModel):
    TAG = "identity"
    user: str | None = attr("user")
    group: str | None = attr("group")


@dataclass
class Slice(XMLModel):
    TAG = "slice"
    type: str | None = attr("type", enum("storage"))
    offset: int | None = attr("offset", UINT)
    size: int | None = attr("size", UINT)


@dataclass
class Slices(XMLModel):
    TAG = "slices"
    slices: list[Slice] = children("slice", Slice)


@dataclass
class PCIAddr(XMLModel):
    """The PCI address of an NVMe controller in <source type='pci'>."""

    TAG = "address"
    domain: int | None = attr("domain", hexfmt(4))
    bus: int | None = attr("bus", hexfmt(2))
    slot: int | None = attr("slot", hexfmt(2))
    function: int | None = attr("function", hexfmt(1))


@dataclass
class Reservations(XMLModel):
    TAG = "reservations"
    managed: bool | None = attr("managed", YESNO)
    enabled: bool | None = attr("enabled", YESNO)


@dataclass
class StorageSource(XMLModel):
    """<source> of a disk: which attributes apply depends on the disk's type."""

    TAG = "source"
    protocol: str | None = attr(
        "protocol", enum("nbd", "rbd", "sheepdog", "gluster", "iscsi", "http", "https", "ftp", "ftps", "tftp",
                         "ssh", "vxhs", "nfs")
    )
    name: str | None = attr("name")
    query: str | None = attr("query")
    tls: bool | None = attr("tls", YESNO)
    tls_hostname: str | None = attr("tlsHostname")
    file: str | None = attr("file")
    dev: str | None = attr("dev")
    dir: str | None = attr("dir")
    pool: str | None = attr("pool")
    volume: str | None = attr("volume")
    mode: str | None = attr("mode", enum("host", "direct"))
    type: str | None = attr("type", STR)
    managed: bool | None = attr("managed", YESNO)
    namespace: int | None = attr("namespace", UINT)
    fdgroup: str | None = attr("fdgroup")
    startup_policy: str | None = attr("startupPolicy", enum("mandatory", "requisite", "optional"))
    index: int | None = attr("index", UINT, live=True)
    address: PCIAddr | None = child("address", PCIAddr)
    hosts: list[Host] = children("host", Host)
    snapshot: Snapshot | None = child("snapshot", Snapshot)
    config: Config | None = child("config", Config)
    identity: Identity | None = child("identity", Identity)
    slices: Slices | None = child("slices", Slices)
    seclabels: list[SecLabel] = children("seclabel", SecLabel)
    auth: Auth | None = child("auth", Auth)
    encryption: Encryption | None = child("encryption", Encryption)
    reservations: Reservations | None = child("reservations", Reservations)
