"""DomainObj / DomainList: indexes, id allocation, listAllDomains filters, libvirt's lookup errors."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from virtstack.virt.domain_obj import DomainList, DomainObj
from virtstack.virt.drivers.base import DomainRef, DomainState, ListFlags, RunningReason, ShutoffReason
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError


@dataclass
class Def:
    name: str
    uuid: str


def make(name: str, n: int) -> Def:
    return Def(name, str(uuid.UUID(int=n)))


def populated() -> DomainList[Def]:
    doms: DomainList[Def] = DomainList(ErrorDomain.QEMU)
    running = doms.add(DomainObj(make("run", 1), persistent=True, autostart=True))
    running.id = doms.allocate_id()
    running.set_state(DomainState.RUNNING, RunningReason.BOOTED)
    paused = doms.add(DomainObj(make("pause", 2), persistent=False))
    paused.id = doms.allocate_id()
    paused.set_state(DomainState.PAUSED, 1)
    doms.add(DomainObj(make("off", 3), persistent=True))
    return doms


def names(doms: DomainList[Def], flags: int) -> list[str]:
    return [o.name for o in doms.list(flags)]


def test_lookups_and_ids() -> None:
    doms = populated()
    assert doms.get_by_name("run").id == 1
    assert doms.get_by_id(2).name == "pause"
    assert doms.get_by_uuid(uuid.UUID(int=3)).name == "off"
    assert doms.get_by_name("off").ref() == DomainRef("off", uuid.UUID(int=3), -1)
    assert doms.allocate_id() == 3
    doms.note_id(10)
    assert doms.allocate_id() == 11


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: d.get_by_name("x"), "Domain not found: no domain with matching name 'x'"),
        (lambda d: d.get_by_id(7), "Domain not found: no domain with matching id 7"),
        (lambda d: d.get_by_id(-1), "Domain not found: no domain with matching id -1"),
        (
            lambda d: d.get_by_uuid(uuid.UUID(int=9)),
            "Domain not found: no domain with matching uuid '00000000-0000-0000-0000-000000000009'",
        ),
        (
            lambda d: d.get(DomainRef("gone", uuid.UUID(int=9))),
            "Domain not found: no domain with matching uuid '00000000-0000-0000-0000-000000000009' (gone)",
        ),
    ],
)
def test_lookup_errors(call: Callable[[DomainList[Def]], object], message: str) -> None:
    with pytest.raises(VirtError) as err:
        call(populated())
    assert (err.value.code, err.value.domain, str(err.value)) == (ErrorCode.NO_DOMAIN, ErrorDomain.QEMU, message)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (0, ["run", "pause", "off"]),
        (ListFlags.ACTIVE, ["run", "pause"]),
        (ListFlags.INACTIVE, ["off"]),
        (ListFlags.ACTIVE | ListFlags.INACTIVE, ["run", "pause", "off"]),
        (ListFlags.PERSISTENT, ["run", "off"]),
        (ListFlags.TRANSIENT, ["pause"]),
        (ListFlags.RUNNING, ["run"]),
        (ListFlags.PAUSED | ListFlags.SHUTOFF, ["pause", "off"]),
        (ListFlags.OTHER, []),
        (ListFlags.AUTOSTART, ["run"]),
        (ListFlags.NO_AUTOSTART, ["pause", "off"]),
        (ListFlags.MANAGEDSAVE, []),
        (ListFlags.NO_SNAPSHOT | ListFlags.ACTIVE, ["run", "pause"]),
        (ListFlags.PERSISTENT | ListFlags.ACTIVE, ["run"]),
    ],
)
def test_list_filters(flags: int, expected: list[str]) -> None:
    assert names(populated(), flags) == expected


def test_add_checks_match_libvirt() -> None:
    doms = populated()
    with pytest.raises(VirtError) as err:
        doms.check_new(make("run", 5))
    assert err.value.code == ErrorCode.OPERATION_FAILED
    assert str(err.value) == (
        "operation failed: domain 'run' already exists with uuid 00000000-0000-0000-0000-000000000001"
    )
    with pytest.raises(VirtError) as err:
        doms.check_new(make("other", 1))
    assert str(err.value) == (
        "operation failed: domain 'run' is already defined with uuid 00000000-0000-0000-0000-000000000001"
    )
    with pytest.raises(VirtError) as err:
        doms.check_new(make("run", 1), live=True)
    assert (err.value.code, str(err.value)) == (
        ErrorCode.OPERATION_INVALID,
        "Requested operation is not valid: domain 'run' is already active",
    )
    assert doms.check_new(make("off", 3), live=True) is doms.get_by_name("off")
    assert doms.check_new(make("new", 4)) is None


def test_remove_and_state() -> None:
    doms = populated()
    off = doms.get_by_name("off")
    off.set_state(DomainState.SHUTOFF, ShutoffReason.DESTROYED)
    assert (off.state, off.reason) == (DomainState.SHUTOFF, 2)
    doms.remove(off)
    assert doms.find_by_name("off") is None and len(doms) == 2
    assert doms.find_by_uuid(uuid.UUID(int=3)) is None


def test_job_waits_then_times_out_with_libvirts_error() -> None:
    """A second operation waits for the first, but not forever (libvirt's state change lock)."""
    import asyncio

    async def scenario() -> None:
        obj = DomainObj(make("a", 1))
        async with obj.job(ErrorDomain.QEMU, 1.0):
            with pytest.raises(VirtError) as err:
                async with obj.job(ErrorDomain.QEMU, 0.05):
                    raise AssertionError("the lock is held")
        assert (err.value.code, err.value.domain, str(err.value)) == (
            ErrorCode.OPERATION_TIMEOUT, ErrorDomain.QEMU,
            "Timed out during operation: cannot acquire state change lock",
        )  # fmt: skip
        assert not obj.lock.locked()
        order: list[str] = []

        async def second() -> None:
            async with obj.job(ErrorDomain.QEMU, 5.0):
                order.append("second")

        async with obj.job(ErrorDomain.QEMU):
            waiter = asyncio.create_task(second())
            await asyncio.sleep(0.05)
            order.append("first")
        await waiter
        assert order == ["first", "second"] and not obj.lock.locked()

    asyncio.run(scenario())


def test_definition_xml_is_remembered_until_the_definition_is_replaced() -> None:
    obj = DomainObj(make("vm", 9), persistent=True)
    renders: list[str] = []

    def render(defn: Def) -> str:
        renders.append(defn.name)
        return f"<domain>{defn.name}</domain>"

    assert obj.definition_xml(False, render) == "<domain>vm</domain>"
    assert obj.definition_xml(False, render) == "<domain>vm</domain>"
    assert obj.definition_xml(True, render) == "<domain>vm</domain>"
    assert renders == ["vm", "vm"]  # once per format option
    obj.definition = make("vm", 9)  # a redefine replaces the definition object
    obj.definition_xml(False, render)
    assert renders == ["vm", "vm", "vm"]


def test_ref_follows_id_and_definition() -> None:
    doms: DomainList[Def] = DomainList(ErrorDomain.QEMU)
    obj = doms.add(DomainObj(make("vm", 10), persistent=True))
    first = obj.ref()
    assert first == DomainRef("vm", uuid.UUID(int=10), -1) and obj.ref() is first
    obj.id = doms.allocate_id()
    assert obj.ref() == DomainRef("vm", uuid.UUID(int=10), obj.id)
    obj.id = -1
    assert obj.ref().id == -1
    obj.definition = make("vm", 11)
    assert obj.ref().uuid == uuid.UUID(int=11)
