"""The QEMU driver's on-disk state, laid out like libvirt's; every write is atomic.

- `<config>/NAME.xml`: a persistent domain's inactive definition (/etc/libvirt/qemu/NAME.xml)
- `<config>/autostart/NAME.xml`: autostart marker, a symlink to the config as libvirt makes it
- `<status>/NAME.xml`: a running domain's status (/run/libvirt/qemu/NAME.xml): libvirt's `<domstatus>`
  with state, reason, pid, the monitor socket and the live definition, enough for a restarted driver to
  reconnect. This module stores XML text; it never parses a domain definition itself.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lxml import etree

from virtstack.common.atomic import remove_if_exists, write_atomic
from virtstack.common.log import kv
from virtstack.virt.drivers.base import DomainState
from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory

Error = error_factory(ErrorDomain.QEMU)
log = logging.getLogger(__name__)

#: libvirt's virDomainState names as written in status files (virDomainStateTypeToString)
STATE_NAMES = {
    DomainState.NOSTATE: "nostate",
    DomainState.RUNNING: "running",
    DomainState.BLOCKED: "blocked",
    DomainState.PAUSED: "paused",
    DomainState.SHUTDOWN: "shutdown",
    DomainState.SHUTOFF: "shutoff",
    DomainState.CRASHED: "crashed",
    DomainState.PMSUSPENDED: "pmsuspended",
}
_STATE_BY_NAME = {v: k for k, v in STATE_NAMES.items()}


@dataclass(frozen=True)
class StateLayout:
    """Where one driver instance keeps its files; `for_root(None)` gives the system paths."""

    config_dir: Path
    status_dir: Path
    lib_dir: Path
    log_dir: Path
    cache_dir: Path

    @classmethod
    def for_root(cls, root: Path | None) -> StateLayout:
        if root is None:
            return cls(
                config_dir=Path("/etc/virtstack/qemu"),
                status_dir=Path("/run/virtstack/qemu"),
                lib_dir=Path("/var/lib/virtstack/qemu"),
                log_dir=Path("/var/log/virtstack/qemu"),
                cache_dir=Path("/var/cache/virtstack/qemu"),
            )
        root = Path(root)
        return cls(
            config_dir=root / "etc" / "qemu",
            status_dir=root / "run" / "qemu",
            lib_dir=root / "lib" / "qemu",
            log_dir=root / "log" / "qemu",
            cache_dir=root / "cache" / "qemu",
        )

    @property
    def autostart_dir(self) -> Path:
        return self.config_dir / "autostart"

    def ensure(self) -> None:
        for d in (self.config_dir, self.autostart_dir, self.status_dir, self.lib_dir, self.log_dir, self.cache_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)


@dataclass
class StatusRecord:
    """What a status file holds about one running domain."""

    name: str
    domain_id: int
    pid: int
    state: DomainState
    reason: int
    monitor_path: str
    live_xml: str
    persistent: bool = True
    #: driver facts beyond libvirt's (console pty path, log path, ...), kept as string attributes
    extra: dict[str, str] = field(default_factory=dict)


def _checked_name(name: str) -> str:
    """Names become file names: refuse what would escape the directory (libvirt refuses '/' too)."""
    if not name or "/" in name or name in (".", ".."):
        raise Error(ErrorCode.XML_ERROR, f"name {name} cannot contain '/'")
    return name


class DriverState:
    """Reads and writes one driver's configs, autostart markers and status files."""

    def __init__(self, layout: StateLayout) -> None:
        self.layout = layout
        self._lock: IO[str] | None = None
        layout.ensure()

    # -- ownership ----------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Own the state directory (libvirtd's pid-file lock): QEMU accepts one monitor client, so a
        second driver on the same directory would fight the first for every guest."""
        if self._lock is not None:
            return
        path = self.layout.status_dir / "driver.lock"
        lock = open(path, "a+")  # noqa: SIM115 - held open for the driver's life; GC closes it too
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise Error(
                ErrorCode.SYSTEM_ERROR,
                f"Failed to acquire lock file '{path}': another driver instance owns this state directory",
            ) from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the flock
            self._lock = None

    # -- persistent configs -------------------------------------------------------------------------
    def config_path(self, name: str) -> Path:
        return self.layout.config_dir / f"{_checked_name(name)}.xml"

    def save_config(self, name: str, xml: str) -> None:
        try:
            write_atomic(self.config_path(name), xml)
        except OSError as e:
            raise Error(ErrorCode.SYSTEM_ERROR, f"cannot save config {self.config_path(name)}: {e.strerror}") from e

    def delete_config(self, name: str) -> None:
        remove_if_exists(self.config_path(name))
        self.set_autostart(name, False)

    def load_configs(self) -> dict[str, str]:
        """name -> inactive XML of every readable persistent config; an unreadable one is logged and
        skipped, so one damaged file does not hide every other domain (libvirt does the same)."""
        configs = {}
        for path in sorted(self.layout.config_dir.glob("*.xml")):
            if not path.is_file():
                continue
            try:
                configs[path.stem] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                log.warning("skipping unreadable domain config", extra=kv(path=str(path), error=str(e)))
        return configs

    # -- autostart ----------------------------------------------------------------------------------
    def autostart_path(self, name: str) -> Path:
        return self.layout.autostart_dir / f"{_checked_name(name)}.xml"

    def set_autostart(self, name: str, on: bool) -> None:
        link = self.autostart_path(name)
        if not on:
            remove_if_exists(link)
            return
        # symlink beside, then rename over: the marker appears whole or not at all
        tmp = link.with_name(f".{link.name}.tmp")
        remove_if_exists(tmp)
        os.symlink(self.config_path(name), tmp)
        os.replace(tmp, link)

    def autostart(self, name: str) -> bool:
        return self.autostart_path(name).is_symlink() or self.autostart_path(name).exists()

    # -- status files -------------------------------------------------------------------------------
    def status_path(self, name: str) -> Path:
        return self.layout.status_dir / f"{_checked_name(name)}.xml"

    def save_status(self, record: StatusRecord) -> None:
        root = etree.Element(
            "domstatus",
            state=STATE_NAMES[record.state],
            reason=str(record.reason),
            pid=str(record.pid),
        )
        etree.SubElement(root, "monitor", path=record.monitor_path, type="unix")
        attrs = {"name": record.name, "id": str(record.domain_id), "persistent": "yes" if record.persistent else "no"}
        etree.SubElement(root, "virtstack", attrib={**attrs, **record.extra})
        etree.indent(root, space="  ")
        root[-1].tail = "\n  "
        dom = etree.fromstring(record.live_xml.encode())
        dom.tail = "\n"
        root.append(dom)  # the live definition keeps its own formatting
        write_atomic(self.status_path(record.name), etree.tostring(root, encoding="unicode") + "\n")

    def delete_status(self, name: str) -> None:
        remove_if_exists(self.status_path(name))

    def load_statuses(self) -> list[StatusRecord]:
        """Every readable status file. A broken one (writes are atomic, so damage came from outside) is
        skipped with a warning naming it: its QEMU, if any, is left running unmanaged, and the log line
        is how an operator finds it."""
        records = []
        for path in sorted(self.layout.status_dir.glob("*.xml")):
            try:
                records.append(_parse_status(path))
            except (etree.XMLSyntaxError, KeyError, ValueError, OSError, UnicodeDecodeError) as e:
                log.warning("skipping unreadable status file", extra=kv(path=str(path), error=str(e)))
        return records


def _parse_status(path: Path) -> StatusRecord:
    root = etree.parse(str(path)).getroot()
    monitor = root.find("monitor")
    ours = root.find("virtstack")
    dom = root.find("domain")
    if monitor is None or ours is None or dom is None:
        raise ValueError(f"incomplete status file {path}")
    attrs = {str(k): str(v) for k, v in ours.attrib.items()}
    extra = {k: v for k, v in attrs.items() if k not in ("name", "id", "persistent")}
    return StatusRecord(
        name=attrs["name"],
        domain_id=int(attrs["id"]),
        pid=int(root.attrib["pid"]),
        state=_STATE_BY_NAME[str(root.attrib["state"])],
        reason=int(root.attrib["reason"]),
        monitor_path=str(monitor.attrib["path"]),
        live_xml=etree.tostring(dom, encoding="unicode", with_tail=False),
        persistent=attrs.get("persistent") == "yes",
        extra=extra,
    )
