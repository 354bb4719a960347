"""What a manager hears before deciding to take a lead: site, source, the visitor's local time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def visitor_local_time(timezone: str, now: datetime) -> str:
    return now.astimezone(ZoneInfo(timezone)).strftime("%H:%M")


def whisper_text(site_name: str, source: str, timezone: str, now: datetime, *, returning: bool = False) -> str:
    who = "a returning visitor" if returning else "a visitor"
    return (
        f"Callback request from {site_name}, {who} from {source}, "
        f"visitor's time {visitor_local_time(timezone, now)}. Press 1 to connect."
    )
