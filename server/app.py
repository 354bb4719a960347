"""The Starlette application factory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import Route

from dialer.config import Settings
from dialer.runtime import Runtime
from server import api, dashboard, live, openapi, pages, reschedule, twilio_hooks, twilio_sms
from server.errors import HANDLERS


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
        return RedirectResponse("/demo")

    app = Starlette(
        routes=[
            *api.routes,
            *openapi.routes,
            *live.routes,
            *pages.routes,
            *reschedule.routes,
            *twilio_hooks.routes,
            *twilio_sms.routes,
            *dashboard.routes,
            Route("/", home),
        ],
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.sites = rt.sites  # shared with the engine; see dialer/sites/cache.py for how stale
    return app
