"""Text messages to visitors, as rules: opt-out keywords, how a message's status moves, where the law asks
that a text say how to opt out, and what a site's SMS sender may be.

- Keywords: a reply that is one of the opt-out words stops every later text to that number, one of the
  opt-in words starts them again (Twilio's default keywords:
  https://help.twilio.com/articles/223134027, "Twilio support for opt-out keywords (SMS STOP filtering)").
- Status: `sending` (asked), then the provider's `queued` < `sent` < `delivered`, or `undelivered` /
  `failed`; ours for what never left: `refused` (the provider said no), `opted_out` (not sent: the visitor
  replied STOP). Delivery callbacks can come late, twice or out of order: a status only moves forward,
  and a final one never changes.
- In the US and Canada (NANP numbers, +1) a text tells how to opt out (CTIA's messaging principles, and
  carriers filter A2P traffic that does not): "Reply STOP to opt out."
"""

from __future__ import annotations

import re

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
OPT_OUT_NOTICE = "Reply STOP to opt out."

_RANK = {"sending": 0, "queued": 1, "accepted": 1, "scheduled": 1, "sent": 2, "delivered": 3,
         "undelivered": 3, "failed": 3, "refused": 3, "opted_out": 3}
FINAL = frozenset({"delivered", "undelivered", "failed", "refused", "opted_out"})
_MESSAGING_SERVICE = re.compile(r"MG[0-9a-fA-F]{32}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def keyword(body: str) -> str | None:
    """"stop" or "start" when the reply is one of those keywords (alone, any case), else None."""
    word = body.strip().strip(".!").upper()
    if word in OPT_OUT_WORDS:
        return "stop"
    if word in OPT_IN_WORDS:
        return "start"
    return None


def moves_forward(current: str, reported: str) -> bool:
    """Whether a reported status may replace the current one (never back, never after a final one)."""
    if current in FINAL or reported not in _RANK:
        return False
    return _RANK[reported] > _RANK.get(current, 0)


def needs_opt_out_notice(phone: str) -> bool:
    """The visitor's number is in the US or Canada (the North American plan: +1)."""
    return phone.startswith("+1")


def with_opt_out(body: str, phone: str) -> str:
    return f"{body} {OPT_OUT_NOTICE}" if needs_opt_out_notice(phone) and OPT_OUT_NOTICE not in body else body


def is_sender(value: str) -> bool:
    """A number in E.164, or a Twilio Messaging Service SID (MG + 32 hex digits)."""
    return bool(_E164.fullmatch(value) or _MESSAGING_SERVICE.fullmatch(value))


def is_messaging_service(value: str) -> bool:
    return bool(_MESSAGING_SERVICE.fullmatch(value))
