"""The signed form token: proof that a request comes from a widget that loaded the site's config a few
seconds earlier, which a bot posting straight to the API does not have and a person filling the form does.

`<issued unix seconds>.<nonce>.<signature>`: an HMAC-SHA256 under `RINGBACK_SECRET_KEY` over the site
key, the time and the nonce, so a token is bound to one site and cannot be back-dated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from dialer.core.compare import same_secret
from dialer.core.errors import InvalidField

MAX_LENGTH = 200


def issue(secret: str, site_key: str, now: datetime) -> str:
    issued = str(int(now.timestamp()))
    nonce = secrets.token_urlsafe(9)
    return f"{issued}.{nonce}.{_sign(secret, site_key, issued, nonce)}"


def check(secret: str, site_key: str, token: str | None, now: datetime, *, min_age: int, max_age: int) -> None:
    """Raise InvalidField("form_token") unless the token is ours, for this site, and neither too young nor
    too old."""
    if not token:
        raise InvalidField("form_token", "Please reload the page and send the form again.", "required")
    parts = token.split(".") if len(token) <= MAX_LENGTH and token.isascii() else []  # ours are ASCII
    if len(parts) != 3 or not (parts[0].isascii() and parts[0].isdigit()) or len(parts[0]) > 12:
        raise InvalidField("form_token", "Please reload the page and send the form again.", "invalid")
    issued, nonce, signature = parts
    if not same_secret(signature, _sign(secret, site_key, issued, nonce)):
        raise InvalidField("form_token", "Please reload the page and send the form again.", "invalid")
    age = now.timestamp() - int(issued)
    if age < min_age:
        raise InvalidField("form_token", "That was quicker than a person can type. Please try again.", "too_fast")
    if age > max_age:
        raise InvalidField("form_token", "The form has expired. Please reload the page and send it again.", "expired")


def _sign(secret: str, site_key: str, issued: str, nonce: str) -> str:
    message = f"ringback-form|{site_key}|{issued}|{nonce}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
