"""Access logs without the secrets some links carry in their query: a lead's token
(`/api/v1/callbacks/{id}?token=…`, `…/live?token=…`) and the reschedule link's signature
(`/callback/{id}?sig=…`). Anyone who reads the log could otherwise follow or rebook the visitor's call.

`install()` adds the filter to uvicorn's loggers: `uvicorn.access` (HTTP requests) and `uvicorn.error`,
where uvicorn logs WebSocket handshakes with their path. The query is replaced by `?…`.
"""

from __future__ import annotations

import logging
import re

SECRET_QUERY = re.compile(r"^(?P<path>/(?:api/v1/callbacks/|callback/)[^?\s]*)\?\S*")
LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    return SECRET_QUERY.sub(lambda m: m.group("path") + "?…", text)


class HideSecretQueries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = re.sub(r"(/(?:api/v1/callbacks/|callback/)[^?\s\"]*)\?[^\s\"]*", r"\1?…", record.msg)
        return True


def install() -> None:
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideSecretQueries) for f in logger.filters):
            logger.addFilter(HideSecretQueries())
