"""Errors the dialer raises about what a person asked of it.

    RingbackError
    ├── InvalidField      one field of a request is wrong (shown to the visitor next to that field)
    └── NotFound          no such site or lead (or not yours to see)
"""

from __future__ import annotations


class RingbackError(Exception):
    code = "error"


class InvalidField(RingbackError):
    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


class NotFound(RingbackError):
    code = "not_found"

    def __init__(self, what: str, field: str | None = None) -> None:
        super().__init__(what)
        self.message = what
        self.field = field
