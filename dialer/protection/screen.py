"""Screening a public callback request: who is asking, and whether they may have it written.

The site key is public, so nothing here trusts it: every check is about the request itself. The public
API (server/api.py) calls `check` before intake validates the fields (the page's origin, the bot checks,
the number rules: cheap, and nothing is used up), `admit` just before the write (the CAPTCHA, whose
answers are good for one check, so it is not spent on a request with a typo; one request per number at a
time) and `count` after it, last before the commit: the rate limits and the form token, spent only by a
request that is written. So a refused request never uses up a count, in the database or in Redis, and a
second request for a number that the database's unique index refuses (two processes racing) has
counted nothing either. Trusted callers (command line, tests, benchmarks) write through `intake.accept`
without screening.

Each refusal names the field the visitor can change where there is one. Settings and their defaults:
`dialer/core/abuse_rules.py`; number rules: `number_rules.py`; caps: `caps.py`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.abuse_rules import AbuseRules
from dialer.core.errors import InvalidField, RateLimited, Refused, Unavailable
from dialer.core.phones import parse_phone
from dialer.core.site_config import SiteConfig
from dialer.core.states import TERMINAL
from dialer.db.models import Lead
from dialer.protection import form_token, number_rules
from dialer.protection.ratelimit import Counted, Limiter, Rule

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


@dataclass(frozen=True)
class Proof:
    """What the widget sends to show that a person filled the form in: the signed token from the config
    call, the honeypot (sent only when its hidden input was filled) and a CAPTCHA answer."""

    form_token: str | None = None
    hp: str | None = None
    captcha: str | None = None


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


def config_fields(site: SiteConfig, secret: str, now: datetime) -> dict[str, Any]:
    """What the widget needs from the config call to pass the bot checks."""
    rules = site.abuse
    if not rules.form_token:
        return {}
    return {"form_token": form_token.issue(secret, site.key, now), "min_fill_seconds": rules.min_fill_seconds}


def check_origin(site: SiteConfig, visit: Visit) -> None:
    if visit.origin and site.origins and visit.origin.rstrip("/") not in (*site.origins, visit.own_origin):
        raise Refused("site", "This site does not accept requests from this page.", "origin_not_allowed")


def check_honeypot(proof: Proof) -> None:
    if proof.hp:
        raise InvalidField("hp", "This request looks automated and was not sent.", "bot_suspected")


def check(
    site: SiteConfig, visit: Visit, proof: Proof, phone: str, now: datetime, *, secret: str
) -> phonenumbers.PhoneNumber:
    """Raise unless the request may go on to validation: it comes from one of the site's pages, passes
    the bot checks, and its number is one the site calls. Returns the number as read."""
    rules = site.abuse
    check_origin(site, visit)
    check_honeypot(proof)
    if rules.form_token:
        form_token.check(
            secret, site.key, proof.form_token, now, min_age=rules.min_fill_seconds, max_age=rules.form_token_max_age
        )
    number = parse_phone(phone, site.country)
    number_rules.check_number(site, number)  # countries, number types, block list
    return number


async def admit(
    session: AsyncSession,
    site: SiteConfig,
    visit: Visit,
    proof: Proof,
    *,
    phone: str,
    is_call: bool,
) -> None:
    """The checks that need the database or a CAPTCHA provider, once the request is known to be right:
    raise unless it may be written. Nothing is counted here (`count` does that, after the write)."""
    rules = site.abuse
    if rules.captcha is not None:
        await check_captcha(rules, proof.captcha, visit.ip)
    if one_per_number(site, is_call) and await _active_lead(session, site.id, phone):
        raise already_requested()


def one_per_number(site: SiteConfig, is_call: bool) -> bool:
    """Whether the lead is written under "one active request per number" (the database's unique index
    `uq_leads_one_active_number` then refuses a second one, whichever process writes it)."""
    return site.abuse.one_active_per_number and is_call


def already_requested() -> RateLimited:
    return RateLimited(
        "phone",
        "We are already handling a request for this number. Please wait until it is over.",
        ACTIVE_RETRY_AFTER,
        "already_requested",
    )


async def count(
    session: AsyncSession,
    site: SiteConfig,
    visit: Visit,
    proof: Proof,
    now: datetime,
    *,
    phone: str,
    visitor_id: str | None,
    limiter: Limiter,
) -> Counted:
    """Count the request against the rate limits (and spend its form token): the very last step before
    the commit, so that nothing refuses it afterwards. In the database the counts are part of the
    transaction; in Redis they are counted at once, so the caller gives them back (`Limiter.give_back`)
    should the commit fail."""
    rules = site.abuse
    found = rate_rules(site, rules, visitor_id, visit, phone)
    if rules.form_token and proof.form_token:
        found.append(token_rule(site, rules, proof.form_token))
    return await limiter.hit(session, found, now)


def token_rule(site: SiteConfig, rules: AbuseRules, token: str) -> Rule:
    """A form token is good for one accepted request: a counter of 1 for as long as the token lives. A
    refused request does not spend it (the visitor fixes a field and sends the form again)."""
    return Rule(
        "form_token", f"{site.id}|{token}", 1, rules.form_token_max_age + 60, "form_token",
        "This form was sent already. Please reload the page to send another request.", "form_token_used",
    )


def network_of(ip: str | None) -> str | None:
    """The /24 of an IPv4 address, the /48 of an IPv6 one: what one provider or block of bots shares."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def rate_rules(
    site: SiteConfig, rules: AbuseRules, visitor_id: str | None, visit: Visit, phone: str
) -> list[Rule]:
    subjects = {
        "ip": (visit.ip, None, "Too many requests from your network. Please try again later."),
        "network": (network_of(visit.ip), None, "Too many requests from your network. Please try again later."),
        "visitor": (visitor_id, "visitor_id", "Too many requests from this browser. Please try again later."),
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
