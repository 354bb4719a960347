"""What an operator sees: `/readyz` says what is wrong, `/metrics` parses and moves during a hunt, and
the metrics of several processes add up in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from starlette.testclient import TestClient

from dialer.telephony.simulator import Behaviour
from server.app import create_app
from server.ops import readiness, schema_heads
from tests.broadcast.servers import closed_url
from tests.conftest import World, script_hunt
from tests.harness import app_client, build_runtime, client_for

VISITOR = "+48501234567"
LOCAL = ("127.0.0.1", 40000)  # without RINGBACK_METRICS_TOKEN, /metrics answers this machine only


@pytest.fixture
def client_world(database_url: str) -> Iterator[tuple[TestClient, World]]:
    """The harness's fixture, its requests from this machine (tests/server/test_metrics_access.py)."""
    yield from client_for(database_url, peer=LOCAL)


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by name and labels (prometheus_client's own parser: a format error raises)."""
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_parse_and_move_during_a_hunt(client_world: tuple[TestClient, World]) -> None:
    client, world = client_world
    script_hunt(world.sim)  # two managers miss, the third presses 1
    world.sim.script(VISITOR, Behaviour.answers(after=3, talk_for=40))
    before = samples(client.get("/metrics").text)
    created = client.post("/api/v1/callbacks", json={"site": "shop", "phone": VISITOR, "timezone": "Europe/Warsaw"})
    assert created.status_code == 201
    lead_id = created.json()["id"]

    async def run() -> None:
        await world.until_status(lead_id, "completed")

    client.portal.call(run)  # type: ignore[union-attr]
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("ringback_hunt_steps_total", role="manager") == 3
    assert moved("ringback_hunt_steps_total", role="visitor") == 1
    assert moved("ringback_provider_requests_total", provider="simulator", operation="place_call") == 4
    assert moved("ringback_lead_changes_total", status="connected") == 1
    assert moved("ringback_leads_finished_total", outcome="completed") == 1
    assert moved("ringback_engine_step_seconds_count") >= 6
    assert moved("ringback_engine_wake_lateness_seconds_count") >= 1  # the first manager's ring timeout
    assert value(after, "ringback_leads", status="completed") == 1  # read from the database
    # The phone number is nowhere in what a scrape shows.
    assert VISITOR not in response.text and VISITOR[3:] not in response.text


@pytest.mark.sqlite_only
def test_a_refused_number_is_counted_by_the_providers_error_code(client_world: tuple[TestClient, World]) -> None:
    from dialer.telephony.base import ProviderError

    client, world = client_world
    world.sim.refuse["+12025550101"] = ProviderError("not a valid phone number", code="21211")
    before = samples(client.get("/metrics").text)
    client.post("/api/v1/callbacks", json={"site": "shop", "phone": VISITOR, "timezone": "Europe/Warsaw"})

    async def run() -> None:
        await world.clock.run_until(lambda: _dialed(world, "+12025550102"), limit=120)

    client.portal.call(run)  # type: ignore[union-attr]
    after = samples(client.get("/metrics").text)
    labels = {"provider": "simulator", "operation": "place_call", "code": "21211"}
    assert value(after, "ringback_provider_errors_total", **labels) - value(before, "ringback_provider_errors_total", **labels) == 1


async def _dialed(world: World, number: str) -> bool:
    return any(d.to == number for d in world.sim.dialed)


def test_ready_when_the_database_answers_with_the_expected_schema_and_the_engine_ticks(
    client_world: tuple[TestClient, World],
) -> None:
    client, world = client_world
    client.portal.call(world.engine.run_due)  # type: ignore[union-attr]
    client.portal.call(world.engine._tick)  # type: ignore[union-attr]  # without polling, tick once
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok" and body["checks"]["migrations"] == ",".join(schema_heads())
    assert body["checks"]["engine"].startswith("ticked")
    assert client.get("/healthz").status_code == 200


def test_not_ready_when_the_migrations_are_behind(database_url: str) -> None:
    with app_client(database_url, run_engine=False) as (client, world):

        async def set_revision(revision: str) -> None:
            async with world.runtime.database.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})

        head = schema_heads()[0]
        client.portal.call(set_revision, "0005")  # type: ignore[union-attr]
        try:
            response = client.get("/readyz")
        finally:
            client.portal.call(set_revision, head)  # type: ignore[union-attr]
        assert response.status_code == 503
        assert response.json()["problems"] == [
            f"migrations not current: the database is at 0005, this code expects {head} (run `ringback migrate`)"
        ]
        assert "engine" not in response.json()["checks"]  # a web-only process runs no engine
        assert client.get("/readyz").status_code == 200


@pytest.mark.sqlite_only
def test_not_ready_when_the_database_is_unreachable() -> None:
    port = closed_url().rsplit(":", 1)[1].split("/")[0]
    runtime = build_runtime(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing")
    with TestClient(create_app(runtime=runtime, run_engine=False), client=LOCAL) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["problems"][0].startswith("database unreachable")
        assert client.get("/healthz").status_code == 200  # alive all the same
        assert client.get("/metrics").status_code == 200  # the process's own metrics are still served
        client.portal.call(runtime.close)  # type: ignore[union-attr]


async def test_an_engine_that_stopped_ticking_is_not_ready(database_url: str) -> None:
    runtime = build_runtime(database_url, poll_interval=1.0)
    await runtime.engine.start()
    try:
        await runtime.engine._tick()
        ticked = runtime.engine.ticked_at
        assert ticked is not None
        assert (await readiness(runtime, runs_engine=True, now=ticked + 1)).ready
        late = await readiness(runtime, runs_engine=True, now=ticked + 45)
        assert late.problems == ["engine not ticking: last tick 45 s ago (more than 30 s)"]
        runtime.engine.pause()
        assert (await readiness(runtime, runs_engine=True, now=ticked + 1)).problems == ["engine not running"]
    finally:
        await runtime.close()


@pytest.mark.sqlite_only
def test_metrics_of_several_processes_add_up(tmp_path: Path) -> None:
    """Two "workers" count, a third process serves the scrape: it shows their sum."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from dialer import metrics; metrics.HUNT_STEPS.labels('manager').inc(3); metrics.STEP_SECONDS.observe(0.01)"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=60)
    scrape = subprocess.run([sys.executable, "-c", "from dialer import metrics; print(metrics.exposition().decode())"],
                            env=env, check=True, timeout=60, capture_output=True, text=True).stdout
    found = samples(scrape)
    assert value(found, "ringback_hunt_steps_total", role="manager") == 6
    assert value(found, "ringback_engine_step_seconds_count") == 2


@pytest.mark.sqlite_only
def test_webhook_replies_are_timed_by_hook_and_status(client_world: tuple[TestClient, World]) -> None:
    client, _ = client_world
    labels = {"hook": "status", "code": "404"}  # the simulator is the provider here: Twilio's hooks answer 404
    before = value(samples(client.get("/metrics").text), "ringback_webhook_seconds_count", **labels)
    assert client.post("/telephony/twilio/status?leg=x", data={"CallStatus": "ringing"}).status_code == 404
    after = value(samples(client.get("/metrics").text), "ringback_webhook_seconds_count", **labels)
    assert after == before + 1
