"""Everything one Ringback process runs on, built from the settings: database, clock, provider, engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dialer import db
from dialer.broadcast.memory import Broadcast, MemoryBroadcast
from dialer.clock import Clock, FastTimers, SystemClock
from dialer.config import Settings
from dialer.core.machine import Policy
from dialer.core.notices import Notices
from dialer.engine import CONCURRENCY, Engine
from dialer.engine.jobs import POLL_SECONDS, RECORDING_DELAYS, Jobs
from dialer.engine.nudges import NudgeRelay
from dialer.engine.pacing import make_pacer
from dialer.protection.ratelimit import Limiter, make_limiter
from dialer.sites.cache import SiteCache
from dialer.telephony.base import Provider


def make_provider(settings: Settings, clock: Clock) -> Provider:
    if settings.telephony == "twilio":
        from dialer.telephony.twilio import TwilioProvider

        return TwilioProvider.from_settings(settings)
    from dialer.telephony.simulator import SimulatedProvider

    return SimulatedProvider(clock, seed=settings.simulator_seed, log_path=settings.simulator_log,
                             calls_per_second=settings.simulator_calls_per_second)


def make_broadcast(settings: Settings) -> Broadcast:
    on_postgresql = not db.is_sqlite(settings.database_url)
    if settings.redis_url:
        from dialer.broadcast.redis_pubsub import RedisBroadcast

        redis = RedisBroadcast(settings.redis_url, prefix=settings.redis_prefix)
        if on_postgresql:  # while Redis fails, LISTEN/NOTIFY carries the updates
            from dialer.broadcast.fallback import FallbackBroadcast
            from dialer.broadcast.pg_notify import PgNotifyBroadcast

            return FallbackBroadcast(redis, PgNotifyBroadcast(settings.database_url))
        return redis
    if on_postgresql:
        # Without Redis, PostgreSQL's LISTEN/NOTIFY carries them: a web process without an engine, the
        # workers and the other web processes hear each other.
        from dialer.broadcast.pg_notify import PgNotifyBroadcast

        return PgNotifyBroadcast(settings.database_url)
    return MemoryBroadcast()


@dataclass
class Runtime:
    settings: Settings
    database: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    provider: Provider
    broadcast: Broadcast
    engine: Engine
    nudges: NudgeRelay | None = None  # engines in other processes, told when a lead is due now
    limiter: Limiter = field(default=None)  # type: ignore[assignment]  # set in __post_init__
    jobs: Jobs | None = None  # provider work kept in the database (prices, late recordings)

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = make_limiter(self.settings.secret_key, self.settings.redis_url, self.settings.redis_prefix)

    @property
    def sites(self) -> SiteCache:
        """The process's one cache of site configs: the engine's and the web side's."""
        return self.engine.site_cache

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        provider: Provider | None = None,
        broadcast: Broadcast | None = None,
        policy: Policy | None = None,
        poll_interval: float | None = 1.0,
    ) -> Runtime:
        # The server keeps real time; RINGBACK_SIMULATOR_SPEED speeds up the simulated calls alone.
        sped_up = settings.telephony == "simulator" and settings.simulator_speed != 1.0 and clock is None
        clock = clock or SystemClock()
        database = db.create_engine(settings.database_url)
        sessions = db.sessionmaker(database)
        provider = provider or make_provider(settings, FastTimers(settings.simulator_speed) if sped_up else clock)
        broadcast = broadcast or make_broadcast(settings)
        policy = policy or Policy(max_call_seconds=settings.max_call_seconds, retry_delay=settings.retry_seconds)
        # SQLite has one writer at a time: concurrent steps there would only fail with "database is locked".
        concurrency = 1 if db.is_sqlite(settings.database_url) else CONCURRENCY
        notices = Notices(settings.public_url, settings.secret_key)
        # Calls created through Twilio's REST API start at the account's pace, whichever process asks.
        pacer = None
        if settings.telephony == "twilio":
            pacer = make_pacer(database, clock, settings.twilio_calls_per_second, settings.redis_url,
                               settings.redis_prefix)
        elif isinstance(getattr(provider, "pace_key", None), str):
            # The simulator modelling a paced account (RINGBACK_SIMULATOR_CALLS_PER_SECOND): kept to its pace.
            account_cps = float(getattr(provider, "calls_per_second", 1.0))
            pacer = make_pacer(database, clock, account_cps, settings.redis_url, settings.redis_prefix)
        engine = Engine(
            sessions, provider, clock, broadcast, policy,
            poll_interval=poll_interval, notices=notices, concurrency=concurrency, sites=SiteCache(clock),
            pacer=pacer,
        )
        # Across processes (Redis or LISTEN/NOTIFY), a web process's "a lead is due now" reaches the workers
        # at once.
        nudges = None if isinstance(broadcast, MemoryBroadcast) else NudgeRelay(broadcast, engine)
        # Provider work kept in the database: recordings whose report is late (any provider), and prices
        # (Twilio fills them in late). Without the engine's poll (tests), only this process's jobs run.
        jobs = Jobs(database, clock, provider, engine.on_provider_event, getattr(provider, "price_delays", (5.0,)),
                    recording_delays=getattr(provider, "recording_delays", None) or RECORDING_DELAYS,
                    poll_seconds=None if poll_interval is None else POLL_SECONDS)
        engine.jobs = jobs
        if hasattr(provider, "fetch_call_price"):
            provider.price_jobs = lambda leg_id, sid: jobs.enqueue("call_price", sid, leg_id)  # type: ignore[attr-defined]
        return cls(settings, database, sessions, clock, provider, broadcast, engine, nudges, jobs=jobs)

    async def start(self, *, run_engine: bool = True) -> None:
        if run_engine:
            if self.nudges is not None:
                await self.nudges.start()
            await self.engine.start()
            if self.jobs is not None:
                await self.jobs.start()

    async def close(self) -> None:
        if self.jobs is not None:
            await self.jobs.stop()
        await self.engine.stop()
        if self.engine.dialer.pacer is not None:
            await self.engine.dialer.pacer.close()
        if self.nudges is not None:
            await self.nudges.stop()
        await self.provider.close()
        await self.broadcast.close()
        await self.limiter.close()
        await self.database.dispose()
