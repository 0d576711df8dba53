"""The guest-wide options: name, machine, accelerator, CPU, memory, SMP/NUMA, monitor, clock, boot."""

from __future__ import annotations

import time
from typing import Any

from virtstack.virt.drivers.qemu.command import hostcpu
from virtstack.virt.drivers.qemu.command.context import BuildContext, Error, unsupported
from virtstack.virt.drivers.qemu.command.escape import json_arg, qemu_opt
from virtstack.virt.errors import ErrorCode
from virtstack.virt.xml.domain.misc import parse_cpuset

MIB_KIB = 1024
# libvirt's feature names that QEMU spells differently (virQEMUCapsCPUFeatureToQEMU)
_CPU_FEATURE_QEMU = {"pclmuldq": "pclmulqdq", "cmt": "cqm"}


def align_mib(kib: int) -> int:
    """qemuDomainAlignMemorySizes: x86 guest RAM is rounded up to whole MiB."""
    return (kib + MIB_KIB - 1) // MIB_KIB * MIB_KIB


def numa_cells_kib(ctx: BuildContext) -> list[int]:
    cpu = ctx.defn.cpu
    if cpu is None or cpu.numa is None:
        return []
    return [align_mib(c.memory or 0) for c in cpu.numa.cells]


def memory_kib(ctx: BuildContext) -> int:
    """Guest RAM after alignment; with NUMA the sum of the aligned cells."""
    cells = numa_cells_kib(ctx)
    if cells:
        return sum(cells)
    return align_mib(ctx.defn.memory_kib or 0)


def build_name(ctx: BuildContext) -> None:
    ctx.add("-name", f"guest={qemu_opt(ctx.defn.name or '')},debug-threads=on")
    ctx.add("-S")


def build_master_key(ctx: BuildContext) -> None:
    ctx.obj(
        {
            "qom-type": "secret",
            "id": "masterKey0",
            "format": "raw",
            "file": f"{ctx.runtime.lib_dir}/master-key.aes",
        }
    )


def build_machine(ctx: BuildContext, pflash: list[str]) -> None:
    """-machine NAME,usb=off,...: the x86 machine properties libvirt 9.0 sets for QEMU 7.2."""
    feats = ctx.defn.features
    parts = [qemu_opt(ctx.machine), "usb=off"]
    if feats and feats.vmport and feats.vmport.state is not None:
        parts.append(f"vmport={'on' if feats.vmport.state else 'off'}")
    if feats and feats.smm and feats.smm.state is not None:
        parts.append(f"smm={'on' if feats.smm.state else 'off'}")
    parts.append(f"dump-guest-core={'on' if ctx.config.dump_guest_core else 'off'}")
    mb = ctx.defn.memory_backing
    if mb is not None and mb.nosharepages:
        parts.append("mem-merge=off")
    if feats and feats.ioapic and feats.ioapic.driver is not None:
        parts.append(f"kernel_irqchip={'split' if feats.ioapic.driver == 'qemu' else 'on'}")
    if not numa_cells_kib(ctx):
        parts.append("memory-backend=pc.ram")
    parts += [f"pflash{i}={name}" for i, name in enumerate(pflash)]
    if ctx.caps.has_flag("machine.hpet") and _hpet_disabled(ctx):
        parts.append("hpet=off")
    ctx.add("-machine", ",".join(parts))


def _hpet_disabled(ctx: BuildContext) -> bool:
    clock = ctx.defn.clock
    return bool(clock and any(t.name == "hpet" and t.present is False for t in clock.timers))


def build_accel(ctx: BuildContext) -> None:
    accel = "kvm" if ctx.defn.type == "kvm" else "tcg"
    if not ctx.caps.has_accel(accel) and ctx.caps.accelerators:
        raise unsupported(f"the accel '{accel}' is not supported by this QEMU binary")
    ctx.add("-accel", accel)


def build_tseg(ctx: BuildContext) -> None:
    """<smm><tseg>: the Q35 extended TSEG size, a global of the MCH."""
    feats = ctx.defn.features
    tseg = feats.smm.tseg_kib if feats and feats.smm else None
    if tseg is None:
        return
    if not ctx.is_q35:
        raise unsupported("SMM TSEG is only supported with q35 machine type")
    if tseg % 1024:
        raise unsupported("SMM TSEG size must be divisible by 1 MiB")
    ctx.add("-global", f"mch.extended-tseg-mbytes={tseg // 1024}")


def build_cpu(ctx: BuildContext) -> None:
    """-cpu MODEL[,feature=on|off...] plus the guest features QEMU exposes as CPU properties."""
    cpu = ctx.defn.cpu
    feats = ctx.defn.features
    parts: list[str] = []
    host_model_feats: list[str] = []
    if cpu is not None and cpu.mode == "host-model":
        # libvirt turns host-model into the custom CPU its capabilities computed for this accelerator
        accel = "kvm" if ctx.defn.type == "kvm" else "tcg"
        props = ctx.caps.host_cpu_props.get(accel)
        if not props:
            raise unsupported("CPU mode 'host-model' is not supported by this driver")
        name, hm = hostcpu.host_model(props, ctx.caps.cpu_blockers.get(accel, {}))
        parts.append(name)
        own = {f.name for f in cpu.features}
        host_model_feats = [f"{_qemu_feature(f)}={'on' if on else 'off'}" for f, on in hm if f not in own]
    elif cpu is None or cpu.mode in (None, "custom"):
        name = cpu.model.name if cpu and cpu.model and cpu.model.name else "qemu64"
        if ctx.caps.cpu_models and not any(m.name == name for m in ctx.caps.cpu_models):
            raise unsupported(f"CPU model '{name}' is not supported by hypervisor")
        parts.append(name)
    elif cpu.mode in ("host-passthrough", "maximum"):
        if cpu.mode == "host-passthrough" and ctx.defn.type != "kvm":
            raise unsupported(
                "CPU mode 'host-passthrough' for x86_64 qemu domain on x86_64 host is not supported by hypervisor"
            )
        parts.append("host" if cpu.mode == "host-passthrough" else "max")
        if cpu.migratable is not None:  # only when the definition (or its defaults) says so
            parts.append(f"migratable={'off' if cpu.migratable is False else 'on'}")
    else:
        raise unsupported(f"CPU mode '{cpu.mode}' is not supported by this driver")
    if cpu is not None:
        accel_props = ctx.caps.host_cpu_props.get("kvm" if ctx.defn.type == "kvm" else "tcg")
        custom = cpu.mode in (None, "custom")
        optional = hostcpu.resolve_optional(cpu, hostcpu.offered(accel_props)) if custom and accel_props else {}
        known = {p for props in ctx.caps.host_cpu_props.values() for p in props}
        parts += _cpu_features(cpu, optional, known)
        parts += host_model_feats
        parts += [f"{_qemu_feature(name)}=off" for name in hostcpu.removed_features(cpu)]
    clock = ctx.defn.clock
    for t in clock.timers if clock else []:
        if t.name == "kvmclock" and t.present is not None:
            parts.append(f"kvmclock={'on' if t.present else 'off'}")
    for t in clock.timers if clock else []:
        if t.name == "tsc" and t.frequency:
            parts.append(f"tsc-frequency={t.frequency}")
    if feats and feats.apic and feats.apic.eoi is not None:
        parts.append(f"kvm-pv-eoi={'on' if feats.apic.eoi else 'off'}")
    if feats and feats.pvspinlock and feats.pvspinlock.state is not None:
        parts.append(f"kvm-pv-unhalt={'on' if feats.pvspinlock.state else 'off'}")
    if feats and feats.hyperv:
        parts += _hyperv(feats.hyperv)
    kvm = feats.kvm if feats else None
    if kvm is not None:
        if kvm.hidden is not None and kvm.hidden.state:
            parts.append("kvm=off")
        if kvm.hint_dedicated is not None and kvm.hint_dedicated.state is not None:
            parts.append(f"kvm-hint-dedicated={'on' if kvm.hint_dedicated.state else 'off'}")
        if kvm.poll_control is not None and kvm.poll_control.state is not None:
            parts.append(f"kvm-poll-control={'on' if kvm.poll_control.state else 'off'}")
        if kvm.pv_ipi is not None and kvm.pv_ipi.state is not None:
            parts.append(f"kvm-pv-ipi={'on' if kvm.pv_ipi.state else 'off'}")
    if feats and feats.pmu and feats.pmu.state is not None:
        parts.append(f"pmu={'on' if feats.pmu.state else 'off'}")
    if cpu is not None and cpu.cache is not None:
        parts += _cache(cpu.cache, cpu.mode)
    if cpu is not None:
        parts += _phys_bits(cpu.maxphysaddr)  # last, after the cache options, in every CPU mode
    ctx.add("-cpu", ",".join(parts))


#: features QEMU computes from guest state and refuses to set (virQEMUCapsCPUFilterFeatures drops them)
_FILTERED_FEATURES = frozenset({"osxsave", "ospke"})


def _qemu_feature(name: str) -> str:
    return _CPU_FEATURE_QEMU.get(name, name.replace("_", "-"))


def _cpu_features(cpu: Any, optional: dict[str, bool] | None = None, known: set[str] | None = None) -> list[str]:
    """vendor= and each <feature>: require/force -> on, disable/forbid -> off, in every CPU mode.

    An optional feature is left to QEMU for host/max CPUs; for a custom model libvirt resolves it
    against the host CPU before building (`optional`: what KVM or TCG offers); without host data it
    counts as off. `known` is every CPU property this QEMU has."""
    out: list[str] = []
    vendor = cpu.model.vendor_id if cpu.model is not None and cpu.mode not in ("host-passthrough", "maximum") else None
    if vendor:
        out.append(f"vendor={vendor}")
    for f in cpu.features:
        if f.name in _FILTERED_FEATURES:
            continue
        fname = _qemu_feature(f.name or "")
        if f.policy in (None, "require", "force") or (f.policy == "optional" and (optional or {}).get(f.name or "")):
            out.append(f"{fname}=on")
        elif known and fname not in known:
            continue  # turning off a feature this QEMU does not even know is dropped by libvirt
        elif f.policy in ("disable", "forbid") or cpu.mode in (None, "custom"):
            out.append(f"{fname}=off")
    return out


def _phys_bits(mpa: Any) -> list[str]:
    if mpa is None:
        return []
    if mpa.mode == "emulate" and mpa.bits is not None:
        return [f"phys-bits={mpa.bits}"]
    if mpa.mode == "passthrough":
        return ["host-phys-bits=on"]  # libvirt 9.0 has no limit= yet
    return []


def _cache(cache: Any, mode: str | None) -> list[str]:
    """<cache>: which CPUID cache leaves the guest sees."""
    if cache.mode == "passthrough":
        if mode not in ("host-passthrough", "maximum"):
            raise unsupported(
                "CPU cache mode 'passthrough' can only be used with 'host-passthrough' / 'maximum' CPUs"
            )
        if cache.level is not None:
            raise unsupported("unsupported CPU cache level for mode 'passthrough'")
        return ["host-cache-info=on", "l3-cache=off"]
    if cache.mode == "disable":
        return (
            ["host-cache-info=off", "l3-cache=off"]
            if mode in ("host-passthrough", "maximum")
            else ["l3-cache=off"]
        )
    if cache.mode == "emulate":
        if cache.level not in (None, 3):
            raise unsupported("unsupported CPU cache level for mode 'emulate'")
        out = ["l3-cache=on"]
        if mode in ("host-passthrough", "maximum"):
            out.append("host-cache-info=off")
        return out
    return []


def _hyperv(hv: Any) -> list[str]:
    if hv.mode == "passthrough":
        return ["hv-passthrough=on"]
    out: list[str] = []
    for attr, name in (
        ("relaxed", "hv-relaxed"), ("vapic", "hv-vapic"), ("spinlocks", "hv-spinlocks"),
        ("vpindex", "hv-vpindex"), ("runtime", "hv-runtime"), ("synic", "hv-synic"), ("stimer", "hv-stimer"),
        ("reset", "hv-reset"), ("vendor_id", "hv-vendor-id"), ("frequencies", "hv-frequencies"),
        ("reenlightenment", "hv-reenlightenment"), ("tlbflush", "hv-tlbflush"), ("ipi", "hv-ipi"),
        ("evmcs", "hv-evmcs"), ("avic", "hv-avic"),
    ):  # fmt: skip
        item = getattr(hv, attr)
        if item is None or not item.state:
            continue
        if attr == "spinlocks":
            out.append(f"hv-spinlocks=0x{item.retries or 0:x}")
        elif attr == "vendor_id":
            out.append(f"hv-vendor-id={qemu_opt(item.value or '')}")
        else:
            out.append(f"{name}=on")
        if attr == "stimer" and item.direct is not None and item.direct.state:
            out.append("hv-stimer-direct=on")
    return out


def build_memory(ctx: BuildContext) -> None:
    """-m, the RAM backend object (when not NUMA), and -overcommit."""
    kib = memory_kib(ctx)
    ctx.add("-m", str(kib // MIB_KIB))
    mb = ctx.defn.memory_backing
    if mb is not None and mb.hugepages is not None and not ctx.config.hugetlbfs_mounts:
        raise Error(
            ErrorCode.INTERNAL_ERROR, "hugetlbfs filesystem is not mounted or disabled by administrator config"
        )
    if mb is not None and mb.hugepages is not None:
        raise unsupported("hugepage-backed guest memory is not supported by this driver")
    if not numa_cells_kib(ctx):
        ctx.obj(_ram_backend(ctx, kib))
    ctx.add("-overcommit", f"mem-lock={'on' if mb is not None and mb.locked else 'off'}")


def _ram_backend(ctx: BuildContext, kib: int) -> dict[str, Any]:
    """The machine RAM object: plain RAM, memfd, or a file under memory_backing_dir (<source
    type='file'>, or any shared access, which plain RAM cannot give), with libvirt's property order."""
    mb = ctx.defn.memory_backing
    source = mb.source if mb is not None else None
    access = mb.access if mb is not None else None
    props: dict[str, Any] = {"id": "pc.ram"}
    if source == "memfd":
        kind = "memfd"
    elif source == "file" or access == "shared":
        kind = "file"
        props["mem-path"] = f"{ctx.config.memory_backing_dir}/{ctx.runtime.dom_id}-{ctx.defn.name}/pc.ram"
    else:
        kind = "ram"
    if kind != "ram":
        if access is not None:
            props["share"] = access == "shared"
        if kind == "file" and mb is not None and mb.discard:
            props["discard-data"] = True
        props["x-use-canonical-path-for-ramblock-id"] = False
    if mb is not None and mb.allocation == "immediate":
        props["prealloc"] = True
    props["size"] = kib * 1024
    return {"qom-type": f"memory-backend-{kind}", **props}


def iothread_ids(defn: Any) -> list[int]:
    """<iothreadids> as written, then the lowest free ids until <iothreads> are named (libvirt's fill)."""
    ids = [t.id for t in defn.iothreadids.iothreads if t.id is not None] if defn.iothreadids else []
    want = max(defn.iothreads or 0, len(ids))
    candidate = 1
    while len(ids) < want:
        if candidate not in ids:
            ids.append(candidate)
        candidate += 1
    return ids


def build_iothreads(ctx: BuildContext) -> None:
    for tid in iothread_ids(ctx.defn):
        ctx.add("-object", json_arg({"qom-type": "iothread", "id": f"iothread{tid}"}))


def build_smp(ctx: BuildContext) -> None:
    vcpu = ctx.defn.vcpu
    maxv = ctx.defn.vcpus
    cur = vcpu.current if vcpu and vcpu.current is not None else maxv
    parts = [str(cur)]
    if cur != maxv:
        parts.append(f"maxcpus={maxv}")
    topo = ctx.defn.cpu.topology if ctx.defn.cpu else None
    if topo is not None and topo.sockets:
        sockets, cores, threads = topo.sockets, topo.cores or 1, topo.threads or 1
        dies = topo.dies or 1
        if sockets * dies * cores * threads != maxv:
            raise unsupported("CPU topology doesn't match maximum vcpu count")
        parts += [f"sockets={sockets}", f"dies={dies}", f"cores={cores}", f"threads={threads}"]
    else:
        parts += [f"sockets={maxv}", "cores=1", "threads=1"]
    ctx.add("-smp", ",".join(parts))


def build_numa(ctx: BuildContext) -> None:
    cpu = ctx.defn.cpu
    if cpu is None or cpu.numa is None:
        return
    for cell, kib in zip(cpu.numa.cells, numa_cells_kib(ctx), strict=True):
        nid = cell.id or 0
        backend: dict[str, Any]
        mb = ctx.defn.memory_backing
        source = mb.source if mb is not None else None
        access = cell.mem_access or (mb.access if mb is not None else None)
        if source == "memfd":
            backend = {"qom-type": "memory-backend-memfd", "id": f"ram-node{nid}"}
            if access is not None:
                backend["share"] = access == "shared"
            backend["size"] = kib * 1024
        elif cell.mem_access is not None or source == "file" or access == "shared":
            backend = {
                "qom-type": "memory-backend-file",
                "id": f"ram-node{nid}",
                "mem-path": f"{ctx.config.memory_backing_dir}/{ctx.runtime.dom_id}-{ctx.defn.name}/ram-node{nid}",
            }
            if access is not None:
                backend["share"] = access == "shared"
            backend["size"] = kib * 1024
        else:
            backend = {"qom-type": "memory-backend-ram", "id": f"ram-node{nid}", "size": kib * 1024}
        ctx.obj(backend)
        parts = [f"node,nodeid={nid}"]
        if cell.cpus:
            parts += [f"cpus={r}" for r in _ranges(parse_cpuset(cell.cpus))]
        parts.append(f"memdev=ram-node{nid}")
        ctx.add("-numa", ",".join(parts))


def _ranges(cpus: set[int]) -> list[str]:
    out: list[str] = []
    items = sorted(cpus)
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return out


def build_uuid_display(ctx: BuildContext) -> None:
    ctx.add("-uuid", ctx.defn.ref_uuid)
    if not ctx.defn.devices.graphics:
        ctx.add("-display", "none")
    ctx.add("-no-user-config", "-nodefaults")


def build_monitor(ctx: BuildContext) -> None:
    rt = ctx.runtime
    if rt.monitor_fd is not None:
        where = f"fd={rt.monitor_fd}"
        ctx.use_fd(rt.monitor_fd)
    else:
        where = f"path={qemu_opt(rt.monitor_path or rt.lib_dir + '/monitor.sock')}"
    ctx.add("-chardev", f"socket,id=charmonitor,{where},server=on,wait=off")
    ctx.add("-mon", "chardev=charmonitor,id=monitor,mode=control")


def build_clock(ctx: BuildContext) -> None:
    """-rtc and the timer globals (-global kvm-pit..., -no-hpet)."""
    clock = ctx.defn.clock
    offset = clock.offset if clock and clock.offset else "utc"
    if offset in ("utc", "localtime"):
        parts = [f"base={offset}"]
    elif offset == "timezone" and clock is not None and clock.timezone:
        parts = ["base=localtime"]
        ctx.env["TZ"] = clock.timezone
    elif offset == "variable" and clock is not None:
        start = ctx.runtime.now + (clock.adjustment or 0)
        if clock.basis == "localtime":
            start += time.localtime(ctx.runtime.now).tm_gmtoff
        parts = [f"base={time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(start))}"]
    else:
        raise unsupported(f"unsupported clock offset '{offset}'")
    timers = clock.timers if clock else []
    for t in timers:
        if t.name == "rtc":
            if t.track == "guest":
                parts.append("clock=vm")
            elif t.track == "wall":
                parts.append("clock=host")
            if t.tickpolicy == "catchup":
                parts.append("driftfix=slew")
            elif t.tickpolicy not in (None, "delay"):
                raise unsupported(f"unsupported rtc timer tickpolicy '{t.tickpolicy}'")
    ctx.add("-rtc", ",".join(parts))
    for t in timers:
        if t.name == "pit" and t.tickpolicy is not None:
            policy = {"delay": "delay", "catchup": "slew", "discard": "discard"}.get(t.tickpolicy)
            if policy is None:
                raise unsupported(f"unsupported pit tickpolicy '{t.tickpolicy}'")
            ctx.add("-global", f"kvm-pit.lost_tick_policy={policy}")
        elif t.name == "hpet" and t.present is False and not ctx.caps.has_flag("machine.hpet"):
            ctx.add("-no-hpet")
        elif t.name == "platform" and t.present is not None:
            raise unsupported(f"unsupported timer type (name) '{t.name}'")


def build_pm_and_acpi(ctx: BuildContext) -> None:
    """-no-shutdown, -no-acpi when <acpi/> is absent, and the S3/S4 globals of the chipset."""
    ctx.add("-no-shutdown")
    feats = ctx.defn.features
    if not (feats and feats.acpi):
        ctx.add("-no-acpi")
    pm = ctx.defn.pm
    if pm is None:
        return
    chip = "ICH9-LPC" if ctx.is_q35 else "PIIX4_PM"
    for el, name in ((pm.suspend_to_mem, "disable_s3"), (pm.suspend_to_disk, "disable_s4")):
        if el is not None and el.enabled is not None:
            ctx.add("-global", f"{chip}.{name}={1 if el.enabled == 'no' else 0}")


def build_boot(ctx: BuildContext) -> None:
    """-boot (menu, splash, reboot timeout; order is expressed as device bootindex) and direct kernel boot."""
    os_ = ctx.defn.os
    parts: list[str] = []
    if os_ and os_.bootmenu and os_.bootmenu.enable is not None:
        parts.append(f"menu={'on' if os_.bootmenu.enable else 'off'}")
        if os_.bootmenu.enable and os_.bootmenu.timeout is not None:
            parts.append(f"splash-time={os_.bootmenu.timeout}")
    if os_ and os_.bios and os_.bios.reboot_timeout is not None:
        parts.append(f"reboot-timeout={os_.bios.reboot_timeout}")
    parts.append("strict=on")
    ctx.add("-boot", ",".join(parts))
    if os_ is None:
        return
    if os_.smbios is not None and os_.smbios.mode != "emulate":
        raise unsupported(f"SMBIOS mode '{os_.smbios.mode}' is not supported by this driver")
    if os_.kernel:
        ctx.add("-kernel", os_.kernel)
    if os_.initrd:
        ctx.add("-initrd", os_.initrd)
    if os_.cmdline:
        ctx.add("-append", os_.cmdline)
    if os_.dtb:
        ctx.add("-dtb", os_.dtb)
