"""Ringback served for real, with `RINGBACK_TELEPHONY=twilio`, against the stand-in: what a test drives."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dialer import db
from dialer.clock import Clock
from dialer.core.machine import Policy
from dialer.db.models import CallLeg, Lead, LeadEvent, Site
from dialer.engine.status import lead_channel
from dialer.runtime import Runtime
from dialer.telephony.twilio import TwilioProvider
from server.app import create_app
from tests.harness import (
    MANAGER_PHONES,
    ThreadedServer,
    add_shop,
    build_runtime,
    listening_socket,
    relaxed_abuse,
    url_of,
)
from tests.twilio_standin import TwilioStandIn

T = TypeVar("T")

__all__ = ["CALLER_ID", "MANAGER_PHONES", "VISITOR", "Line", "eventually"]

CALLER_ID = "+12025550100"
VISITOR = "+48501234567"


async def eventually(check: Callable[[], Awaitable[T | None] | T | None], *, timeout: float = 30.0) -> T:
    """Wait for a condition a user could observe that nothing announces (a stored price, a leg's state, a
    call being over on the stand-in's network): the condition is checked as things happen, with a limit.
    (A lead's status is announced: `Line.until_status` awaits it.)"""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: last value {value!r}")
        await asyncio.sleep(0.02)


@dataclass
class Line:
    """A site with three managers on Twilio (the stand-in), served by Ringback on a real port."""

    twilio: TwilioStandIn
    database_url: str
    managers: int = 3
    recording: bool = True
    policy: Policy = field(default_factory=lambda: Policy(retry_delay=600))
    provider_options: dict[str, Any] = field(default_factory=dict)
    # Ringback's call pacer: fast here, so that tests about other things do not wait for it
    calls_per_second: float = 100.0
    clock: Clock | None = None
    poll_interval: float | None = None  # None: the engine is woken by nudges and timers alone
    new_site: bool = True  # False: the shop is in the database already (Ringback restarted on it)
    url: str = ""
    _server: ThreadedServer | None = None
    _db: AsyncEngine | None = None
    sessions: async_sessionmaker[AsyncSession] | None = None
    _http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Line:
        self._db = db.create_engine(self.database_url)
        self.sessions = db.sessionmaker(self._db)
        if self.new_site:
            async with self.sessions() as session, session.begin():
                # These calls run on the real clock: the visitor may be called at any hour, so the tests
                # behave the same whenever they run (calling hours are tested on a manual clock elsewhere).
                await add_shop(session, now=datetime.now(UTC), managers=self.managers, caller_id=CALLER_ID,
                               recording=self.recording,
                               settings={"calling_window": ["00:00", "24:00"], **relaxed_abuse()})
        sock = listening_socket()
        self.url = url_of(sock)
        options = {"timeout": 2.0, "retry_delays": (0.01, 0.02), "price_delays": (0.01,) * 20,
                   **self.provider_options}
        provider = TwilioProvider(self.twilio.account_sid, self.twilio.auth_token, self.url,
                                  api_base_url=self.twilio.url, **options)
        runtime = build_runtime(
            self.database_url, provider=provider, policy=self.policy, telephony="twilio", public_url=self.url,
            clock=self.clock, twilio_calls_per_second=self.calls_per_second, poll_interval=self.poll_interval,
            twilio_account_sid=self.twilio.account_sid, twilio_auth_token=self.twilio.auth_token,
            twilio_api_base_url=self.twilio.url,
        )
        self._server = ThreadedServer(create_app(runtime=runtime), sock, on_shutdown=runtime.close)
        self._server.__enter__()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._http is not None:
            await self._http.close()
        if self._server is not None:
            await asyncio.to_thread(self._server.__exit__, None, None, None)
        if self._db is not None:
            await self._db.dispose()

    @property
    def runtime(self) -> Runtime:
        assert self._server is not None
        return self._server.app.state.runtime  # type: ignore[no-any-return]

    # acting like a visitor and like Twilio -----------------------------------------------------------

    async def request_callback(self, phone: str = VISITOR, **fields: Any) -> dict[str, Any]:
        assert self._http is not None
        body = {"site": "shop", "phone": phone, "timezone": "Europe/Warsaw",
                "utm": {"source": "google", "medium": "cpc", "campaign": "winter"}, **fields}
        async with self._http.post(f"{self.url}/api/v1/callbacks", json=body) as response:
            assert response.status == 201, await response.text()
            return await response.json()  # type: ignore[no-any-return]

    async def post(self, path_and_query: str, params: dict[str, str], *, signature: str | None) -> tuple[int, str]:
        assert self._http is not None
        headers = {"X-Twilio-Signature": signature} if signature is not None else {}
        async with self._http.post(f"{self.url}{path_and_query}", data=params, headers=headers) as response:
            return response.status, await response.text()

    async def replay(self, url: str, params: dict[str, str]) -> int:
        """Post a webhook again, signed as Twilio signs it (a duplicated delivery)."""
        signature = self.twilio.network.validator.compute_signature(url, params)
        status, _ = await self.post(url.removeprefix(self.url), params, signature=signature)
        return status

    # what the database holds --------------------------------------------------------------------------

    async def lead(self, lead_id: str) -> Lead:
        assert self.sessions is not None
        async with self.sessions() as session:
            found = await session.get(Lead, lead_id)
            assert found is not None
            return found

    async def until_status(self, lead_id: str, *statuses: str, timeout: float = 30.0) -> Lead:
        """Wait until the engine announces one of `statuses` on the lead's live channel (the widget's),
        then load the lead."""
        assert self._server is not None
        runtime = self.runtime

        async def reached() -> None:  # in the server's loop, where its broadcast lives
            async with runtime.broadcast.subscribe(lead_channel(lead_id)) as updates:
                # Subscribed first, then read: a change published after the read is in `updates`.
                async with runtime.sessions() as session:
                    lead = await session.get(Lead, lead_id)
                    if lead is not None and lead.status in statuses:
                        return
                async for message in updates:
                    if message["status"] in statuses:
                        return

        try:
            await asyncio.wait_for(self._server.arun(reached), timeout)
        except TimeoutError:
            last = (await self.lead(lead_id)).status
            raise AssertionError(f"lead {lead_id} not {' or '.join(statuses)} within {timeout} s: {last}") from None
        return await self.lead(lead_id)

    async def legs(self, lead_id: str) -> list[CallLeg]:
        assert self.sessions is not None
        async with self.sessions() as session:
            query = select(CallLeg).where(CallLeg.lead_id == lead_id).order_by(CallLeg.created_at, CallLeg.step)
            return list((await session.execute(query)).scalars())

    async def timeline(self, lead_id: str) -> list[str]:
        assert self.sessions is not None
        async with self.sessions() as session:
            query = select(LeadEvent.detail).where(LeadEvent.lead_id == lead_id).order_by(LeadEvent.id)
            return list((await session.execute(query)).scalars())

    async def set_site(self, **values: Any) -> None:
        assert self.sessions is not None
        async with self.sessions() as session, session.begin():
            await session.execute(update(Site).where(Site.key == "shop").values(**values))

