"""Errors the dialer raises about what a person asked of it.

    RingbackError
    ├── InvalidField      one field of a request is wrong (shown to the visitor next to that field)
    ├── NotFound          no such site or lead (or not yours to see)
    └── Refused           the request is well formed but not taken (abuse protection; 403)
        ├── RateLimited   too many requests for now: try again after `retry_after` seconds (429)
        └── Unavailable   a check we depend on (a CAPTCHA provider) could not be reached (503)
"""

from __future__ import annotations


class RingbackError(Exception):
    code = "error"


class InvalidField(RingbackError):
    """`regions`: the region codes a message names (its translation names them in the reader's language)."""

    def __init__(self, field: str, message: str, code: str = "invalid", *, regions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code
        self.regions = regions


class NotFound(RingbackError):
    code = "not_found"

    def __init__(self, what: str, field: str | None = None) -> None:
        super().__init__(what)
        self.message = what
        self.field = field


class Refused(RingbackError):
    status = 403

    def __init__(self, field: str | None, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


class RateLimited(Refused):
    status = 429

    def __init__(self, field: str | None, message: str, retry_after: int, code: str = "rate_limited") -> None:
        super().__init__(field, message, code)
        self.retry_after = max(1, retry_after)


class Unavailable(Refused):
    status = 503

    def __init__(self, field: str | None, message: str, retry_after: int = 30) -> None:
        super().__init__(field, message, "unavailable")
        self.retry_after = retry_after
