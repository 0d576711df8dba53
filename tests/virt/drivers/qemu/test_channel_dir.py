"""Unix channels without a path (the guest agent's, as virt-install writes it) get a socket in the
run's channel target directory, made at start and removed at stop, as libvirt does."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from virtstack.testing.guest import Guest, domain_xml
from virtstack.testing.servers import start_virtstackd

libvirt = pytest.importorskip("libvirt")

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(120)]

AGENT = "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"


def test_agent_channel_socket_lives_in_the_runs_channel_dir(guest: Guest) -> None:
    xml = domain_xml("ga", guest).replace("<devices>", "<devices>" + AGENT, 1)
    daemon = start_virtstackd(guests=True)
    try:
        conn = libvirt.open(daemon.uri("qemu:///system"))
        dom = conn.createXML(xml, 0)
        source = etree.fromstring(dom.XMLDesc(0)).find("devices/channel/source")
        assert source is not None and source.get("mode") == "bind"
        path = Path(str(source.get("path")))
        state = daemon.root / "state"
        assert path.name == "org.qemu.guest_agent.0" and path.parent.name == f"domain-{dom.ID()}-ga"
        assert path.is_relative_to(state) and path.is_socket()
        assert path.parent.stat().st_mode & 0o777 == 0o700
        dom.destroy()
        assert not path.parent.exists()
        conn.close()
    finally:
        daemon.stop()
