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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402

from bench._load import Connection  # noqa: E402
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


@dataclass(frozen=True)
class Result:
    rate: float  # accepted requests per second
    refused: int
    server_busy: float  # CPU seconds per second: 1.0 is one core kept busy
    client_busy: float


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(kind: str, url: str, seconds: float, connections: int, numbers: itertools.count) -> Result:
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
        pool = [await Connection.open("127.0.0.1", port) for _ in range(connections)]
        accepted, refused = 0, 0

        async def hammer(conn: Connection, until: float, count: bool) -> None:
            nonlocal accepted, refused
            while time.monotonic() < until:
                body = {"site": "bench0", "phone": f"+48501{next(numbers) % 1_000_000:06d}", "timezone": "UTC"}
                status, _ = await asyncio.wait_for(conn.post_json("/api/v1/callbacks", body), 30)
                if count:
                    if status == 201:
                        accepted += 1
                    else:
                        refused += 1

        try:
            warm = time.monotonic() + 1.0
            await asyncio.gather(*(hammer(conn, warm, False) for conn in pool))
            start, server_cpu, client_cpu = time.monotonic(), cpu_seconds(proc.pid), time.process_time()
            await asyncio.gather(*(hammer(conn, start + seconds, True) for conn in pool))
            took = time.monotonic() - start
            server_cpu, client_cpu = cpu_seconds(proc.pid) - server_cpu, time.process_time() - client_cpu
        finally:
            for conn in pool:
                await conn.close()
        return Result(accepted / took, refused, server_cpu / took, client_cpu / took)
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
    bare = await measure("bare", url, args.seconds, args.connections, numbers)
    intake = await measure("ringback", url, args.seconds, args.connections, numbers)
    print(f"one uvicorn process, {args.connections} connections, {args.seconds:.0f} s each, database {url.split('@')[-1]}")
    refused = f" ({intake.refused} refused)" if intake.refused else ""
    print(f"intake POST /api/v1/callbacks: {intake.rate:.0f} accepted leads/s{refused}{busy(intake)}")
    print(f"reference, bare Starlette JSON endpoint: {bare.rate:.0f} responses/s{busy(bare)}")
    print(f"ratio: {intake.rate / bare.rate:.2f}")


def busy(result: Result) -> str:
    # A server far from one busy core is being held back by the load generator (or the machine), not itself.
    return f" (CPU: server {result.server_busy:.0%}, load generator {result.client_busy:.0%} of a core)"


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
