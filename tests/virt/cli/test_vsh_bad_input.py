"""Bad input never shows a traceback: vsh prints virsh's `error: ...` lines and exit status for it.

The oracle is the real virsh on its in-process test:///default (and the real libvirtd where the bytes
cross the wire); vsh runs its own in-process server, so its RPC encoder sees the same arguments.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from vshdiff import VSH, assert_same, virsh, vsh

from virtstack.virt.cli import __main__ as vsh_main
from virtstack.virt.cli.commands import COMMANDS
from virtstack.virt.cli.shell import MAX_FILE_SIZE, Command, Ctl, ParsedCommand, UsageError, split_batch

#: both tools' in-process test:///default (virsh: libvirt's test driver; vsh: virtstackd's server)
IN_PROCESS = "test:///default"
BOTH = (IN_PROCESS, IN_PROCESS)


@pytest.mark.parametrize(
    "batch",
    [
        "list; dominfo \"te",  # unclosed double quote: virsh's "missing \"", nothing runs
        "list; dominfo 'te",  # unclosed single quote: runs to the end of the string
        "uri; dominfo te\\",  # dangling backslash
        "uri # a comment; hostname",
        "uri; # a comment\nhostname",
        "dominfo 'a;b'",
        'dominfo "t"e"s"t',
        "dominfo 't'\"e\"st",
        "dominfo t\\e\\st",
        "dominfo a\\ b",
        "dominfo \"a\\\"b\"",
        ";; uri ;;\n\n hostname;",
        "uri\\\n; hostname",
    ],
)
def test_command_string_quoting_like_virsh(batch: str) -> None:
    assert_same([batch], BOTH)


def test_argument_bytes_that_are_not_utf8() -> None:
    """`vsh dominfo $'\\xff'`: the name is echoed back byte for byte, no UnicodeEncodeError."""
    result = assert_same(["dominfo", "\udcff"], BOTH)
    assert result.status == 1 and "\udcff" in result.stderr


def test_argument_bytes_against_the_real_libvirtd(shared_uris: tuple[str, str]) -> None:
    assert_same(["dominfo", "t\udcffest"], shared_uris)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad input")
    (d / "binary.xml").write_bytes(bytes(range(128, 256)) * 8)
    (d / "latin1.xml").write_bytes(b"<domain type='test'><name>caf\xe9</name></domain>")
    with (d / "huge.xml").open("wb") as f:  # sparse: one byte over virsh's limit costs no disk
        f.truncate(MAX_FILE_SIZE + 1)
    (d / "a directory").mkdir()
    return d


@pytest.mark.parametrize(
    "path", ["/dev/zero", "{d}/huge.xml", "{d}/a directory", "{d}/missing.xml"], ids=["dev-zero", "huge", "dir", "missing"]
)
def test_unreadable_files_like_virsh(bad_files: Path, path: str) -> None:
    """virsh reads at most 10 MiB (/dev/zero fails fast) and says "Failed to read file" or "... open file"."""
    assert assert_same(["define", path.format(d=bad_files)], BOTH).status == 1


@pytest.mark.parametrize("name", ["binary.xml", "latin1.xml"])
def test_file_bytes_that_are_not_utf8(bad_files: Path, name: str) -> None:
    """The XML parser's detail differs (libxml2 in libvirtd), virsh's own sentence and status do not."""
    args = ["define", str(bad_files / name)]
    expected, got = virsh(["-c", IN_PROCESS, *args]), vsh(["-c", IN_PROCESS, *args])
    assert (got.status, got.stdout) == (expected.status, expected.stdout) == (1, "\n")
    first = f"error: Failed to define domain from {bad_files / name}\n"
    assert expected.stderr.startswith(first) and got.stderr.startswith(first), got.stderr
    assert "Traceback" not in got.stderr


def test_local_domxml_to_native_with_stray_bytes(bad_files: Path) -> None:
    got = vsh(["domxml-to-native", "qemu-argv", str(bad_files / "latin1.xml")], env={"LIBVIRT_DEFAULT_URI": ""})
    assert (got.status, got.stderr) == (1, "error: XML error: document is not valid UTF-8\n")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a 'b c' \"d e\" f\\ g", [["a", "b c", "d e", "f g"]]),
        ("a;b\nc # d; e\nf", [["a"], ["b"], ["c"], ["f"]]),
        ("a#b 'x", [["a#b", "x"]]),
        ("'' \"\"", [["", ""]]),
        ("a\\\nb", [["ab"]]),
        ("'a\\b' \"a\\\\b\"", [["a\\b", "a\\b"]]),
    ],
)
def test_split_batch(text: str, words: list[list[str]]) -> None:
    assert split_batch(text) == words


@pytest.mark.parametrize(("text", "message"), [('a "b', 'missing "'), ("a b\\", "dangling \\")])
def test_split_batch_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        split_batch(text)


def _explode(ctl: Ctl, cmd: ParsedCommand) -> None:
    raise RuntimeError("unexpected failure inside a command")


@pytest.fixture
def exploding_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """`uri` replaced by a command with a bug (a fault no real command can be made to produce on purpose)."""
    monkeypatch.setitem(COMMANDS, "uri", Command("uri", (), _explode, local_ok=True))
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)


@pytest.mark.usefixtures("exploding_uri")
def test_main_turns_an_unexpected_exception_into_an_error_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(vsh_main.DEBUG_ENV, raising=False)
    assert vsh_main.main(["--local", "uri"]) == 1
    assert capsys.readouterr().err == "error: unexpected failure inside a command\n"


@pytest.mark.usefixtures("exploding_uri")
def test_debug_env_shows_the_traceback(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(vsh_main.DEBUG_ENV, "1")
    assert vsh_main.main(["--local", "uri"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("error: unexpected failure inside a command\n")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signalled_vsh_removes_its_in_process_server(tmp_path: Path, signum: signal.Signals) -> None:
    """vsh stuck writing to a full pipe, then signalled: it unwinds, the server directory goes with it."""
    batch = "; ".join(["capabilities"] * 200)  # far more output than a pipe holds: vsh blocks on stdout
    proc = subprocess.Popen(
        [*VSH, "-c", IN_PROCESS, batch], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob("vs-local-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.glob("vs-local-*")), "vsh never started its in-process server"
        time.sleep(0.5)
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == (1 if signum == signal.SIGINT else 128 + signum)
    assert b"Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_file_over_the_protocol_string_limit(test_uri: str, tmp_path: Path) -> None:
    """Under virsh's 10 MiB file limit but over REMOTE_STRING_MAX (4 MiB): the RPC encoder refuses it."""
    big = tmp_path / "big.xml"
    filler = "a" * (5 * 1024 * 1024)
    big.write_text(f"<domain type='test'><name>big</name><description>{filler}</description></domain>")
    assert assert_same(["define", str(big)], (test_uri, test_uri)).status == 1
