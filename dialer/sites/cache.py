"""One short-lived copy of each site's config per process, shared by the web side and the engine, by
site id and by site key, on the process's clock.

Every widget request names its site, and every engine step needs its leads' sites: reading them each
time took round trips to the database. Entries live `ttl` seconds (DEFAULT_TTL), so a change made by
another process (the dashboard in another server process, the command line) reaches this one within
that time. A change committed through any session of this process (an ORM change to a site or a
manager, or an UPDATE/INSERT/DELETE statement on their tables) drops every entry at once, so the process
that made a change never serves the old settings.

An entry holds the site's `SiteConfig` and, once the web side asked for it, the site's active managers:
detached ORM objects shared by concurrent requests (read them, never change them or add them to a
session). The engine reads managers itself, locked, on every step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from dialer.clock import Clock
from dialer.core.errors import NotFound
from dialer.db.models import Manager, Site
from dialer.sites.config import SiteConfig, from_row, load_by_ids
from dialer.sites.lookup import active_managers, site_by_key

DEFAULT_TTL = 5.0
_TABLES = frozenset({Site.__tablename__, Manager.__tablename__})
_generation = 0  # bumped whenever a committed transaction changed a site or a manager


def generation() -> int:
    """Goes up whenever this process commits a change to a site or a manager."""
    return _generation


@dataclass(frozen=True)
class _Entry:
    expires: datetime
    generation: int  # the generation read before loading: a change committed meanwhile makes it stale
    config: SiteConfig
    managers: list[Manager] | None  # the active managers, for the web side (None: not read)


class SiteCache:
    def __init__(self, clock: Clock, ttl: float = DEFAULT_TTL) -> None:
        self.clock, self.ttl = clock, ttl
        self._by_id: dict[int, _Entry] = {}
        self._ids: dict[str, int] = {}  # site key -> site id

    def _fresh(self, site_id: int | None, now: datetime) -> _Entry | None:
        entry = self._by_id.get(site_id) if site_id is not None else None
        if entry is None or entry.expires <= now or entry.generation != _generation:
            return None
        return entry

    def _keep(self, entry: _Entry) -> None:
        if self.ttl > 0:
            self._by_id[entry.config.id] = entry
            self._ids[entry.config.key] = entry.config.id

    async def get(self, session: AsyncSession, key: str) -> tuple[SiteConfig, list[Manager]]:
        """The config of the site with this key and its active managers in order; raises NotFound like
        `site_by_key`."""
        now = self.clock.now()
        entry = self._fresh(self._ids.get(key), now)
        if entry is not None and entry.config.key == key:
            return await self._with_managers(session, entry)
        return await self._load(session, now, await site_by_key(session, key))

    async def get_by_id(self, session: AsyncSession, site_id: int) -> tuple[SiteConfig, list[Manager]]:
        now = self.clock.now()
        entry = self._fresh(site_id, now)
        if entry is not None:
            return await self._with_managers(session, entry)
        site = await session.get(Site, site_id)
        if site is None:
            raise NotFound("No such site.", "site")
        return await self._load(session, now, site)

    async def _with_managers(self, session: AsyncSession, entry: _Entry) -> tuple[SiteConfig, list[Manager]]:
        """The entry's config with the site's active managers (read now if the engine made the entry)."""
        if entry.managers is not None:
            return entry.config, entry.managers
        managers = await self._managers(session, entry.config.id)
        self._keep(replace(entry, managers=managers))
        return entry.config, managers

    async def _managers(self, session: AsyncSession, site_id: int) -> list[Manager]:
        managers = await active_managers(session, site_id)
        for manager in managers:
            session.expunge(manager)  # so that this session's rollback (a refused request) cannot expire them
        return managers

    async def _load(self, session: AsyncSession, now: datetime, site: Site) -> tuple[SiteConfig, list[Manager]]:
        generation = _generation  # read before loading: a change committed meanwhile makes this entry stale
        managers = await self._managers(session, site.id)
        config = from_row(site, managers)
        self._keep(_Entry(now + timedelta(seconds=self.ttl), generation, config, managers))
        return config, managers

    async def configs(self, conn: AsyncConnection, site_ids: set[int]) -> dict[int, SiteConfig]:
        """The configs of these sites (the engine's read, on its own connection)."""
        now = self.clock.now()
        found: dict[int, SiteConfig] = {}
        for site_id in site_ids:
            entry = self._fresh(site_id, now)
            if entry is not None:
                found[site_id] = entry.config
        missing = site_ids - found.keys()
        if missing:
            generation = _generation
            for site_id, config in (await load_by_ids(conn, missing)).items():
                self._keep(_Entry(now + timedelta(seconds=self.ttl), generation, config, None))
                found[site_id] = config
        return found

    def clear(self) -> None:
        self._by_id.clear()
        self._ids.clear()


def _changes_sites(session: Session) -> bool:
    return any(isinstance(o, (Site, Manager)) for o in (*session.new, *session.dirty, *session.deleted))


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    if _changes_sites(session):
        session.info["changes_sites"] = True


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if state.is_update or state.is_delete or state.is_insert:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in _TABLES:
            state.session.info["changes_sites"] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    global _generation
    if session.info.pop("changes_sites", False):
        _generation += 1


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop("changes_sites", None)
