"""Support for the abuse protection tests (no tests here): a test client for a site with the default settings, the widget's form token, and
requests that can come from any IP address (a tiny ASGI wrapper sets the client address per request)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from dialer.db.models import Lead, LeadEvent, Site
from tests.harness import World, app_client

VISITOR = "+48501234567"


class _ClientAddress:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope.get("headers", []):
            if name == b"x-test-client-ip":
                scope = {**scope, "client": (value.decode(), 40000)}
        await self.app(scope, receive, send)


class AbuseApi:
    def __init__(self, client: TestClient, world: World) -> None:
        self.client, self.world = client, world

    def call(self, fn: Any, *args: Any) -> Any:
        return self.client.portal.call(fn, *args)  # type: ignore[union-attr]

    def advance(self, seconds: float) -> None:
        self.call(self.world.clock.advance, seconds)

    def config(self, site: str = "shop") -> dict[str, Any]:
        response = self.client.get(f"/api/v1/sites/{site}/config")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def token(self, site: str = "shop") -> str:
        """A form token as the widget holds it once the visitor has taken a few seconds over the form."""
        config = self.config(site)
        self.advance(config.get("min_fill_seconds", 0) + 1)
        return config["form_token"]  # type: ignore[no-any-return]

    def post(self, body: dict[str, Any] | None = None, *, ip: str = "198.51.100.7", token: str | None = None,
             origin: str | None = None, **fields: Any) -> Any:
        if body is None:
            body = {"site": "shop", "phone": VISITOR, "form_token": token, **fields}
            body = {k: v for k, v in body.items() if v is not None}
        headers = {"x-test-client-ip": ip, **({"origin": origin} if origin else {})}
        return self.client.post("/api/v1/callbacks", json=body, headers=headers)

    def count(self, model: type = Lead) -> int:
        async def go() -> int:
            async with self.world.runtime.sessions() as session:
                return (await session.execute(select(func.count()).select_from(model))).scalar_one()

        return self.call(go)  # type: ignore[no-any-return]

    def nothing_written(self, leads: int = 0, events: int | None = None) -> bool:
        return self.count(Lead) == leads and (events is None or self.count(LeadEvent) == events)

    def settings(self, *, calling_window: list[str] | None = None, **abuse: Any) -> None:
        """Change the shop's abuse settings (and, if given, its visitors' calling window), as its owner would."""
        async def go() -> None:
            async with self.world.runtime.sessions() as session, session.begin():
                site = await session.get(Site, self.world.site.id)
                assert site is not None
                site.settings = {**(site.settings or {}), "abuse": {**(site.settings or {}).get("abuse", {}), **abuse}}
                if calling_window is not None:
                    site.settings = {**site.settings, "calling_window": calling_window}

        self.call(go)

    def site(self, **columns: Any) -> None:
        async def go() -> None:
            async with self.world.runtime.sessions() as session, session.begin():
                site = await session.get(Site, self.world.site.id)
                for name, value in columns.items():
                    setattr(site, name, value)

        self.call(go)


@contextmanager
def abuse_api(database_url: str, site_settings: dict[str, Any] | None = None) -> Iterator[AbuseApi]:
    with app_client(database_url, site_settings=site_settings or {}, wrap=_ClientAddress) as (client, world):
        yield AbuseApi(client, world)
