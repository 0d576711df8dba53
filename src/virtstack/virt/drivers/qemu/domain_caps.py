"""Domain capabilities (virsh domcapabilities): what this emulator, machine type and accelerator offer a
domain, from the probed QEMU capabilities, in libvirt's domainCapabilities XML.

Follows libvirt 9.0's qemuConnectGetDomainCapabilities / virQEMUCapsFillDomainCaps: each element is
decided by a probed fact (a QOM type, a machine's limits, a CPU model's blockers for the accelerator)
or by the host (KVM's vCPU limit, IOMMU groups, firmware descriptors, libvirt's CPU map).
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from virtstack.virt.drivers.qemu.capabilities import QemuCaps, probe_qemu_caps
from virtstack.virt.drivers.qemu.command import hostcpu
from virtstack.virt.drivers.qemu.host_stats import kvm_max_vcpus
from virtstack.virt.errors import ErrorCode, ErrorDomain, check_flags, error_factory

Error = error_factory(ErrorDomain.QEMU)

#: QEMU firmware descriptors (docs/interop/firmware.json), in libvirt's search order
FIRMWARE_DIRS = (Path("/etc/qemu/firmware"), Path("/usr/share/qemu/firmware"))
IOMMU_GROUPS = Path("/sys/kernel/iommu_groups")
#: virDomainVirtType names (VIR_DOMAIN_VIRT_NONE is "none")
VIRT_TYPES = ("none", "qemu", "kqemu", "kvm", "xen", "lxc", "uml", "openvz", "test", "vmware", "hyperv",
              "vbox", "phyp", "parallels", "bhyve", "vz", "hvf")
#: virArch names; those without a qemu-system binary here fail as "unable to find any emulator"
ARCHES = ("i686", "x86_64", "aarch64", "armv6l", "armv7l", "armv7b", "alpha", "cris", "lm32", "m68k",
          "microblaze", "microblazeel", "mips", "mipsel", "mips64", "mips64el", "openrisc", "parisc",
          "parisc64", "ppc", "ppcle", "ppc64", "ppc64le", "ppcemb", "riscv32", "riscv64", "s390", "s390x",
          "sh4", "sh4eb", "sparc", "sparc64", "unicore32", "loongarch64")
#: virArch -> QEMU's target name where they differ (virQEMUCapsArchToString)
QEMU_ARCH = {"i686": "i386", "armv6l": "arm", "armv7l": "arm", "armv7b": "arm", "parisc": "hppa",
             "parisc64": "hppa", "ppcle": "ppc", "ppc64le": "ppc64", "sh4eb": "sh4eb"}
DOMCAPS_FLAGS = 0


class DomainCapsMixin:
    """The connect_get_domain_capabilities entry point of QemuDriver."""

    if TYPE_CHECKING:
        emulator: str

        async def _ready(self) -> None: ...

        def _caps_now(self) -> QemuCaps: ...

    async def connect_get_domain_capabilities(
        self, emulatorbin: str | None, arch: str | None, machine: str | None, virttype: str | None, flags: int
    ) -> str:
        """virConnectGetDomainCapabilities, checking its arguments in qemuGetDomainCapabilities' order."""
        check_flags(flags, DOMCAPS_FLAGS, "qemuConnectGetDomainCapabilities", ErrorDomain.QEMU)
        await self._ready()
        if virttype is not None and virttype not in VIRT_TYPES:
            raise Error(ErrorCode.INVALID_ARG, f"unknown virttype: {virttype}")
        if arch is not None and arch not in ARCHES:
            raise Error(ErrorCode.INVALID_ARG, f"unknown architecture: {arch}")
        caps, binary, caps_arch = await self._domcaps_emulator(emulatorbin, arch)
        vtype = virttype or ("kvm" if _has_kvm(caps) else "qemu")
        if vtype not in ("qemu", "kvm") or (vtype == "kvm" and not _has_kvm(caps)):
            raise Error(ErrorCode.INVALID_ARG, f"Emulator '{binary}' does not support virt type '{vtype}'")
        if machine is not None:
            found = caps.machine(machine)
            if found is None:
                raise Error(ErrorCode.INVALID_ARG, f"the machine '{machine}' is not supported by emulator '{binary}'")
        else:
            found = caps.default_machine()
            if found is None:
                raise Error(ErrorCode.INTERNAL_ERROR, f"no default machine type for emulator '{binary}'")
        request = Request(binary, vtype, found.name, caps_arch, found.max_cpus)
        return await asyncio.to_thread(domain_caps_xml, caps, request)

    async def _domcaps_emulator(self, emulatorbin: str | None, arch: str | None) -> tuple[QemuCaps, str, str]:
        """The caps, binary and guest arch serving the request (virQEMUCapsCacheLookupDefault): the arch
        defaults to the host's; an x86_64 binary also serves i686 (and aarch64 armv7l) guests."""
        guest = arch or os.uname().machine
        if emulatorbin is None:
            target = QEMU_ARCH.get(guest, guest)
            binary = self.emulator if _binary_arch(self.emulator) == guest else shutil.which(f"qemu-system-{target}")
            if binary is None:
                raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"unable to find any emulator to serve '{guest}' architecture")
        else:
            binary = emulatorbin
            if not os.path.exists(binary):
                raise Error(ErrorCode.SYSTEM_ERROR, f"Cannot check QEMU binary {binary}: No such file or directory")
        caps = self._caps_now() if binary == self.emulator else await asyncio.to_thread(probe_qemu_caps, binary)
        bin_arch = _binary_arch(binary)
        if arch is not None and _arch_family(arch) != _arch_family(bin_arch):
            raise Error(ErrorCode.INVALID_ARG,
                        f"architecture from emulator '{bin_arch}' doesn't match given architecture '{arch}'")
        if guest != bin_arch and (bin_arch, guest) not in (("x86_64", "i686"), ("aarch64", "armv7l")):
            raise Error(ErrorCode.INVALID_ARG, f"Emulator '{binary}' does not support arch '{guest}'")
        return caps, binary, guest


@dataclass(frozen=True)
class Request:
    """What the caller asked for, resolved: canonical machine, virt type, guest arch."""

    binary: str
    virttype: str
    machine: str
    arch: str
    machine_max_cpus: int


def _has_kvm(caps: QemuCaps) -> bool:
    """libvirt offers KVM whenever QEMU reports it present (query-kvm), fast or not."""
    return caps.kvm_present and caps.has_accel("kvm")


def _binary_arch(binary: str) -> str:
    """The guest arch of qemu-system-TARGET (libvirt asks query-target; the name says the same)."""
    target = os.path.basename(os.path.realpath(binary)).removeprefix("qemu-system-")
    return {"i386": "i686", "arm": "armv7l", "hppa": "parisc"}.get(target, target)


def _arch_family(arch: str) -> str:
    """x86 and Arm each count as one family when an emulator is matched against a requested arch."""
    if arch in ("i686", "x86_64"):
        return "x86"
    return "arm" if arch in ("aarch64", "armv6l", "armv7l", "armv7b") else arch


def domain_caps_xml(caps: QemuCaps, req: Request) -> str:
    """The whole <domainCapabilities> document, elements in virDomainCapsFormat's order."""
    root = etree.Element("domainCapabilities")
    for tag, text in (("path", req.binary), ("domain", req.virttype), ("machine", req.machine), ("arch", req.arch)):
        etree.SubElement(root, tag).text = text
    max_cpus = req.machine_max_cpus
    if req.virttype == "kvm":
        max_cpus = min(max_cpus, kvm_max_vcpus())
    etree.SubElement(root, "vcpu", max=str(max_cpus))
    _supported(root, "iothreads", caps.has_type("iothread"))
    root.append(_os(req))
    root.append(_cpu(caps, req))
    mem = _supported(root, "memoryBacking", True)
    _enum(mem, "sourceType", [("file", caps.has_type("memory-backend-file")), ("anonymous", True),
                              ("memfd", caps.has_type("memory-backend-memfd"))])
    root.append(_devices(caps, req))
    root.append(_features(caps, req))
    return "".join(_format(root, 0))


def _format(el: etree._Element, depth: int) -> list[str]:
    """libvirt's virBuffer layout: two-space indent, single-quoted attributes, empty elements closed."""
    pad = "  " * depth
    attrs = "".join(f" {k!s}='{_escape(str(v), quote=True)}'" for k, v in el.attrib.items())
    if len(el) == 0:
        if el.text is None:
            return [f"{pad}<{el.tag}{attrs}/>\n"]
        return [f"{pad}<{el.tag}{attrs}>{_escape(el.text)}</{el.tag}>\n"]
    lines = [f"{pad}<{el.tag}{attrs}>\n"]
    for child in el:
        lines += _format(child, depth + 1)
    return [*lines, f"{pad}</{el.tag}>\n"]


def _escape(text: str, *, quote: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("'", "&apos;") if quote else text


def _supported(parent: etree._Element, tag: str, yes: bool, name: str | None = None) -> etree._Element:
    """<tag [name=...] supported='yes|no'> (a CPU mode's name comes first, as libvirt writes it)."""
    el = etree.SubElement(parent, tag, name=name) if name else etree.SubElement(parent, tag)
    el.set("supported", "yes" if yes else "no")
    return el


def _enum(parent: etree._Element, name: str, values: list[tuple[str, bool]]) -> None:
    """<enum name=...> with the values whose condition holds, in libvirt's enum order."""
    enum = etree.SubElement(parent, "enum", name=name)
    for value, present in values:
        if present:
            etree.SubElement(enum, "value").text = value


# -- os / firmware -----------------------------------------------------------------------------------
def _os(req: Request) -> etree._Element:
    """<os>: firmware kinds and loader paths come from QEMU's firmware descriptors for this machine."""
    os_el = etree.Element("os", supported="yes")
    firmwares = _firmware_descriptors(req.arch, req.machine)
    kinds = {fw["kind"] for fw in firmwares}
    _enum(os_el, "firmware", [("bios", "bios" in kinds), ("efi", "efi" in kinds)])
    loader = _supported(os_el, "loader", True)
    for path in dict.fromkeys(fw["path"] for fw in firmwares if fw["kind"] == "efi"):
        etree.SubElement(loader, "value").text = path
    _enum(loader, "type", [("rom", True), ("pflash", True)])
    _enum(loader, "readonly", [("yes", True), ("no", True)])
    _enum(loader, "secure", [("yes", any(fw["secure"] for fw in firmwares)), ("no", True)])
    return os_el


def _firmware_descriptors(arch: str, machine: str) -> list[dict[str, Any]]:
    """Descriptors (first file name wins, /etc over /usr/share) whose targets cover arch and machine."""
    files: dict[str, Path] = {}
    for directory in reversed(FIRMWARE_DIRS):
        if directory.is_dir():
            files.update({p.name: p for p in directory.glob("*.json")})
    found = []
    for name in sorted(files):
        try:
            desc = json.loads(files[name].read_text())
        except (OSError, ValueError):
            continue
        targets = desc.get("targets", [])
        if not any(t.get("architecture") == arch.replace("i686", "i386")
                   and any(fnmatch.fnmatch(machine, g) for g in t.get("machines", [])) for t in targets):
            continue
        kind = "efi" if "uefi" in desc.get("interface-types", []) else "bios"
        mapping = desc.get("mapping", {})
        path = mapping.get("executable", {}).get("filename") or mapping.get("filename", "")
        found.append({"kind": kind, "path": path, "secure": "secure-boot" in desc.get("features", [])})
    return found


# -- cpu ---------------------------------------------------------------------------------------------
def _cpu(caps: QemuCaps, req: Request) -> etree._Element:
    """<cpu>: the four modes; host-model is the host CPU QEMU offers, named after libvirt's CPU map."""
    accel = "kvm" if req.virttype == "kvm" else "tcg"
    cpu = etree.Element("cpu")
    passthrough = _supported(cpu, "mode", req.virttype == "kvm", "host-passthrough")
    migratable = caps.has_type("max-x86_64-cpu")  # QEMU_CAPS_CPU_MIGRATABLE is probed on that type
    if req.virttype == "kvm":
        _enum(passthrough, "hostPassthroughMigratable", [("on", migratable), ("off", True)])
    names = {m.name for m in caps.cpu_models}
    maximum = _supported(cpu, "mode", "max" in names, "maximum")
    if "max" in names:
        _enum(maximum, "maximumMigratable", [("on", True), ("off", True)])
    cpu_map = _cpu_map()
    host = _host_model(caps.host_cpu_props.get(accel, {}), cpu_map)
    host_mode = _supported(cpu, "mode", host is not None, "host-model")
    if host is not None:
        model, vendor, require, disable = host
        etree.SubElement(host_mode, "model", fallback="forbid").text = model
        if vendor:
            etree.SubElement(host_mode, "vendor").text = vendor
        for policy, feats in (("require", require), ("disable", disable)):
            for feat in feats:
                etree.SubElement(host_mode, "feature", policy=policy, name=feat)
    custom = _supported(cpu, "mode", True, "custom")
    blockers = caps.cpu_blockers.get(accel, {})
    for m in reversed(caps.cpu_models):  # libvirt keeps QEMU's list in reverse
        if m.name not in cpu_map.models:
            continue
        usable = "unknown" if m.name not in blockers else ("no" if blockers[m.name] else "yes")
        el = etree.SubElement(custom, "model", usable=usable, vendor=cpu_map.models[m.name].vendor or "unknown")
        el.text = m.name
    return cpu


@dataclass(frozen=True)
class CpuModelDef:
    """One model of libvirt's CPU map, with its parents' features folded in."""

    vendor: str | None
    features: frozenset[str]
    signatures: frozenset[tuple[int, int]]
    decode_guest: bool


@dataclass(frozen=True)
class CpuMap:
    features: tuple[str, ...]  # x86_features.xml order, libvirt's output order
    vendors: dict[str, str]  # CPUID vendor string -> libvirt vendor name
    models: dict[str, CpuModelDef]  # in index.xml order


@functools.cache
def _cpu_map() -> CpuMap:
    """libvirt 9.0's x86 CPU map, as the project ships it (command/data/cpu_map_x86.json)."""
    cmap = hostcpu.cpu_map()
    models = {
        name: CpuModelDef(
            vendor=cmap.vendors.get(name),
            features=frozenset(features),
            signatures=frozenset(cmap.signatures.get(name, ())),
            decode_guest=name in cmap.guest_decodable,
        )
        for name, features in cmap.models.items()
    }
    return CpuMap(cmap.order, hostcpu.X86_VENDORS, models)


def _host_model(props: dict[str, Any], cpu_map: CpuMap) -> tuple[str, str | None, list[str], list[str]] | None:
    """x86Decode: the map's model closest to QEMU's host CPU (fewest features to add or remove, one of the
    host's family/model signature preferred), plus those features in the map's order."""
    if not props or not cpu_map.models:
        return None
    host = {f for f in cpu_map.features if _prop_enabled(props, f)}
    vendor = cpu_map.vendors.get(str(props.get("vendor", "")))
    signature = (int(props.get("family", 0)), int(props.get("model", 0)))
    best: tuple[str, CpuModelDef, int] | None = None
    for name, model in cpu_map.models.items():
        if not model.decode_guest or (model.vendor and vendor and model.vendor != vendor):
            continue
        cost = len(host ^ model.features)
        if best is None:
            best = (name, model, cost)
            continue
        cur_sig, cand_sig = signature in best[1].signatures, signature in model.signatures
        if (cur_sig and not cand_sig) or not (best[2] > cost or (cand_sig and not cur_sig)):
            continue
        best = (name, model, cost)
    if best is None:
        return None
    name, model, _ = best
    require = [f for f in cpu_map.features if f in host and f not in model.features]
    disable = [f for f in cpu_map.features if f in model.features and f not in host]
    return name, vendor, require, disable


def _prop_enabled(props: dict[str, Any], feature: str) -> bool:
    """QEMU spells libvirt's feature names with '-' or '_' ("sse4.1" is "sse4-1"); a few differ."""
    spellings = {feature, feature.replace("_", "-"), feature.replace(".", "-"), feature.replace(".", "_"),
                 {"pclmuldq": "pclmulqdq", "pni": "sse3"}.get(feature, feature)}
    return any(props.get(s) is True for s in spellings)


# -- devices and features ------------------------------------------------------------------------------
def _devices(caps: QemuCaps, req: Request) -> etree._Element:
    """<devices>: each value present when QEMU has the device (virQEMUCapsFillDomainDevice*Caps)."""
    t = caps.has_type
    devices = etree.Element("devices")
    disk = _supported(devices, "disk", True)
    _enum(disk, "diskDevice", [("disk", True), ("cdrom", True), ("floppy", True), ("lun", True)])
    builtin_ide = req.machine.startswith("pc-i440fx-") or req.machine in ("pc", "isapc")
    _enum(disk, "bus", [("ide", builtin_ide), ("fdc", True), ("scsi", True), ("virtio", True),
                        ("usb", t("usb-storage")), ("sata", t("ich9-ahci"))])
    virtio_models = [("virtio", True), ("virtio-transitional", True), ("virtio-non-transitional", True)]
    _enum(disk, "model", virtio_models)
    graphics = _supported(devices, "graphics", True)
    # SDL and VNC are options of every x86 QEMU build libvirt 9.0 supports; spice, EGL and D-Bus
    # displays show in the types their builds register
    _enum(graphics, "type", [("sdl", True), ("vnc", True), ("spice", t("chardev-spicevmc")),
                             ("egl-headless", t("virtio-gpu-gl-pci")), ("dbus", t("dbus-display"))])
    video = _supported(devices, "video", True)
    _enum(video, "modelType", [("vga", t("VGA")), ("cirrus", t("cirrus-vga")), ("vmvga", t("vmware-svga")),
                               ("qxl", t("qxl-vga")), ("virtio", t("virtio-gpu-pci")), ("none", True),
                               ("bochs", t("bochs-display")), ("ramfb", t("ramfb"))])
    hostdev = _supported(devices, "hostdev", True)
    _enum(hostdev, "mode", [("subsystem", True)])
    _enum(hostdev, "startupPolicy", [(p, True) for p in ("default", "mandatory", "requisite", "optional")])
    _enum(hostdev, "subsysType", [("usb", True), ("pci", True), ("scsi", True)])
    _enum(hostdev, "capsType", [])
    vfio = t("vfio-pci") and IOMMU_GROUPS.is_dir() and any(IOMMU_GROUPS.iterdir())
    _enum(hostdev, "pciBackend", [("default", vfio), ("vfio", vfio)])
    rng = _supported(devices, "rng", t("virtio-rng-pci"))
    _enum(rng, "model", virtio_models)
    _enum(rng, "backendModel", [("random", t("rng-random")), ("egd", t("rng-egd")), ("builtin", t("rng-builtin"))])
    fs = _supported(devices, "filesystem", True)
    _enum(fs, "driverType", [("path", True), ("handle", True), ("virtiofs", t("vhost-user-fs-device"))])
    tpm = _supported(devices, "tpm", t("tpm-tis") or t("tpm-crb"))
    _enum(tpm, "model", [("tpm-tis", t("tpm-tis")), ("tpm-crb", t("tpm-crb"))])
    swtpm = shutil.which("swtpm") is not None
    _enum(tpm, "backendModel", [("passthrough", t("tpm-passthrough")), ("emulator", t("tpm-emulator") and swtpm)])
    redir = _supported(devices, "redirdev", t("usb-redir"))
    _enum(redir, "bus", [("usb", t("usb-redir"))])
    channel = _supported(devices, "channel", True)
    _enum(channel, "type", [("pty", True), ("unix", True), ("spicevmc", t("chardev-spicevmc"))])
    return devices


def _features(caps: QemuCaps, req: Request) -> etree._Element:
    """<features>: SEV and SGX need the host's support too (QEMU's query-sev/sgx-capabilities fail
    without it), Hyper-V enlightenments are x86's."""
    x86 = req.arch in ("x86_64", "i686")
    features = etree.Element("features")
    _supported(features, "gic", False)
    _supported(features, "vmcoreinfo", caps.has_type("vmcoreinfo"))
    _supported(features, "genid", caps.has_type("vmgenid"))
    _supported(features, "backingStoreInput", True)  # -blockdev: every QEMU libvirt 9.0 drives
    _supported(features, "backup", True)  # incremental backup: likewise
    _supported(features, "sev", caps.has_type("sev-guest") and _sysfs_yes("/sys/module/kvm_amd/parameters/sev"))
    _supported(features, "sgx", caps.has_type("sgx-epc") and os.path.exists("/dev/sgx_enclave"))
    hyperv = _supported(features, "hyperv", x86)
    if x86:
        # the enlightenments libvirt 9.0 reports as taking a value rather than only on/off
        _enum(hyperv, "features", [("spinlocks", True), ("vendor_id", True)])
    return features


def _sysfs_yes(path: str) -> bool:
    try:
        return Path(path).read_text().strip() in ("1", "Y", "y")
    except OSError:
        return False
