"""The text messages that keep "we'll call you back" a promise, and the signed link to pick a new time."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from dialer.core.compare import same_secret
from dialer.core.hours import zone


def local_time(moment: datetime, tz: str) -> str:
    local = moment.astimezone(zone(tz))
    return local.strftime("%a %d %b, %H:%M")


class Notices:
    def __init__(self, public_url: str, secret_key: str) -> None:
        self.public_url = public_url.rstrip("/")
        self._key = hashlib.sha256(b"reschedule:" + secret_key.encode()).digest()

    def signature(self, lead_id: str) -> str:
        return hmac.new(self._key, lead_id.encode(), hashlib.sha256).hexdigest()[:32]

    def verify(self, lead_id: str, signature: str | None) -> bool:
        return same_secret(signature, self.signature(lead_id))

    def reschedule_link(self, lead_id: str) -> str:
        return f"{self.public_url}/callback/{lead_id}?sig={self.signature(lead_id)}"

    def body(self, kind: str, *, site: str, lead_id: str, tz: str, when: datetime | None) -> str:
        if kind == "confirm" and when is not None:
            return f"{site}: we will call you back on {local_time(when, tz)} (your time)."
        if kind == "reminder" and when is not None:
            return f"{site}: a reminder, we will call you at {local_time(when, tz)} (your time)."
        link = self.reschedule_link(lead_id)
        if kind == "unreachable":
            return f"{site}: we tried to call you back but could not reach you. Pick a time that suits you: {link}"
        return f"{site}: sorry, nobody could take your call just now. Pick a time for us to call you: {link}"
