"""Jinja2 templates for the dashboard, with the filters its pages share."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from server.dashboard.session import Ctx

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES))


def money(value: Decimal | None, places: int = 4) -> str:
    if value is None:
        return "—"
    return f"{value:.{places}f}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def secs(value: float | int | None) -> str:
    if value is None:
        return "—"
    total = round(value)
    return f"{total // 60} min {total % 60:02d} s" if total >= 60 else f"{total} s"


def when(value: datetime | None, zone: str = "UTC", fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)


def status_label(status: str) -> str:
    return status.replace("_", " ")


def cost(value: Decimal | None, unit: str | None, places: int = 4) -> str:
    """An amount with its currency ("0.0130 USD"); the currency alone is never guessed."""
    shown = money(value, places)
    return f"{shown} {unit}" if unit and value is not None else shown


def rate(value: float | None, part: int, whole: int) -> str:
    """A rate with its denominator beside it: "50.0% (3 of 6)"."""
    return f"{pct(value)} ({part} of {whole})" if whole else "— (none yet)"


_STEP = re.compile(r"^a(\d+):(v:)?m(\d+)$")


def step_label(step: str, names: dict[int, str]) -> str:
    """A call's step as a person reads it: "a1:m3" -> "Attempt 1, manager Casey"; "a2:v:m3" -> "Attempt 2,
    the visitor (for Casey)"."""
    found = _STEP.match(step or "")
    if found is None:
        return (step or "").replace("_", " ")
    attempt, visitor, manager_id = found.groups()
    name = names.get(int(manager_id), f"#{manager_id}")
    return f"Attempt {attempt}, the visitor (for {name})" if visitor else f"Attempt {attempt}, manager {name}"


def zone_label(zone: str) -> str:
    """A time zone as a page's heading names it: "Europe/Warsaw time" ("UTC" stays as it is)."""
    return "UTC" if zone == "UTC" else f"{zone.replace('_', ' ')} time"


templates.env.filters.update(money=money, pct=pct, secs=secs, when=when, status_label=status_label, cost=cost,
                             rate=rate, step_label=step_label, zone_label=zone_label)


def render(ctx: Ctx, name: str, status_code: int = 200, **context: Any) -> Response:
    request: Request = ctx.request
    return templates.TemplateResponse(
        request, name, {"ctx": ctx, "user": ctx.access, "csrf": ctx.csrf, "nonce": ctx.nonce, **context},
        status_code=status_code
    )
