"""Errors as the widget's API shows them: `{"error": {"code", "message", "field"}}` with a 4xx status,
or 503 with `Retry-After` when the database cannot be reached."""

from __future__ import annotations

import logging
import time

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from dialer.core.errors import InvalidField, NotFound, RateLimited, Refused, Unavailable
from dialer.retrying import DATABASE_DOWN, QuietLog
from server.schema import Error, ErrorDetail

log = logging.getLogger("ringback.server")
_quiet = QuietLog(log)

DOWN_MESSAGE = "We could not take your request just now. Please try again in a minute."
DOWN_RETRY_AFTER = 30  # seconds


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    body = msgspec.json.encode(Error(ErrorDetail(code, message, field)))
    return Response(body, status_code=status, media_type="application/json")


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field)


async def invalid_field(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidField)
    return error_response(422, exc.code, exc.message, exc.field)


async def not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFound)
    return error_response(404, exc.code, exc.message, exc.field)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return error_response(exc.status_code, "http_error", str(exc.detail))
    return Response(str(exc.detail), status_code=exc.status_code, headers=exc.headers)


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    response = error_response(exc.status, exc.code, exc.message, exc.field)
    if isinstance(exc, RateLimited | Unavailable):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def database_down(request: Request, exc: Exception) -> Response:
    """The database is away: nothing was written (the transaction is rolled back); try again soon."""
    _quiet.error("a request (the database unreachable)", exc, now=time.monotonic(), trace=False)
    headers = {"Retry-After": str(DOWN_RETRY_AFTER)}
    if request.url.path.startswith("/api/"):
        response = error_response(503, "unavailable", DOWN_MESSAGE)
        response.headers.update(headers)
        return response
    return Response(DOWN_MESSAGE, status_code=503, headers=headers, media_type="text/plain")


HANDLERS: dict[type[Exception], object] = {
    ApiError: api_error,
    InvalidField: invalid_field,
    NotFound: not_found,
    Refused: refused,
    HTTPException: http_error,
    **{kind: database_down for kind in DATABASE_DOWN},
}
