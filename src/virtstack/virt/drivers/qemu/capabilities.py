"""What a QEMU binary can do, asked over QMP and cached on disk like libvirt's capability cache."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virtstack.common.atomic import write_atomic
from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory

Error = error_factory(ErrorDomain.QEMU)

DEFAULT_BINARY = "/usr/bin/qemu-system-x86_64"
# Bump when the probe or the stored shape changes: older cache files are then ignored.
CACHE_FORMAT = 2
PROBE_TIMEOUT = 30.0

# Devices whose properties decide command-line forms; probing all ~500 types would cost seconds.
PROBED_DEVICES = (
    "virtio-blk-pci",
    "virtio-net-pci",
    "virtio-scsi-pci",
    "virtio-balloon-pci",
    "ide-hd",
    "scsi-hd",
    "usb-storage",
    "isa-serial",
    "VGA",
    "qxl-vga",
    "virtio-gpu-pci",
)


@dataclass(frozen=True)
class MachineType:
    """One entry of query-machines; `alias` is e.g. "pc" for the newest pc-i440fx-X.Y."""

    name: str
    alias: str | None = None
    is_default: bool = False
    max_cpus: int = 1
    hotpluggable_cpus: bool = False
    deprecated: bool = False
    default_cpu_type: str | None = None
    default_ram_id: str | None = None
    numa_mem_supported: bool = False


@dataclass(frozen=True)
class CpuModel:
    """One entry of query-cpu-definitions (usable with this accelerator or not)."""

    name: str
    typename: str | None = None
    deprecated: bool = False
    unavailable_features: tuple[str, ...] = ()


@dataclass
class QemuCaps:
    """The facts libvirt keeps per emulator binary; tests build one by hand for a fixed dialect.

    `flags` holds named capabilities in the spirit of libvirt's QEMU_CAPS_* (e.g. "machine.hpet":
    the x86 machine types take hpet=on|off, which QEMU 7.2.50 snapshots have and 7.2.0 lacks).
    """

    emulator: str
    version: tuple[int, int, int]
    package: str = ""
    arch: str = "x86_64"
    machines: list[MachineType] = field(default_factory=list)
    cpu_models: list[CpuModel] = field(default_factory=list)
    qom_types: frozenset[str] = frozenset()
    device_props: dict[str, tuple[str, ...]] = field(default_factory=dict)
    machine_props: dict[str, tuple[str, ...]] = field(default_factory=dict)
    accelerators: tuple[str, ...] = ()
    kvm_present: bool = False
    flags: frozenset[str] = frozenset()
    # per accelerator ("kvm", "tcg"): the host CPU QEMU offers (full expansion of the migratable
    # "host"/"max" model: property -> value) and each CPU model's blockers (unavailable features)
    host_cpu_props: dict[str, dict[str, Any]] = field(default_factory=dict)
    cpu_blockers: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def version_int(self) -> int:
        """libvirt's encoding: 7.2.22 -> 7002022 (what virConnectGetVersion returns)."""
        major, minor, micro = self.version
        return major * 1_000_000 + minor * 1_000 + micro

    def machine(self, name: str) -> MachineType | None:
        """The machine called `name`, looking through aliases ("pc" -> pc-i440fx-7.2)."""
        for m in self.machines:
            if m.name == name:
                return m
        for m in self.machines:
            if m.alias == name:
                return m
        return None

    def canonical_machine(self, name: str) -> str:
        """The real machine name behind an alias; unknown names come back unchanged."""
        m = self.machine(name)
        return m.name if m else name

    def default_machine(self) -> MachineType | None:
        return next((m for m in self.machines if m.is_default), None)

    def has_type(self, qom_type: str) -> bool:
        return qom_type in self.qom_types

    def has_flag(self, flag: str) -> bool:
        return flag in self.flags

    def has_accel(self, accel: str) -> bool:
        return accel in self.accelerators

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["qom_types"] = sorted(self.qom_types)
        data["flags"] = sorted(self.flags)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QemuCaps:
        return cls(
            emulator=data["emulator"],
            version=(int(data["version"][0]), int(data["version"][1]), int(data["version"][2])),
            package=data.get("package", ""),
            arch=data.get("arch", "x86_64"),
            machines=[MachineType(**m) for m in data.get("machines", [])],
            cpu_models=[
                CpuModel(
                    name=c["name"],
                    typename=c.get("typename"),
                    deprecated=bool(c.get("deprecated", False)),
                    unavailable_features=tuple(c.get("unavailable_features", ())),
                )
                for c in data.get("cpu_models", [])
            ],
            qom_types=frozenset(data.get("qom_types", ())),
            device_props={k: tuple(v) for k, v in data.get("device_props", {}).items()},
            machine_props={k: tuple(v) for k, v in data.get("machine_props", {}).items()},
            accelerators=tuple(data.get("accelerators", ())),
            kvm_present=bool(data.get("kvm_present", False)),
            flags=frozenset(data.get("flags", ())),
            host_cpu_props={k: dict(v) for k, v in data.get("host_cpu_props", {}).items()},
            cpu_blockers={
                accel: {m: tuple(f) for m, f in models.items()}
                for accel, models in data.get("cpu_blockers", {}).items()
            },
        )


def default_cache_dir() -> Path:
    """~/.cache/virtstack/qemu-caps, or $VIRTSTACK_QEMU_CAPS_CACHE."""
    env = os.environ.get("VIRTSTACK_QEMU_CAPS_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "virtstack" / "qemu-caps"


def _cache_key(binary: str) -> dict[str, Any]:
    """Binary identity as libvirt judges staleness: path, size and mtime (ns)."""
    try:
        st = os.stat(binary)
    except OSError as e:
        raise Error(
            ErrorCode.INTERNAL_ERROR, f"Cannot find QEMU binary {binary}: {e.strerror or e}"
        ) from None
    return {"format": CACHE_FORMAT, "binary": binary, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _cache_file(cache_dir: Path, binary: str) -> Path:
    digest = hashlib.sha256(binary.encode()).hexdigest()[:32]
    return cache_dir / f"{digest}.json"


def probe_qemu_caps(
    binary: str = DEFAULT_BINARY, *, cache_dir: Path | str | None = None, use_cache: bool = True
) -> QemuCaps:
    """The capabilities of `binary`, from the disk cache when the binary has not changed."""
    key = _cache_key(binary)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = _cache_file(directory, binary)
    if use_cache:
        try:
            stored = json.loads(path.read_text())
            if stored.get("key") == key:
                return QemuCaps.from_json(stored["caps"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    caps = asyncio.run(_probe(binary))
    if use_cache:
        with contextlib.suppress(OSError):
            directory.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps({"key": key, "caps": caps.to_json()}), mode=0o644)
    return caps


async def _probe(binary: str) -> QemuCaps:
    """The main probe (KVM when usable, else TCG), then the TCG CPU facts from a second process."""
    caps = await _run_probe(binary, "kvm:tcg", _interrogate)
    if caps.kvm_present and "tcg" not in caps.host_cpu_props:
        with contextlib.suppress(Exception):  # CPU facts are optional: host-model then stays refused
            props, blockers = await _run_probe(binary, "tcg", lambda c, _b: _cpu_facts(c, "max"))
            caps.host_cpu_props["tcg"] = props
            caps.cpu_blockers["tcg"] = blockers
    return caps


async def _cpu_facts(client: Any, model: str) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    """What libvirt asks to build host-model CPUs: the migratable full expansion of `model` and
    every model's unavailable features under the running accelerator."""
    exp = await client.execute(
        "query-cpu-model-expansion", {"type": "full", "model": {"name": model, "props": {"migratable": True}}}
    )
    defs = await client.execute("query-cpu-definitions")
    blockers = {d["name"]: tuple(d.get("unavailable-features", ())) for d in defs}
    return dict(exp["model"]["props"]), blockers


async def _run_probe(binary: str, accel: str, interrogate: Any) -> Any:
    """Start `binary -machine none` paused and interrogate it over the QMP socket it listens on."""
    from qemu.qmp import QMPClient

    with tempfile.TemporaryDirectory(prefix="virtstack-qemucaps-") as tmp:
        sock = os.path.join(tmp, "qmp.sock")
        argv = [
            binary, "-machine", f"none,accel={accel}", "-nodefaults", "-nographic", "-S",
            "-no-user-config", "-display", "none", "-qmp", f"unix:{sock},server=on,wait=off",
        ]  # fmt: skip
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as e:
            raise Error(ErrorCode.INTERNAL_ERROR, f"Failed to probe capabilities for {binary}: {e}") from None
        client = QMPClient("caps-probe")
        try:
            if not await _connect(client, proc, sock):
                if proc.returncode is None:
                    proc.kill()
                err = (await proc.stderr.read()).decode(errors="replace").strip() if proc.stderr else ""
                detail = err or "QEMU did not open its monitor"
                raise Error(ErrorCode.INTERNAL_ERROR, f"Failed to probe capabilities for {binary}: {detail}")
            return await interrogate(client, binary)
        finally:
            with contextlib.suppress(Exception):
                await client.execute("quit")
            with contextlib.suppress(Exception):
                await client.disconnect()
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def _connect(client: Any, proc: asyncio.subprocess.Process, sock: str) -> bool:
    """Connect once QEMU has created its socket; False if it exits or never does within the timeout."""
    deadline = asyncio.get_running_loop().time() + PROBE_TIMEOUT
    while asyncio.get_running_loop().time() < deadline:
        if proc.returncode is not None:
            return False
        if os.path.exists(sock):
            try:
                await client.connect(sock)
                return True
            except Exception:
                pass
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), 0.01)
        except TimeoutError:
            pass
    return False


async def _interrogate(client: Any, binary: str) -> QemuCaps:
    ver = await client.execute("query-version")
    q = ver["qemu"]
    machines_raw = await client.execute("query-machines")
    machines = sorted(
        (
            MachineType(
                name=m["name"],
                alias=m.get("alias"),
                is_default=bool(m.get("is-default", False)),
                max_cpus=int(m.get("cpu-max", 1)),
                hotpluggable_cpus=bool(m.get("hotpluggable-cpus", False)),
                deprecated=bool(m.get("deprecated", False)),
                default_cpu_type=m.get("default-cpu-type"),
                default_ram_id=m.get("default-ram-id"),
                numa_mem_supported=bool(m.get("numa-mem-supported", False)),
            )
            for m in machines_raw
        ),
        key=lambda m: m.name,
    )
    cpus_raw = await client.execute("query-cpu-definitions")
    cpu_models = sorted(
        (
            CpuModel(
                name=c["name"],
                typename=c.get("typename"),
                deprecated=bool(c.get("deprecated", False)),
                unavailable_features=tuple(c.get("unavailable-features", ())),
            )
            for c in cpus_raw
        ),
        key=lambda c: c.name,
    )
    types = frozenset(t["name"] for t in await client.execute("qom-list-types", {"abstract": False}))
    accels = tuple(sorted(t[: -len("-accel")] for t in types if t.endswith("-accel")))
    device_props: dict[str, tuple[str, ...]] = {}
    for dev in PROBED_DEVICES:
        if dev in types:
            props = await client.execute("device-list-properties", {"typename": dev})
            device_props[dev] = tuple(sorted(p["name"] for p in props))
    machine_props: dict[str, tuple[str, ...]] = {}
    for m in machines:
        if m.alias in ("pc", "q35"):
            props = await client.execute("qom-list-properties", {"typename": f"{m.name}-machine"})
            machine_props[m.name] = tuple(sorted(p["name"] for p in props))
    kvm = await client.execute("query-kvm")
    host_cpu_props: dict[str, dict[str, Any]] = {}
    cpu_blockers: dict[str, dict[str, tuple[str, ...]]] = {}
    accel = "kvm" if kvm.get("enabled") else "tcg"
    with contextlib.suppress(Exception):
        props, blockers = await _cpu_facts(client, "host" if accel == "kvm" else "max")
        host_cpu_props[accel] = props
        cpu_blockers[accel] = blockers
    caps = QemuCaps(
        emulator=binary,
        version=(int(q["major"]), int(q["minor"]), int(q["micro"])),
        package=str(ver.get("package", "")).strip(),
        machines=machines,
        cpu_models=cpu_models,
        qom_types=types,
        device_props=device_props,
        machine_props=machine_props,
        accelerators=accels,
        kvm_present=bool(kvm.get("present", False)),
        host_cpu_props=host_cpu_props,
        cpu_blockers=cpu_blockers,
    )
    caps.flags = derive_flags(caps)
    return caps


def derive_flags(caps: QemuCaps) -> frozenset[str]:
    """Named capabilities that pick one command-line form over another."""
    flags: set[str] = set()
    # libvirt 9.0 switches from -no-hpet to -machine hpet=off only for QEMU >= 7.2.50 (8.0 development);
    # the 7.2 release already lists the property but libvirt does not use it there.
    if caps.version >= (7, 2, 50):
        flags.add("machine.hpet")
    if "acpi" in {p for props in caps.machine_props.values() for p in props}:
        flags.add("machine.acpi")
    if caps.has_type("memory-backend-ram"):
        flags.add("object.memory-backend-ram")
    return frozenset(flags)
