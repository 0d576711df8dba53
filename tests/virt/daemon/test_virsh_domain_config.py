"""setmem, setmaxmem, setvcpus, desc and metadata through the real virsh and libvirt-python against a
private virtstackd running real guests, compared with the real libvirtd 9.0: the same outputs and
errors, and the same effects on the live and persistent XML (the elements these commands change)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from virtstack.testing.guest import build_guest, domain_xml, wait_for_text
from virtstack.testing.servers import side_by_side, unavailable_reason

libvirt = pytest.importorskip("libvirt")

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(180)]

VIRSH = shutil.which("virsh")
URI_A = "http://example.org/a"
URI_B = "http://example.org/b"
#: the elements these commands change
WATCHED = ("title", "description", "metadata", "memory", "currentMemory", "vcpu")

#: one sequence for both daemons: later commands see what earlier ones changed
VIRSH_COMMANDS: list[list[str]] = [
    *[["setmem", "run", "100M", *f] for f in ([], ["--config"], ["--live"], ["--current"])],
    ["setmem", "run", "200M"], ["setmem", "run", "200M", "--config"],
    ["setmem", "nob", "100M"], ["setmem", "nob", "100M", "--config"],
    *[["setmem", "off", "100M", *f] for f in ([], ["--live"], ["--config"], ["--current"])],
    ["setmem", "off", "200M", "--config"],
    *[["setmaxmem", "run", "200M", *f] for f in ([], ["--live"], ["--current"], ["--config"])],
    ["setmaxmem", "off", "64M"], ["setmaxmem", "off", "256M", "--config"], ["setmaxmem", "off", "100M", "--current"],
    ["setmaxmem", "off", "100M", "--live"],
    ["setvcpus", "run", "1"], ["setvcpus", "run", "2"], ["setvcpus", "run", "3"], ["setvcpus", "run", "1", "--live"],
    ["setvcpus", "run", "1", "--config"], ["setvcpus", "run", "3", "--config"],
    ["setvcpus", "run", "4", "--config", "--maximum"], ["setvcpus", "run", "4", "--maximum"],
    ["setvcpus", "run", "4", "--live", "--maximum"], ["setvcpus", "run", "1", "--guest"],
    ["setvcpus", "off", "1"], ["setvcpus", "off", "1", "--live"], ["setvcpus", "off", "1", "--guest"],
    ["setvcpus", "off", "4", "--maximum", "--config"], ["setvcpus", "off", "3", "--config"],
    ["setvcpus", "off", "2", "--hotpluggable"], ["setvcpus", "off", "1", "--maximum", "--config"],
    ["setvcpus", "off", "2", "--current"],
    *[["desc", d, *f] for d in ("run", "off") for f in ([], ["--title"])],
    ["desc", "run", "--new-desc", "hello"], ["desc", "run", "--title", "--new-desc", "Title1"],
    ["desc", "run", "--config", "--new-desc", "cfgdesc"], ["desc", "run"], ["desc", "run", "--config"],
    ["desc", "run", "--live", "--title"], ["desc", "off", "--live", "--new-desc", "x"],
    ["desc", "off", "--config", "--new-desc", "offdesc"], ["desc", "off", "--new-desc", "two words"],
    ["desc", "off"], ["desc", "off", "--title", "--new-desc", "A title"], ["desc", "off", "--title"],
    ["desc", "off", "--new-desc", ""], ["desc", "off"],
    ["metadata", "run", URI_A], ["metadata", "run", URI_A, "--key", "ex", "--set", "<foo>bar</foo>"],
    ["metadata", "run", URI_A], ["metadata", "run", URI_A, "--config"],
    ["metadata", "run", URI_A, "--key", "ex", "--set", "<foo a='1'>bar</foo>", "--config"],
    ["metadata", "run", URI_A, "--config"],
    ["metadata", "off", URI_A, "--key", "ex", "--set", "<foo><baz/></foo>"],
    ["metadata", "off", URI_A, "--key", "ex2", "--set", "<foo2/>"],
    ["metadata", "off", URI_B, "--key", "ex", "--set", "<x><y z='1'/></x>"],
    ["metadata", "off", URI_A], ["metadata", "off", URI_B], ["metadata", "off", URI_A, "--live"],
    ["metadata", "off", URI_A, "--key", "ex", "--set", "notxml"],
    ["metadata", "off", URI_A, "--key", "ex", "--set", "<a/><b/>"],
    ["metadata", "off", URI_A, "--key", "1bad", "--set", "<a/>"],
    ["metadata", "off", "http://example.org/c", "--remove"],
]  # fmt: skip
#: run after the XML was compared once: removing the last element leaves an empty <metadata/>
VIRSH_REMOVALS: list[list[str]] = [
    ["metadata", "off", URI_B, "--remove"], ["metadata", "off", URI_B],
    ["metadata", "off", URI_A, "--remove", "--key", "ex"], ["metadata", "off", URI_A],
    ["metadata", "run", URI_A, "--remove", "--live"], ["metadata", "run", URI_A, "--config"],
]  # fmt: skip


def _boot(uri: str, guest: Any) -> None:
    """"run" (2 vCPUs, a virtio balloon) and "nob" (no balloon) running, "off" (2 vCPUs) defined.

    "run" is booted to its marker: its balloon driver is loaded by then, so it answers every setmem
    (a request made earlier would be carried out whenever the driver comes, after the comparison)."""
    log = Path(tempfile.mkdtemp(prefix="vs-balloon-")) / "run.log"
    conn = libvirt.open(uri)
    try:
        conn.defineXML(domain_xml("off", guest, vcpus=2))
        balloon = domain_xml("run", guest, vcpus=2, serial_log=log)
        conn.defineXML(balloon.replace("<memballoon model='none'/>", "<memballoon model='virtio'/>")).create()
        conn.defineXML(domain_xml("nob", guest)).create()
    finally:
        conn.close()
    wait_for_text(log, guest.marker, timeout=120)


@pytest.fixture(scope="module")
def uris() -> Iterator[dict[str, str]]:
    """qemu:///system URIs of our daemon ("ours") and, where it can run, libvirtd ("libvirtd")."""
    guest = build_guest()
    with side_by_side(lambda uri: _boot(uri, guest)) as found:
        yield found


def _both(uris: dict[str, str], observe: Callable[[str], Any]) -> tuple[Any, Any]:
    """`observe` run on both daemons at once (ours, libvirtd's)."""
    if "libvirtd" not in uris:
        pytest.skip(f"no private libvirtd: {unavailable_reason()}")
    with ThreadPoolExecutor(2) as pool:
        ours, theirs = pool.map(observe, (uris["ours"], uris["libvirtd"]))
    return ours, theirs


def _virsh(uri: str, args: list[str]) -> tuple[int, str, str]:
    if VIRSH is None:
        pytest.skip("virsh (libvirt-clients) is not installed")
    done = subprocess.run([VIRSH, "-c", uri, *args], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def _watched(xml: str) -> list[str]:
    """The elements these commands change, as the daemon wrote them."""
    root = etree.fromstring(xml)
    return [etree.tostring(el, encoding="unicode").strip() for el in root if el.tag in WATCHED]


def _settled(dom: Any, timeout: float = 20.0) -> None:
    """Wait until the guest's balloon driver has answered the last setmem: the live current memory
    (updated from QEMU's BALLOON_CHANGE) reads the same for 1.5 s (a TCG guest under load inflates in
    slow steps)."""
    deadline = time.monotonic() + timeout
    last, same = dom.info()[2], 0
    while same < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = dom.info()[2]
        same = same + 1 if now == last else 0
        last = now


def _xml_effects(uri: str) -> list[list[str]]:
    conn = libvirt.open(uri)
    try:
        _settled(conn.lookupByName("run"))
        return [
            _watched(conn.lookupByName(name).XMLDesc(flags))
            for name in ("run", "nob", "off")
            for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE)
        ]
    finally:
        conn.close()


def _run_virsh(commands: list[list[str]]) -> Callable[[str], list[tuple[int, str, str]]]:
    return lambda uri: [_virsh(uri, args) for args in commands]


def test_virsh_outputs_errors_and_xml_match_libvirtd(uris: dict[str, str]) -> None:
    ours, theirs = _both(uris, _run_virsh(VIRSH_COMMANDS))
    for args, mine, expected in zip(VIRSH_COMMANDS, ours, theirs, strict=True):
        assert mine == expected, args
    ours_xml, theirs_xml = _both(uris, _xml_effects)
    assert ours_xml == theirs_xml
    ours, theirs = _both(uris, _run_virsh(VIRSH_REMOVALS))
    for args, mine, expected in zip(VIRSH_REMOVALS, ours, theirs, strict=True):
        assert mine == expected, args
    ours_xml, theirs_xml = _both(uris, _xml_effects)
    assert ours_xml == theirs_xml
    assert any("<metadata/>" in part for part in ours_xml[4])  # "off" keeps an empty <metadata/>


# -- libvirt-python: every flag combination, errors by code, domain and message ------------------------------
def _call(call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except libvirt.libvirtError as e:
        return ("error", e.get_error_code(), e.get_error_domain(), str(e))


def _api_effects(uri: str) -> list[Any]:
    conn = libvirt.open(uri)
    seen: list[Any] = []
    try:
        for name in ("run", "off"):
            dom = conn.lookupByName(name)
            for flags in [*range(8), 8]:
                seen.append((name, "setMemoryFlags", flags, _call(dom.setMemoryFlags, 90 * 1024, flags)))
            seen.append((name, "setMemory", _call(dom.setMemory, 80 * 1024)))
            seen.append((name, "setMaxMemory", _call(dom.setMaxMemory, 300 * 1024)))
            # HOTPLUGGABLE (0x10) adding config vCPUs needs <vcpus>, which we refuse: only on the live no-op
            for flags in [*range(0x10), 0x11, 0x40]:
                seen.append((name, "setVcpusFlags", flags, _call(dom.setVcpusFlags, 2, flags)))
            seen.append((name, "setVcpus", _call(dom.setVcpus, 2)))
            for kind in range(4):
                for flags in range(5):
                    seen.append((name, "metadata", kind, flags, _call(dom.metadata, kind, URI_A, flags)))
                    seen.append((name, "setMetadata", kind, flags, _call(
                        dom.setMetadata, kind, "<m/>" if kind == 2 else f"v{flags}", "k" if kind == 2 else None,
                        URI_A if kind == 2 else None, flags)))  # fmt: skip
            if dom.isActive():
                _settled(dom)  # the balloon answers the setMemory calls above in its own time
            seen.append((name, "xml", _watched(dom.XMLDesc(0)), _watched(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))))
    finally:
        conn.close()
    return seen


def test_libvirt_python_sees_what_libvirtd_does(uris: dict[str, str]) -> None:
    ours, theirs = _both(uris, _api_effects)
    assert len(ours) == len(theirs)
    for mine, expected in zip(ours, theirs, strict=True):
        assert mine == expected


def test_hotpluggable_config_vcpus_are_refused_not_dropped(uris: dict[str, str]) -> None:
    """libvirt would list each added vCPU in <vcpus hotpluggable='yes'>, which our model lacks: we refuse
    (argument unsupported) rather than write a config without it."""
    conn = libvirt.open(uris["ours"])
    try:
        dom = conn.lookupByName("off")
        dom.setVcpusFlags(1, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        with pytest.raises(libvirt.libvirtError) as err:
            dom.setVcpusFlags(2, libvirt.VIR_DOMAIN_AFFECT_CONFIG | libvirt.VIR_DOMAIN_VCPU_HOTPLUGGABLE)
        assert err.value.get_error_code() == libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED
        assert dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_CONFIG) == 1
    finally:
        conn.close()


def test_changes_reach_the_files_a_restarted_daemon_reads(uris: dict[str, str]) -> None:
    """Config changes rewrite the persistent config, live ones the status file."""
    conn = libvirt.open(uris["ours"])
    try:
        conn.lookupByName("off").setMetadata(libvirt.VIR_DOMAIN_METADATA_TITLE, "on disk", None, None,
                                             libvirt.VIR_DOMAIN_AFFECT_CONFIG)  # fmt: skip
        conn.lookupByName("run").setMetadata(libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, "live on disk", None, None,
                                             libvirt.VIR_DOMAIN_AFFECT_LIVE)  # fmt: skip
    finally:
        conn.close()
    state = Path(uris["ours"].split("socket=")[1]).parent / "state"
    configs = {p.name: p.read_text() for p in state.rglob("*.xml")}
    assert "<title>on disk</title>" in configs["off.xml"]
    assert any("<description>live on disk</description>" in text for name, text in configs.items()
               if name == "run.xml" and "<domstatus" in text)  # fmt: skip
