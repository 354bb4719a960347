"""The database away when a visitor asks for a call: the widget shows the server's kind message (the
503's), and the visitor can try again once it is back."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.exc import OperationalError

import server.api
from tests.widget.conftest import ACCEPTED, LiveServer, shadow

pytestmark = pytest.mark.browser


def test_a_request_the_database_could_not_take_is_met_kindly(
    live: LiveServer, visitor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = server.api.write

    async def lost(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT …", {}, ConnectionRefusedError(111, "Connect call failed"))

    page = visitor().page()
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    page.get_by_label("Your phone number").fill("+1 202 555 0143")
    monkeypatch.setattr(server.api, "write", lost)
    page.get_by_role("button", name="Call me now").click()
    expect(shadow(page, "form [role=alert]")).to_have_text(
        "We could not take your request just now. Please try again in a minute.")
    assert live.leads() == []

    monkeypatch.setattr(server.api, "write", real)  # the database is back
    page.get_by_role("button", name="Call me now").click()
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)
    assert len(live.leads()) == 1
