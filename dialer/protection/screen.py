"""Screening a public callback request before it is written: origin, bots, field checks, rate limits.

The site key is public, so nothing here trusts it: every check is about the request itself. The order is
cheapest first, and a request is counted against the rate limits only once everything else has passed.
Each refusal names the field the visitor can change where there is one. `intake.accept` stays the plain
write that trusted callers (command line, tests, benchmarks) use; the public API screens first.

Settings and their defaults: `dialer/core/abuse_rules.py`; number rules: `number_rules.py`; caps: `caps.py`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.abuse_rules import AbuseRules
from dialer.core.errors import InvalidField, RateLimited, Refused, Unavailable
from dialer.core.site_config import SiteConfig
from dialer.core.states import TERMINAL
from dialer.db.models import Lead
from dialer.intake.accept import CallbackRequest, validate
from dialer.protection import form_token
from dialer.protection.ratelimit import Limiter, Rule

log = logging.getLogger(__name__)

MAX_HONEYPOT = 200
MAX_CAPTCHA = 4096
ACTIVE_RETRY_AFTER = 60  # seconds a visitor is asked to wait while their number is already being handled

# A CAPTCHA check: (the answer the widget sent, the visitor's IP) -> passed?
CaptchaCheck = Callable[[str, "str | None"], Awaitable[bool]]
CAPTCHA_HOOKS: dict[str, CaptchaCheck] = {}


def register_captcha(name: str, check: CaptchaCheck) -> None:
    """Make a server-side CAPTCHA check available to sites whose settings say `{"captcha": {"hook": name}}`."""
    CAPTCHA_HOOKS[name] = check


@dataclass(frozen=True)
class Visit:
    """What the HTTP layer knows about the request besides its body."""

    ip: str | None
    origin: str | None
    own_origin: str  # this server's own origin (the demo page is served from it)


def storable(text: str) -> bool:
    """PostgreSQL refuses NUL in text and every database needs valid UTF-8 (no lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def first_unstorable(data: Any, path: str = "") -> str | None:
    """The top-level field of a parsed JSON body holding a string that cannot be stored, if any."""
    if isinstance(data, str):
        return None if storable(data) else path or "body"
    if isinstance(data, dict):
        for key, value in data.items():
            inner = path or (key if storable(key) else "body")
            if not storable(key) or first_unstorable(value, inner):
                return inner
    if isinstance(data, list):
        for value in data:
            if found := first_unstorable(value, path):
                return found
    return None


def check_datetime(value: datetime) -> None:
    """A time the visitor sent must be one the database can hold once turned into UTC."""
    if value.tzinfo is None:
        return  # intake says what is missing
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise InvalidField("scheduled_for", "This time is out of range.", "invalid_datetime") from None


def config_fields(site: SiteConfig, secret: str, now: datetime) -> dict[str, Any]:
    """What the widget needs from the config call to pass the bot checks."""
    rules = site.abuse
    if not rules.form_token:
        return {}
    return {"form_token": form_token.issue(secret, site.key, now), "min_fill_seconds": rules.min_fill_seconds}


def check_origin(site: SiteConfig, visit: Visit) -> None:
    if visit.origin and site.origins and visit.origin.rstrip("/") not in (*site.origins, visit.own_origin):
        raise Refused("site", "This site does not accept requests from this page.", "origin_not_allowed")


def check_honeypot(req: CallbackRequest) -> None:
    # The widget sends `hp` only when its hidden input was filled in, which people never see to do.
    if req.hp:
        raise InvalidField("hp", "This request looks automated and was not sent.", "bot_suspected")


async def screen(
    session: AsyncSession,
    site: SiteConfig,
    req: CallbackRequest,
    visit: Visit,
    now: datetime,
    *,
    secret: str,
    limiter: Limiter,
) -> tuple[str, str, str]:
    """Raise unless the request may be accepted; counts it against the rate limits when it may.

    Returns what `intake.validate` found (the number in E.164, the visitor's time zone, its source)."""
    rules = site.abuse
    check_origin(site, visit)
    check_honeypot(req)
    if rules.form_token:
        form_token.check(
            secret, site.key, req.form_token, now, min_age=rules.min_fill_seconds, max_age=rules.form_token_max_age
        )
    validated = validate(site, req, now)
    phone = validated[0]
    if rules.captcha is not None:
        await check_captcha(rules, req.captcha, visit.ip)
    await limiter.hit(session, rate_rules(site, rules, req, visit, phone), now)
    is_call = not (req.message and req.message.strip())
    if rules.one_active_per_number and is_call and await _active_lead(session, site.id, phone):
        raise RateLimited(
            "phone",
            "We are already handling a request for this number. Please wait until it is over.",
            ACTIVE_RETRY_AFTER,
            "already_requested",
        )
    return validated


def rate_rules(site: SiteConfig, rules: AbuseRules, req: CallbackRequest, visit: Visit, phone: str) -> list[Rule]:
    subjects = {
        "ip": (visit.ip, None, "Too many requests from your network. Please try again later."),
        "visitor": (req.visitor_id, "visitor_id", "Too many requests from this browser. Please try again later."),
        "phone": (phone, "phone", "Too many requests for this number. Please try again later."),
        "site": ("", None, "This site takes no more requests right now. Please try again later."),
    }
    found = []
    for scope, (subject, field, message) in subjects.items():
        limit = rules.rate_limits.get(scope)
        if limit is not None and subject is not None:
            found.append(Rule(scope, f"{site.id}|{subject}", limit[0], limit[1], field, message))
    return found


async def _active_lead(session: AsyncSession, site_id: int, phone: str) -> bool:
    query = (
        select(Lead.id)
        .where(Lead.site_id == site_id, Lead.phone == phone, Lead.kind == "call")
        .where(Lead.status.not_in([s.value for s in TERMINAL]))
        .limit(1)
    )
    return (await session.execute(query)).first() is not None


async def check_captcha(rules: AbuseRules, answer: str | None, ip: str | None) -> None:
    config = rules.captcha or {}
    if not answer:
        raise InvalidField("captcha", "Please confirm you are not a robot.", "required")
    if len(answer) > MAX_CAPTCHA:
        raise InvalidField("captcha", "Please confirm you are not a robot.", "invalid")
    check = _captcha_check(config)
    try:
        passed = await check(answer, ip)
    except Exception as exc:  # the provider being down must not look like the visitor's fault
        log.warning("CAPTCHA check failed: %s", type(exc).__name__)
        raise Unavailable("captcha", "We could not check the CAPTCHA just now. Please try again.") from None
    if not passed:
        raise InvalidField("captcha", "The CAPTCHA was not solved. Please try again.", "captcha_failed")


def _captcha_check(config: dict[str, Any]) -> CaptchaCheck:
    hook = config.get("hook")
    if isinstance(hook, str):
        found = CAPTCHA_HOOKS.get(hook)
        if found is None:
            raise Unavailable("captcha", "This site's CAPTCHA check is not available. Please try later.")
        return found
    url, secret_env = config.get("verify_url"), config.get("secret_env", "RINGBACK_CAPTCHA_SECRET")
    secret = os.environ.get(secret_env) if isinstance(secret_env, str) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or not secret:
        raise Unavailable("captcha", "This site's CAPTCHA check is not set up. Please try later.")
    return SiteVerify(url, secret)


class SiteVerify:
    """The server-side check Cloudflare Turnstile, hCaptcha and reCAPTCHA share: POST the secret, the
    visitor's answer and IP as a form to the provider's siteverify URL; the JSON says `success`."""

    def __init__(self, url: str, secret: str, *, timeout: float = 5.0) -> None:
        self.url, self._secret, self.timeout = url, secret, timeout

    async def __call__(self, answer: str, ip: str | None) -> bool:
        return await asyncio.to_thread(self._post, answer, ip)

    def _post(self, answer: str, ip: str | None) -> bool:
        fields = {"secret": self._secret, "response": answer, **({"remoteip": ip} if ip else {})}
        request = urllib.request.Request(self.url, data=urllib.parse.urlencode(fields).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - URL set by the owner
            return json.loads(response.read()).get("success") is True
