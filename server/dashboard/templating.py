"""Jinja2 templates for the dashboard, with the filters its pages share."""

from __future__ import annotations

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


templates.env.filters.update(money=money, pct=pct, secs=secs, when=when, status_label=status_label)


def render(ctx: Ctx, name: str, status_code: int = 200, **context: Any) -> Response:
    request: Request = ctx.request
    return templates.TemplateResponse(
        request, name, {"ctx": ctx, "user": ctx.access, "csrf": ctx.csrf, **context}, status_code=status_code
    )
