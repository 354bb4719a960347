"""Texts through Twilio's Messaging API (https://www.twilio.com/docs/messaging/api/message-resource): the
error codes that refuse a text for good, a message's parameters and delivery-report address, sending it
(tried again only where trying again can help) and its price once Twilio has filled it in."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from dialer.core.texts import is_messaging_service
from dialer.telephony import twiml
from dialer.telephony.base import ProviderError
from dialer.telephony.twilio_rest import (
    NUMBER_REFUSED,
    RATE_LIMITED_REASON,
    as_decimal,
    error_reason,
    jittered,
    transient,
    unreachable,
)

log = logging.getLogger("ringback.twilio")

# Twilio error codes that mean "this text cannot be sent": the sender or the recipient, not the moment.
SMS_REFUSED = {
    21601: "the sender cannot send texts (a verified caller ID is not an SMS-capable number): set the "
           "site's sms_sender",
    21606: "the sender is not an SMS-capable Twilio number for this destination: set the site's sms_sender",
    21610: "the visitor replied STOP to texts from this sender",
    21614: "the visitor's number is not a mobile number",
}


def message_params(to: str, body: str, sender: str, status_callback: str | None) -> dict[str, Any]:
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


def status_url(public_url: str, text_id: str | None) -> str | None:
    """Where Twilio posts the text's delivery reports (`server/twilio_sms.py`)."""
    if not text_id:
        return None
    return f"{public_url.rstrip('/')}{twiml.HOOKS_PATH}/sms/status?{urlencode({'text': text_id})}"


async def send_message(client: Client, params: dict[str, Any], retry_delays: tuple[float, ...]) -> str:
    """Create the message; a refusal that cannot change (the sender, the number, an opt-out) is not
    tried again, a rate limit or server error is, and a lost answer is never resent (it may be out)."""
    for delay in (*retry_delays, None):
        try:
            message = await client.messages.create_async(**params)
            return str(message.sid)
        except TwilioRestException as exc:
            if exc.code in SMS_REFUSED or exc.code in NUMBER_REFUSED:
                why = SMS_REFUSED.get(exc.code) or NUMBER_REFUSED[exc.code]
                raise ProviderError(f"Twilio refused the text: {why} (error {exc.code})", code=str(exc.code),
                                    permanent=True) from None
            if not transient(exc) or delay is None:
                raise ProviderError(error_reason(exc), code=str(exc.code), permanent=not transient(exc),
                                    rate_limited=error_reason(exc) == RATE_LIMITED_REASON) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderError(unreachable(exc), permanent=False) from None
        await asyncio.sleep(jittered(delay))
    raise AssertionError("unreachable")  # the last attempt returns or raises


async def text_price(client: Client, sid: str, currency: str) -> tuple[Decimal, str] | None:
    """The message's price once Twilio has filled it in (None before)."""
    try:
        message = await client.messages(sid).fetch_async()
    except (TwilioRestException, TimeoutError, aiohttp.ClientError) as exc:
        log.info("fetching the price of message %s: %r", sid, exc)
        return None
    price = as_decimal(message.price)
    return (abs(price), (message.price_unit or currency).upper()) if price is not None else None
