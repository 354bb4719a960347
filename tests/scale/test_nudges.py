"""A lead accepted by a web-only process is picked up at once by an engine in another process, through
Redis, with no poll to fall back on. (Two runtimes on one database stand for two processes: see
tests/scale/nudged.py; tests/scale/test_without_redis.py does the same through LISTEN/NOTIFY.)"""

from __future__ import annotations

import secrets

from dialer.broadcast.redis_pubsub import RedisBroadcast
from tests.harness import REDIS_URL
from tests.scale.nudged import a_worker_hears_of_a_lead_the_web_accepted, seed_shop


async def test_a_worker_hears_of_a_lead_the_web_process_accepted(database_url: str) -> None:
    prefix = f"test-{secrets.token_hex(6)}:"
    await seed_shop(database_url)
    await a_worker_hears_of_a_lead_the_web_accepted(database_url, lambda: RedisBroadcast(REDIS_URL, prefix=prefix))
