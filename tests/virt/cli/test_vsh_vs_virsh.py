"""Differential: real virsh and vsh against the same real libvirtd (test:///default) print the same bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from vshdiff import assert_same, explain, virsh, vsh

VM_XML = """<domain type='test'>
  <name>vm2</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <memory>131072</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
</domain>
"""
TITLED_XML = """<domain type='test'>
  <name>titled</name>
  <title>My title here</title>
  <memory>65536</memory>
  <os><type>hvm</type></os>
</domain>
"""
BAD_XML = "<domain type='test'><name>bad</name></domain>\n"


@pytest.fixture(scope="module")
def xml_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("vshxml")
    (d / "vm2.xml").write_text(VM_XML)
    (d / "bad.xml").write_text(BAD_XML)
    (d / "broken.xml").write_text("<domain")
    (d / "titled.xml").write_text(TITLED_XML)
    return d


#: read-mostly commands, one batch (one connection) per theme; every command's output is compared
GROUPS = {
    "host": "version; version --daemon; uri; hostname; nodeinfo; capabilities",
    "list": "list; list --all; list --inactive; list --all --name; list --all --uuid; list --name --uuid --id; "
    "list --table --all --managed-save; list --all --title",
    "dominfo": "dominfo test; dominfo 1; dominfo 6695eb01-f6a4-8304-79aa-97f2502e193f; dominfo nosuch; "
    "domstate test; domstate --reason test; domstate --domain=test --reason",
    "dumpxml": "dumpxml test; dumpxml test --inactive --security-info; dumpxml nosuch",
    "refusals": "start test; resume test; suspend nosuch; autostart test; autostart --disable test",
}


@pytest.mark.parametrize("group", GROUPS)
def test_command_group(shared_uris: tuple[str, str], group: str) -> None:
    assert_same([GROUPS[group]], shared_uris)


@pytest.mark.parametrize(
    "args",
    [["version"], ["list", "--all"], ["dominfo", "test"], ["domstate", "--domain=test", "--reason"], ["dominfo", "nosuch"]],
    ids=lambda a: " ".join(a),
)
def test_command_in_argv_form(shared_uris: tuple[str, str], args: list[str]) -> None:
    """`vsh CMD ARGS...` rather than one command string: exit status is that command's."""
    assert_same(args, shared_uris)


@pytest.mark.parametrize("quiet", [[], ["-q"]], ids=["verbose", "quiet"])
def test_lifecycle_batch(fresh_uris: tuple[str, str], xml_files: Path, quiet: list[str]) -> None:
    """One connection, many commands: define through undefine, including failures in the middle."""
    f, xml_dir = xml_files / "vm2.xml", xml_files
    batch = "; ".join(
        [
            f"define {f}", "list --all", "dominfo vm2", "domstate vm2 --reason", "start vm2", "list",
            "domstate vm2 --reason", "suspend vm2", "domstate vm2 --reason", "resume vm2",
            "domstate vm2 --reason", "shutdown vm2", "domstate vm2 --reason", "start vm2", "reboot vm2",
            "destroy vm2", "domstate vm2 --reason", "destroy vm2", "shutdown vm2", "suspend vm2",
            "autostart vm2", "dominfo vm2", "autostart vm2 --disable", "undefine vm2", "list --all",
            f"create {f}", "list --all", "dumpxml vm2 --inactive --security-info", "destroy vm2",
            "list --all --name", f"define {xml_dir / 'titled.xml'}", "list --all --title", "list --title --name",
            "undefine titled",
        ]
    )
    assert_same([batch], fresh_uris, tuple(quiet))


def test_last_command_sets_the_exit_status(shared_uris: tuple[str, str]) -> None:
    assert assert_same(["dominfo nosuch; hostname"], shared_uris).status == 0
    assert assert_same(["hostname; dominfo nosuch"], shared_uris).status == 1


@pytest.mark.parametrize(
    "args",
    [
        ["define", "{d}/bad.xml"],
        ["define", "{d}/broken.xml"],
        ["define", "{d}/missing.xml"],
        ["create", "{d}/bad.xml"],
        ["create", "--file", "{d}/missing.xml"],
    ],
    ids=["no-os", "malformed", "missing", "create-no-os", "create-missing"],
)
def test_define_and_create_errors(shared_uris: tuple[str, str], xml_files: Path, args: list[str]) -> None:
    assert_same([a.format(d=xml_files) for a in args], shared_uris)


@pytest.mark.parametrize(
    "args",
    [
        ["bogus"],
        ["dominfo"],
        ["dominfo", "test", "extra"],
        ["list", "--bogus"],
        ["domstate", "test", "--reason", "--reason"],
        ["define", "--file"],
        ["uri; bogus; uri"],
    ],
    ids=lambda a: " ".join(a),
)
def test_usage_errors(test_uri: str, args: list[str]) -> None:
    assert assert_same(args, (test_uri, test_uri)).status == 1


def test_readonly_connection(shared_uris: tuple[str, str]) -> None:
    assert_same(["list --all; suspend test; dominfo test"], shared_uris, ("-r",))


def test_unreachable_daemon(tmp_path: Path) -> None:
    uri = f"test+unix:///default?socket={tmp_path}/none"
    assert_same(["list"], (uri, uri))


def test_default_uri_from_the_environment(shared_uris: tuple[str, str]) -> None:
    env = {"LIBVIRT_DEFAULT_URI": shared_uris[0]}
    expected, got = virsh(["uri; hostname"], env).normalized(), vsh(["uri; hostname"], env).normalized()
    assert expected == got, explain(expected, got)


def test_program_version() -> None:
    assert_same(["-v"])
    assert assert_same(["--bogus-option"]).status == 1
