"""Changing a domain's configuration in place (setmem, setmaxmem, setvcpus, desc/metadata), live and in
the persistent definition, as libvirt's QEMU driver does.

Every change works on copies: the persistent definition is copied, edited, written to its config file
and only then put in place (DomainObj caches formatted XML by definition identity); a live change
replaces `obj.live` and rewrites the status file. Live memory goes to the virtio balloon (QMP
`balloon`); libvirt then learns the guest's new size from BALLOON_CHANGE events, so the live
<currentMemory> is not edited here. Live vCPU counts can only be kept: every vCPU a domain boots with
is non-hotpluggable, which is what libvirt reports for our guests too.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lxml import etree

from virtstack.virt.domain_obj import not_running
from virtstack.virt.drivers.qemu import definition as defs
from virtstack.virt.drivers.qemu.process import runtime_of
from virtstack.virt.errors import (
    ErrorCode,
    ErrorDomain,
    VirtError,
    check_flags,
    error_factory,
    exclusive_flags,
)
from virtstack.virt.xml.parse import parse_xml

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from virtstack.virt.domain_obj import DomainObj
    from virtstack.virt.drivers.base import DomainRef
    from virtstack.virt.drivers.qemu.process import ProcessManager
    from virtstack.virt.drivers.qemu.state import DriverState

Error = error_factory(ErrorDomain.QEMU)

#: virDomainModificationImpact, virDomainMemoryModFlags, virDomainVcpuFlags
AFFECT_LIVE = 1
AFFECT_CONFIG = 2
MEM_MAXIMUM = 4
VCPU_MAXIMUM = 4
VCPU_GUEST = 8
VCPU_HOTPLUGGABLE = 16
#: virDomainMetadataType
METADATA_DESCRIPTION = 0
METADATA_TITLE = 1
METADATA_ELEMENT = 2


# -- libvirt's generic checks, worded as it does ------------------------------------------------------
def _dom_error(code: ErrorCode, message: str) -> VirtError:
    """Errors of libvirt's generic domain code (domain_conf.c): VIR_FROM_DOMAIN."""
    return VirtError(code, message, domain=ErrorDomain.DOMAIN)


def _targets(obj: DomainObj[Any], flags: int) -> tuple[bool, bool]:
    """virDomainObjGetDefs: (live, config) to change; "current" is live while running, else config."""
    if not flags & (AFFECT_LIVE | AFFECT_CONFIG):
        flags |= AFFECT_LIVE if obj.is_active() else AFFECT_CONFIG
    live, config = bool(flags & AFFECT_LIVE), bool(flags & AFFECT_CONFIG)
    if live and not obj.is_active():
        raise not_running()
    if config and not obj.persistent:
        raise _dom_error(ErrorCode.OPERATION_INVALID, "transient domains do not have any persistent config")
    return live, config


def _one_def(obj: DomainObj[Any], flags: int) -> Any:
    """virDomainObjGetOneDef: the one definition a query reads (LIVE and CONFIG together are refused)."""
    if flags & AFFECT_LIVE and flags & AFFECT_CONFIG:
        raise exclusive_flags("VIR_DOMAIN_AFFECT_LIVE", "VIR_DOMAIN_AFFECT_CONFIG", ErrorDomain.DOMAIN)
    live, _ = _targets(obj, flags)
    return obj.current if live else obj.definition


# -- <metadata> elements (virXMLInjectNamespace, virXMLFindChildNodeByNs, virXMLExtractNamespaceXML) --
def _metadata_root(raw: str | None) -> etree._Element:
    return etree.fromstring(raw) if raw else etree.Element("metadata")


def _child_in_ns(root: etree._Element, uri: str) -> etree._Element | None:
    return next((el for el in root if isinstance(el.tag, str) and etree.QName(el).namespace == uri), None)


def extract_metadata(raw: str | None, uri: str | None) -> str | None:
    """The first element of namespace `uri` under <metadata>, namespace stripped, or None."""
    if not raw or uri is None:
        return None
    found = _child_in_ns(_metadata_root(raw), uri)
    if found is None:
        return None
    node = copy.deepcopy(found)
    for el in node.iter():
        if isinstance(el.tag, str) and etree.QName(el).namespace == uri:
            el.tag = etree.QName(el).localname
        for name in [a for a in el.attrib if etree.QName(a).namespace == uri]:
            el.attrib[etree.QName(name).localname] = el.attrib.pop(name)
    etree.cleanup_namespaces(node)
    # libvirt's virXMLNodeToString dumps with libxml2's formatting (format=1), as pretty_print does
    return etree.tostring(node, encoding="unicode", with_tail=False, pretty_print=True).rstrip("\n")


def _namespaced(xml: str, uri: str, key: str) -> etree._Element:
    """The user's element and every element in it moved into namespace `uri`, declared with prefix `key`."""
    if not _is_ncname(key):
        raise VirtError(ErrorCode.INTERNAL_ERROR, "failed to validate prefix for a new XML namespace", domain=ErrorDomain.XML)
    parsed = parse_xml(xml, "(metadata_xml)")
    nsmap: dict[Any, str] = {**parsed.nsmap, key: uri}  # a None key is a default namespace
    node = etree.Element(etree.QName(uri, etree.QName(parsed).localname), nsmap=nsmap)
    node.attrib.update(parsed.attrib)
    node.text = parsed.text
    node.extend(list(parsed))
    for el in node.iterdescendants():
        if isinstance(el.tag, str):
            el.tag = etree.QName(uri, etree.QName(el).localname).text
    return node


def _is_ncname(key: str) -> bool:
    try:
        etree.QName(key)
    except ValueError:
        return False
    return bool(key) and ":" not in key


def replace_metadata(raw: str | None, xml: str | None, key: str | None, uri: str | None) -> str:
    """virDomainDefSetMetadata for elements: drop every element of `uri`, then add the new one."""
    new = _namespaced(xml, uri or "", key or "") if xml is not None else None
    root = _metadata_root(raw)
    while (old := _child_in_ns(root, uri or "")) is not None:
        root.remove(old)
    if new is not None:
        root.append(new)
    return etree.tostring(root, encoding="unicode")


class DomainConfigMixin:
    """The set-memory, set-vCPUs and metadata entry points of QemuDriver."""

    if TYPE_CHECKING:

        async def _obj(self, dom: DomainRef) -> DomainObj[Any]: ...

        def _job(self, obj: DomainObj[Any]) -> AbstractAsyncContextManager[None]: ...

        state: DriverState
        processes: ProcessManager

    # -- writing changed definitions ------------------------------------------------------------------
    def _change_config(self, obj: DomainObj[Any], edit: Callable[[Any], None]) -> None:
        """Edit a copy of the persistent definition, save it atomically, then put it in place."""
        defn = copy.deepcopy(obj.definition)
        edit(defn)
        self.state.save_config(obj.name, defs.format_xml(defn, inactive=True, secure=True))
        shared = obj.live is obj.definition
        obj.definition = defn
        if shared:
            obj.live = defn

    def _change_live(self, obj: DomainObj[Any], edit: Callable[[Any], None]) -> None:
        """Edit a copy of the live definition and record it in the status file."""
        assert obj.live is not None
        defn = copy.deepcopy(obj.live)
        edit(defn)
        if obj.definition is obj.live:
            obj.definition = defn
        obj.live = defn
        self.processes.save_status(obj)

    # -- memory ---------------------------------------------------------------------------------------
    async def domain_set_memory(self, dom: DomainRef, memory: int) -> None:
        """virDomainSetMemory: qemuDomainSetMemory is the flags variant on the live domain."""
        await self.domain_set_memory_flags(dom, memory, AFFECT_LIVE)

    async def domain_set_max_memory(self, dom: DomainRef, memory: int) -> None:
        """virDomainSetMaxMemory: the flags variant with MEM_MAXIMUM on the current definition."""
        await self.domain_set_memory_flags(dom, memory, MEM_MAXIMUM)

    async def domain_set_memory_flags(self, dom: DomainRef, memory: int, flags: int) -> None:
        """qemuDomainSetMemoryFlags: the maximum only in the config; current memory through the
        balloon (live) and <currentMemory> (config). Sizes are KiB."""
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG | MEM_MAXIMUM, "qemuDomainSetMemoryFlags", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        async with self._job(obj):
            live, config = _targets(obj, flags)
            if flags & MEM_MAXIMUM:
                self._set_max_memory(obj, memory, live, config)
            else:
                await self._set_current_memory(obj, memory, live, config)

    def _set_max_memory(self, obj: DomainObj[Any], memory: int, live: bool, config: bool) -> None:
        if live:
            raise Error(ErrorCode.OPERATION_INVALID, "cannot resize the maximum memory on an active domain")
        if defs.numa_cell_count(obj.definition):
            raise Error(
                ErrorCode.OPERATION_INVALID,
                "initial memory size of a domain with NUMA nodes cannot be modified with this API",
            )
        ceiling = defs.hotplug_memory_kib(obj.definition)
        if ceiling is not None and ceiling < memory:
            raise Error(
                ErrorCode.OPERATION_INVALID, "cannot set initial memory size greater than the maximum memory size"
            )
        current = defs.memory_kib(obj.definition)[1]
        self._change_config(
            obj, lambda d: defs.set_memory(d, total_kib=memory, current_kib=min(current, memory))
        )

    async def _set_current_memory(self, obj: DomainObj[Any], memory: int, live: bool, config: bool) -> None:
        ceilings = [defs.memory_kib(obj.current)[0]] if live else []
        if config:
            ceilings.append(defs.memory_kib(obj.definition)[0])
        if memory > min(ceilings):
            raise Error(ErrorCode.INVALID_ARG, "cannot set memory higher than max memory")
        if live:
            monitor = runtime_of(obj).monitor
            if defs.balloon(obj.current) is None or monitor is None:
                raise Error(
                    ErrorCode.OPERATION_INVALID,
                    "Unable to change memory of active domain without the balloon device and guest OS balloon driver",
                )
            await monitor.execute("balloon", {"value": memory * 1024})
        if config:
            self._change_config(obj, lambda d: defs.set_memory(d, current_kib=memory))

    # -- vCPUs ----------------------------------------------------------------------------------------
    async def domain_set_vcpus(self, dom: DomainRef, nvcpus: int) -> None:
        """virDomainSetVcpus: qemuDomainSetVcpus is the flags variant on the live domain."""
        await self.domain_set_vcpus_flags(dom, nvcpus, AFFECT_LIVE)

    async def domain_set_vcpus_flags(self, dom: DomainRef, nvcpus: int, flags: int) -> None:
        """qemuDomainSetVcpusFlags: the maximum (config only), or the online count (live and/or config)."""
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG | VCPU_MAXIMUM | VCPU_GUEST | VCPU_HOTPLUGGABLE,
            "qemuDomainSetVcpusFlags",
            ErrorDomain.QEMU,
        )
        obj = await self._obj(dom)
        async with self._job(obj):
            live, config = _targets(obj, flags)
            if flags & VCPU_GUEST:
                if not obj.is_active():
                    raise Error(ErrorCode.OPERATION_INVALID, "domain is not running")
                raise Error(ErrorCode.ARGUMENT_UNSUPPORTED, "QEMU guest agent is not configured")
            if flags & VCPU_MAXIMUM:
                self._set_max_vcpus(obj, nvcpus, live)
            else:
                self._set_online_vcpus(obj, nvcpus, live, config, bool(flags & VCPU_HOTPLUGGABLE))

    def _set_max_vcpus(self, obj: DomainObj[Any], nvcpus: int, live: bool) -> None:
        """qemuDomainSetVcpusMax: vCPUs added are offline; removing them lowers the online count too."""
        if live:
            raise Error(ErrorCode.OPERATION_UNSUPPORTED, "maximum vcpu count of a live domain can't be modified")
        if defs.numa_cpu_total(obj.definition) > nvcpus:
            raise Error(ErrorCode.INVALID_ARG, "Number of CPUs in <numa> exceeds the desired maximum vcpu count")
        topology = defs.topology_vcpus(obj.definition)
        if topology is not None and topology != nvcpus:
            raise Error(ErrorCode.INVALID_ARG, "CPU topology doesn't match the desired vcpu count")
        self._change_config(obj, lambda d: defs.set_vcpus(d, maximum=nvcpus))

    def _set_online_vcpus(self, obj: DomainObj[Any], nvcpus: int, live: bool, config: bool, hotpluggable: bool) -> None:
        """qemuDomainSetVcpusInternal: both maximums checked first, then the live domain, then the config."""
        for is_live, defn, which in ((live, obj.current, "live domain"), (config, obj.definition, "persistent domain")):
            if is_live and nvcpus > defs.vcpus(defn):
                raise Error(
                    ErrorCode.INVALID_ARG,
                    f"requested vcpus is greater than max allowable vcpus for the {which}: "
                    f"{nvcpus} > {defs.vcpus(defn)}",
                )
        if live and nvcpus != defs.vcpus_current(obj.current):
            self._refuse_hotplug(obj, nvcpus)
        if config:
            if hotpluggable and nvcpus > defs.vcpus_current(obj.definition):
                # libvirt would list each vCPU in <vcpus> with hotpluggable='yes'; the model has no <vcpus>
                raise Error(ErrorCode.ARGUMENT_UNSUPPORTED, "per-vCPU hotpluggable state (<vcpus>) is not supported")
            self._change_config(obj, lambda d: defs.set_vcpus(d, current=nvcpus))

    @staticmethod
    def _refuse_hotplug(obj: DomainObj[Any], nvcpus: int) -> None:
        """qemuDomainSelectHotplugVcpuEntities: vCPUs online at boot are not hotpluggable, so fewer is
        impossible (libvirt's own error); adding offline vCPUs needs device_add, not done here."""
        if nvcpus < defs.vcpus_current(obj.current):
            raise Error(
                ErrorCode.CONFIG_UNSUPPORTED,
                "failed to find appropriate hotpluggable vcpus to reach the desired target vcpu count",
            )
        raise Error(ErrorCode.OPERATION_UNSUPPORTED, "vCPU hotplug is not supported by this driver")

    # -- title, description, <metadata> -----------------------------------------------------------------
    async def domain_get_metadata(self, dom: DomainRef, kind: int, uri: str | None, flags: int) -> str:
        """virDomainObjGetMetadata: the description, title or one namespace's element."""
        obj = await self._obj(dom)
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "virDomainObjGetMetadata", ErrorDomain.DOMAIN)
        if not 0 <= kind <= METADATA_ELEMENT:
            raise _dom_error(ErrorCode.INVALID_ARG, f"unknown metadata type '{kind}'")
        defn = _one_def(obj, flags)
        value = defs.metadata_field(defn, kind)
        if kind == METADATA_ELEMENT:
            value = extract_metadata(value, uri)
        if value is None:
            raise _dom_error(ErrorCode.NO_DOMAIN_METADATA, "Requested metadata element is not present")
        return value

    async def domain_set_metadata(
        self, dom: DomainRef, kind: int, metadata: str | None, key: str | None, uri: str | None, flags: int
    ) -> None:
        """virDomainObjSetMetadata: an empty title or description removes it; an element replaces every
        element of its namespace (none given: removes them)."""
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "qemuDomainSetMetadata", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        async with self._job(obj):
            live, config = _targets(obj, flags)
            if not 0 <= kind <= METADATA_ELEMENT:
                raise _dom_error(ErrorCode.INVALID_ARG, f"unknown metadata type '{kind}'")
            if live:
                value = self._metadata_value(obj.current, kind, metadata, key, uri)
                self._change_live(obj, lambda d: defs.set_metadata_field(d, kind, value))
            if config:
                value = self._metadata_value(obj.definition, kind, metadata, key, uri)
                self._change_config(obj, lambda d: defs.set_metadata_field(d, kind, value))

    @staticmethod
    def _metadata_value(defn: Any, kind: int, metadata: str | None, key: str | None, uri: str | None) -> str | None:
        if kind != METADATA_ELEMENT:
            return metadata or None
        return replace_metadata(defs.metadata_field(defn, kind), metadata, key, uri)
