"""How a Ringback process logs: plain lines, or one JSON object per line with `RINGBACK_LOG_FORMAT=json`;
either way never a full phone number, a lead's token or a secret.

    configure("json", secrets=settings.secrets)  # the secret key, the Twilio auth token, the metrics token

Every line goes through `Redactor` (a logging filter on the one handler, which uvicorn's loggers reach
too): phone numbers (`+` and 7 to 15 digits, or a bare run of 9 to 15 digits) keep their first three and
last two characters (`+48*******67`), `token=…` in a URL (the visitor's live stream) and HTTP
`Authorization` values become `***`, and the configured secrets are replaced wherever they appear,
tracebacks included.

A JSON line holds `time` (UTC, ISO 8601), `level`, `logger`, `message`, and `lead` and `leg` when the
line is about one: say `lead <id>` / `leg <id>` in the message, as the engine does (an access log line's
`/callbacks/<id>` counts too), or pass
`extra={"lead_id": …}`; `exception` holds the traceback when there is one.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_PHONE = re.compile(r"(?<![\w+])(\+\d{7,15}|\d{9,15})(?!\w)")
_TOKEN = re.compile(r"(?i)(\btoken=)[^&\s\"'<>]+")
_AUTHORIZATION = re.compile(r"(?i)(\bauthorization['\"]?\s*[:=]\s*['\"]?(?:basic|bearer)?\s*)[^\s'\",}]+")
_LEAD = re.compile(r"(?:\blead |/callbacks/)([0-9a-f]{32})\b")
_LEG = re.compile(r"\bleg ([0-9a-f]{32})\b")
MIN_SECRET = 8  # shorter "secrets" (an empty or test value) would blank out ordinary words


def mask_phone(number: str) -> str:
    return number[:3] + "*" * max(3, len(number) - 5) + number[-2:]


class Redactor(logging.Filter):
    """Rewrites each record's message (and traceback) without phone numbers, tokens or secrets."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        text = _TOKEN.sub(r"\1***", text)
        text = _AUTHORIZATION.sub(r"\1***", text)
        return _PHONE.sub(lambda m: mask_phone(m.group(1)), text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: log what there is rather than nothing
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        lead = getattr(record, "lead_id", None) or _first(_LEAD, message)
        if lead:
            line["lead"] = str(lead)
        leg = getattr(record, "leg_id", None) or _first(_LEG, message)
        if leg:
            line["leg"] = str(leg)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.search(text)
    return found.group(1) if found else None


def make_handler(fmt: str = "text", *, secrets: Iterable[str | None] = (), stream: TextIO | None = None) -> logging.Handler:
    """A handler writing to `stream` (stderr), redacted, as plain text or JSON."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(Redactor(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name(HANDLER_NAME)
    return handler


HANDLER_NAME = "ringback"


def configure(fmt: str = "text", *, secrets: Iterable[str | None] = (), level: int = logging.INFO,
              stream: TextIO | None = None) -> None:
    """Send every logger's lines (uvicorn's too, when it is given `log_config=None`) to one handler
    (`make_handler`) on the root logger. Like `logging.basicConfig`, it leaves alone a root logger that
    someone else (a program embedding Ringback, pytest) gave handlers; a handler of ours is replaced."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == HANDLER_NAME]
    if len(ours) < len(root.handlers):
        return
    for old in ours:
        root.removeHandler(old)
    root.addHandler(make_handler(fmt, secrets=secrets, stream=stream))
    root.setLevel(level)
