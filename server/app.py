"""The Starlette application factory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import RedirectResponse
from starlette.routing import Route

from dialer.config import Settings
from dialer.runtime import Runtime
from server import api, cors, dashboard, live, openapi, ops, pages, reschedule, twilio_hooks, twilio_sms
from server.body_limit import BodyLimit
from server.errors import HANDLERS
from server.headers import SecurityHeaders
from server.last_resort import LastResort


def create_app(
    settings: Settings | None = None, *, runtime: Runtime | None = None, run_engine: bool = True
) -> Starlette:
    """Build the app. Pass a `runtime` to share its database, clock and provider (tests do)."""
    rt = runtime or Runtime.build(settings or Settings.from_env())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await rt.start(run_engine=run_engine)
        try:
            yield
        finally:
            if runtime is None:
                await rt.close()
            else:
                await rt.engine.stop()

    async def home(request):  # type: ignore[no-untyped-def]
        # The demo's newcomer wants the demo page; a real installation's owner, the dashboard.
        return RedirectResponse("/demo" if rt.settings.demo else "/dashboard")

    app = Starlette(
        routes=[
            *api.routes,
            *openapi.routes,
            *live.routes,
            *pages.routes,
            *ops.routes,
            *reschedule.routes,
            *twilio_hooks.routes,
            *twilio_sms.routes,
            *dashboard.routes,
            Route("/", home),
        ],
        middleware=[
            Middleware(SecurityHeaders, https=rt.settings.public_url.startswith("https://")),
            Middleware(cors.ApiCors),  # every /api/ answer, errors included, readable cross-origin
            Middleware(LastResort),  # an error no handler knows: logged (redacted), answered as JSON
            Middleware(BodyLimit),  # bodies capped before any route parses them
        ],
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.runs_engine = run_engine  # /readyz checks the engine only where it runs
    app.state.sites = rt.sites  # shared with the engine; see dialer/sites/cache.py for how stale
    return app
