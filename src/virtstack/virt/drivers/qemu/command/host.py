"""Host resources a definition names and libvirt resolves before building: secrets, fd groups, firmware, GPUs.

Each lookup goes through the RuntimeContext so a caller (the driver, a test, the upstream harness
scoreboard) decides what exists; the defaults look at this host the way libvirtd 9.0 does.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any

from virtstack.virt.drivers.qemu.command.context import BuildContext
from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory
from virtstack.virt.xml.devices.source import Secret, StorageSource

SecretError = error_factory(ErrorDomain.SECRET)
QemuError = error_factory(ErrorDomain.QEMU)
DomError = error_factory(ErrorDomain.DOMAIN)
StorageError = error_factory(ErrorDomain.STORAGE)

# qemu's firmware descriptor search path (docs/interop/firmware.json), as libvirt reads it for root
FIRMWARE_DIRS = ("/etc/libvirt/qemu/firmware", "/etc/qemu/firmware", "/usr/share/qemu/firmware")


def _layers(disk: Any) -> list[StorageSource]:
    layers: list[StorageSource] = []
    if disk.source is not None:
        layers.append(disk.source)
    b = disk.backing
    while b is not None:
        if b.source is not None:
            layers.append(b.source)
        b = b.backing
    return layers


def _layer_secrets(disk: Any, i: int, src: StorageSource) -> list[Secret]:
    """The secrets a layer needs: auth first, then encryption (the disk's own apply to the top layer)."""
    secrets: list[Secret] = []
    auth = src.auth or (disk.auth if i == 0 else None)
    if auth is not None and auth.secret is not None:
        secrets.append(auth.secret)
    enc = src.encryption or (disk.encryption if i == 0 else None)
    if enc is not None:
        secrets.extend(enc.secrets)
    return secrets


def _check_secret(ctx: BuildContext, sec: Secret) -> None:
    known = ctx.runtime.secrets
    if sec.uuid is not None:
        if sec.uuid not in known:
            raise SecretError(ErrorCode.NO_SECRET, f"no secret with matching uuid '{sec.uuid}'")
    elif sec.usage is not None and f"usage:{sec.usage}" not in known:
        raise SecretError(ErrorCode.NO_SECRET, f"no secret with matching usage '{sec.usage}'")
    raise QemuError(
        ErrorCode.CONFIG_UNSUPPORTED,
        "disk secrets (authentication, encryption) are not supported by this driver",
    )


def check_storage(ctx: BuildContext) -> None:
    """What libvirt resolves per disk before a start (qemuProcessPrepareDomainStorage): the storage
    pool of a volume disk, then for each layer of its chain the fd group and the secrets.

    Disks are visited last to first, as libvirt does (it may drop disks while walking), so with
    several unresolvable disks the error names the last one. Defined secrets would have to reach QEMU
    as encrypted -object secret entries, which this builder does not produce yet, so those definitions
    are refused rather than started without their secret.
    """
    for disk in reversed(ctx.defn.devices.disks):
        pool = disk.source.pool if disk.type == "volume" and disk.source is not None else None
        if pool is not None and pool not in ctx.runtime.storage_pools:
            raise StorageError(ErrorCode.NO_STORAGE_POOL, f"no storage pool with matching name '{pool}'")
        for i, src in enumerate(_layers(disk)):
            if src.fdgroup is not None and src.fdgroup not in ctx.runtime.fd_groups:
                raise DomError(
                    ErrorCode.INVALID_ARG,
                    f"file descriptor group '{src.fdgroup}' was not associated with the domain",
                )
            for sec in _layer_secrets(disk, i, src):
                _check_secret(ctx, sec)
    nv = ctx.defn.os.nvram if ctx.defn.os else None
    if nv is not None and nv.source is not None and nv.source.auth and nv.source.auth.secret:
        _check_secret(ctx, nv.source.auth.secret)


def firmware_descriptors(dirs: tuple[str, ...] = FIRMWARE_DIRS) -> list[str]:
    """The firmware descriptor files QEMU packages install (none on a host without OVMF/SeaBIOS JSON)."""
    found: dict[str, str] = {}
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "*.json"))):
            found.setdefault(os.path.basename(path), path)
    return [found[k] for k in sorted(found)]


# QEMU's vhost-user backend descriptor search path (docs/interop/vhost-user.json)
VHOST_USER_DIRS = ("/etc/qemu/vhost-user", "/usr/share/qemu/vhost-user")


def vhost_user_gpu_descriptors(dirs: tuple[str, ...] = VHOST_USER_DIRS) -> list[str]:
    """Installed vhost-user backends of type "gpu" (a vhost-user-gpu helper libvirt could start)."""
    found = []
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "*.json"))):
            try:
                with open(path) as f:
                    if json.load(f).get("type") == "gpu":
                        found.append(path)
            except (OSError, ValueError, AttributeError):
                continue
    return found


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
