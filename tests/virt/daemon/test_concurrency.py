"""50 real libvirt-python clients at once against one daemon: no errors, no lost configs, memory back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from tests.virt.daemon.conftest import RunningDaemon

libvirt = pytest.importorskip("libvirt", reason="libvirt-python (python3-libvirt) is not importable")

CLIENTS = 50
SECONDS = 4.0
XML = (
    "<domain type='test'><name>{name}</name>{uuid}<memory unit='MiB'>{mem}</memory><vcpu>1</vcpu>"
    "<os><type>hvm</type></os></domain>"
)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_fifty_clients(daemon: RunningDaemon) -> None:
    idle_rss = _rss_kib(daemon.proc.pid)
    errors: list[str] = []
    ops = [0] * CLIENTS
    kept: dict[str, int] = {}  # one persistent domain per client, redefined over and over
    deadline = time.monotonic() + SECONDS
    start = threading.Barrier(CLIENTS)

    def worker(i: int) -> None:
        try:
            conn = libvirt.open(daemon.uri())
            start.wait()
            n = 0
            while time.monotonic() < deadline:
                n += 1
                name = f"c{i}-{n}"
                dom = conn.defineXML(XML.format(name=name, uuid="", mem=16 + n % 7))
                if f"<name>{name}</name>" not in dom.XMLDesc(0):
                    errors.append(f"{name}: XML does not name the domain")
                dom.create()
                if dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
                    errors.append(f"{name}: not running after create")
                conn.listAllDomains(0)
                dom.destroy()
                dom.undefine()
                keep_uuid = f"<uuid>00000000-0000-0000-0000-{i:012d}</uuid>"
                keep = conn.defineXML(XML.format(name=f"keep{i}", uuid=keep_uuid, mem=16 + n % 7))
                kept[f"keep{i}"] = (16 + n % 7) * 1024
                del keep
                ops[i] += 1
            conn.close()
        except Exception as exc:
            errors.append(f"client {i}: {exc}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 60)
    assert not errors, errors[:5]
    assert all(ops), f"some clients made no progress: {ops}"

    conn = libvirt.open(daemon.uri())
    try:
        names = sorted(d.name() for d in conn.listAllDomains(0))
        assert names == sorted(["test", *kept])
        for name, mem in kept.items():  # the last definition of every kept domain survived, intact
            assert conn.lookupByName(name).maxMemory() == mem
            conn.lookupByName(name).undefine()
    finally:
        conn.close()
    time.sleep(0.5)
    assert _rss_kib(daemon.proc.pid) < idle_rss + 30 * 1024, "daemon memory did not come back near idle"
    print(f"{sum(ops)} define/start/list/destroy/undefine rounds by {CLIENTS} clients in {SECONDS} s")
