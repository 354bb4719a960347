"""Every Prometheus metric Ringback exports, defined here once; the rest of the code calls one line.

`/metrics` (server/pages.py) serves them. Across processes (one `serve` and several `worker`s on one
machine) set `PROMETHEUS_MULTIPROC_DIR` to an empty directory every process can write, before they start:
each process then writes its samples there (prometheus_client's multiprocess mode) and the web process
that is scraped adds them up. Empty the directory when the processes are restarted. Without it, each
process serves its own.

Leads by status are not counted here: the web process reads them from the database when scraped
(`lead_counts`), so they are right whichever process moved the leads. What happens to leads as it
happens is counted by the process that does it (`ringback_lead_changes_total`, ...).

Label values come from short fixed sets (statuses, roles, hook names, provider error codes), never from
a lead, a number or a request, so the number of series stays small. No metric carries personal data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: from a millisecond (a step in one transaction) to a minute (a wake-up the engine was late for).
_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# leads ---------------------------------------------------------------------------------------------

LEAD_CHANGES = Counter(
    "ringback_lead_changes_total", "Leads that moved to a status, by that status.", ["status"]
)
LEADS_FINISHED = Counter(
    "ringback_leads_finished_total",
    "Leads that ended, by outcome (the final status: completed, missed, unreachable, cancelled, rejected, failed).",
    ["outcome"],
)
HUNT_STEPS = Counter(
    "ringback_hunt_steps_total", "Calls a hunt placed: a manager rung or the visitor dialed, by role.", ["role"]
)

# the engine ----------------------------------------------------------------------------------------

STEP_SECONDS = Histogram(
    "ringback_engine_step_seconds", "Time of one step transaction (a batch of leads locked, decided, written).",
    buckets=_SECONDS,
)
WAKE_LATENESS = Histogram(
    "ringback_engine_wake_lateness_seconds", "How late a due lead's wake-up was acted on.", buckets=_SECONDS,
)
EVENTS_STORED = Counter(
    "ringback_events_stored_total", "Provider events that could not be applied at once and were stored for later."
)
EVENTS_REPLAYED = Counter(
    "ringback_events_replayed_total", "Stored provider events applied later."
)

# the provider --------------------------------------------------------------------------------------

PROVIDER_REQUESTS = Counter(
    "ringback_provider_requests_total", "Requests to the telephony provider.", ["provider", "operation"]
)
PROVIDER_ERRORS = Counter(
    "ringback_provider_errors_total",
    "Provider requests that failed, by the provider's error code ('none' when it gave none).",
    ["provider", "operation", "code"],
)
PROVIDER_SECONDS = Histogram(
    "ringback_provider_request_seconds", "Time of a request to the telephony provider.", ["provider", "operation"],
    buckets=_SECONDS,
)
WEBHOOK_SECONDS = Histogram(
    "ringback_webhook_seconds", "Time to answer a provider's webhook, by hook and HTTP status.", ["hook", "code"],
    buckets=_SECONDS,
)

# the database and Redis ----------------------------------------------------------------------------

POOL_WAITS = Counter(
    "ringback_db_pool_waits_total", "Connections asked for while every connection of the pool was in use."
)
POOL_WAIT_SECONDS = Histogram(
    "ringback_db_pool_wait_seconds", "How long those waited for a connection.", buckets=_SECONDS,
)
POOL_TIMEOUTS = Counter(
    "ringback_db_pool_timeouts_total", "Connections not obtained within the pool's timeout."
)
REDIS_FALLBACKS = Counter(
    "ringback_redis_fallbacks_total",
    "Redis failed and something else took over: limiter (counted in the database), publish (update dropped; "
    "the database is re-read), read (subscriptions wait; the engine polls).",
    ["part"],
)
PG_NOTIFY_FAILURES = Counter(
    "ringback_pg_notify_failures_total", "LISTEN/NOTIFY failures (publish dropped, listener reconnecting).",
    ["operation"],
)


# one-line calls ------------------------------------------------------------------------------------

TERMINAL_STATUSES = frozenset({"completed", "missed", "unreachable", "cancelled", "rejected", "failed"})


def lead_moved(status: str, *, changed: bool, calls: Iterable[str]) -> None:
    """A committed step: the lead's status (`changed` when it moved to it) and the roles of the calls it
    places."""
    if changed:
        LEAD_CHANGES.labels(status).inc()
        if status in TERMINAL_STATUSES:
            LEADS_FINISHED.labels(status).inc()
    for role in calls:
        HUNT_STEPS.labels(role).inc()


def provider_request(provider: str, operation: str, seconds: float, error_code: str | None = None,
                     failed: bool = False) -> None:
    PROVIDER_REQUESTS.labels(provider, operation).inc()
    PROVIDER_SECONDS.labels(provider, operation).observe(seconds)
    if failed:
        PROVIDER_ERRORS.labels(provider, operation, error_code or "none").inc()


# serving -------------------------------------------------------------------------------------------


class LeadCounts(Collector):
    """`ringback_leads{status}`: leads now in each status, as last read from the database."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("ringback_leads", "Leads in each status, read from the database.",
                                   labels=["status"])
        for status, n in sorted(self.counts.items()):
            family.add_metric([status], n)
        yield family


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def exposition(lead_counts: dict[str, int] | None = None) -> bytes:
    """The text a scrape gets: this process's metrics (or every process's, in multiprocess mode), and the
    leads by status when given."""
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    if lead_counts is not None:
        extra = CollectorRegistry(auto_describe=False)
        extra.register(LeadCounts(lead_counts))
        text += generate_latest(extra)
    return text
