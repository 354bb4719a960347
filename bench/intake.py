"""Intake: accepted leads per second through `POST /api/v1/callbacks` on one uvicorn process, beside a bare
Starlette JSON endpoint served with the same uvicorn settings on the same machine in the same run. The
ratio is the figure: how much of the web stack's throughput the intake keeps.

    .venv/bin/python bench/intake.py [--seconds 10] [--connections 16]

The server runs web-only (no engine), so only the intake is measured; leads are written to PostgreSQL at
RINGBACK_BENCH_DATABASE_URL (default: the h_scale database on 127.0.0.1), whose tables are emptied first.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
import uvicorn  # noqa: E402

from bench._world import database_url, empty, populate, prepare  # noqa: E402
from dialer import db  # noqa: E402

UVICORN = dict(host="127.0.0.1", log_level="info", access_log=False, lifespan="on")


def bare_app():  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"id": "x", "status": "queued", "phone": body.get("phone")}, status_code=201)

    return Starlette(routes=[Route("/api/v1/callbacks", echo, methods=["POST"])])


def ringback_app(url: str):  # type: ignore[no-untyped-def]
    from dialer.config import Settings
    from dialer.runtime import Runtime
    from server.app import create_app

    settings = Settings(database_url=url, secret_key="bench-" + "x" * 32)
    return create_app(runtime=Runtime.build(settings), run_engine=False)


def serve(kind: str, port: int, url: str) -> None:
    app = bare_app() if kind == "bare" else ringback_app(url)
    uvicorn.run(app, port=port, **UVICORN)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(kind: str, url: str, seconds: float, connections: int, numbers: itertools.count) -> tuple[float, int]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", kind, "--port", str(port),
        env={**os.environ, "RINGBACK_BENCH_DATABASE_URL": url}, stderr=asyncio.subprocess.PIPE,
    )
    drain = None
    try:
        assert proc.stderr is not None
        while b"Uvicorn running" not in await asyncio.wait_for(proc.stderr.readline(), 30):
            pass
        drain = asyncio.create_task(proc.stderr.read())
        target = f"http://127.0.0.1:{port}/api/v1/callbacks"
        limits = httpx2.Limits(max_connections=connections)
        async with httpx2.AsyncClient(limits=limits, timeout=30) as client:
            accepted, refused = 0, 0

            async def hammer(until: float, count: bool) -> None:
                nonlocal accepted, refused
                while time.monotonic() < until:
                    body = {"site": "bench0", "phone": f"+48501{next(numbers) % 1_000_000:06d}", "timezone": "UTC"}
                    response = await client.post(target, json=body)
                    if count:
                        if response.status_code == 201:
                            accepted += 1
                        else:
                            refused += 1

            warm = time.monotonic() + 1.0
            await asyncio.gather(*(hammer(warm, False) for _ in range(connections)))
            start = time.monotonic()
            await asyncio.gather(*(hammer(start + seconds, True) for _ in range(connections)))
            took = time.monotonic() - start
        return accepted / took, refused
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
        if drain is not None:
            await drain


async def run(args: argparse.Namespace, url: str) -> None:
    engine = db.create_engine(url)
    await empty(engine, url)
    await populate(engine, sites=1, leads=0, now=datetime.now(UTC))
    await engine.dispose()
    numbers = itertools.count()
    bare, _ = await measure("bare", url, args.seconds, args.connections, numbers)
    intake, refused = await measure("ringback", url, args.seconds, args.connections, numbers)
    print(f"one uvicorn process, {args.connections} connections, {args.seconds:.0f} s each, database {url.split('@')[-1]}")
    print(f"intake POST /api/v1/callbacks: {intake:.0f} accepted leads/s" + (f" ({refused} refused)" if refused else ""))
    print(f"reference, bare Starlette JSON endpoint: {bare:.0f} responses/s")
    print(f"ratio: {intake / bare:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--serve", choices=["bare", "ringback"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    url = database_url()
    if args.serve:
        serve(args.serve, args.port, url)
        return
    prepare(url)
    asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
