"""The public (widget's) API as types: what a request may hold and what each answer holds.

Requests are validated against these classes (server/decode.py) and the OpenAPI description is made from
them (server/openapi.py), so the description says what the API really accepts and answers. msgspec turns
each class into a JSON Schema, with its limits, and checks a request against it without writing anything
by hand. Limits are the ones intake itself keeps (`intake.accept.LIMITS`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from dialer.core.phones import MAX_INPUT
from dialer.core.states import LeadStatus as Status
from dialer.intake.accept import LIMITS
from dialer.protection import form_token, screen

VISIT_TEXT = 300  # visit facts longer than this are cut short, not refused

DateTimeText = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
UtmText = Annotated[str, Meta(max_length=LIMITS["utm"])]


class Utm(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The UTM tags of the page the visitor landed on."""

    source: UtmText | None = None
    medium: UtmText | None = None
    campaign: UtmText | None = None
    term: UtmText | None = None
    content: UtmText | None = None


class Touch(msgspec.Struct, omit_defaults=True):
    """Where one visit came from."""

    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    term: str | None = None
    content: str | None = None
    referrer: str | None = None
    landing_page: str | None = None
    click_id: str | None = None
    at: str | None = None


class Visit(msgspec.Struct, omit_defaults=True):
    """Visit facts the widget keeps in first-party storage. Not trusted: a value of the wrong type is
    dropped, not refused, text is cut at 300 characters and unknown keys are ignored, so what an older
    widget left in a browser never costs the visitor their request."""

    visits: Annotated[int, Meta(ge=0, le=1_000_000)] | None = None
    first_seen: str | None = None
    landing_page: str | None = None
    language: str | None = None
    click_id: str | None = None
    first_touch: Annotated[Touch, Meta(description="From the visitor's first visit.")] | None = None
    last_touch: Annotated[
        Touch, Meta(description="From their latest visit that had a source (a direct visit does not erase it).")
    ] | None = None


class CallbackRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A visitor asks to be called back (or leaves a message). An empty string counts as not given."""

    site: Annotated[str, Meta(min_length=1, max_length=64, description="The site key (public).")]
    phone: Annotated[str, Meta(max_length=MAX_INPUT, description="As typed; read with the site's country.")]
    timezone: Annotated[str, Meta(max_length=64, description="The visitor's IANA time zone, e.g. Europe/Warsaw.")
                        ] | None = None
    scheduled_for: Annotated[
        datetime, Meta(tz=True, description="An RFC 3339 time with a UTC offset: call at this time rather than now.")
    ] | None = None
    message: Annotated[str, Meta(max_length=LIMITS["message"],
                                 description="A non-empty message makes the request a message: nobody is dialed.")
                       ] | None = None
    name: Annotated[str, Meta(max_length=LIMITS["name"])] | None = None
    visitor_id: Annotated[str, Meta(max_length=LIMITS["visitor_id"])] | None = None
    page_url: Annotated[str, Meta(max_length=LIMITS["page_url"])] | None = None
    referrer: Annotated[str, Meta(max_length=LIMITS["referrer"])] | None = None
    utm: Utm | None = None
    consent: Annotated[bool, Meta(description="The visitor agreed to be called (where the site asks).")] = False
    form_token: Annotated[str, Meta(
        max_length=form_token.MAX_LENGTH,
        description="The `form_token` from the config call, sent no sooner than `min_fill_seconds`.")] | None = None
    hp: Annotated[str, Meta(
        max_length=screen.MAX_HONEYPOT,
        description="Honeypot: the widget sends it only when its hidden input was filled. Must be empty.")] | None = None
    captcha: Annotated[str, Meta(max_length=screen.MAX_CAPTCHA,
                                 description="The CAPTCHA provider's answer, where the site asks for one.")] | None = None
    visit: Visit | None = None


# Answers ---------------------------------------------------------------------------------------------

STATUSES = [s.value for s in Status]


class LeadStatus(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """A callback request's status, as polled and as pushed on its live WebSocket."""

    id: str
    status: Annotated[str, Meta(extra_json_schema={"enum": STATUSES})]
    version: int
    attempt: int
    step: Annotated[int, Meta(description="How many managers were rung in this attempt.")]
    scheduled_for: Annotated[str, Meta(extra_json_schema={"format": "date-time"})] | None
    queue_position: Annotated[int, Meta(ge=1, description="Place in line while waiting for a free manager.")
                              ] | UnsetType = UNSET
    managers: Annotated[int, Meta(ge=1, description="While managers are rung one after another: how many this "
                                  "attempt may ring (`step` of `managers`).")] | UnsetType = UNSET


class CreatedLead(LeadStatus, kw_only=True):
    token: Annotated[str, Meta(description="Secret: lets the visitor follow and cancel the request.")]


class Slot(msgspec.Struct, forbid_unknown_fields=True):
    start: DateTimeText
    minutes: int


class Colors(msgspec.Struct, forbid_unknown_fields=True):
    accent: str
    panel: str
    text: str
    accent_text: str


class Triggers(msgspec.Struct, forbid_unknown_fields=True):
    """When the widget opens by itself: after some seconds, on exit intent; at most once per `cap_hours`."""

    after_seconds: int | None
    exit_intent: bool
    cap_hours: int


class SiteConfig(msgspec.Struct, forbid_unknown_fields=True):
    """What the widget needs to show itself on the site's pages."""

    site: str
    name: str
    country: str
    timezone: Annotated[str, Meta(description="The visitor's time zone (as asked, if known), else the site's.")]
    call_now: bool
    next_call_at: Annotated[str, Meta(extra_json_schema={"format": "date-time"})] | None
    consent_required: bool
    consent_text: str | None
    slots: Annotated[list[Slot], Meta(description="Times the visitor may pick when nobody can call now.")]
    language: str
    dir: Literal["ltr", "rtl"]
    texts: Annotated[dict[str, str], Meta(description="Every text the widget shows, in `language`.")]
    colors: Colors
    position: Literal["bottom-right", "bottom-left"]
    triggers: Triggers
    exclude: Annotated[list[str], Meta(description="Path patterns (regular expressions) where it never opens by itself.")]
    hide_on: Annotated[list[str], Meta(description="Path patterns (regular expressions) where it is not shown.")]
    phone_example: Annotated[str, Meta(description="A number of the site's country, as a hint.")] | None
    form_token: Annotated[str, Meta(description="Present where the site checks for bots.")] | UnsetType = UNSET
    min_fill_seconds: Annotated[int, Meta(ge=0)] | UnsetType = UNSET


class ErrorDetail(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    code: str
    message: Annotated[str, Meta(description="Fit to show the visitor.")]
    field: Annotated[str, Meta(description="The request field to correct, if there is one.")] | None = None


class Error(msgspec.Struct, forbid_unknown_fields=True):
    error: ErrorDetail


REQUESTS: list[Any] = [CallbackRequest]
ANSWERS: list[Any] = [LeadStatus, CreatedLead, SiteConfig, Error]
