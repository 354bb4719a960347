"""The database unreachable: the widget's API answers 503 with Retry-After and the usual error shape
(never a plain-text 500), and a half-done request writes nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from dialer import db
from dialer.db.models import Lead
from dialer.runtime import Runtime
from server.app import create_app
from tests.harness import app_client, build_runtime, count

pytestmark = pytest.mark.sqlite_only  # nothing is written: the database never answers

# Like every error of the API's, a field that is none of the visitor's to correct is left out (the
# schema's ErrorDetail omits it): the widget shows the message under the form.
KIND = {"error": {"code": "unavailable",
                  "message": "We could not take your request just now. Please try again in a minute."}}
CALLBACK = {"site": "shop", "phone": "+48501234567", "timezone": "Europe/Warsaw"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # bound, never listened on, closed: connecting is refused


@pytest.fixture
def unreachable() -> Iterator[tuple[TestClient, Runtime]]:
    """An app whose PostgreSQL is at a port nobody listens on."""
    rt = build_runtime(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/ringback")
    with TestClient(create_app(runtime=rt, run_engine=False)) as client:
        yield client, rt
        client.portal.call(rt.close)  # type: ignore[union-attr]


def assert_kind_503(response: Any) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    assert int(response.headers["retry-after"]) > 0
    assert response.json() == KIND


def test_a_callback_request_with_the_database_away_is_told_to_try_again(
    unreachable: tuple[TestClient, Runtime],
) -> None:
    client, _ = unreachable
    assert_kind_503(client.post("/api/v1/callbacks", json=CALLBACK))


def test_the_widget_config_with_the_database_away_is_told_to_try_again(
    unreachable: tuple[TestClient, Runtime],
) -> None:
    client, _ = unreachable
    assert_kind_503(client.get("/api/v1/sites/shop/config"))


class Broken:
    """A sessionmaker whose sessions fail as a lost database makes them fail."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def __call__(self) -> Broken:
        return self

    async def __aenter__(self) -> Any:
        raise self.exc

    async def __aexit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize("exc", [
    OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "refused")),
    InterfaceError("SELECT 1", {}, Exception("connection is closed")),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),
], ids=lambda e: type(e).__name__)
def test_each_way_of_losing_the_database_is_a_503(unreachable: tuple[TestClient, Runtime], exc: Exception) -> None:
    client, rt = unreachable
    rt.sessions = Broken(exc)  # type: ignore[assignment]
    assert_kind_503(client.post("/api/v1/callbacks", json=CALLBACK))
    assert_kind_503(client.get("/api/v1/sites/shop/config"))


@pytest.mark.parametrize("refusal", [
    asyncpg.TooManyConnectionsError, asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
    asyncpg.DeadlockDetectedError,
], ids=lambda e: e.__name__)
def test_a_postgresql_that_refuses_for_the_moment_is_a_503(
    unreachable: tuple[TestClient, Runtime], refusal: type[Exception],
) -> None:
    # As the app meets them: SQLAlchemy wraps these asyncpg errors in a plain DBAPIError (no
    # OperationalError), told apart by its SQLSTATE (53300 too many clients, 57P03 starting up, 57P01
    # shutting down, 40P01 a deadlock: the transaction was given up, nothing written).
    client, rt = unreachable

    async def refuse() -> Any:
        raise refusal("the database refuses for the moment")

    rt.sessions = db.sessionmaker(create_async_engine("postgresql+asyncpg://", async_creator=refuse))
    assert_kind_503(client.post("/api/v1/callbacks", json=CALLBACK))
    assert_kind_503(client.get("/api/v1/sites/shop/config"))


def test_the_database_lost_halfway_through_a_request_writes_nothing(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import server.api

    real = server.api.write

    async def write_then_lose(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)  # the lead is written in the transaction…
        raise OperationalError("INSERT …", {}, ConnectionResetError(104, "reset"))  # …which never commits

    with app_client(database_url, run_engine=False) as (client, world):
        before = count(client, world, Lead)
        monkeypatch.setattr(server.api, "write", write_then_lose)
        assert_kind_503(client.post("/api/v1/callbacks", json=CALLBACK))
        assert count(client, world, Lead) == before
