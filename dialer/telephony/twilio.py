"""Real calls through Twilio, on the official `twilio` library's async client: the provider.

The manager's leg is created through the REST API; Twilio fetches its whisper (TwiML) from our webhooks
and reports its progress to them. Pressing 1 is answered, inside that same webhook, with a `<Dial>` to
the visitor. Webhooks (`server/twilio_hooks.py`) turn what Twilio posts into `dialer.events` with
`twilio_reports` and hand them to the engine; what the engine then asks of this provider for a call whose
webhook is waiting for its reply becomes that reply rather than a second REST request. Replies are kept
by call (`awaiting`), not in the context of the task that happens to run the engine's step.

Creating a call is never retried blindly: a create whose answer was lost is looked up first.

Beside it: `twilio_rest` (the HTTP client, the error codes, what a refusal says, the lost create's
look-up), `twilio_calls` (creating and redirecting a call, with their retries), `twilio_reports`
(webhook parameters read into events), `twilio_texts` (sending a text, its price) and
`twilio_recordings` (recordings' media). This module keeps the state they share: the REST client, the
replies webhooks await, the calls priced, the background fetches.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from dialer.config import ConfigError, Settings
from dialer.core.events import EventSink, LegEvent, PriceKnown
from dialer.core.states import LegRole
from dialer.telephony import twilio_calls, twiml
from dialer.telephony.base import CallRequest, CallStatus, ProviderError, metered
from dialer.telephony.redaction import quiet_library_loggers
from dialer.telephony.twilio_recordings import completed, fetch_media, recording_address, stream_media
from dialer.telephony.twilio_reports import fetched_status
from dialer.telephony.twilio_rest import (
    CONCURRENT_REQUESTS,
    TimedHttpClient,
    as_decimal,
    as_int,
    basic_auth,
    error_reason,
    lost_create,
    page_refused,
    unreachable,
)
from dialer.telephony.twilio_texts import message_params, send_message, status_url, text_price

log = logging.getLogger("ringback.twilio")

DEFAULT_TIMEOUT = 10.0  # seconds for one REST request; the library sets none
RETRY_DELAYS = (1.0, 2.0, 4.0)  # between attempts after a rate limit or an outage (each jittered)
PRICE_DELAYS = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 600.0)  # Twilio fills prices in late
PRICED_MEMORY = 10_000  # recent calls remembered so duplicated callbacks start no second price hunt

PriceReport = Callable[[LegEvent], Awaitable[None]]


@dataclass
class Reply:
    """The TwiML a webhook about call `sid` answers with, filled in by what the engine asks for that call
    while the webhook waits (`TwilioProvider.awaiting`)."""

    sid: str
    written: asyncio.Event = field(default_factory=asyncio.Event)
    document: str | None = None

    def write(self, document: str) -> None:
        if self.document is None:
            self.document = document
            self.written.set()


class TwilioProvider:
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        public_url: str,
        *,
        api_base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        price_delays: tuple[float, ...] = PRICE_DELAYS,
        recording_delays: tuple[float, ...] | None = None,
        currency: str = "USD",
        concurrent_requests: int = CONCURRENT_REQUESTS,
    ) -> None:
        quiet_library_loggers()  # the library would log every request's numbers at INFO
        self.account_sid = account_sid
        self.pace_key = account_sid  # REST creates share the account's calls per second (dialer.engine.pacing)
        self.concurrent_requests = concurrent_requests
        self._auth_token = auth_token
        self.hooks = twiml.Hooks(public_url)
        self.api_base_url = api_base_url
        self.timeout = timeout
        self.retry_delays = retry_delays
        self.price_delays = price_delays
        self.recording_delays = recording_delays  # when a late recording is looked up (None: the jobs' own)
        self.currency = currency  # the account's billing currency, for legs that cost nothing
        self.validator = RequestValidator(auth_token)
        self._sink: EventSink | None = None
        self._http: TimedHttpClient | None = None
        self._rest: Client | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._priced: OrderedDict[str, None] = OrderedDict()  # calls whose price is being or was fetched
        # Where price fetches are kept to outlive a restart (dialer/engine/jobs.py; set by the runtime);
        # None: fetched in this process's memory.
        self.price_jobs: Callable[[str, str], Awaitable[object]] | None = None
        self._replies: dict[str, Reply] = {}  # call sid -> the reply a webhook about that call awaits
        self.machines: OrderedDict[str, str] = OrderedDict()  # visitor call sid -> AnsweredBy, when a machine

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioProvider:
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise ConfigError("RINGBACK_TELEPHONY=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        return cls(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.public_url,
            api_base_url=settings.twilio_api_base_url,
            concurrent_requests=settings.twilio_concurrent_requests,
        )

    # the REST client --------------------------------------------------------------------------------

    async def _client(self) -> Client:
        """Made on first use, inside the running event loop (aiohttp's session belongs to a loop)."""
        if self._rest is None:
            self._http = TimedHttpClient(timeout=self.timeout, concurrent=self.concurrent_requests)
            self._rest = Client(self.account_sid, self._auth_token, http_client=self._http)
            if self.api_base_url:
                self._rest.api.base_url = self.api_base_url.rstrip("/")
        return self._rest

    async def close(self) -> None:
        self._sink = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        self._http, self._rest = None, None

    # the provider interface -------------------------------------------------------------------------

    def attach(self, sink: EventSink | None) -> None:
        # Twilio's reports arrive as webhooks, which hand them to the engine of whichever process they
        # reach (`server/twilio_hooks.py`); nothing here pushes events by itself.
        self._sink = sink

    @metered("place_call")
    async def place_call(self, request: CallRequest) -> str | None:
        if request.role is LegRole.VISITOR:
            return await self._dial_into(request)
        return await self._create(request)

    @metered("find_call")
    async def find_call(self, request: CallRequest, since: datetime) -> str | None:
        client = await self._client()
        query: dict[str, Any] = {"to": request.to, "limit": 20}
        if request.role is LegRole.VISITOR and request.bridge_sid:
            query["parent_call_sid"] = request.bridge_sid
        elif request.caller_id:
            query["from_"] = request.caller_id
        try:
            calls = await client.calls.list_async(**query)
        except TwilioRestException as exc:
            raise ProviderError(error_reason(exc), code=str(exc.code), permanent=False) from None
        except TwilioException as exc:  # a list's page refused (a 429, a 500): the library's base exception
            raise page_refused(exc) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Without an answer we cannot know whether the call exists: never guess "no" and dial.
            raise ProviderError(unreachable(exc), permanent=False) from None
        return lost_create(calls, request, since)

    @metered("call_status")
    async def call_status(self, sid: str) -> CallStatus | None:
        """The call as Twilio has it now (GET /Calls/{sid}, https://www.twilio.com/docs/voice/api/call-resource):
        its `status` (queued, ringing, in-progress, canceled, completed, failed, busy, no-answer), its
        `duration` in seconds once over, and `answered_by` where answering machine detection ran (the
        visitor's `<Number>`). A 404 (error 20404): Twilio has no such call."""
        call = await self._fetch_call(sid)
        if call is None:
            return None
        return fetched_status(str(call.status or ""), call.answered_by, as_int(call.duration))

    @metered("hangup")
    async def hangup(self, sid: str, say: str | None = None) -> None:
        reply = self._replies.get(sid)
        if reply is not None and reply.document is None:
            reply.write(twiml.say_and_hang_up(say))
            return
        if not sid:
            return
        client = await self._client()
        try:
            if say:
                await client.calls(sid).update_async(twiml=twiml.say_and_hang_up(say))
            else:
                await client.calls(sid).update_async(status="completed")
        except TwilioRestException as exc:
            # Most often the call ended on its own a moment ago; nothing is left to hang up.
            log.info("hanging up %s: %s", sid, error_reason(exc))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderError(unreachable(exc), permanent=False) from None

    @metered("send_text")
    async def send_text(self, to: str, body: str, sender: str | None = None, *,
                        text_id: str | None = None) -> str | None:
        if not sender:
            raise ProviderError("the site has no SMS sender: set its sms_sender (a Twilio number or Messaging "
                                "Service SID) or caller ID", permanent=True)
        params = message_params(to, body, sender, status_url(self.hooks.public_url, text_id))
        return await send_message(await self._client(), params, self.retry_delays)

    async def fetch_text_price(self, sid: str) -> tuple[Decimal, str] | None:
        """The message's price once Twilio has filled it in (None before)."""
        return await text_price(await self._client(), sid, self.currency)

    # calls ------------------------------------------------------------------------------------------

    async def _create(self, request: CallRequest) -> str | None:
        if not request.caller_id:
            raise ProviderError(
                "the site has no caller ID: set one with `ringback site add --caller-id` (a Twilio number "
                "or a verified caller ID)",
                permanent=False,
            )
        client = await self._client()
        params = twilio_calls.create_params(request, self.hooks)
        return await twilio_calls.create(client, request, params, self.retry_delays, self._look_up)

    async def _look_up(self, request: CallRequest, since: datetime) -> str | None:
        try:
            return await self.find_call(request, since)
        except (ProviderError, TimeoutError, aiohttp.ClientError) as exc:
            log.warning("looking up the call for leg %s failed: %r", request.leg_id, exc)
            return None

    async def _dial_into(self, request: CallRequest) -> str | None:
        """The visitor is dialed from the manager's call; Twilio reports the new call's sid later."""
        document = twiml.dial_visitor(request, self.hooks)
        reply = self._replies.get(request.bridge_sid or "")
        if reply is not None and reply.document is None:
            reply.write(document)  # the manager's key press is waiting for exactly this reply
            return None
        if not request.bridge_sid:
            raise ProviderError("the manager's call is gone; the visitor cannot be connected", permanent=False,
                                call_over=True)
        client = await self._client()
        return await twilio_calls.redirect(client, request, request.bridge_sid, document, self.retry_delays,
                                           self._look_up)

    # webhooks' helpers ------------------------------------------------------------------------------

    def signature_ok(self, url: str, params: Mapping[str, str], signature: str | None) -> bool:
        return bool(signature) and bool(self.validator.validate(url, dict(params), signature))

    @contextmanager
    def awaiting(self, sid: str) -> Iterator[Reply]:
        """While a webhook about call `sid` waits, what the engine asks for that call (dial the visitor
        into it, hang it up with a sentence) becomes the webhook's reply instead of a REST request. Once
        the webhook has answered, the same asks go through the REST API."""
        reply = Reply(sid)
        previous = self._replies.get(sid)
        self._replies[sid] = reply
        try:
            yield reply
        finally:
            if self._replies.get(sid) is reply:
                if previous is not None and previous.document is None:
                    self._replies[sid] = previous
                else:
                    del self._replies[sid]

    def remember_machine(self, sid: str, answered_by: str) -> None:
        self.machines[sid] = answered_by
        if len(self.machines) > PRICED_MEMORY:
            self.machines.popitem(last=False)

    async def answered_by(self, sid: str) -> str | None:
        """Answering machine detection's verdict on call `sid` as its Call resource keeps it (`answered_by`,
        https://www.twilio.com/docs/voice/api/call-resource); None when Twilio cannot tell now."""
        try:
            call = await self._fetch_call(sid)
        except ProviderError:
            return None
        return str(call.answered_by) if call is not None and call.answered_by else None

    async def _fetch_call(self, sid: str) -> Any:
        """GET /Calls/{sid}; None on a 404 (Twilio has no such call); ProviderError when it cannot tell."""
        client = await self._client()
        try:
            call = await client.calls(sid).fetch_async()
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise ProviderError(error_reason(exc), code=str(exc.code), permanent=False) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderError(unreachable(exc), permanent=False) from None
        return call

    def report_price_later(self, leg_id: str, sid: str, answered: bool, report: PriceReport) -> None:
        """Fetch the call's price with backoff until Twilio fills it in, then report it (once per call)."""
        if sid in self._priced:
            return
        self._priced[sid] = None
        if len(self._priced) > PRICED_MEMORY:
            self._priced.popitem(last=False)
        if not answered:  # Twilio does not bill a call nobody picked up
            self._spawn(report(PriceKnown(leg_id, sid, price=Decimal(0), unit=self.currency)))
            return
        if self.price_jobs is not None:
            self._spawn(self._keep_price_job(leg_id, sid))
            return
        self._spawn(self._fetch_price(leg_id, sid, report))

    async def _keep_price_job(self, leg_id: str, sid: str) -> None:
        assert self.price_jobs is not None
        await self.price_jobs(leg_id, sid)

    async def fetch_call_price(self, sid: str) -> tuple[Decimal, str] | None:
        """The call's price once Twilio has filled it in (None before, or when Twilio cannot be asked)."""
        client = await self._client()
        try:
            call = await client.calls(sid).fetch_async()
        except (TwilioRestException, TimeoutError, aiohttp.ClientError) as exc:
            log.info("fetching the price of %s: %r", sid, exc)
            return None
        price = as_decimal(call.price)
        return (abs(price), (call.price_unit or self.currency).upper()) if price is not None else None

    async def _fetch_price(self, leg_id: str, sid: str, report: PriceReport) -> None:
        for delay in self.price_delays:
            await asyncio.sleep(delay)
            priced = await self.fetch_call_price(sid)
            if priced is not None:
                await report(PriceKnown(leg_id, sid, price=priced[0], unit=priced[1]))
                return
        log.warning("Twilio gave no price for %s in time; the leg keeps no price", sid)

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background Twilio work failed")

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @metered("recordings")
    async def recordings(self, sid: str) -> list[str]:
        """Call `sid`'s completed recordings (GET /Recordings.json?CallSid=…,
        https://www.twilio.com/docs/voice/api/recording#read-multiple-recording-resources). A `<Dial
        record>` recording is on the parent call: a Recording's `call_sid` "will always refer to the
        parent leg of a two-leg call" (https://www.twilio.com/docs/voice/api/recording, its properties).
        Only a `completed` recording has media to fetch; one still `processing` is asked about again."""
        client = await self._client()
        try:
            found = await client.recordings.list_async(call_sid=sid, limit=20)
        except TwilioRestException as exc:
            raise ProviderError(error_reason(exc), code=str(exc.code), permanent=False) from None
        except TwilioException as exc:  # a list's page refused: the library raises its base exception
            raise page_refused(exc) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderError(unreachable(exc), permanent=False) from None
        return completed(found, self.api_base_url)

    async def stream_recording(self, url: str) -> tuple[str, AsyncIterator[bytes]]:
        """The recording's content type and its bytes as they arrive (`twilio_recordings.stream_media`)."""
        target = recording_address(self.api_base_url, url)
        return await stream_media(await self._session(), target, self._authorization(), self.timeout)

    async def fetch_recording(self, url: str) -> tuple[bytes, str]:
        """The recording's bytes and content type, fetched with the account's credentials."""
        target = recording_address(self.api_base_url, url)
        return await fetch_media(await self._session(), target, self._authorization(), self.timeout)

    async def _session(self) -> aiohttp.ClientSession:
        await self._client()
        assert self._http is not None and self._http.session is not None
        return self._http.session  # type: ignore[no-any-return]  # the library is untyped

    def _authorization(self) -> str:
        return basic_auth(self.account_sid, self._auth_token)
