"""A local stand-in for Twilio's REST API and telephone network, for tests of the real `twilio` library.

    with TwilioStandIn() as twilio:
        twilio.people["+12025550101"] = Person.never_answers()
        ... point Ringback at twilio.url (TWILIO_API_BASE_URL) with twilio.account_sid / twilio.auth_token ...

`TwilioStandIn(hostile=Hostility(seed=…))` is the hostile network: status and recording callbacks held
back, repeated and lost. The behaviours, and the Twilio documentation each follows, are listed in `network.py`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from tests.harness.serving import ThreadedServer, listening_socket, url_of
from tests.twilio_standin.app import Faults, create_app
from tests.twilio_standin.network import SECOND, TWIML_DEADLINE, Call, Hostility, Network, Person, Posted
from tests.twilio_standin.pace import Pace
from tests.twilio_standin.sms import Sms

__all__ = [
    "Call", "Faults", "Hostility", "Network", "Pace", "Person", "Posted", "Sms", "ThreadedServer", "TwilioStandIn",
    "listening_socket", "url_of",
]


T = TypeVar("T")


class TwilioStandIn:
    def __init__(
        self, *, price_lag: int = 2, pace: Pace | None = None, hostile: Hostility | None = None,
        second: float = SECOND, twiml_deadline: float = TWIML_DEADLINE,
    ) -> None:
        self._options = {"hostile": hostile, "second": second, "twiml_deadline": twiml_deadline}
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.faults = Faults()
        self.pace = pace or Pace()  # the account's calls per second and REST concurrency (kind by default)
        self.sms = Sms()  # text messages: refusals, delivery callbacks, STOP replies
        self._network: Network | None = None
        self._price_lag = price_lag
        self._server: ThreadedServer | None = None

    @property
    def network(self) -> Network:
        assert self._network is not None
        return self._network

    @property
    def people(self) -> dict[str, Person]:
        return self.network.people

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url

    async def until_over(self, *calls: Call, timeout: float = 30.0) -> None:
        """Wait until each of `calls` has ended on the stand-in's network (from the test's event loop)."""
        assert self._server is not None
        network = self.network
        for call in calls:
            await asyncio.wait_for(self._server.arun(lambda c=call: network.settled(c)), timeout)

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` in the stand-in's event loop (where its network lives), from the test's loop."""
        assert self._server is not None
        return await self._server.arun(work)

    def __enter__(self) -> TwilioStandIn:
        sock = listening_socket()
        network = Network(self.account_sid, self.auth_token, url_of(sock), price_lag=self._price_lag,
                          **self._options)  # type: ignore[arg-type]
        self._network = network
        async def shut_down() -> None:
            await self.pace.close()
            await self.sms.close()
            await network.close()

        app = self.pace.guard(create_app(network, self.auth_token, self.faults, self.pace, self.sms))
        self._server = ThreadedServer(app, sock, on_shutdown=shut_down)
        self._server.__enter__()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self._server is not None
        self._server.__exit__(*exc)
