"""Running `ringback` processes for the scale-out test: start, wait for a line they log, stop or kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

RINGBACK = str(Path(sys.executable).parent / "ringback")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """One `ringback …` child process; its log is read as it comes, so a test can await a line."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name, self.args, self.env, self.cwd = name, args, env, cwd
        self.lines: list[str] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiters: list[tuple[str, asyncio.Future[None]]] = []

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    async def start(self, ready: str, timeout: float = 30) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            RINGBACK, *self.args, env=self.env, cwd=self.cwd,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        await self.wait_for_line(ready, timeout)

    async def wait_for_line(self, text: str, timeout: float) -> None:
        if any(text in line for line in self.lines):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((text, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            tail = "\n".join(self.lines[-30:])
            raise AssertionError(f"{self.name} did not log {text!r} within {timeout} s; its log ends:\n{tail}") from None

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            for text, future in list(self._waiters):
                if text in line and not future.done():
                    future.set_result(None)
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(AssertionError(f"{self.name} exited (code {self._proc.returncode})"))

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    async def wait(self, timeout: float) -> int:
        assert self._proc is not None
        code = await asyncio.wait_for(self._proc.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)
        return code

    async def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
        if self._proc is None:
            return None
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
        try:
            return await self.wait(timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.kill()
            return await self.wait(timeout)
