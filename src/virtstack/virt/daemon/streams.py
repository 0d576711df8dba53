"""Console streams over RPC: guest bytes out as STREAM packets, client STREAM packets into the guest.

After DOMAIN_OPEN_CONSOLE replies, data flows as type STREAM packets with the call's procedure and
serial, status CONTINUE carrying raw bytes; an empty status OK packet ends the stream (virnetprotocol.x,
docs/kbase/internals/rpc.rst).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from virtstack.virt.drivers.base import ConsoleStream
from virtstack.virt.rpc.message import Header, MessageStatus, MessageType

if TYPE_CHECKING:
    from virtstack.virt.daemon.connection import Connection

log = logging.getLogger(__name__)

#: VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX: the largest data chunk old clients accept
CHUNK_MAX = 262120


class ConsolePump:
    """Copies one console's output to the client until either side ends it."""

    def __init__(self, conn: Connection, call: Header, console: ConsoleStream) -> None:
        self.conn = conn
        self.call = call
        self.console = console
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def _header(self, status: MessageStatus) -> Header:
        return Header(
            self.call.prog, self.call.vers, self.call.proc, MessageType.STREAM, self.call.serial, status
        )

    def start(self) -> None:
        if not self._closed:
            self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                data = await self.console.read()
                if not data:
                    break
                for i in range(0, len(data), CHUNK_MAX):
                    self.conn.send(self._header(MessageStatus.CONTINUE), data[i : i + CHUNK_MAX])
            # the guest side went away: tell the client the stream is at its end
            self.conn.send(self._header(MessageStatus.OK))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("console stream failed: %s", exc)
            self.conn.send(self._header(MessageStatus.OK))
        finally:
            self.conn.stream_ended(self.call.serial)
            await self._close_console()

    async def write(self, data: bytes) -> None:
        if not self._closed:
            await self.console.write(data)

    async def _close_console(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                await self.console.close()
            except Exception as exc:
                log.debug("closing console: %s", exc)

    async def close(self) -> None:
        """Stop pumping and close the console (client finished or aborted, or it disconnected)."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        await self._close_console()
