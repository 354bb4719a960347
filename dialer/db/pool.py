"""The connection pool of a PostgreSQL engine, counting the connections that had to wait for a free one
(`dialer.metrics`: ringback_db_pool_waits_total, _wait_seconds, _timeouts_total)."""

from __future__ import annotations

import time

from sqlalchemy import exc
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from dialer import metrics


class MeteredPool(AsyncAdaptedQueuePool):
    def _do_get(self) -> ConnectionPoolEntry:
        # Every connection is in use and no more may be opened: this checkout waits for one to come back.
        if self._max_overflow > -1 and self._overflow >= self._max_overflow and self._pool.empty():
            metrics.POOL_WAITS.inc()
            started = time.perf_counter()
            try:
                return super()._do_get()
            except exc.TimeoutError:
                metrics.POOL_TIMEOUTS.inc()
                raise
            finally:
                metrics.POOL_WAIT_SECONDS.observe(time.perf_counter() - started)
        return super()._do_get()
