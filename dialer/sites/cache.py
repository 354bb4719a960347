"""A short-lived copy of each site and its active managers, by site key, for the widget's hot paths.

Every widget request names its site, and reading the site and its managers took two of the intake's
round trips to the database. Entries live `ttl` seconds (DEFAULT_TTL), so a change made by another
process (the dashboard in another server process, the command line) reaches this one within that time.
A change committed through any session of this process (an ORM change to a site or a manager, or an
UPDATE/INSERT/DELETE statement on their tables) drops every entry at once, so the process that made a
change never serves the old settings.

The cached rows are detached ORM objects shared by concurrent requests: read them, never change them
or add them to a session.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from dialer.db.models import Manager, Site
from dialer.sites.lookup import active_managers, site_by_key

DEFAULT_TTL = 5.0
_TABLES = frozenset({Site.__tablename__, Manager.__tablename__})
_generation = 0  # bumped whenever a committed transaction changed a site or a manager


def generation() -> int:
    """Goes up whenever this process commits a change to a site or a manager (the engine's cache of
    site rows checks it too)."""
    return _generation


class SiteCache:
    def __init__(self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self._clock = ttl, clock
        self._entries: dict[str, tuple[float, int, Site, list[Manager]]] = {}

    async def get(self, session: AsyncSession, key: str) -> tuple[Site, list[Manager]]:
        """The site with this key and its active managers in order; raises NotFound like `site_by_key`."""
        now = self._clock()
        found = self._entries.get(key)
        if found is not None and found[0] > now and found[1] == _generation:
            return found[2], found[3]
        generation = _generation  # read before loading: a change committed meanwhile makes this entry stale
        site = await site_by_key(session, key)
        managers = await active_managers(session, site.id)
        for row in (site, *managers):
            session.expunge(row)  # so that this session's rollback (a refused request) cannot expire them
        if self.ttl > 0:
            self._entries[key] = (now + self.ttl, generation, site, managers)
        return site, managers

    def clear(self) -> None:
        self._entries.clear()


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
