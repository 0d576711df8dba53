"""The <features> element: ACPI/APIC/PAE flags, Hyper-V enlightenments, SMM and friends."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from virtstack.virt.xml.base import ONOFF, UINT, Ctx, XMLModel, attr, child, enum, flag, scaled

HV_MODES = ("custom", "passthrough")


@dataclass
class State(XMLModel):
    """An element whose only content is state='on|off'."""

    state: bool | None = attr("state", ONOFF)


@dataclass
class Spinlocks(XMLModel):
    state: bool | None = attr("state", ONOFF)
    retries: int | None = attr("retries", UINT)


@dataclass
class VendorId(XMLModel):
    state: bool | None = attr("state", ONOFF)
    value: str | None = attr("value")


@dataclass
class Stimer(XMLModel):
    state: bool | None = attr("state", ONOFF)
    direct: State | None = child("direct", State)


@dataclass
class HyperV(XMLModel):
    """<hyperv mode>: libvirt writes the enlightenments in this fixed order."""

    mode: str | None = attr("mode", enum(*HV_MODES))
    relaxed: State | None = child("relaxed", State)
    vapic: State | None = child("vapic", State)
    spinlocks: Spinlocks | None = child("spinlocks", Spinlocks)
    vpindex: State | None = child("vpindex", State)
    runtime: State | None = child("runtime", State)
    synic: State | None = child("synic", State)
    stimer: Stimer | None = child("stimer", Stimer)
    reset: State | None = child("reset", State)
    vendor_id: VendorId | None = child("vendor_id", VendorId)
    frequencies: State | None = child("frequencies", State)
    reenlightenment: State | None = child("reenlightenment", State)
    tlbflush: State | None = child("tlbflush", State)
    ipi: State | None = child("ipi", State)
    evmcs: State | None = child("evmcs", State)
    avic: State | None = child("avic", State)

    def validate(self) -> None:
        if self.mode is None:
            self.mode = "custom"


@dataclass
class KVMFeatures(XMLModel):
    hidden: State | None = child("hidden", State)
    hint_dedicated: State | None = child("hint-dedicated", State)
    poll_control: State | None = child("poll-control", State)
    pv_ipi: State | None = child("pv-ipi", State)


@dataclass
class Apic(XMLModel):
    eoi: bool | None = attr("eoi", ONOFF)


@dataclass
class Smm(XMLModel):
    state: bool | None = attr("state", ONOFF)
    tseg_kib: int | None = scaled("tseg")

    def to_element(self, ctx: Ctx, tag: str | None = None) -> etree._Element | None:
        el = super().to_element(ctx, tag)
        tseg = el.find("tseg") if el is not None else None
        if tseg is not None and self.tseg_kib is not None and self.tseg_kib % 1024 == 0:
            tseg.set("unit", "MiB")  # libvirt writes the TSEG size in MiB
            tseg.text = str(self.tseg_kib // 1024)
        return el


@dataclass
class HPT(XMLModel):
    resizing: str | None = attr("resizing", enum("enabled", "disabled", "required"))
    maxpagesize_kib: int | None = scaled("maxpagesize")


@dataclass
class IOAPIC(XMLModel):
    driver: str | None = attr("driver", enum("kvm", "qemu"))


@dataclass
class Features(XMLModel):
    """Written in libvirt's virDomainFeature order."""

    TAG = "features"
    acpi: bool = flag("acpi")
    apic: Apic | None = child("apic", Apic)
    pae: bool = flag("pae")
    hap: State | None = child("hap", State)
    privnet: bool = flag("privnet")
    hyperv: HyperV | None = child("hyperv", HyperV)
    kvm: KVMFeatures | None = child("kvm", KVMFeatures)
    pvspinlock: State | None = child("pvspinlock", State)
    pmu: State | None = child("pmu", State)
    vmport: State | None = child("vmport", State)
    smm: Smm | None = child("smm", Smm)
    ioapic: IOAPIC | None = child("ioapic", IOAPIC)
    hpt: HPT | None = child("hpt", HPT)
    vmcoreinfo: State | None = child("vmcoreinfo", State)
