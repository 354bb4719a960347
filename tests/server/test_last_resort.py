"""An error that no handler knows (here a database refusal outside the one spot that expects it) still
gets the house answer: a 500 in the JSON error shape the widget can read cross-origin, nothing written,
and a log line with the traceback to diagnose it by, without the visitor's number."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from starlette.testclient import TestClient

from dialer.db.models import Lead, LeadEvent
from dialer.intake import accept
from dialer.logs import mask_phone
from server import api
from tests.harness import World, app_client, count

NUMBER = "+48501234567"
PAGE = "https://shop.example"


@pytest.fixture
def shop(database_url: str) -> Iterator[tuple[TestClient, World]]:
    with app_client(database_url, run_engine=False) as pair:
        yield pair


def refused_by_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """The timeline line's insert fails after the lead's, as no handler expects: a database error whose
    text names the statement's parameters, the visitor's number among them."""
    write = accept.new_lead.write

    async def failing(session: Any, lead: Any, **line: Any) -> None:
        await write(session, lead, **line)
        params = {"phone": lead.phone, "detail": line["detail"]}
        raise IntegrityError("INSERT INTO lead_events (lead_id, detail) VALUES (?, ?)", params, Exception("boom"))

    monkeypatch.setattr(accept.new_lead, "write", failing)


def test_an_unexpected_error_is_answered_in_the_house_shape_and_logged_without_the_number(
    shop: tuple[TestClient, World], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client, world = shop
    refused_by_the_database(monkeypatch)
    with caplog.at_level(logging.ERROR, logger="ringback.server"):
        response = client.post("/api/v1/callbacks", json={"site": "shop", "phone": NUMBER},
                               headers={"Origin": PAGE, "Accept-Language": "pl"})

    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["access-control-allow-origin"] == PAGE  # the widget can read it
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert error["message"].startswith("Nie mogliśmy teraz przyjąć zgłoszenia.")  # in the visitor's language
    reference = re.fullmatch(r".* \(([0-9a-f]{8})\)", error["message"])
    assert reference is not None
    assert count(client, world, Lead) == 0 and count(client, world, LeadEvent) == 0  # nothing half-written

    (line,) = [r.getMessage() for r in caplog.records if "unhandled error" in r.getMessage()]
    assert f"POST /api/v1/callbacks (reference {reference.group(1)})" in line
    assert "Traceback" in line and "IntegrityError" in line and "in failing" in line  # where it was raised
    assert NUMBER not in line and NUMBER[1:] not in line
    assert NUMBER not in caplog.text  # nor anywhere else (uvicorn's or Starlette's own log of it)


@pytest.mark.parametrize("error", [RuntimeError(f"calling {NUMBER} failed"), asyncio.CancelledError(NUMBER)],
                         ids=["error", "stray cancellation"])
def test_a_failing_status_read_is_logged_without_the_number_or_the_token(
    shop: tuple[TestClient, World], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    error: BaseException,
) -> None:
    # A CancelledError leaked from an inner future (the request's task itself was not cancelled) is an
    # error like another: Starlette lets it through, and uvicorn would answer its own plain-text 500.
    client, _ = shop

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(api, "load_lead", broken)
    with caplog.at_level(logging.ERROR, logger="ringback.server"):
        response = client.get("/api/v1/callbacks/" + "0" * 32, params={"token": "secret-token"})
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    assert type(error).__name__ in caplog.text and mask_phone(NUMBER) in caplog.text
    assert NUMBER not in caplog.text and "secret-token" not in caplog.text
