"""raw_qemu reads a domxml-to-native line the way libvirt prints it (layout of real libvirtd 9.0 output)."""

from __future__ import annotations

from pathlib import Path

from bench.raw_qemu import RawCommand, parse_native


def _line(d: Path) -> str:
    lib = d / "lib" / "domain--1-bt1"
    return (
        f"LC_ALL=C PATH=/usr/bin:/bin HOME={lib} XDG_CACHE_HOME={lib}/.cache /usr/bin/qemu-system-x86_64 "
        "-name guest=bt1,debug-threads=on -S "
        f"""-object '{{"qom-type":"secret","id":"masterKey0","format":"raw","file":"{lib}/master-key.aes"}}' """
        "-machine pc-i440fx-7.2,usb=off,dump-guest-core=off -accel tcg -m 128 "
        f"-chardev socket,id=charmonitor,path={lib}/monitor.sock,server=on,wait=off "
        "-mon chardev=charmonitor,id=monitor,mode=control -append 'console=ttyS0 quiet panic=-1' "
        f"-chardev pty,id=charserial0,logfile={d}/serial.log,logappend=off "
        """-device '{"driver":"isa-serial","chardev":"charserial0","id":"serial0","index":0}'"""
    )


def test_env_argv_monitor_and_serial_log_are_found(tmp_path: Path) -> None:
    cmd = parse_native(_line(tmp_path))
    assert isinstance(cmd, RawCommand)
    lib = tmp_path / "lib" / "domain--1-bt1"
    assert cmd.env == {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "HOME": str(lib), "XDG_CACHE_HOME": f"{lib}/.cache"}
    assert cmd.argv[0] == "/usr/bin/qemu-system-x86_64"
    assert cmd.argv[cmd.argv.index("-append") + 1] == "console=ttyS0 quiet panic=-1"
    assert cmd.qmp_path == lib / "monitor.sock"
    assert cmd.serial_log == tmp_path / "serial.log"
    assert cmd.secret_files == (lib / "master-key.aes",)
    assert not lib.exists()  # parsing has no side effects
    cmd.prepare()
    assert (lib / "master-key.aes").stat().st_size == 32
    assert (lib / ".cache").is_dir()


def test_a_line_without_monitor_is_refused(tmp_path: Path) -> None:
    result = parse_native("/usr/bin/qemu-system-x86_64 -S -m 128")
    assert isinstance(result, str) and "no monitor" in result
