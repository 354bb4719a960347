"""Keeping full phone numbers out of the twilio library's logs.

The library logs every REST request at INFO on `twilio.http_client` / `twilio.async_http_client`, query
included (`GET …/Calls.json?To=%2B48501234567`). Its loggers are raised to WARNING, so an operator's
INFO logging does not show them; and should someone lower them again to debug, a filter masks anything
that looks like a phone number down to its last two digits.
"""

from __future__ import annotations

import logging
import re

LIBRARY_LOGGERS = ("twilio.http_client", "twilio.async_http_client")
# +48501234567, %2B48501234567, 48501234567, "+48 501 234 567": seven digits or more, maybe spaced.
_NUMBER = re.compile(r"(?:%2B|\+)?\d(?:[\s().-]?\d){6,}", re.IGNORECASE)


def mask_numbers(text: str) -> str:
    return _NUMBER.sub(lambda m: "…" + re.sub(r"\D", "", m.group())[-2:], text)


class MaskNumbers(logging.Filter):
    """Rewrites a record's message with every phone-like run of digits masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_numbers(record.getMessage())
        record.args = None
        return True


def quiet_library_loggers() -> None:
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:  # NOTSET or INFO: the library's default is to say it all
            logger.setLevel(logging.WARNING)
        if not any(isinstance(f, MaskNumbers) for f in logger.filters):
            logger.addFilter(MaskNumbers())
