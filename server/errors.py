"""Errors as the widget's API shows them: `{"error": {"code", "message", "field"}}` with a 4xx status,
or 503 with `Retry-After` when the database cannot be reached."""

from __future__ import annotations

import logging
import re
import time

import msgspec
import sqlalchemy.exc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from dialer.core.countries import country_list
from dialer.core.errors import InvalidField, NotFound, RateLimited, Refused, Unavailable
from dialer.retrying import DATABASE_DOWN, QuietLog
from dialer.retrying import database_down as database_unavailable
from server.schema import Error, ErrorDetail
from server.widget_texts import DEFAULT_LANGUAGE, ERRORS, LANGUAGES

log = logging.getLogger("ringback.server")
_quiet = QuietLog(log)

DOWN_MESSAGE = "We could not take your request just now. Please try again in a minute."
DOWN_RETRY_AFTER = 30  # seconds


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def error_response(
    status: int, code: str, message: str, field: str | None = None, *, request: Request | None = None,
    regions: tuple[str, ...] = (),
) -> Response:
    if request is not None and request.url.path.startswith("/api/"):
        message = in_language(message, reader_language(request), regions)
    body = msgspec.json.encode(Error(ErrorDetail(code, message, field)))
    return Response(body, status_code=status, media_type="application/json")


def reader_language(request: Request) -> str:
    """The widget's language (it sends `?lang=`, as its config chose it), else the browser's first
    language the widget speaks, else English."""
    asked = request.query_params.get("lang") or ""
    if asked in LANGUAGES:
        return asked
    for part in request.headers.get("accept-language", "")[:200].split(","):
        lang = re.split(r"[-_;]", part.strip().lower(), maxsplit=1)[0]
        if lang in LANGUAGES:
            return lang
    return DEFAULT_LANGUAGE


_NUMBER = re.compile(r"\d+")


def in_language(message: str, lang: str, regions: tuple[str, ...] = ()) -> str:
    """The English sentence a refusal was raised with, in `lang` (server/widget_texts.py's ERRORS), with the
    countries it names in that language; the English sentence when it has no translation."""
    if regions:
        template = "Sorry, we can only call numbers from {countries}."
        local = ERRORS.get(lang, {}).get(template, template)
        return local.replace("{countries}", country_list(regions, lang))
    table = ERRORS.get(lang)
    if not table:
        return message
    if message in table:
        return table[message]
    numbers = _NUMBER.findall(message)
    if len(numbers) == 1:  # "at most 200 characters"
        local = table.get(_NUMBER.sub("{n}", message))
        if local is not None:
            return local.replace("{n}", numbers[0])
    return message


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field, request=request)


async def invalid_field(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidField)
    return error_response(422, exc.code, exc.message, exc.field, request=request, regions=exc.regions)


async def not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFound)
    return error_response(404, exc.code, exc.message, exc.field, request=request)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return error_response(exc.status_code, "http_error", str(exc.detail))
    return Response(str(exc.detail), status_code=exc.status_code, headers=exc.headers)


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    response = error_response(exc.status, exc.code, exc.message, exc.field, request=request)
    if isinstance(exc, RateLimited | Unavailable):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def database_down(request: Request, exc: Exception) -> Response:
    """The database is away: nothing was written (the transaction is rolled back); try again soon."""
    _quiet.error("a request (the database unreachable)", exc, now=time.monotonic(), trace=False)
    headers = {"Retry-After": str(DOWN_RETRY_AFTER)}
    if request.url.path.startswith("/api/"):
        response = error_response(503, "unavailable", DOWN_MESSAGE, request=request)
        response.headers.update(headers)
        return response
    return Response(DOWN_MESSAGE, status_code=503, headers=headers, media_type="text/plain")


async def database_error(request: Request, exc: Exception) -> Response:
    """A database error of no class `DATABASE_DOWN` names: a 503 when its SQLSTATE says the database is
    away, full or gave the transaction up (`retrying.database_down`); else a bug, for the last resort
    (server/last_resort.py) to log."""
    if database_unavailable(exc):
        return await database_down(request, exc)
    raise exc


HANDLERS: dict[type[Exception], object] = {
    ApiError: api_error,
    InvalidField: invalid_field,
    NotFound: not_found,
    Refused: refused,
    HTTPException: http_error,
    **{kind: database_down for kind in DATABASE_DOWN},
    sqlalchemy.exc.DBAPIError: database_error,
}
