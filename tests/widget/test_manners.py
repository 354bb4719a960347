"""Polite by default, opening by itself only as the site allows; never breaking the host page; its small
JS API, the dataLayer, languages, and the bot checks it takes part in."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.widget.conftest import ACCEPTED, LiveServer, freeze_clock
from tests.widget.test_modes import patch_config

pytestmark = pytest.mark.browser

STUB = "window.Ringback = function () { (Ringback.q = Ringback.q || []).push(arguments); };"


def _panel(page: Any) -> Any:
    return page.get_by_role("dialog")


def _ready(page: Any) -> None:
    """The widget has its config and has set its timers (only then may the page's clock move)."""
    expect(page.get_by_role("button", name="Call me back")).to_be_visible()


def test_it_opens_only_when_asked_by_default(live: LiveServer, visitor: Any) -> None:
    page = visitor().page()
    freeze_clock(page)
    page.goto(live.url + "/demo")
    _ready(page)
    page.clock.run_for("10:00")  # ten minutes on the page
    page.mouse.move(600, 300)
    page.evaluate("document.dispatchEvent(new MouseEvent('mouseout', {clientY: -5, bubbles: true}))")
    expect(_panel(page)).to_be_hidden()


def test_a_timed_trigger_opens_once_per_cap_and_never_on_excluded_pages(live: LiveServer, visitor: Any) -> None:
    live.update_site({"triggers": {"after_seconds": 30, "cap_hours": 24}, "exclude": ["/examples/*"]})
    profile = visitor()
    page = profile.page()
    freeze_clock(page)
    page.goto(live.url + "/examples/strict-csp.html")  # excluded
    _ready(page)
    page.clock.run_for("01:00")
    expect(_panel(page)).to_be_hidden()

    page.goto(live.url + "/demo")
    _ready(page)
    page.clock.run_for(29_000)
    expect(_panel(page)).to_be_hidden()
    page.clock.run_for(1_000)
    expect(_panel(page)).to_be_visible()
    expect(page.get_by_label("Your phone number")).not_to_be_focused()  # it does not grab the keyboard
    page.keyboard.press("Escape")
    expect(_panel(page)).to_be_hidden()

    again = profile.page()  # the same visitor on another page, within the day
    again.goto(live.url + "/demo")
    _ready(again)
    again.clock.run_for("01:00")
    expect(_panel(again)).to_be_hidden()


def test_exit_intent_opens_on_desktop_but_never_after_a_request(live: LiveServer, visitor: Any) -> None:
    live.update_site({"triggers": {"exit_intent": True}})
    profile = visitor()
    page = profile.page()
    page.goto(live.url + "/demo")
    expect(page.get_by_role("button", name="Call me back")).to_be_visible()
    page.mouse.move(600, 300)
    page.evaluate("document.dispatchEvent(new MouseEvent('mouseout', {clientY: 40, bubbles: true}))")
    expect(_panel(page)).to_be_hidden()  # moving about the page is not leaving it
    page.evaluate("document.dispatchEvent(new MouseEvent('mouseout', {clientY: -5, bubbles: true}))")
    expect(_panel(page)).to_be_visible()  # the pointer left through the top edge
    page.get_by_label("Your phone number").fill("+1 202 555 0143")
    page.get_by_role("button", name="Call me now").click()
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)

    live.update_site({"triggers": {"exit_intent": True, "cap_hours": 1}})
    later = visitor(storage_state=profile.context.storage_state()).page()
    freeze_clock(later)
    later.clock.fast_forward("48:00:00")  # well past the cap: only the request holds it back
    later.goto(live.url + "/demo")
    expect(later.get_by_role("button", name="Call me back")).to_be_visible()
    later.mouse.move(600, 300)
    later.evaluate("document.dispatchEvent(new MouseEvent('mouseout', {clientY: -5, bubbles: true}))")
    expect(_panel(later)).to_be_hidden()


def test_pages_the_site_hides_it_on_show_nothing(live: LiveServer, visitor: Any) -> None:
    live.update_site({"hide_on": ["/examples/*"]})
    page = visitor().page()
    with page.expect_response(re.compile(r"/config")):
        page.goto(live.url + "/examples/strict-csp.html")
    expect(page.locator("ringback-widget")).to_have_count(0)
    page.goto(live.url + "/demo")
    expect(page.get_by_role("button", name="Call me back")).to_be_visible()


def test_loading_twice_and_early_calls_are_harmless(live: LiveServer, visitor: Any) -> None:
    profile = visitor()
    profile.context.add_init_script(STUB + "Ringback('open'); Ringback('on', 'opened', function () { throw new Error('host bug'); });")
    page = profile.page()
    html = ('<!doctype html><title>Twice</title><body><h1>Twice</h1>'
            '<script async src="/widget.js" data-site="demo"></script>'
            '<script async src="/widget.js" data-site="demo"></script>')
    page.route(lambda url: url.endswith("/twice.html"), lambda route: route.fulfill(body=html, content_type="text/html"))
    configs: list[str] = []
    page.on("request", lambda r: configs.append(r.url) if "/config" in r.url else None)
    page.goto(live.url + "/twice.html")
    expect(_panel(page)).to_be_visible()  # opened by the call queued before the file arrived
    expect(page.locator("ringback-widget")).to_have_count(1)
    assert len(configs) == 1
    page.evaluate("Ringback.close(); Ringback.open(); Ringback('close'); Ringback('no-such-method', 1)")
    expect(_panel(page)).to_be_hidden()
    # The host's throwing listener did not escape: the fixture fails the test on any page error.


@pytest.mark.parametrize("answer", [{"status": 500, "body": "oops"}, {"status": 200, "body": "{not json"},
                                    {"status": 200, "body": "{\"texts\": null}"}])
def test_a_broken_config_leaves_the_page_alone(live: LiveServer, visitor: Any, answer: dict[str, Any]) -> None:
    page = visitor().page()
    page.route(re.compile(r"/config"), lambda route: route.fulfill(content_type="application/json", **answer))
    page.goto(live.url + "/demo")
    expect(page.locator("h1")).to_have_text("Demo shop")
    page.evaluate("Ringback.open()")
    page.get_by_role("button", name="Ask us to call you").click()
    expect(page.locator("ringback-widget [role=dialog]")).to_have_count(0)


def test_events_and_the_data_layer_see_the_conversion_without_the_number(live: LiveServer, visitor: Any) -> None:
    profile = visitor()
    profile.context.add_init_script(STUB + "window.heard = []; ['opened', 'submitted', 'status', 'closed']"
                                    ".forEach(function (n) { Ringback('on', n, function (e) { heard.push(n); }); });")
    page = profile.page()
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Ask us to call you").click()  # the page's own button
    page.get_by_label("Your phone number").fill("+1 202 555 0143")
    page.get_by_role("button", name="Call me now").click()
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)
    page.get_by_role("button", name="Close").click()
    assert page.evaluate("heard") == ["opened", "submitted", "status", "closed"]
    layer = page.evaluate("dataLayer")
    assert [e["event"] for e in layer] == ["ringback.opened", "ringback.submitted", "ringback.status", "ringback.closed"]
    [lead] = live.leads()
    assert layer[1]["ringback"] == {"id": lead.id, "status": "queued", "mode": "now"}
    seen = json.dumps(layer)
    assert "2025550143" not in seen and "+1202" not in seen and "202 555" not in seen  # no form of the number


def test_it_speaks_the_visitors_language(live: LiveServer, visitor: Any) -> None:
    page = visitor(locale="pl-PL").page()
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Zadzwońcie do mnie").click()
    expect(page.get_by_role("dialog", name="Oddzwonimy do Ciebie")).to_be_visible()
    page.get_by_label("Twój numer telefonu").fill("12")
    page.get_by_role("button", name="Zadzwońcie teraz").click()  # the server's refusal, in Polish too
    expect(page.locator("ringback-widget").locator("#rb-phone-e")).to_have_text(
        "Ten numer telefonu jest nieprawidłowy. Sprawdź cyfry lub dodaj numer kierunkowy kraju (np. +48).")
    page.get_by_label("Twój numer telefonu").fill("+1 202 555 0143")
    page.get_by_role("button", name="Zadzwońcie teraz").click()
    expect(page.get_by_role("status")).to_have_text("Zgłoszenie przyjęte. Dzwonimy do konsultanta…")
    [lead] = live.leads()
    assert lead.source["language"] == "pl-PL"


def test_the_form_token_goes_back_no_sooner_than_the_site_allows(live: LiveServer, visitor: Any) -> None:
    page = visitor().page()
    freeze_clock(page)
    patch_config(page, form_token="signed-token", min_fill_seconds=5)
    posts: list[Any] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    page.get_by_label("Your phone number").fill("+1 202 555 0143")
    page.get_by_role("button", name="Call me now").click()
    expect(page.get_by_role("status")).to_have_text("Sending…")
    page.clock.run_for(4_000)
    assert posts == []  # a human-looking pause first
    with page.expect_request(lambda r: r.method == "POST") as sent:
        page.clock.run_for(1_000)
    assert json.loads(sent.value.post_data or "{}")["form_token"] == "signed-token"
    assert "hp" not in json.loads(sent.value.post_data or "{}")
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)


def test_a_filled_honeypot_is_sent_as_hp(live: LiveServer, visitor: Any) -> None:
    page = visitor().page()
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    honeypot = page.locator("ringback-widget input[name=website]")
    expect(honeypot).to_have_attribute("tabindex", "-1")
    assert honeypot.get_attribute("aria-hidden") == "true"
    honeypot.fill("http://spam.example", force=True)  # what a form-filling bot does
    page.get_by_label("Your phone number").fill("+1 202 555 0143")
    with page.expect_request(lambda r: r.method == "POST") as sent:
        page.get_by_role("button", name="Call me now").click()
    assert json.loads(sent.value.post_data or "{}")["hp"] == "http://spam.example"
