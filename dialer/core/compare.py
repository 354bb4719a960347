"""Comparing secrets (signatures, tokens) in constant time, whatever text a request sent.

`hmac.compare_digest` on two `str` accepts ASCII only and raises TypeError on anything else, so a
signature with an "é" in it would be a 500: both sides are compared as UTF-8 bytes instead (a lone
surrogate, which no real signature holds, is kept by `surrogatepass` and simply does not match).
"""

from __future__ import annotations

import hmac


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def same_secret(sent: str | None, expected: str) -> bool:
    """Whether `sent` is `expected`, in time that does not depend on where they differ."""
    if not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(_bytes(sent), _bytes(expected))
