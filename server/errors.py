"""Errors as the widget's API shows them: `{"error": {"code", "message", "field"}}` with a 4xx status."""

from __future__ import annotations

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from dialer.core.errors import InvalidField, NotFound, RateLimited, Refused, Unavailable
from server.schema import Error, ErrorDetail


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


HANDLERS = {
    ApiError: api_error,
    InvalidField: invalid_field,
    NotFound: not_found,
    Refused: refused,
    HTTPException: http_error,
}
