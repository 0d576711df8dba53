"""Guest serial consoles: the pty QEMU reports in query-chardev, wrapped as a `ConsoleStream`.

QEMU's pty chardev creates the pty and puts it in raw mode; we open the slave side without making it
our controlling terminal. Output the guest writes while nobody has the pty open is dropped by QEMU, so
tests that need the full boot log read the chardev's log file (`<log file=.../>` in the domain XML).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import termios
import tty

from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory

Error = error_factory(ErrorDomain.QEMU)


class PtyConsole:
    """A `ConsoleStream` over one pty slave; b'' from read() once QEMU closed its side."""

    def __init__(self, fd: int, path: str) -> None:
        self.path = path
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._closed = False
        self._loop.add_reader(fd, self._readable)

    @classmethod
    async def open(cls, path: str) -> PtyConsole:
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as e:
            raise Error(ErrorCode.OPERATION_FAILED, f"Unable to open console {path}: {e.strerror}") from e
        with contextlib.suppress(termios.error):
            tty.setraw(fd)
        return cls(fd, path)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: the master side is gone (QEMU exited)
                raise
            data = b""
        if not data:
            self._loop.remove_reader(self._fd)
        self._queue.put_nowait(data)

    async def read(self) -> bytes:
        if self._closed and self._queue.empty():
            return b""
        data = await self._queue.get()
        if not data:
            self._queue.put_nowait(b"")  # stay at end of stream for later readers
        return data

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._closed:
                raise Error(ErrorCode.OPERATION_FAILED, f"console {self.path} is closed")
            try:
                n = os.write(self._fd, view)
            except BlockingIOError:
                await asyncio.sleep(0.01)
                continue
            view = view[n:]

    @property
    def closed(self) -> bool:
        return self._closed

    def close_now(self) -> None:
        """Close from synchronous code (the domain stopped); readers see end of stream."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._queue.put_nowait(b"")

    async def close(self) -> None:
        self.close_now()
