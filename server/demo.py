"""The demo: a "Demo shop" site with three simulated managers who show the whole hunt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import Site
from dialer.sites.admin import add_manager, add_site
from dialer.telephony.base import Provider
from dialer.telephony.simulator import Behaviour, SimulatedProvider

DEMO_KEY = "demo"
# Fictional numbers (555-01xx); the simulator gives each its part.
MANAGERS = (
    ("Alex (never answers)", "+12025550101", Behaviour.never_answers()),
    ("Blake (voicemail)", "+12025550102", Behaviour.voicemail_after(6.0)),
    ("Casey (presses 1)", "+12025550103", Behaviour.presses_1(after=4.0)),
)

# One person tries the demo again and again from one address, through a widget that may predate the
# form token: keep the other protections, loosen these two.
DEMO_ABUSE = {
    "form_token": False,
    "rate_limits": {"ip": {"limit": 30, "window": 3600}, "network": {"limit": 30, "window": 3600}},
}


async def seed(session: AsyncSession, now: datetime) -> Site:
    """Create the demo site once; running it again reuses what is there."""
    site = (await session.execute(select(Site).where(Site.key == DEMO_KEY))).scalar_one_or_none()
    if site is not None:
        return site
    site = await add_site(session, name="Demo shop", key=DEMO_KEY, timezone="UTC", any_country=True, now=now)
    # Open around the clock, and visitors may be called at any hour: a newcomer sees the hunt at once.
    site.settings = {"calling_window": ["00:00", "24:00"], "abuse": DEMO_ABUSE}
    for name, phone, _ in MANAGERS:
        await add_manager(session, site=site, name=name, phone=phone)
    return site


def script_simulator(provider: Provider) -> None:
    if isinstance(provider, SimulatedProvider):
        for _, phone, behaviour in MANAGERS:
            provider.script(phone, behaviour)


def banner(url: str) -> str:
    return (
        f"\nRingback demo is running.\n  Open {url}/demo and press 'Call me back'.\n"
        f"  Widget tag: <script async src=\"{url}/widget.js\" data-site=\"{DEMO_KEY}\"></script>\n"
        f"  Dashboard: {url}/dashboard — create its first user in another terminal with\n"
        "    .venv/bin/ringback user add --email you@example.com --role owner\n"
        "  Calls are simulated (RINGBACK_SIMULATOR_SPEED=10 makes them ten times faster). Ctrl-C stops.\n"
    )
