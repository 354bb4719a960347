"""Twilio's text-message webhooks under /telephony/twilio/sms/…: delivery reports of the texts we sent
(`status?text=<our id>`), and the visitor's replies (`inbound`, the Messaging webhook of the site's
number or Messaging Service), where STOP and START are honoured.

Both are signed like every Twilio request (`X-Twilio-Signature` over `RINGBACK_PUBLIC_URL` + path + query
and the posted parameters); anything else gets 403 and changes nothing. A delivery report only moves a
text's status forward, so late, duplicated and reordered reports change nothing they should not.
Delivery reports carry `MessageSid`, `MessageStatus` and, on failure, `ErrorCode`
(https://www.twilio.com/docs/messaging/guides/track-outbound-message-status).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dialer.core import texts
from dialer.engine import texting
from dialer.runtime import Runtime
from dialer.telephony import twiml
from dialer.telephony.twilio import TwilioProvider

log = logging.getLogger("ringback.twilio_sms")

TWIML = "application/xml"
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'  # no reply of ours: Twilio answers STOP itself


async def _verified(request: Request) -> tuple[Runtime, TwilioProvider, dict[str, str]] | Response:
    runtime: Runtime = request.app.state.runtime
    provider = runtime.provider
    if not isinstance(provider, TwilioProvider):
        return PlainTextResponse("Twilio is not the telephony provider here.", status_code=404)
    form = {key: str(value) for key, value in (await request.form()).items()}
    query = request.url.query
    url = runtime.settings.public_url + request.url.path + (f"?{query}" if query else "")
    if not provider.signature_ok(url, form, request.headers.get("x-twilio-signature")):
        log.warning("refused a Twilio SMS webhook with a missing or wrong signature: %s", request.url.path)
        return PlainTextResponse("Invalid Twilio signature.", status_code=403)
    return runtime, provider, form


async def status(request: Request) -> Response:
    verified = await _verified(request)
    if isinstance(verified, Response):
        return verified
    runtime, provider, form = verified
    text_id = request.query_params.get("text", "")
    reported = form.get("MessageStatus") or form.get("SmsStatus") or ""
    if not text_id or not reported:
        return PlainTextResponse("The text parameter or MessageStatus is missing.", status_code=400)
    sid = form.get("MessageSid") or form.get("SmsSid") or None
    async with runtime.database.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        moved = await texting.delivery_reported(conn, text_id, sid, reported, runtime.clock.now(),
                                                error=form.get("ErrorCode") or None)
    if moved is not None and reported in texts.FINAL and sid:
        if runtime.jobs is not None:  # kept in the database: a restart does not lose it
            await runtime.jobs.enqueue("text_price", sid)
        else:
            texting.price_later(provider, runtime.database, sid, provider.price_delays)
    return Response(status_code=204)


async def inbound(request: Request) -> Response:
    verified = await _verified(request)
    if isinstance(verified, Response):
        return verified
    runtime, _, form = verified
    phone, body = form.get("From", ""), form.get("Body", "")
    # Twilio's Advanced Opt-Out names the keyword it matched; otherwise the default keywords are ours too.
    word = (form.get("OptOutType") or "").lower() or texts.keyword(body)
    if not phone or word not in ("stop", "start"):
        return Response(EMPTY, media_type=TWIML)
    now = runtime.clock.now()
    async with runtime.database.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        if word == "stop":
            await texting.opt_out(conn, phone, now, body.strip().upper() or "STOP")
            said = "the visitor replied STOP: no more text messages to this number until they reply START"
        else:
            await texting.opt_in(conn, phone)
            said = "the visitor replied START: text messages to this number are allowed again"
        lead_id = await texting.latest_lead(conn, phone)
        if lead_id is not None:
            await texting.timeline(conn, lead_id, now, said)
    return Response(EMPTY, media_type=TWIML)


routes = [
    Route(f"{twiml.HOOKS_PATH}/sms/status", status, methods=["POST"]),
    Route(f"{twiml.HOOKS_PATH}/sms/inbound", inbound, methods=["POST"]),
]
