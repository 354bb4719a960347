"""What a manager hears before deciding to take a lead: site, source, the visitor's local time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dialer.core.source import speakable


def visitor_local_time(timezone: str, now: datetime) -> str:
    return now.astimezone(ZoneInfo(timezone)).strftime("%H:%M")


def said_source(facts: Mapping[str, Any] | None) -> str | None:
    """What the whisper says of where the visitor came from, out of a lead's `source` facts: the derived
    `spoken` (dialer/core/source.py), or, for a lead stored before it, its label when that is a name
    Ringback derives itself; never the visitor's free text. None: say nothing of it."""
    facts = facts or {}
    found = facts.get("spoken")
    if not isinstance(found, str):
        found = facts.get("label")
    return found if isinstance(found, str) and speakable(found) else None


def whisper_text(
    site_name: str, source: str | None, timezone: str, now: datetime, *, returning: bool = False
) -> str:
    who = "a returning visitor" if returning else "a visitor"
    where = f" from {source}" if source else ""
    return (
        f"Callback request from {site_name}, {who}{where}, "
        f"visitor's time {visitor_local_time(timezone, now)}. Press 1 to connect."
    )
