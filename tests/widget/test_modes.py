"""What the widget offers when nobody can call now, and how it keeps the visitor informed when the
WebSocket fails. The config fields other parts of the server fill in (`call_now`, `slots`, `form_token`,
`min_fill_seconds`) are set here by rewriting the real config response in the browser."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from dialer.telephony.simulator import Behaviour
from tests.widget.conftest import ACCEPTED, LiveServer, freeze_clock

pytestmark = pytest.mark.browser

NEW_YORK = ZoneInfo("America/New_York")
POLL = re.compile(r"/api/v1/callbacks/\w+\?token=")


def patch_config(page: Any, **changes: Any) -> None:
    def handle(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), **changes})

    page.route(re.compile(r"/api/v1/sites/demo/config"), handle)


def _in_new_york(moment: datetime) -> list[str]:
    """Pieces of the time as a New Yorker's browser writes it (the exact spacing is ICU's business)."""
    local = moment.astimezone(NEW_YORK)
    return [local.strftime("%a"), f"{local:%b} {local.day}", f"{local.hour % 12 or 12}:{local:%M}",
            local.tzname() or ""]


def test_pick_a_time_offers_the_slots_in_the_visitors_own_time_zone(live: LiveServer, visitor: Any) -> None:
    now = live.clock.now()
    first = (now + timedelta(days=1)).replace(hour=15, minute=0, second=0)
    second = first + timedelta(hours=2)
    page = visitor(timezone_id="America/New_York").page()
    patch_config(page, call_now=False, slots=[{"start": first.isoformat()},
                                              {"start": second.isoformat(), "label": "Tomorrow afternoon"}])
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    expect(page.get_by_text("Nobody can take a call just now. Pick a time that suits you.")).to_be_visible()
    when = page.get_by_label("When should we call?")
    options = when.locator("option").all_text_contents()
    assert all(piece in options[0] for piece in _in_new_york(first)), options
    assert options[1] == "Tomorrow afternoon"

    when.select_option(index=0)
    page.get_by_label("Your phone number").fill("(202) 555-0143")
    with page.expect_request(lambda r: r.method == "POST") as sent:
        page.get_by_role("button", name="Call me at this time").click()
    assert json.loads(sent.value.post_data or "{}")["scheduled_for"] == first.isoformat()
    status = page.get_by_role("status")
    expect(status).to_contain_text("We will call you at")
    text = status.text_content() or ""
    assert all(piece in text for piece in _in_new_york(first)), text
    [lead] = live.leads()
    assert lead.status == "scheduled" and lead.scheduled_for == first
    assert lead.timezone == "America/New_York"


def test_leave_a_message_when_nobody_can_call(live: LiveServer, visitor: Any) -> None:
    page = visitor().page()
    patch_config(page, call_now=False, slots=[])
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    page.get_by_label("Your phone number").fill("(202) 555-0143")
    page.get_by_label("Your message").fill("Do you ship to Gdańsk?")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_have_text("Thank you! We got your message and will get back to you.")
    [lead] = live.leads()
    assert lead.kind == "message" and lead.message == "Do you ship to Gdańsk?" and lead.status == "received"
    live.advance(120)
    assert live.sim.dialed == []


def test_without_a_websocket_the_widget_polls_and_shows_the_place_in_line(live: LiveServer, visitor: Any) -> None:
    live.sim.script("+12025550143", Behaviour.answers(after=3, talk_for=600))
    page = visitor().page()
    freeze_clock(page)  # the widget's polling timer runs when the test says
    page.route_web_socket(re.compile(r"/live"), lambda ws: ws.close())  # a proxy that drops WebSockets

    def with_place_in_line(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        if body.get("status") == "queued":
            body["queue_position"] = 2
        route.fulfill(response=response, json=body)

    page.route(POLL, with_place_in_line)
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    page.get_by_label("Your phone number").fill("(202) 555-0143")
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if POLL.search(r.url) else None)
    page.get_by_role("button", name="Call me now").click()
    status = page.get_by_role("status")
    expect(status).to_have_text(ACCEPTED)

    for _ in range(40):  # the WebSocket closes, the widget waits a second and asks instead
        page.clock.run_for(250)
        if polls:
            break
    assert polls, "the widget never fell back to asking"
    expect(status).to_have_text("Waiting for a free manager… You are number 2 in line.")

    [lead] = live.leads()
    live.until_status(lead.id, "connected")
    page.clock.run_for(3000)
    expect(status).to_have_text("Connected. Enjoy your call!")


def test_a_los_angeles_visitor_on_a_new_york_site_is_offered_only_times_the_server_accepts(
    live: LiveServer, visitor: Any
) -> None:
    """No config rewriting: the real server's slots, in real zones. The shop in New York opens at 09:00
    its time, 06:00 in Los Angeles, before the visitor's calling window (08:00–22:00 theirs) opens."""
    today = live.clock.now().astimezone(NEW_YORK).date()
    live.update_site(timezone="America/New_York", country="US", settings={
        "calling_window": ["08:00", "22:00"], "business_hours": {d: [["09:00", "18:00"]] for d in
                                                                 ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "closed_dates": [today.isoformat()]})  # nobody calls today: the widget offers times
    page = visitor(timezone_id="America/Los_Angeles").page()
    with page.expect_request(re.compile(r"/config\?")) as asked:
        page.goto(live.url + "/demo")
    assert "timezone=America%2FLos_Angeles" in asked.value.url
    page.get_by_role("button", name="Call me back").click()
    when = page.get_by_label("When should we call?")
    offered = [datetime.fromisoformat(v) for v in when.locator("option").evaluate_all("os => os.map(o => o.value)")]
    assert offered
    los_angeles = ZoneInfo("America/Los_Angeles")
    assert all(8 <= s.astimezone(los_angeles).hour < 22 for s in offered), offered
    assert offered[0].astimezone(NEW_YORK).hour == 11  # 08:00 in Los Angeles, the first time both allow
    when.select_option(index=0)
    page.get_by_label("Your phone number").fill("(213) 555-0143")
    with page.expect_response(lambda r: r.request.method == "POST") as answered:
        page.get_by_role("button", name="Call me at this time").click()
    assert answered.value.status == 201, answered.value.text()
    [lead] = live.leads()
    assert lead.status == "scheduled" and lead.scheduled_for == offered[0]
