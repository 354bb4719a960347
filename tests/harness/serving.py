"""Serve an ASGI app for real, on a free port of 127.0.0.1, in a thread with its own event loop; and a
world served that way, for tests that drive it from a browser."""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

import uvicorn
from sqlalchemy import select

from dialer.clock import ManualClock
from dialer.db.models import Lead, Site
from dialer.runtime import Runtime
from dialer.telephony.simulator import SimulatedProvider
from server.app import create_app
from tests.harness.world import World

T = TypeVar("T")
TIMEOUT = 30.0


def listening_socket() -> socket.socket:
    """Bound and listening before any server runs: a client may connect at once (the backlog holds it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


class ThreadedServer:
    def __init__(
        self, app: Any, sock: socket.socket, *, on_shutdown: Callable[[], Awaitable[None]] | None = None,
        lifespan: str = "auto",
    ) -> None:
        self.app = app
        self.on_shutdown = on_shutdown
        self.socket = sock
        self.url = url_of(sock)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._ready.set()  # a server that failed to start does not keep the test waiting

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._ready.set()
        try:
            await self.server.serve(sockets=[self.socket])
        finally:
            if self.on_shutdown is not None:
                await self.on_shutdown()

    def _submit(self, work: Callable[[], Awaitable[T]]) -> Future[T]:
        assert self.loop is not None, "the server is not running"

        async def main() -> T:
            return await work()

        return asyncio.run_coroutine_threadsafe(main(), self.loop)

    def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine in the server's loop and wait for its result (from another thread)."""
        return self._submit(work).result(timeout=TIMEOUT)

    async def arun(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine in the server's loop and await its result from another loop; cancelled with
        the awaiting task."""
        return await asyncio.wrap_future(self._submit(work))

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        assert self._ready.wait(TIMEOUT) and self.loop is not None, "the server did not start"
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.server.should_exit = True
        self._thread.join(TIMEOUT)
        self.socket.close()


class LiveServer:
    """A world's app under uvicorn (see ThreadedServer); its clock moves only when the test says so.
    Use it as a context manager; the runtime is closed when the server stops."""

    def __init__(self, world: World) -> None:
        self.world = world
        app = create_app(runtime=world.runtime)
        self._server = ThreadedServer(app, listening_socket(), on_shutdown=world.runtime.close, lifespan="on")
        self.url = self._server.url
        self.port: int = self._server.socket.getsockname()[1]

    def __enter__(self) -> LiveServer:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.__exit__(*exc)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._server.loop is not None
        return self._server.loop

    @property
    def runtime(self) -> Runtime:
        return self.world.runtime

    @property
    def clock(self) -> ManualClock:
        return self.world.clock

    @property
    def sim(self) -> SimulatedProvider:
        return self.world.sim

    def call(self, work: Callable[..., Awaitable[T]] | Awaitable[T], *args: Any) -> T:
        """Run `work(*args)` (or the coroutine `work`) in the server's loop and wait for the result."""
        if inspect.isawaitable(work):
            awaitable = work
            return self._server.run(lambda: awaitable)
        function = work
        return self._server.run(lambda: function(*args))

    def advance(self, seconds: float) -> None:
        self.call(self.clock.advance, seconds)

    def leads(self) -> list[Lead]:
        async def go() -> list[Lead]:
            async with self.runtime.sessions() as session:
                return list((await session.execute(select(Lead).order_by(Lead.created_at))).scalars())

        return self.call(go)

    def until_status(self, lead_id: str, status: str) -> None:
        """Move the server's clock until the lead reaches `status` (the browser is not asked)."""
        self.call(self.world.until_status, lead_id, status)

    def update_site(self, settings: dict[str, Any] | None = None, **columns: Any) -> None:
        """Change the world's site: `columns`, and `settings` merged into its settings."""

        async def go() -> None:
            async with self.runtime.sessions() as session, session.begin():
                site = await session.get(Site, self.world.site.id)
                assert site is not None
                for name, value in columns.items():
                    setattr(site, name, value)
                if settings is not None:
                    site.settings = {**(site.settings or {}), **settings}

        self.call(go)
