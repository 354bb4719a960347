"""Real calls through Twilio, on the official `twilio` library's async client.

The manager's leg is created through the REST API; Twilio fetches its whisper (TwiML) from our webhooks
and reports its progress to them. Pressing 1 is answered, inside that same webhook, with a `<Dial>` to
the visitor. Webhooks (`server/twilio_hooks.py`) turn what Twilio posts into `dialer.events` with the
helpers below and hand them to the engine; what the engine then asks of this provider for a call whose
webhook is waiting for its reply becomes that reply rather than a second REST request. Replies are kept
by call (`awaiting`), not in the context of the task that happens to run the engine's step.

Creating a call is never retried blindly: a create whose answer was lost is looked up first.

Its length (about 840 lines): the REST side, the webhook parameters read into events and the TwiML
reply for the call being answered belong to one provider and are changed together. The webhook
parameter readers (`status_event`, `screen_event`, `dial_event`…) are pure and could move to a module of
their own; that split is still to do.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from dialer.config import ConfigError, Settings
from dialer.core.call_status import MACHINES, CallState, machine_ended
from dialer.core.events import (
    EventSink,
    LegAnswered,
    LegEnded,
    LegEvent,
    LegInitiated,
    LegRinging,
    PriceKnown,
)
from dialer.core.states import EndReason, LegRole
from dialer.core.texts import is_messaging_service
from dialer.telephony import twiml
from dialer.telephony.base import CallRequest, CallStatus, PlacedCall, ProviderError, metered
from dialer.telephony.redaction import quiet_library_loggers

log = logging.getLogger("ringback.twilio")

DEFAULT_TIMEOUT = 10.0  # seconds for one REST request; the library sets none
RETRY_DELAYS = (1.0, 2.0, 4.0)  # between attempts after a rate limit or an outage (each jittered)
CONCURRENT_REQUESTS = 10  # REST requests in flight at once (Twilio answers 20429 past its own limit)
PRICE_DELAYS = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 600.0)  # Twilio fills prices in late
FIND_SLACK = timedelta(seconds=5)  # our clock and Twilio's may disagree a little
PRICED_MEMORY = 10_000  # recent calls remembered so duplicated callbacks start no second price hunt

# Twilio error codes that mean "this number cannot be called": trying again cannot help.
NUMBER_REFUSED = {
    21211: "it is not a valid phone number",
    21214: "the number cannot be reached",
    13224: "the number is invalid or Twilio does not call it",
    21215: "calls to this country are not enabled in the Twilio account's geo permissions",
    13227: "calls to this country are not enabled in the Twilio account's geo permissions",
    21216: "the number is blocked by Twilio",
    21217: "the number is not a valid phone number",
}
# Twilio error codes that mean "this text cannot be sent": the sender or the recipient, not the moment.
SMS_REFUSED = {
    21601: "the sender cannot send texts (a verified caller ID is not an SMS-capable number): set the "
           "site's sms_sender",
    21606: "the sender is not an SMS-capable Twilio number for this destination: set the site's sms_sender",
    21610: "the visitor replied STOP to texts from this sender",
    21614: "the visitor's number is not a mobile number",
}
RECORDING_CHUNK = 64 * 1024  # bytes passed on at a time when a recording is streamed to the dashboard
WHISPER_ALLOWANCE = 120  # seconds of a manager's call before the bridge: ringing, the whisper, pressing 1
AUTH_FAILED = 20003
RATE_LIMITED = 20429
# The call is no longer in progress: it cannot be redirected (https://www.twilio.com/docs/api/errors/21220).
CALL_OVER_CODES = {21220}

_STATUS_ENDED = {
    "completed": EndReason.COMPLETED,
    "busy": EndReason.BUSY,
    "no-answer": EndReason.NO_ANSWER,
    "failed": EndReason.FAILED,
    "canceled": EndReason.CANCELED,
}

PriceReport = Callable[[LegEvent], Awaitable[None]]


def _basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class _TimedHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # the library is untyped: Any to mypy
    """The library's async client with two fixes: it only applies a timeout its caller passes per request,
    so we always pass one; and it builds aiohttp's deprecated `BasicAuth`, so we send the header instead.
    And a cap: at most `concurrent` requests in flight; the others wait their turn here (Twilio refuses
    requests past the account's concurrency with 20429: https://www.twilio.com/docs/api/errors/20429)."""

    def __init__(self, *, timeout: float, concurrent: int = CONCURRENT_REQUESTS) -> None:
        super().__init__(timeout=timeout)
        self._in_flight = asyncio.Semaphore(concurrent)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if auth is not None:
            headers = {**(headers or {}), "Authorization": _basic_auth(*auth)}
        async with self._in_flight:
            return await super().request(
                method, url, params, data, headers, None, timeout or self.timeout, allow_redirects
            )


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
        self._http: _TimedHttpClient | None = None
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
            self._http = _TimedHttpClient(timeout=self.timeout, concurrent=self.concurrent_requests)
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
            raise ProviderError(_reason(exc), code=str(exc.code), permanent=False) from None
        except TwilioException as exc:  # a list's page refused (a 429, a 500): the library's base exception
            raise _page_refused(exc) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Without an answer we cannot know whether the call exists: never guess "no" and dial.
            raise ProviderError(_unreachable(exc), permanent=False) from None
        return _lost_create(calls, request, since)

    @metered("call_status")
    async def call_status(self, sid: str) -> CallStatus | None:
        """The call as Twilio has it now (GET /Calls/{sid}, https://www.twilio.com/docs/voice/api/call-resource):
        its `status` (queued, ringing, in-progress, canceled, completed, failed, busy, no-answer), its
        `duration` in seconds once over, and `answered_by` where answering machine detection ran (the
        visitor's `<Number>`). A 404 (error 20404): Twilio has no such call."""
        call = await self._fetch_call(sid)
        if call is None:
            return None
        return fetched_status(str(call.status or ""), call.answered_by, _int(call.duration))

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
            log.info("hanging up %s: %s", sid, _reason(exc))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderError(_unreachable(exc), permanent=False) from None

    @metered("send_text")
    async def send_text(self, to: str, body: str, sender: str | None = None, *,
                        text_id: str | None = None) -> str | None:
        if not sender:
            raise ProviderError("the site has no SMS sender: set its sms_sender (a Twilio number or Messaging "
                                "Service SID) or caller ID", permanent=True)
        return await self._send_message(_message_params(to, body, sender, self._sms_status_url(text_id)))

    # text messages ----------------------------------------------------------------------------------

    def _sms_status_url(self, text_id: str | None) -> str | None:
        if not text_id:
            return None
        return f"{self.hooks.public_url.rstrip('/')}{twiml.HOOKS_PATH}/sms/status?{urlencode({'text': text_id})}"

    async def _send_message(self, params: dict[str, Any]) -> str:
        """Create the message; a refusal that cannot change (the sender, the number, an opt-out) is not
        tried again, a rate limit or server error is, and a lost answer is never resent (it may be out)."""
        client = await self._client()
        for delay in (*self.retry_delays, None):
            try:
                message = await client.messages.create_async(**params)
                return str(message.sid)
            except TwilioRestException as exc:
                if exc.code in SMS_REFUSED or exc.code in NUMBER_REFUSED:
                    why = SMS_REFUSED.get(exc.code) or NUMBER_REFUSED[exc.code]
                    raise ProviderError(f"Twilio refused the text: {why} (error {exc.code})", code=str(exc.code),
                                        permanent=True) from None
                if not _transient(exc) or delay is None:
                    raise ProviderError(_reason(exc), code=str(exc.code), permanent=not _transient(exc),
                                        rate_limited=_reason(exc) == _RATE_LIMITED_REASON) from None
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise ProviderError(_unreachable(exc), permanent=False) from None
            await asyncio.sleep(_jittered(delay))
        raise AssertionError("unreachable")  # the last attempt returns or raises

    async def fetch_text_price(self, sid: str) -> tuple[Decimal, str] | None:
        """The message's price once Twilio has filled it in (None before)."""
        client = await self._client()
        try:
            message = await client.messages(sid).fetch_async()
        except (TwilioRestException, TimeoutError, aiohttp.ClientError) as exc:
            log.info("fetching the price of message %s: %r", sid, exc)
            return None
        price = _decimal(message.price)
        return (abs(price), (message.price_unit or self.currency).upper()) if price is not None else None

    # calls ------------------------------------------------------------------------------------------

    async def _create(self, request: CallRequest) -> str | None:
        if not request.caller_id:
            raise ProviderError(
                "the site has no caller ID: set one with `ringback site add --caller-id` (a Twilio number "
                "or a verified caller ID)",
                permanent=False,
            )
        client = await self._client()
        params: dict[str, Any] = {
            "to": request.to,
            "from_": request.caller_id,
            "url": self.hooks.url("whisper", request.leg_id),
            "method": "POST",
            "fallback_url": self.hooks.url("fallback", request.leg_id),
            "fallback_method": "POST",
            "status_callback": self.hooks.url("status", request.leg_id),
            "status_callback_event": ["initiated", "ringing", "answered", "completed"],
            "status_callback_method": "POST",
            "timeout": request.timeout,
        }
        params.update(_time_limit(request))
        started = datetime.now(UTC)
        failure = "no attempt made"
        for delay in (*self.retry_delays, None):
            try:
                call = await client.calls.create_async(**params)
                return _placed(call)
            except TwilioRestException as exc:
                if exc.code in NUMBER_REFUSED:
                    raise ProviderError(
                        f"Twilio refused {request.to}: {NUMBER_REFUSED[exc.code]} (error {exc.code})",
                        code=str(exc.code),
                        permanent=True,
                    ) from None
                if not _transient(exc):
                    raise ProviderError(_reason(exc), code=str(exc.code), permanent=False) from None
                failure = _reason(exc)
                if exc.status >= 500:  # the create may have gone through before the error
                    sid = await self._look_up(request, started)
                    if sid is not None:
                        return sid
            except (TimeoutError, aiohttp.ClientError) as exc:
                # The request may have reached Twilio and the call be ringing: look before anything else.
                sid = await self._look_up(request, started)
                if sid is not None:
                    return sid
                if not isinstance(exc, aiohttp.ClientConnectorError):
                    # Not found yet, but it may still appear: leave the leg unconfirmed. Its own status
                    # callbacks (they carry our leg id) or the engine's later look-up settle it.
                    log.warning("creating the call for leg %s timed out; not dialing again", request.leg_id)
                    return None
                failure = _unreachable(exc)
            if delay is None:
                break
            delay = _jittered(delay)
            log.info("creating the call for leg %s failed (%s); again in %.1f s", request.leg_id, failure, delay)
            await asyncio.sleep(delay)
        raise ProviderError(f"{failure}, after {len(self.retry_delays) + 1} attempts", permanent=False,
                            rate_limited=failure == _RATE_LIMITED_REASON)

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
        return await self._redirect(request, request.bridge_sid, document)

    async def _redirect(self, request: CallRequest, sid: str, document: str) -> str | None:
        """The manager's call (on hold: its key press was answered before the `<Dial>` was ready) told to
        dial the visitor. A rate limit or a server error is tried again; a lost answer never is (the
        redirect may have been made: a second would ring the visitor twice)."""
        client = await self._client()
        started = datetime.now(UTC)
        failure = "no attempt made"
        for delay in (*self.retry_delays, None):
            try:
                await client.calls(sid).update_async(twiml=document)
                return None
            except TwilioRestException as exc:
                if exc.status == 404 or exc.code in CALL_OVER_CODES:
                    raise ProviderError(f"the manager's call ended before the visitor was dialed ({_reason(exc)})",
                                        code=str(exc.code), permanent=False, call_over=True) from None
                if not _transient(exc):
                    raise ProviderError(_reason(exc), code=str(exc.code), permanent=False) from None
                failure = _reason(exc)
                if exc.status >= 500:  # the redirect may have been made before the error
                    found = await self._look_up(request, started)
                    if found is not None:
                        return found
            except (TimeoutError, aiohttp.ClientError) as exc:
                if not isinstance(exc, aiohttp.ClientConnectorError):
                    # Left unconfirmed: the visitor's callbacks (they carry our leg id), or the question
                    # asked at the visitor's deadline, settle it.
                    log.warning("redirecting the call for leg %s timed out; not redirecting again", request.leg_id)
                    return None
                failure = _unreachable(exc)  # never sent: safe to send again
            if delay is None:
                break
            await asyncio.sleep(_jittered(delay))
        raise ProviderError(f"{failure}, after {len(self.retry_delays) + 1} attempts", permanent=False,
                            rate_limited=failure == _RATE_LIMITED_REASON)

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
            raise ProviderError(_reason(exc), code=str(exc.code), permanent=False) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderError(_unreachable(exc), permanent=False) from None
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
        price = _decimal(call.price)
        return (abs(price), (call.price_unit or self.currency).upper()) if price is not None else None

    async def _fetch_price(self, leg_id: str, sid: str, report: PriceReport) -> None:
        client = await self._client()
        for delay in self.price_delays:
            await asyncio.sleep(delay)
            try:
                call = await client.calls(sid).fetch_async()
            except (TwilioRestException, TimeoutError, aiohttp.ClientError) as exc:
                log.info("fetching the price of %s: %r", sid, exc)
                continue
            price = _decimal(call.price)
            if price is not None:
                await report(PriceKnown(leg_id, sid, price=abs(price), unit=(call.price_unit or self.currency).upper()))
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
            raise ProviderError(_reason(exc), code=str(exc.code), permanent=False) from None
        except TwilioException as exc:  # a list's page refused: the library raises its base exception
            raise _page_refused(exc) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderError(_unreachable(exc), permanent=False) from None
        done = [r for r in found if r.status == "completed" and (r.media_url or r.uri)]
        done.sort(key=lambda r: r.date_created or datetime.min.replace(tzinfo=UTC))
        return [self._media_address(r.media_url, r.uri) for r in done]

    def _media_address(self, media_url: str | None, uri: str | None) -> str:
        """The recording's media as the recording callback's `RecordingUrl` names it: its `media_url`, or
        its `uri` (relative to the API's host) without `.json`."""
        if media_url:
            return media_url
        base = (self.api_base_url or "https://api.twilio.com").rstrip("/")
        return f"{base}{(uri or '').removesuffix('.json')}"

    async def stream_recording(self, url: str) -> tuple[str, AsyncIterator[bytes]]:
        """The recording's content type and its bytes as they arrive (a dual-channel WAV is large: it is
        never held whole in memory). Raises `ProviderError` before the first byte when it cannot be had."""
        target = self._recording_address(url)
        await self._client()
        assert self._http is not None and self._http.session is not None
        headers = {"Authorization": _basic_auth(self.account_sid, self._auth_token)}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout)
        try:
            response = await self._http.session.get(target, headers=headers, timeout=timeout)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderError(f"the recording could not be fetched ({type(exc).__name__})", permanent=False) from None
        if response.status != 200:
            response.release()
            raise ProviderError(f"Twilio answered {response.status} for the recording", permanent=False)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.content.iter_chunked(RECORDING_CHUNK):
                    yield chunk
            finally:
                response.release()

        return response.headers.get("Content-Type", "audio/wav"), chunks()

    def _recording_address(self, url: str) -> str:
        """Only addresses on the Twilio API's own host are fetched, so the credentials go nowhere else."""
        base = urlsplit(self.api_base_url or "https://api.twilio.com")
        target = urlsplit(url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise ProviderError(f"not a Twilio recording address: {url}", permanent=True)
        return url

    async def fetch_recording(self, url: str) -> tuple[bytes, str]:
        """The recording's bytes and content type, fetched with the account's credentials.

        Only addresses on the Twilio API's own host are fetched, so the credentials go nowhere else.
        """
        base = urlsplit(self.api_base_url or "https://api.twilio.com")
        target = urlsplit(url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise ProviderError(f"not a Twilio recording address: {url}", permanent=True)
        await self._client()
        assert self._http is not None and self._http.session is not None
        headers = {"Authorization": _basic_auth(self.account_sid, self._auth_token)}
        timeout = aiohttp.ClientTimeout(total=self.timeout * 6)  # recordings can be a few megabytes
        try:
            async with self._http.session.get(url, headers=headers, timeout=timeout) as response:
                if response.status != 200:
                    raise ProviderError(f"Twilio answered {response.status} for the recording", permanent=False)
                return await response.read(), response.headers.get("Content-Type", "audio/wav")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderError(f"the recording could not be fetched ({type(exc).__name__})", permanent=False) from None


def _page_refused(exc: TwilioException) -> ProviderError:
    """A list request Twilio refused: the library raises `TwilioException("Unable to fetch page",
    response)` rather than a `TwilioRestException`; the response's JSON carries Twilio's code."""
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    try:
        code = json.loads(getattr(response, "text", "") or "{}").get("code")
    except (ValueError, AttributeError):
        code = None
    return ProviderError(f"Twilio answered {status} to a list request", code=str(code) if code else None,
                         permanent=False)


# what Twilio posts, as dialer events -----------------------------------------------------------------


def status_event(leg_id: str, form: Mapping[str, str]) -> LegEvent | None:
    """A call status callback (manager legs, and the visitor's ringing)."""
    return _callback_event(leg_id, form.get("CallSid"), form.get("CallStatus", ""), form.get("AnsweredBy"),
                           _int(form.get("CallDuration")), detail=_error_detail(form))


def _callback_event(
    leg_id: str, sid: str | None, status: str, answered_by: str | None, duration: int | None,
    detail: str | None = None,
) -> LegEvent | None:
    """A status callback's `CallStatus` as a report on the leg."""
    machine = answered_by in MACHINES
    if status == "ringing":
        return LegRinging(leg_id, sid)
    if status == "initiated":
        # Twilio took the call out of the account's queue and dials it: the ring deadline counts from now
        # (the `initiated` event carries CallStatus=initiated: twilio/twilio-java#321).
        return LegInitiated(leg_id, sid)
    if status == "in-progress":
        return machine_ended(leg_id, sid, answered_by) if machine else LegAnswered(leg_id, sid)
    if status in _STATUS_ENDED:
        if machine:
            return machine_ended(leg_id, sid, answered_by)
        return LegEnded(leg_id, sid, reason=_STATUS_ENDED[status], duration=duration, detail=detail)
    return None  # queued: the sid is known from the create


def fetched_status(status: str, answered_by: str | None, duration: int | None) -> CallStatus:
    """A fetched call's `status`, `answered_by` and `duration` as a `CallStatus`. Twilio's `completed` is a
    call that was answered and then ended (https://www.twilio.com/docs/voice/api/call-resource#call-status-values);
    `queued` (and `initiated`, which callbacks carry) one not ringing yet."""
    answered_by = answered_by or None
    if status in _STATUS_ENDED:
        return CallStatus(CallState.ENDED, reason=_STATUS_ENDED[status], duration=duration,
                          answered=status == "completed", answered_by=answered_by)
    if status == "in-progress":
        return CallStatus(CallState.IN_PROGRESS, answered=True, answered_by=answered_by)
    if status == "ringing":
        return CallStatus(CallState.RINGING)
    return CallStatus(CallState.QUEUED)


def screen_event(leg_id: str, form: Mapping[str, str]) -> LegEvent:
    """The visitor's `<Number url>` fetch, after answering machine detection: a person (or detection could
    not tell) is the visitor's answer; a machine ends the leg as their voicemail."""
    answered_by = form.get("AnsweredBy")
    if answered_by in MACHINES:
        return machine_ended(leg_id, form.get("CallSid"), answered_by)
    return LegAnswered(leg_id, form.get("CallSid"))


def dial_event(leg_id: str, form: Mapping[str, str], answered_by: str | None = None) -> LegEnded:
    """The Dial action (https://www.twilio.com/docs/voice/twiml/dial#action): how the visitor's call ended.
    `DialBridged=false` with `completed`: the visitor's phone answered but was never connected to the
    manager (their voicemail, hung up on by our screen, or a hang-up during it) — never a conversation."""
    status = form.get("DialCallStatus", "failed")
    code = _int(form.get("ErrorCode"))
    sid = form.get("DialCallSid")
    detail: str | None
    if answered_by in MACHINES:
        return machine_ended(leg_id, sid, answered_by)
    if code in NUMBER_REFUSED:
        reason, detail = EndReason.REJECTED, f"{NUMBER_REFUSED[code]} (error {code})"
    elif status in ("completed", "answered") and dial_bridged(form) is False:
        reason, detail = EndReason.NO_ANSWER, "answered, but never connected to the manager"
    else:
        reason = EndReason.COMPLETED if status == "answered" else _STATUS_ENDED.get(status, EndReason.FAILED)
        detail = _error_detail(form)
    return LegEnded(leg_id, sid, reason=reason, duration=_int(form.get("DialCallDuration")), detail=detail,
                    bridged=dial_bridged(form))


def dial_bridged(form: Mapping[str, str]) -> bool | None:
    """Whether the Dial's two parties were connected (`DialBridged`); None where it is missing, and the
    visitor's duration must tell (`dialer.core.legs.judged_bridge`)."""
    bridged = form.get("DialBridged")
    return None if bridged is None else bridged.lower() == "true"


def _error_detail(form: Mapping[str, str]) -> str | None:
    code = form.get("ErrorCode")
    if not code:
        return None
    message = form.get("ErrorMessage") or "Twilio reported an error"
    return f"{message} (error {code})"


def _transient(exc: TwilioRestException) -> bool:
    """Worth another try: a rate limit or a server error. Refused credentials are not (401, 20003):
    trying again cannot fix them, and repeated failures can get an account locked."""
    if exc.status == 401 or exc.code == AUTH_FAILED:
        return False
    return bool(exc.status == 429 or exc.status >= 500 or exc.code == RATE_LIMITED)


_RATE_LIMITED_REASON = "Twilio's rate limit was reached"


def _jittered(delay: float) -> float:
    """A retry delay spread over [delay/2, delay·3/2), so that many callers refused at once do not all
    come back at the same moment."""
    return delay * random.uniform(0.5, 1.5)  # noqa: S311 - timing jitter, not a secret


def _message_params(to: str, body: str, sender: str, status_callback: str | None) -> dict[str, Any]:
    """A Messaging Service SID is sent as `MessagingServiceSid`, a number as `From`
    (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource)."""
    params: dict[str, Any] = {"to": to, "body": body}
    if is_messaging_service(sender):
        params["messaging_service_sid"] = sender
    else:
        params["from_"] = sender
    if status_callback:
        params["status_callback"] = status_callback
    return params


def _lost_create(calls: list[Any], request: CallRequest, since: datetime) -> str | None:
    """The call a lost create placed for this request, matched on From (the caller ID), To, time (created
    since the leg was written, give or take our clocks' disagreement) and status: a call still under way
    before one that is over, the newest first. (The engine then makes sure no other leg has it.)"""
    def matches(call: Any) -> bool:
        if call.to not in (None, request.to):
            return False
        caller = getattr(call, "_from", None)  # the library keeps `from` as `_from`
        if request.role is LegRole.MANAGER and request.caller_id and caller not in (None, request.caller_id):
            return False
        return call.date_created is None or call.date_created >= since - FIND_SLACK

    found = [c for c in calls if matches(c)]
    found.sort(key=lambda c: (c.status in _LIVE, c.date_created or since))
    return str(found[-1].sid) if found else None


_LIVE = {"queued", "initiated", "ringing", "in-progress"}


def _time_limit(request: CallRequest) -> dict[str, int]:
    """`TimeLimit` on the manager's call: the bridged conversation's limit plus the ring and whisper before
    it, so Twilio ends a call our own deadline could not (https://www.twilio.com/docs/voice/api/call-resource;
    Twilio's default is 4 hours, at most 24)."""
    if request.time_limit is None:
        return {}
    return {"time_limit": min(86_400, request.time_limit + WHISPER_ALLOWANCE)}


def _placed(call: Any) -> PlacedCall:
    """The created call's sid, with Twilio's estimate of its wait in the account's queue (`queue_time`,
    milliseconds: https://www.twilio.com/docs/voice/api/call-resource)."""
    try:
        queued = max(0.0, float(call.queue_time or 0) / 1000.0)
    except (TypeError, ValueError):
        queued = 0.0
    return PlacedCall(str(call.sid), queued)


def _reason(exc: TwilioRestException) -> str:
    if exc.status == 401 or exc.code == AUTH_FAILED:
        return "Twilio refused the credentials: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
    if exc.status == 429 or exc.code == RATE_LIMITED:
        return _RATE_LIMITED_REASON
    if exc.status >= 500:
        return f"Twilio had a server error (HTTP {exc.status})"
    message = exc.msg or "Twilio refused the request"
    return f"{message} (error {exc.code})" if exc.code else message


def _unreachable(exc: BaseException) -> str:
    return f"Twilio could not be reached ({type(exc).__name__})"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _decimal(value: object) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
