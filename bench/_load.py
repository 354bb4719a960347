"""A lean HTTP/1.1 load generator: one keep-alive connection per worker, one request in flight on each,
the JSON body written and the response read with plain asyncio streams.

A full client (httpx) spent about twice the server's CPU on every request to a bare endpoint; sharing two
cores with the server, it held back the very reference the intake is compared with. This one leaves
the server the larger share, and it is the same for both servers measured.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int) -> None:
        self._reader, self._writer = reader, writer
        self._host = f"{host}:{port}".encode()

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host, port)

    async def post_json(self, path: str, body: Any) -> tuple[int, bytes]:
        """POST `body` as JSON; the response's status code and body."""
        payload = json.dumps(body).encode()
        self._writer.write(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + self._host
            + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(payload)).encode()
            + b"\r\n\r\n" + payload
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()
