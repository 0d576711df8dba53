"""The blocking client API: the asyncio core run on a private event-loop thread, one per connection.

Keeping the loop running between calls is what lets keepalive PINGs be answered and events arrive while
the caller is busy elsewhere (libvirt-python needs virEventRunDefaultImpl in a thread for the same
reason). Event callbacks run on that loop thread.
"""

from __future__ import annotations

import asyncio
import threading
import uuid as uuidlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from virtstack.virt.client.connection import (
    KEEPALIVE,
    AsyncConnection,
    AsyncDomain,
    SecurityLabel,
    SecurityModel,
)
from virtstack.virt.client.transport import CloseReason, StreamChannel
from virtstack.virt.drivers.base import DomainInfo, NodeInfo

T = TypeVar("T")


class _LoopThread:
    """An event loop on a daemon thread; `run()` submits a coroutine and waits for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="virtstack-client", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class Console:
    """A blocking view of a console stream."""

    def __init__(self, loop: _LoopThread, stream: StreamChannel) -> None:
        self._loop = loop
        self.stream = stream

    def read(self) -> bytes:
        return self._loop.run(self.stream.read())

    def write(self, data: bytes) -> None:
        self._loop.run(self.stream.write(data))

    def close(self) -> None:
        self._loop.run(self.stream.close())


class Domain:
    """Blocking twin of AsyncDomain."""

    def __init__(self, loop: _LoopThread, dom: AsyncDomain) -> None:
        self._loop = loop
        self.aio = dom

    def __repr__(self) -> str:
        return f"Domain(name={self.name!r}, uuid={self.uuid}, id={self.id})"

    @property
    def name(self) -> str:
        return self.aio.name

    @property
    def uuid(self) -> uuidlib.UUID:
        return self.aio.uuid

    @property
    def id(self) -> int:
        return self.aio.id

    def uuid_string(self) -> str:
        return self.aio.uuid_string()

    def create(self, flags: int = 0) -> None:
        self._loop.run(self.aio.create(flags))

    def shutdown(self, flags: int = 0) -> None:
        self._loop.run(self.aio.shutdown(flags))

    def reboot(self, flags: int = 0) -> None:
        self._loop.run(self.aio.reboot(flags))

    def destroy(self, flags: int = 0) -> None:
        self._loop.run(self.aio.destroy(flags))

    def suspend(self) -> None:
        self._loop.run(self.aio.suspend())

    def resume(self) -> None:
        self._loop.run(self.aio.resume())

    def undefine(self, flags: int | None = None) -> None:
        self._loop.run(self.aio.undefine(flags))

    def info(self) -> DomainInfo:
        return self._loop.run(self.aio.info())

    def state(self, flags: int = 0) -> tuple[int, int]:
        return self._loop.run(self.aio.state(flags))

    def xml_desc(self, flags: int = 0) -> str:
        return self._loop.run(self.aio.xml_desc(flags))

    def autostart(self) -> bool:
        return self._loop.run(self.aio.autostart())

    def set_autostart(self, autostart: bool) -> None:
        self._loop.run(self.aio.set_autostart(autostart))

    def is_active(self) -> bool:
        return self._loop.run(self.aio.is_active())

    def is_persistent(self) -> bool:
        return self._loop.run(self.aio.is_persistent())

    def has_managed_save_image(self, flags: int = 0) -> bool:
        return self._loop.run(self.aio.has_managed_save_image(flags))

    def max_memory(self) -> int:
        return self._loop.run(self.aio.max_memory())

    def os_type(self) -> str:
        return self._loop.run(self.aio.os_type())

    def security_label(self) -> SecurityLabel:
        return self._loop.run(self.aio.security_label())

    def metadata(self, kind: int, uri: str | None = None, flags: int = 0) -> str:
        return self._loop.run(self.aio.metadata(kind, uri, flags))

    def messages(self, flags: int = 0) -> list[str]:
        return self._loop.run(self.aio.messages(flags))

    def open_console(self, dev_name: str | None = None, flags: int = 0) -> Console:
        return Console(self._loop, self._loop.run(self.aio.open_console(dev_name, flags)))


class Connection:
    """Blocking twin of AsyncConnection; use as a context manager or call `close()`."""

    def __init__(self, loop: _LoopThread, conn: AsyncConnection) -> None:
        self._loop = loop
        self.aio = conn

    @classmethod
    def open(
        cls, uri: str | None = None, *, readonly: bool = False, keepalive: tuple[float, int] | None = KEEPALIVE
    ) -> Connection:
        loop = _LoopThread()
        try:
            conn = loop.run(AsyncConnection.open(uri, readonly=readonly, keepalive=keepalive))
        except BaseException:
            loop.stop()
            raise
        return cls(loop, conn)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self.aio.close())
        finally:
            self._loop.stop()

    def _dom(self, dom: AsyncDomain) -> Domain:
        return Domain(self._loop, dom)

    @property
    def uri(self) -> str:
        return self.aio.uri

    @property
    def readonly(self) -> bool:
        return self.aio.readonly

    def is_alive(self) -> bool:
        return self.aio.is_alive

    def on_close(self, callback: Callable[[CloseReason], None]) -> None:
        """`callback(reason)` runs on the loop thread when the connection goes away."""
        self.aio.on_close(callback)

    def get_uri(self) -> str:
        return self.aio.get_uri()

    def get_type(self) -> str:
        return self._loop.run(self.aio.get_type())

    def get_version(self) -> int:
        return self._loop.run(self.aio.get_version())

    def get_lib_version(self) -> int:
        return self._loop.run(self.aio.get_lib_version())

    def get_hostname(self) -> str:
        return self._loop.run(self.aio.get_hostname())

    def get_capabilities(self) -> str:
        return self._loop.run(self.aio.get_capabilities())

    def node_get_info(self) -> NodeInfo:
        return self._loop.run(self.aio.node_get_info())

    def node_get_security_model(self) -> SecurityModel:
        return self._loop.run(self.aio.node_get_security_model())

    def domain_xml_to_native(self, native_format: str, xml: str, flags: int = 0) -> str:
        return self._loop.run(self.aio.domain_xml_to_native(native_format, xml, flags))

    def list_all_domains(self, flags: int = 0) -> list[Domain]:
        return [self._dom(d) for d in self._loop.run(self.aio.list_all_domains(flags))]

    def lookup_by_name(self, name: str) -> Domain:
        return self._dom(self._loop.run(self.aio.lookup_by_name(name)))

    def lookup_by_uuid(self, uuid: uuidlib.UUID | str) -> Domain:
        return self._dom(self._loop.run(self.aio.lookup_by_uuid(uuid)))

    def lookup_by_id(self, domain_id: int) -> Domain:
        return self._dom(self._loop.run(self.aio.lookup_by_id(domain_id)))

    def define_xml(self, xml: str, flags: int = 0) -> Domain:
        return self._dom(self._loop.run(self.aio.define_xml(xml, flags)))

    def create_xml(self, xml: str, flags: int = 0) -> Domain:
        return self._dom(self._loop.run(self.aio.create_xml(xml, flags)))

    def register_lifecycle(
        self, callback: Callable[[Domain, int, int], None], dom: Domain | None = None
    ) -> int:
        """`callback(domain, event, detail)` runs on the connection's loop thread."""

        def relay(d: AsyncDomain, event: int, detail: int) -> None:
            callback(Domain(self._loop, d), event, detail)

        return self._loop.run(self.aio.register_lifecycle(relay, dom.aio if dom is not None else None))

    def deregister_lifecycle(self, callback_id: int) -> None:
        self._loop.run(self.aio.deregister_lifecycle(callback_id))
