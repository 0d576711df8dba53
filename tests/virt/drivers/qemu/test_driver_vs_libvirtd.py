"""Differential: one libvirt-python session against the real libvirtd 9.0 and against virtstackd's qemu
driver must see the same states, reasons, lifecycle events and errors (code, domain, message)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from virtstack.testing.guest import Guest, domain_xml
from virtstack.testing.servers import start_libvirtd, start_virtstackd, unavailable_reason

libvirt = pytest.importorskip("libvirt")
libvirt_qemu = pytest.importorskip("libvirt_qemu")

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(300)]

UUID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
_loop_started = False


def _start_event_loop() -> None:
    global _loop_started
    if _loop_started:
        return
    libvirt.virEventRegisterDefaultImpl()

    def run() -> None:
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=run, daemon=True).start()
    _loop_started = True


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def _session(uri: str, guest: Guest, log: Path) -> list[Any]:
    """Everything observable, in order; errors recorded as (code, domain, message)."""
    seen: list[Any] = []
    events: list[tuple[str, int, int]] = []

    def attempt(label: str, call: Callable[[], Any]) -> None:
        try:
            call()
            seen.append((label, "ok"))
        except libvirt.libvirtError as e:
            seen.append((label, e.get_error_code(), e.get_error_domain(), str(e)))

    conn = libvirt.open(uri)
    cb = conn.domainEventRegisterAny(
        None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lambda _c, d, e, det, _o: events.append((d.name(), e, det)), None
    )
    try:
        xml = domain_xml("diff", guest, uuid=UUID, serial_log=log)
        dom = conn.defineXML(xml)
        for name in ("shutdown", "destroy", "suspend", "resume", "reboot"):
            attempt(f"{name} inactive", getattr(dom, name))
        seen.append(("security", conn.getSecurityModel(), dom.securityLabel(), dom.messages(0)))
        attempt("messages bad flags", lambda: dom.messages(1 << 5))
        attempt("monitor command inactive", lambda: libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-status"}', 0))
        attempt("define other uuid", lambda: conn.defineXML(xml.replace(UUID, UUID[:-1] + "0")))
        dom.create()
        seen.append(("started", dom.state(), dom.isActive(), dom.isPersistent()))
        _wait(lambda: log.exists() and guest.marker in log.read_text(errors="replace"), "marker")
        seen.append(("running messages", dom.messages(0), dom.messages(1), dom.messages(2), dom.securityLabel()))
        _monitor_commands(dom, seen)
        attempt("create running", dom.create)
        attempt("createXML running", lambda: conn.createXML(xml, 0))
        dom.suspend()
        seen.append(("suspended", dom.state()))
        attempt("suspend paused", dom.suspend)
        attempt("shutdown paused", dom.shutdown)
        dom.resume()
        seen.append(("resumed", dom.state()))
        attempt("resume running", dom.resume)
        attempt("shutdown agent only", lambda: dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT))
        attempt("shutdown bad flags", lambda: dom.shutdownFlags(1 << 7))
        dom.undefine()
        seen.append(("undefined running", dom.isActive(), dom.isPersistent()))
        attempt("autostart transient", lambda: dom.setAutostart(1))
        attempt("undefine transient", dom.undefine)
        dom.shutdown()
        _wait(lambda: not conn.listAllDomains(), "guest poweroff and transient domain gone")
        attempt("state of gone domain", dom.state)
        attempt("lookup gone", lambda: conn.lookupByUUIDString(UUID))
        again = conn.createXML(xml, libvirt.VIR_DOMAIN_START_PAUSED)
        seen.append(("createXML paused", again.state(), again.isPersistent()))
        again.destroy()
        attempt("lookup by id 99", lambda: conn.lookupByID(99))
        _wait(lambda: len(events) >= 10, "events", 10)
        time.sleep(0.5)  # nothing more should arrive
        seen.append(("events", events))
    finally:
        conn.domainEventDeregisterAny(cb)
        for d in conn.listAllDomains():
            if d.isActive():
                d.destroy()
            if d.isPersistent():
                d.undefine()
        conn.close()
    return seen


def _monitor_commands(dom: Any, seen: list[Any]) -> None:
    """qemu-monitor-command: QEMU's replies without their ids (each daemon numbers its own), the errors
    (libvirt words a JSON syntax error through yajl, we through Python: the same prefix), the taint."""

    def reply(cmd: str, flags: int = 0) -> Any:
        try:
            text = libvirt_qemu.qemuMonitorCommand(dom, cmd, flags)
        except libvirt.libvirtError as e:
            return ("error", e.get_error_code(), e.get_error_domain(), str(e).split(": lexical")[0].split(": Expecting")[0])
        if flags:
            return text
        answer = json.loads(text)
        answer.pop("id")
        return answer

    seen.append(("monitor status", reply('{"execute":"query-status"}')))
    seen.append(("monitor unknown", reply('{"execute":"nosuch"}')))
    seen.append(("monitor hmp", reply("info status", 1), reply("nosuchcmd", 1)))
    seen.append(("monitor bad json", reply("not json")))
    seen.append(("monitor bad flags", reply("info status", 4)))
    seen.append(("tainted", dom.messages(0)))


def test_qemu_driver_matches_real_libvirtd(guest: Guest, tmp_path: Path) -> None:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"real libvirtd unavailable: {reason}")
    _start_event_loop()
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    oracle = start_libvirtd()
    try:
        expected = _session(oracle.uri("qemu:///system"), guest, tmp_path / "libvirtd.log")
    finally:
        oracle.stop()
    ours = start_virtstackd()
    try:
        got = _session(ours.uri("qemu:///system"), guest, tmp_path / "virtstackd.log")
    finally:
        ours.stop()
    mismatches = [(want, have) for want, have in zip(expected, got, strict=True) if want != have]
    assert mismatches == [], "\n".join(f"libvirtd:   {w}\nvirtstackd: {h}" for w, h in mismatches)
