"""Serve an ASGI app for real, on a free port of 127.0.0.1, in a thread with its own event loop."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")


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
        self, app: Any, sock: socket.socket, *, on_shutdown: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.app = app
        self.on_shutdown = on_shutdown
        self.socket = sock
        self.url = url_of(sock)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="auto"))
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._ready.set()
        try:
            await self.server.serve(sockets=[self.socket])
        finally:
            if self.on_shutdown is not None:
                await self.on_shutdown()

    def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine in the server's loop and wait for its result (from another thread)."""
        assert self.loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(work(), self.loop)  # type: ignore[arg-type]
        return future.result(timeout=30)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.server.should_exit = True
        self._thread.join(30)
        self.socket.close()
