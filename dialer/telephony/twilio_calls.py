"""Placing calls through Twilio's REST API: creating the manager's call and redirecting it (on hold) to
dial the visitor. Each is tried again after a rate limit or a server error; a request whose answer was
lost is looked up (`look_up`: the provider's `find_call`) before anything else, never sent blindly again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from dialer.telephony import twiml
from dialer.telephony.base import CallRequest, ProviderError
from dialer.telephony.twilio_rest import (
    CALL_OVER_CODES,
    NUMBER_REFUSED,
    RATE_LIMITED_REASON,
    error_reason,
    jittered,
    placed,
    time_limit,
    transient,
    unreachable,
)

log = logging.getLogger("ringback.twilio")

LookUp = Callable[[CallRequest, datetime], Awaitable[str | None]]


def create_params(request: CallRequest, hooks: twiml.Hooks) -> dict[str, Any]:
    """The manager's call: its whisper, fallback and status callbacks on our webhooks."""
    params: dict[str, Any] = {
        "to": request.to,
        "from_": request.caller_id,
        "url": hooks.url("whisper", request.leg_id),
        "method": "POST",
        "fallback_url": hooks.url("fallback", request.leg_id),
        "fallback_method": "POST",
        "status_callback": hooks.url("status", request.leg_id),
        "status_callback_event": ["initiated", "ringing", "answered", "completed"],
        "status_callback_method": "POST",
        "timeout": request.timeout,
    }
    params.update(time_limit(request))
    return params


async def create(client: Client, request: CallRequest, params: dict[str, Any], retry_delays: tuple[float, ...],
                 look_up: LookUp) -> str | None:
    """The manager's call created. A refused number is final; a rate limit, a server error or a refused
    connection is tried again; a lost answer is looked up, and never sent again while it may be ringing."""
    started = datetime.now(UTC)
    failure = "no attempt made"
    for delay in (*retry_delays, None):
        try:
            call = await client.calls.create_async(**params)
            return placed(call)
        except TwilioRestException as exc:
            if exc.code in NUMBER_REFUSED:
                raise ProviderError(
                    f"Twilio refused {request.to}: {NUMBER_REFUSED[exc.code]} (error {exc.code})",
                    code=str(exc.code),
                    permanent=True,
                ) from None
            if not transient(exc):
                raise ProviderError(error_reason(exc), code=str(exc.code), permanent=False) from None
            failure = error_reason(exc)
            if exc.status >= 500:  # the create may have gone through before the error
                sid = await look_up(request, started)
                if sid is not None:
                    return sid
        except (TimeoutError, aiohttp.ClientError) as exc:
            # The request may have reached Twilio and the call be ringing: look before anything else.
            sid = await look_up(request, started)
            if sid is not None:
                return sid
            if not isinstance(exc, aiohttp.ClientConnectorError):
                # Not found yet, but it may still appear: leave the leg unconfirmed. Its own status
                # callbacks (they carry our leg id) or the engine's later look-up settle it.
                log.warning("creating the call for leg %s timed out; not dialing again", request.leg_id)
                return None
            failure = unreachable(exc)
        if delay is None:
            break
        delay = jittered(delay)
        log.info("creating the call for leg %s failed (%s); again in %.1f s", request.leg_id, failure, delay)
        await asyncio.sleep(delay)
    raise ProviderError(f"{failure}, after {len(retry_delays) + 1} attempts", permanent=False,
                        rate_limited=failure == RATE_LIMITED_REASON)


async def redirect(client: Client, request: CallRequest, sid: str, document: str, retry_delays: tuple[float, ...],
                   look_up: LookUp) -> str | None:
    """The manager's call (on hold: its key press was answered before the `<Dial>` was ready) told to
    dial the visitor. A rate limit or a server error is tried again; a lost answer never is (the
    redirect may have been made: a second would ring the visitor twice)."""
    started = datetime.now(UTC)
    failure = "no attempt made"
    for delay in (*retry_delays, None):
        try:
            await client.calls(sid).update_async(twiml=document)
            return None
        except TwilioRestException as exc:
            if exc.status == 404 or exc.code in CALL_OVER_CODES:
                raise ProviderError(f"the manager's call ended before the visitor was dialed ({error_reason(exc)})",
                                    code=str(exc.code), permanent=False, call_over=True) from None
            if not transient(exc):
                raise ProviderError(error_reason(exc), code=str(exc.code), permanent=False) from None
            failure = error_reason(exc)
            if exc.status >= 500:  # the redirect may have been made before the error
                found = await look_up(request, started)
                if found is not None:
                    return found
        except (TimeoutError, aiohttp.ClientError) as exc:
            if not isinstance(exc, aiohttp.ClientConnectorError):
                # Left unconfirmed: the visitor's callbacks (they carry our leg id), or the question
                # asked at the visitor's deadline, settle it.
                log.warning("redirecting the call for leg %s timed out; not redirecting again", request.leg_id)
                return None
            failure = unreachable(exc)  # never sent: safe to send again
        if delay is None:
            break
        await asyncio.sleep(jittered(delay))
    raise ProviderError(f"{failure}, after {len(retry_delays) + 1} attempts", permanent=False,
                        rate_limited=failure == RATE_LIMITED_REASON)
