"""Twilio's webhooks under /telephony/twilio/…: call progress, the whisper, the key press, a manager's hold,
the visitor's screen (answering machine detection), the Dial's outcome, recordings, and the calls' fallback
URL.

Every request's `X-Twilio-Signature` is checked against `RINGBACK_PUBLIC_URL` + path + query (the address
Twilio was given, so it holds behind a proxy); anything else gets 403 and changes nothing. Events are
applied in this process through the engine, which locks the lead: duplicated or out-of-order callbacks
find the leg already past that point and change nothing.

Twilio waits 15 s in all for a webhook's answer (https://www.twilio.com/docs/errors/11205). Every webhook
here answers within `DEADLINE`: when its work takes longer, it answers with safe TwiML and the work goes on
behind (the event still reaches the engine). The key press is answered with the `<Dial>` to the visitor
itself as soon as the engine has claimed that leg, before the other managers are hung up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dialer import metrics
from dialer.core.events import KeyPressed, LegAnswered, LegEnded, LegEvent, RecordingReady
from dialer.core.states import TERMINAL, EndReason, LegStatus
from dialer.core.whisper import said_source, whisper_text
from dialer.db.models import CallLeg, Lead, Site
from dialer.retrying import database_down
from dialer.runtime import Runtime
from dialer.telephony import twiml
from dialer.telephony.twilio import TwilioProvider
from dialer.telephony.twilio_reports import dial_bridged, dial_event, screen_event, status_event

log = logging.getLogger("ringback.twilio_hooks")

TWIML = "application/xml"
DEADLINE = 10.0  # seconds a webhook may take before it answers safe TwiML (Twilio gives up at 15)
PRESS_DEADLINE = 8.0  # seconds the key press waits for its <Dial> before the manager is put on hold
SCREEN_ASK_SECONDS = 3.0  # the screen asks Twilio for a detection verdict its request lacked, this long
HOLD_ASK_SECONDS = 2.0  # a round of the hold asks the database whether the lead moved on, this long
_behind: set[asyncio.Future[object]] = set()  # work that outlived its webhook's deadline


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
_Safe = Callable[[TwilioProvider, str], Response]


def _no_content(provider: TwilioProvider, leg_id: str) -> Response:
    return Response(status_code=204)


def _hook(name: str, handler: _Handler, safe: _Safe = _no_content) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started, code = time.perf_counter(), "500"
        try:
            try:
                runtime, provider, leg_id, form = await _verified(request)
            except _Refused as refused:
                code = str(refused.response.status_code)
                return refused.response
            work = asyncio.ensure_future(handler(request, runtime, provider, leg_id, form))
            try:
                response = await asyncio.wait_for(asyncio.shield(work), DEADLINE)
            except TimeoutError:
                log.warning("Twilio webhook %s took over %.0f s: answered safely, its work goes on",
                            request.url.path, DEADLINE)
                _keep(work)
                response = safe(provider, leg_id)
            code = str(response.status_code)
            return response
        finally:  # how long Twilio waited for our answer
            metrics.WEBHOOK_SECONDS.labels(name, code).observe(time.perf_counter() - started)

    return endpoint


def _keep(work: asyncio.Future[object]) -> None:
    _behind.add(work)

    def done(finished: asyncio.Future[object]) -> None:
        _behind.discard(finished)
        if not finished.cancelled() and finished.exception() is not None:
            log.error("Twilio webhook work failed", exc_info=finished.exception())

    work.add_done_callback(done)


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


def _safe_whisper(provider: TwilioProvider, leg_id: str) -> Response:
    return _twiml(twiml.whisper(twiml.SAFE_WHISPER, provider.hooks.url("gather", leg_id)))


async def _gather(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    digits, sid = form.get("Digits", ""), form.get("CallSid", "")
    pressed = KeyPressed(leg_id, sid or None, digits=digits)
    if not digits.startswith("1"):
        await runtime.engine.on_provider_event(pressed)
        return _twiml(twiml.say_and_hang_up(twiml.GOODBYE))
    with provider.awaiting(sid) as reply:
        # The reply is this call's own: whichever of the engine's tasks dials the visitor into this call
        # writes it here, while the other managers' hang-ups wait until it is written.
        stepped = asyncio.ensure_future(runtime.engine.report(pressed))
        written = asyncio.ensure_future(reply.written.wait())
        await asyncio.wait({stepped, written}, timeout=PRESS_DEADLINE, return_when=asyncio.FIRST_COMPLETED)
        written.cancel()
        document = reply.document
    if not stepped.done():
        _keep(stepped)
    if document is not None:
        return _twiml(document)
    if stepped.done() and stepped.exception() is None and not stepped.result():
        return _twiml(twiml.say_and_hang_up(twiml.NOT_NEEDED))  # applied: this manager was not connected
    # Not applied yet (still being stepped, or held for the database): the press stands, the manager waits.
    log.warning("the key press on leg %s was not answered within %.0f s: on hold", leg_id, PRESS_DEADLINE)
    return _twiml(twiml.hold(provider.hooks, leg_id))


def _safe_gather(provider: TwilioProvider, leg_id: str) -> Response:
    return _twiml(twiml.hold(provider.hooks, leg_id))


async def _hold(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    """A round of a manager's hold, asked for by the `<Redirect>` that ended the round before: one more pause,
    until the engine's REST redirect (the visitor's `<Dial>`) replaces it, the lead moves on, or the hold
    reaches its bound (a polite goodbye; the call's end then tells the engine the manager left)."""
    round_ = _round(request.query_params.get("round"))
    if round_ is None:
        return PlainTextResponse("The round parameter must be a whole number from 1.", status_code=400)
    if round_ >= twiml.HOLD_ROUNDS:
        log.warning("the manager on leg %s was on hold for %d s: the call is ended", leg_id,
                    twiml.HOLD_ROUNDS * twiml.HOLD_PAUSE_SECONDS)
        return _twiml(twiml.hold_over())
    if await _moved_on(runtime, leg_id):
        return _twiml(twiml.say_and_hang_up(twiml.NOT_NEEDED))
    return _twiml(twiml.hold(provider.hooks, leg_id, round_))


async def _moved_on(runtime: Runtime, leg_id: str) -> bool:
    """Whether the held manager's leg has ended or its lead is over. Unknown (the database away, or slow) is
    not moved on: the manager stays on hold, since their press may be applied yet."""

    async def ask() -> bool:
        async with runtime.sessions() as session:
            found = (await session.execute(
                select(CallLeg.status, Lead.status).join(Lead, Lead.id == CallLeg.lead_id).where(CallLeg.id == leg_id)
            )).first()
        return found is None or found[0] == LegStatus.ENDED or found[1] in TERMINAL

    try:
        return await asyncio.wait_for(ask(), HOLD_ASK_SECONDS)
    except Exception as exc:
        if not database_down(exc):
            raise
        return False


def _round(value: str | None) -> int | None:
    number = _int(value)
    return number if number is not None and number >= 1 else None


def _safe_hold(provider: TwilioProvider, leg_id: str) -> Response:
    # The round is not known here: the last one, so the hold stays bounded.
    return _twiml(twiml.hold(provider.hooks, leg_id, twiml.HOLD_ROUNDS - 1))


async def _screen(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    """The visitor's `<Number url>`: fetched once they answered and answering machine detection decided."""
    if not form.get("AnsweredBy") and form.get("CallSid"):
        # Twilio's documentation does not say which requests of a <Dial><Number> leg carry `AnsweredBy`:
        # without it here, the verdict is read from the call itself before anyone is bridged.
        try:
            verdict = await asyncio.wait_for(provider.answered_by(form["CallSid"]), SCREEN_ASK_SECONDS)
        except TimeoutError:
            verdict = None
        form = {**form, "AnsweredBy": verdict} if verdict else form
    event = screen_event(leg_id, form)
    person = isinstance(event, LegAnswered)
    if not person and event.sid:
        provider.remember_machine(event.sid, form.get("AnsweredBy", ""))
    if person:
        # Answered at once: the bridge follows this reply, and a manager kept waiting might hang up first.
        _keep(asyncio.ensure_future(runtime.engine.on_provider_event(event)))
        return _twiml(twiml.screened(True, record=request.query_params.get("record") == "1"))
    # Applied before answering: the manager's call is told (one sentence) before the machine is hung up on.
    await runtime.engine.on_provider_event(event)
    if event.sid:
        provider.report_price_later(leg_id, event.sid, True, runtime.engine.on_provider_event)
    return _twiml(twiml.screened(person, record=request.query_params.get("record") == "1"))


def _safe_screen(provider: TwilioProvider, leg_id: str) -> Response:
    return _twiml(twiml.screened(True, record=False))


async def _dial(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    sid = form.get("CallSid", "")
    # The visitor's verdict as the screen learnt it; or, should the action carry one, that (the manager's
    # own call runs no detection, so it could only be the visitor's).
    machine = provider.machines.get(form.get("DialCallSid", "")) or form.get("AnsweredBy")
    ended = dial_event(leg_id, form, machine)
    events: list[LegEvent] = []
    manager_leg = request.query_params.get("bridge")
    manager_gone = form.get("CallStatus") in ("completed", "canceled", "failed", "busy", "no-answer")
    bridged = dial_bridged(form)  # None: not said; a completed Dial's duration then tells (core.legs)
    unbridged = bridged is False or (bridged is None and ended.reason is not EndReason.COMPLETED)
    if manager_gone and unbridged and ended.reason is not EndReason.VOICEMAIL:
        # The manager's call ended before the visitor was connected (while they rang, or in the instant
        # between the screen's answer and the bridge): the Dial was cut short by it.
        ended = LegEnded(leg_id, ended.sid, reason=EndReason.CANCELED, duration=ended.duration,
                         detail="the manager hung up before the visitor was connected", bridged=False)
    if ended.reason is EndReason.COMPLETED and bridged is not False:
        # The visitor's answer came from the screen; should that have been lost, the Dial's word is enough.
        events.append(LegAnswered(leg_id, ended.sid))
    events.append(ended)
    if manager_leg and manager_gone:
        # The manager's own call is over (their status callback may come late, or never). Said after the
        # visitor's end, so that "never connected" is known before the manager's leg is seen to end.
        events.append(LegEnded(manager_leg, sid or None, reason=EndReason.COMPLETED,
                               duration=_int(form.get("CallDuration"))))
    with provider.awaiting(sid) as reply:
        for event in events:
            await runtime.engine.on_provider_event(event)
        document = reply.document
    if ended.sid:
        answered = ended.reason in (EndReason.COMPLETED, EndReason.VOICEMAIL)
        provider.report_price_later(leg_id, ended.sid, answered, runtime.engine.on_provider_event)
    return _twiml(document or twiml.say_and_hang_up(None))


def _safe_hangup(provider: TwilioProvider, leg_id: str) -> Response:
    return _twiml(twiml.say_and_hang_up(None))


async def _recording(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    url = form.get("RecordingUrl")
    if form.get("RecordingStatus", "completed") == "completed" and url:
        # No sid: this callback's CallSid is the manager's call, not the visitor's leg it is kept on.
        await runtime.engine.on_provider_event(RecordingReady(leg_id, None, url=url))
    return Response(status_code=204)


async def _notice(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    return _twiml(twiml.notice())


async def _fallback(request: Request, runtime: Runtime, provider: TwilioProvider, leg_id: str, form: dict[str, str]) -> Response:
    """A manager call's `FallbackUrl`: Twilio could not get or run the TwiML at its `Url` (our answer was late
    or broken) and posts `ErrorCode` and `ErrorUrl` (https://www.twilio.com/docs/usage/security/availability-reliability).
    The whisper is offered once more in its plainest form, a round of hold is waited out as it would have
    been; anything else ends the call politely (its status callback tells the engine)."""
    log.warning("Twilio used the fallback URL for leg %s: error %s", leg_id, form.get("ErrorCode"))
    failed = form.get("ErrorUrl", "")
    if f"{twiml.HOOKS_PATH}/whisper" in failed:
        return _safe_whisper(provider, leg_id)
    if f"{twiml.HOOKS_PATH}/hold" in failed:
        # A round of the hold that we could not answer: the manager waits that round out all the same.
        round_ = _round(parse_qs(urlsplit(failed).query).get("round", [""])[0]) or twiml.HOLD_ROUNDS
        held = twiml.hold(provider.hooks, leg_id, round_) if round_ < twiml.HOLD_ROUNDS else twiml.hold_over()
        return _twiml(held)
    return _twiml(twiml.say_and_hang_up(twiml.SORRY))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


routes = [
    Route(f"{twiml.HOOKS_PATH}/{name}", _hook(name, handler, safe), methods=["POST"])
    for name, (handler, safe) in {
        "status": (_status, _no_content),
        "whisper": (_whisper, _safe_whisper),
        "gather": (_gather, _safe_gather),
        "hold": (_hold, _safe_hold),
        "screen": (_screen, _safe_screen),
        "dial": (_dial, _safe_hangup),
        "recording": (_recording, _no_content),
        "notice": (_notice, _safe_hangup),
        "fallback": (_fallback, _safe_hangup),
    }.items()
]
