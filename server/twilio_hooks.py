"""Twilio's webhooks under /telephony/twilio/…: call progress, the whisper, the key press, the Dial's
outcome, recordings.

Every request's `X-Twilio-Signature` is checked against `RINGBACK_PUBLIC_URL` + path + query (the address
Twilio was given, so it holds behind a proxy); anything else gets 403 and changes nothing. Events are
applied in this process through the engine, which locks the lead: duplicated or out-of-order callbacks
find the leg already past that point and change nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dialer import metrics
from dialer.core.events import KeyPressed, LegAnswered, LegEnded, LegEvent, RecordingReady
from dialer.core.states import TERMINAL, LegStatus
from dialer.core.whisper import said_source, whisper_text
from dialer.db.models import CallLeg, Lead, Site
from dialer.runtime import Runtime
from dialer.telephony import twiml
from dialer.telephony.twilio import TwilioProvider, dial_event, status_event

log = logging.getLogger("ringback.twilio_hooks")

TWIML = "application/xml"


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def _verified(request: Request) -> tuple[Runtime, TwilioProvider, str, dict[str, str]]:
    """The runtime, the provider, our leg id and the posted form of a genuine Twilio request."""
    runtime: Runtime = request.app.state.runtime
    provider = runtime.provider
    if not isinstance(provider, TwilioProvider):
        raise _Refused(PlainTextResponse("Twilio is not the telephony provider here.", status_code=404))
    form = {key: str(value) for key, value in (await request.form()).items()}
    query = request.url.query
    url = runtime.settings.public_url + request.url.path + (f"?{query}" if query else "")
    if not provider.signature_ok(url, form, request.headers.get("x-twilio-signature")):
        log.warning("refused a Twilio webhook with a missing or wrong signature: %s", request.url.path)
        raise _Refused(PlainTextResponse("Invalid Twilio signature.", status_code=403))
    leg_id = request.query_params.get("leg", "")
    if request.url.path != f"{twiml.HOOKS_PATH}/notice" and not leg_id:
        raise _Refused(PlainTextResponse("The leg parameter is missing.", status_code=400))
    return runtime, provider, leg_id, form


def _twiml(document: str) -> Response:
    return Response(document, media_type=TWIML)


_Handler = Callable[[Request, Runtime, TwilioProvider, str, dict[str, str]], Awaitable[Response]]


def _hook(name: str, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started, code = time.perf_counter(), "500"
        try:
            try:
                response = await handler(request, *await _verified(request))
            except _Refused as refused:
                response = refused.response
            code = str(response.status_code)
            return response
        finally:  # how long Twilio waited for our answer
            metrics.WEBHOOK_SECONDS.labels(name, code).observe(time.perf_counter() - started)

    return endpoint


async def _status(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    event = status_event(leg_id, form)
    if event is not None:
        await runtime.engine.on_provider_event(event)
        if isinstance(event, LegEnded) and event.sid:
            answered = form.get("CallStatus") == "completed"
            provider.report_price_later(leg_id, event.sid, answered, runtime.engine.on_provider_event)
    return Response(status_code=204)


async def _whisper(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    async with runtime.sessions() as session:
        found = (
            await session.execute(
                select(CallLeg, Lead, Site).join(Lead, Lead.id == CallLeg.lead_id).join(Site, Site.id == Lead.site_id)
                .where(CallLeg.id == leg_id)
            )
        ).first()
    if found is None:
        return _twiml(twiml.say_and_hang_up(None))
    leg, lead, site = found
    if leg.status == LegStatus.ENDED or lead.status in TERMINAL:  # we gave up on this call meanwhile
        return _twiml(twiml.say_and_hang_up(twiml.NOT_NEEDED))
    source = lead.source or {}
    text = whisper_text(site.name, said_source(source), lead.timezone, runtime.clock.now(),
                        returning=bool(source.get("returning")))
    return _twiml(twiml.whisper(text, provider.hooks.url("gather", leg_id)))


async def _gather(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    digits, sid = form.get("Digits", ""), form.get("CallSid", "")
    with provider.answering(sid) as reply:
        await runtime.engine.on_provider_event(KeyPressed(leg_id, sid or None, digits=digits))
    if reply.document is not None:  # the engine dialed the visitor into this call
        return _twiml(reply.document)
    return _twiml(twiml.say_and_hang_up(twiml.NOT_NEEDED if digits.startswith("1") else twiml.GOODBYE))


async def _dial(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    ended = dial_event(leg_id, form)
    events: list[LegEvent] = [ended]
    if form.get("DialCallStatus") in ("completed", "answered"):
        # The visitor's "answered" callback may come late or not at all; the Dial's word is enough.
        events.insert(0, LegAnswered(leg_id, ended.sid))
    with provider.answering(form.get("CallSid", "")) as reply:
        for event in events:
            await runtime.engine.on_provider_event(event)
    if ended.sid:
        answered = form.get("DialCallStatus") in ("completed", "answered")
        provider.report_price_later(leg_id, ended.sid, answered, runtime.engine.on_provider_event)
    return _twiml(reply.document or twiml.say_and_hang_up(None))


async def _recording(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    url = form.get("RecordingUrl")
    if form.get("RecordingStatus", "completed") == "completed" and url:
        # No sid: this callback's CallSid is the manager's call, not the visitor's leg it is kept on.
        await runtime.engine.on_provider_event(RecordingReady(leg_id, None, url=url))
    return Response(status_code=204)


async def _notice(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    return _twiml(twiml.notice())


routes = [
    Route(f"{twiml.HOOKS_PATH}/{name}", _hook(name, handler), methods=["POST"])
    for name, handler in {
        "status": _status,
        "whisper": _whisper,
        "gather": _gather,
        "dial": _dial,
        "recording": _recording,
        "notice": _notice,
    }.items()
]
