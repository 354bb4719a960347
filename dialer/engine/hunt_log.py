"""The hunt's log: one line per step of a hunt on `ringback.hunt`, with any phone number a provider's
words carry masked."""

from __future__ import annotations

import logging
import re

from dialer.core.records import LegRow
from dialer.core.step import Step

hunt_log = logging.getLogger("ringback.hunt")
_DIGITS = re.compile(r"\+?\d[\d ()-]{4,}\d")  # anything that could be a phone number, in a provider's words


def log_hunt(step: Step, legs: dict[str, LegRow]) -> None:
    """One log line per step of a hunt, so that it can be followed: the lead, the leg's step, the manager
    rung, what happened. The timeline's own words name people, never numbers; any digits a provider's
    message carries are masked all the same."""
    if not hunt_log.isEnabledFor(logging.INFO):
        return
    for line in step.lines:
        if line.kind not in ("leg", "status"):
            continue
        leg = legs.get(line.leg_id or "")
        where = f" step {leg.step} manager {leg.manager_id or '-'}" if leg is not None else ""
        outcome = line.detail if line.kind == "leg" else f"now {line.status}" + (f": {line.detail}" if line.detail else "")
        hunt_log.info("lead %s%s: %s", line.lead_id, where, _DIGITS.sub(_mask, outcome))


def _mask(found: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", found.group())
    return "…" + digits[-2:] if len(digits) >= 6 else found.group()
