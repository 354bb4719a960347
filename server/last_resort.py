"""The last resort: an error that no handler of server/errors.py knows is logged with its traceback,
redacted, and answered in the house shape (`{"error": {"code": "internal_error", …}}`, still a 500) rather
than by Starlette's plain-text "Internal Server Error", which says nothing to the widget and left no
trace to diagnose (uvicorn's own log of it would name phone numbers: a database error's text holds its
statement's parameters).

An ASGI middleware inside the CORS and security-header ones, so the widget can read the answer. The log
line carries a short reference that the answer repeats, to find one in the other. A `CancelledError`
that reaches a request without the request's task being cancelled (one leaked from an inner future) is
an error like any other; the task's own cancellation (the server stopping) goes on up.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import traceback
from collections.abc import Iterable

import sqlalchemy.exc
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialer.logs import Redactor
from server.errors import DOWN_MESSAGE, error_response, in_language, reader_language

log = logging.getLogger("ringback.server")

CODE = "internal_error"


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        found = todo.pop()
        if id(found) in seen:
            continue
        seen.add(id(found))
        yield found
        todo += [e for e in (found.__cause__, found.__context__) if e is not None]
        if isinstance(found, BaseExceptionGroup):
            todo += list(found.exceptions)


def redacted_traceback(exc: BaseException, hidden: Iterable[str | None] = ()) -> str:
    """The traceback of `exc` (its causes included) without statement parameters, phone numbers, tokens
    or the `hidden` secrets."""
    for each in _chain(exc):
        if isinstance(each, sqlalchemy.exc.StatementError):
            each.hide_parameters = True  # its text would list the values the statement was given
    text = "".join(traceback.format_exception(exc))
    return Redactor(hidden).redact(text)


def _secrets(scope: Scope) -> tuple[str | None, ...]:
    app = scope.get("app")
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    settings = getattr(runtime, "settings", None)
    return tuple(getattr(settings, "secrets", ()))


def _own_cancellation(exc: BaseException) -> bool:
    task = asyncio.current_task()
    return isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling() > 0


def _answer(scope: Scope, reference: str) -> Response:
    path: str = scope.get("path", "")
    if path.startswith("/api/"):
        message = f"{in_language(DOWN_MESSAGE, reader_language(Request(scope)))} ({reference})"
        return error_response(500, CODE, message)
    return PlainTextResponse(f"{DOWN_MESSAGE} ({reference})", status_code=500)


class LastResort:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except (Exception, asyncio.CancelledError) as exc:
            if _own_cancellation(exc):
                raise
            reference = secrets.token_hex(4)
            where = f"{scope.get('method', '')} {scope.get('path', '')}"
            after = " after its answer had begun" if started else ""
            hidden = _secrets(scope)
            told = Redactor(hidden).redact(f"unhandled error answering {where} (reference {reference}){after}")
            log.error("%s\n%s", told, redacted_traceback(exc, hidden))
            if not started:  # else the client sees the connection close: nothing more can be said
                await _answer(scope, reference)(scope, receive, send)
