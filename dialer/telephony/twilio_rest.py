"""Twilio's REST API as the provider uses it: the HTTP client it is reached through, the error codes that
refuse a call for good, what a refusal says, when to try again, a call's time limit and the call a lost
create placed. Pure, apart from the client's requests; `twilio.py` holds the provider that uses them."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response

from dialer.core.states import LegRole
from dialer.telephony.base import CallRequest, PlacedCall, ProviderError

CONCURRENT_REQUESTS = 10  # REST requests in flight at once (Twilio answers 20429 past its own limit)
FIND_SLACK = timedelta(seconds=5)  # our clock and Twilio's may disagree a little

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
WHISPER_ALLOWANCE = 120  # seconds of a manager's call before the bridge: ringing, the whisper, pressing 1
AUTH_FAILED = 20003
RATE_LIMITED = 20429
# The call is no longer in progress: it cannot be redirected (https://www.twilio.com/docs/api/errors/21220).
CALL_OVER_CODES = {21220}
RATE_LIMITED_REASON = "Twilio's rate limit was reached"
_LIVE = {"queued", "initiated", "ringing", "in-progress"}


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TimedHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # the library is untyped: Any to mypy
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
            headers = {**(headers or {}), "Authorization": basic_auth(*auth)}
        async with self._in_flight:
            return await super().request(
                method, url, params, data, headers, None, timeout or self.timeout, allow_redirects
            )


def page_refused(exc: TwilioException) -> ProviderError:
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


def transient(exc: TwilioRestException) -> bool:
    """Worth another try: a rate limit or a server error. Refused credentials are not (401, 20003):
    trying again cannot fix them, and repeated failures can get an account locked."""
    if exc.status == 401 or exc.code == AUTH_FAILED:
        return False
    return bool(exc.status == 429 or exc.status >= 500 or exc.code == RATE_LIMITED)


def jittered(delay: float) -> float:
    """A retry delay spread over [delay/2, delay·3/2), so that many callers refused at once do not all
    come back at the same moment."""
    return delay * random.uniform(0.5, 1.5)  # noqa: S311 - timing jitter, not a secret


def lost_create(calls: list[Any], request: CallRequest, since: datetime) -> str | None:
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


def time_limit(request: CallRequest) -> dict[str, int]:
    """`TimeLimit` on the manager's call: the bridged conversation's limit plus the ring and whisper before
    it, so Twilio ends a call our own deadline could not (https://www.twilio.com/docs/voice/api/call-resource;
    Twilio's default is 4 hours, at most 24)."""
    if request.time_limit is None:
        return {}
    return {"time_limit": min(86_400, request.time_limit + WHISPER_ALLOWANCE)}


def placed(call: Any) -> PlacedCall:
    """The created call's sid, with Twilio's estimate of its wait in the account's queue (`queue_time`,
    milliseconds: https://www.twilio.com/docs/voice/api/call-resource)."""
    try:
        queued = max(0.0, float(call.queue_time or 0) / 1000.0)
    except (TypeError, ValueError):
        queued = 0.0
    return PlacedCall(str(call.sid), queued)


def error_reason(exc: TwilioRestException) -> str:
    if exc.status == 401 or exc.code == AUTH_FAILED:
        return "Twilio refused the credentials: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
    if exc.status == 429 or exc.code == RATE_LIMITED:
        return RATE_LIMITED_REASON
    if exc.status >= 500:
        return f"Twilio had a server error (HTTP {exc.status})"
    message = exc.msg or "Twilio refused the request"
    return f"{message} (error {exc.code})" if exc.code else message


def unreachable(exc: BaseException) -> str:
    return f"Twilio could not be reached ({type(exc).__name__})"


def as_int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def as_decimal(value: object) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
