"""A full SQLite disk: every write fails with "database or disk is full", each time with other statement
parameters (the time, the lead; perhaps a phone number). The quiet log tells the same failure at the same
place once a second at most, counts the repeats, and never logs the parameters."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from dialer.retrying import QuietLog, database_down

VISITOR = "+48501234567"


def _disk_full(at: float) -> OperationalError:
    """As SQLAlchemy raises it for SQLite: the statement, its parameters, the driver's error."""
    return OperationalError("INSERT INTO lead_events (lead_id, at, detail) VALUES (?, ?, ?)",
                            ("lead", f"2026-12-01T12:00:{at:06.3f}", f"calling {VISITOR}"),
                            sqlite3.OperationalError("database or disk is full"))


def test_a_full_disk_is_logged_once_a_second_with_a_count_and_without_parameters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet = QuietLog(logging.getLogger("ringback.engine"))
    caplog.set_level(logging.INFO, logger="ringback")
    said = [quiet.error("stepping a lead", _disk_full(t / 64), now=t / 64) for t in range(64 * 3)]
    assert database_down(_disk_full(0))  # the engine waits for it rather than park its leads
    assert said.count(True) == 3  # 64 a second for 3 s: 3 lines
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and "63 more like it not logged" in lines[1]
    assert VISITOR not in caplog.text and "disk is full" in caplog.text
