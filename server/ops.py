"""For whoever runs Ringback: `/readyz` (can this process do its work now?) and `/metrics` (Prometheus).

`/healthz` (server/pages.py) only says the process answers: a load balancer or an orchestrator restarts a
process that fails it. `/readyz` says whether it is worth sending work to it: the database answers, its
schema is the one this code expects (`ringback migrate` was run), and, when this process runs an engine,
the engine ticked recently. 200 with what was checked, else 503 naming what is wrong.

`/metrics` serves `dialer.metrics` (every process's in multiprocess mode, see there) and the leads by
status read from the database. Neither carries a secret or a phone number, but traffic and lead counts are
the owner's business: with `RINGBACK_METRICS_TOKEN` set, a scrape must send `Authorization: Bearer <it>`
(401 otherwise); without it, only this machine is answered (403 otherwise), and a request a reverse proxy
forwarded (it says so in `Forwarded`, `X-Forwarded-For` or `X-Real-IP`) is not from this machine, even
though the proxy's connection is.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dialer import db, metrics
from dialer.core.compare import same_secret
from dialer.db.models import Lead
from dialer.runtime import Runtime
from server.errors import error_response

CHECK_TIMEOUT = 3.0  # seconds the database gets to answer a check
STALE_AFTER = 30.0  # an engine that has not ticked for this long (or 3 poll intervals) is not ticking
FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")  # a proxy passed the request on
CHALLENGE = 'Bearer realm="ringback metrics"'


@functools.cache
def schema_heads() -> tuple[str, ...]:
    """The migration revisions this code expects the database to be at (alembic's heads)."""
    return tuple(ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_heads())


@dataclass
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ready" if self.ready else "not ready", "checks": self.checks}
        if self.problems:
            body["problems"] = self.problems
        return body


async def readiness(rt: Runtime, *, runs_engine: bool, now: float) -> Readiness:
    """What `/readyz` answers; `now` is time.monotonic() (the engine's last tick is on that clock)."""
    found = Readiness()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), rt.database.connect() as conn:
            revisions = set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
    except Exception as exc:  # any failure to read it is the answer: not ready
        found.checks["database"] = "unreachable"
        found.problems.append(f"database unreachable ({type(exc).__name__})")
    else:
        found.checks["database"] = "ok"
        expected = set(schema_heads())
        found.checks["migrations"] = ",".join(sorted(revisions)) or "none"
        if revisions != expected:
            found.problems.append(
                f"migrations not current: the database is at {found.checks['migrations']}, this code expects "
                f"{','.join(sorted(expected))} (run `ringback migrate`)"
            )
    if runs_engine:
        engine = rt.engine
        limit = STALE_AFTER if engine.poll_interval is None else max(STALE_AFTER, 3 * engine.poll_interval)
        if not engine.running:
            found.checks["engine"] = "stopped"
            found.problems.append("engine not running")
        elif engine.ticked_at is None:
            found.checks["engine"] = "starting"
            found.problems.append("engine has not ticked yet")
        else:
            age = now - engine.ticked_at
            found.checks["engine"] = f"ticked {age:.1f} s ago"
            # Without polling (tests) the engine ticks only when woken: a quiet engine is not a stuck one.
            if engine.poll_interval is not None and age > limit:
                found.problems.append(f"engine not ticking: last tick {age:.0f} s ago (more than {limit:.0f} s)")
    return found


async def readyz(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    found = await readiness(rt, runs_engine=request.app.state.runs_engine, now=time.monotonic())
    return JSONResponse(found.body(), status_code=200 if found.ready else 503,
                        headers={"Cache-Control": "no-store"})


async def lead_counts(rt: Runtime) -> dict[str, int] | None:
    """Leads in each status now, or None when the database does not answer (the rest is still served)."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), rt.database.connect() as conn:
            rows = await conn.execute(select(Lead.status, func.count()).group_by(Lead.status))
            return {str(status): int(n) for status, n in rows}
    except Exception:
        return None


def from_this_machine(request: Request) -> bool:
    if any(name in request.headers for name in FORWARDED):
        return False
    try:
        address = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:  # no address (a Unix socket) or a name: not known to be local
        return False
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return (mapped or address).is_loopback


def metrics_refusal(request: Request, token: str | None) -> Response | None:
    """Why this request may not read `/metrics` (401 or 403), or None when it may."""
    if token is None:
        if from_this_machine(request):
            return None
        return error_response(403, "forbidden", "/metrics answers this machine only: set RINGBACK_METRICS_TOKEN "
                                                "to scrape it from elsewhere with that bearer token")
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    sent = sent.strip()
    if scheme.lower() == "bearer" and same_secret(sent, token):
        return None
    response = error_response(401, "unauthorized", "/metrics needs the header Authorization: Bearer "
                                                   "<RINGBACK_METRICS_TOKEN>")
    # RFC 6750 section 3: a token was sent but is not the one, or none was sent at all.
    response.headers["WWW-Authenticate"] = CHALLENGE + (', error="invalid_token"' if sent else "")
    return response


async def metrics_endpoint(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    refused = metrics_refusal(request, rt.settings.metrics_token)
    if refused is not None:
        return refused
    return Response(metrics.exposition(await lead_counts(rt)), media_type=metrics.CONTENT_TYPE,
                    headers={"Cache-Control": "no-store"})


routes = [
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
]
