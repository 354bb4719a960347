"""A site's config loaded from its row: the ORM `Site` (the web side) or the engine's Core row, which have
the same columns, with the working hours of its active managers. Reading is `dialer/core/site_config.py`;
here is the one policy for stored settings that cannot be read: the default is used and the problem is
logged once per site and problem, however often the site is loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.core.site_config import ManagerLike, SiteConfig, read
from dialer.db.models import Manager, Site, table_of

__all__ = ["SiteConfig", "from_row", "load_by_ids", "report"]

log = logging.getLogger("ringback.sites")

COLUMNS = (
    "id", "key", "name", "timezone", "country", "caller_id", "currency", "consent_required", "consent_text",
    "recording", "routing", "any_country", "origins", "settings",
)
MAX_REPORTED = 10_000  # remembered (site, problem) pairs; beyond that they are forgotten and logged anew
_reported: set[tuple[str, str]] = set()

_sites = table_of(Site)
_managers = table_of(Manager)
_SITES = select(*(_sites.c[name] for name in COLUMNS)).where(_sites.c.id.in_(bindparam("ids", expanding=True)))
_HOURS = (
    select(_managers.c.id, _managers.c.site_id, _managers.c.working_hours)
    .where(_managers.c.site_id.in_(bindparam("ids", expanding=True)), _managers.c.active.is_(True))
)


class _Hours:
    """A manager as far as its site's config cares: its working hours."""

    __slots__ = ("id", "working_hours")

    def __init__(self, manager_id: int, working_hours: dict[str, Any] | None) -> None:
        self.id, self.working_hours = manager_id, working_hours


def from_row(row: Site | Row[Any], managers: Iterable[ManagerLike] = ()) -> SiteConfig:
    """The config of this site row and these active managers; problems in its settings are logged once."""
    values = dict(row._mapping) if isinstance(row, Row) else {name: getattr(row, name) for name in COLUMNS}
    config = read(values, managers)
    report(config)
    return config


def report(config: SiteConfig) -> None:
    for problem in config.problems:
        if (config.key, problem) in _reported:
            continue
        if len(_reported) >= MAX_REPORTED:
            _reported.clear()
        _reported.add((config.key, problem))
        log.warning("site %s: settings %s", config.key, problem)


async def load_by_ids(conn: AsyncConnection, site_ids: set[int]) -> dict[int, SiteConfig]:
    """The configs of these sites (those that exist), two queries for all of them."""
    if not site_ids:
        return {}
    ids = {"ids": sorted(site_ids)}
    hours: dict[int, list[_Hours]] = {}
    for manager in await conn.execute(_HOURS, ids):
        hours.setdefault(manager.site_id, []).append(_Hours(manager.id, manager.working_hours))
    return {row.id: from_row(row, hours.get(row.id, ())) for row in await conn.execute(_SITES, ids)}
