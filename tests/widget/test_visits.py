"""Where a visitor came from, and whether they came back, as the lead records it; and keyboard-only use."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.widget.conftest import ACCEPTED, LiveServer, shadow

pytestmark = pytest.mark.browser


def _request_call(page: Any, phone: str) -> None:
    page.get_by_role("button", name="Call me back").click()
    page.get_by_label("Your phone number").fill(phone)
    page.get_by_role("button", name="Call me now").click()
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)


def test_the_source_of_a_visit_arrives_on_the_lead_and_a_second_visit_is_returning(
    live: LiveServer, visitor: Any
) -> None:
    first_visit = visitor()
    page = first_visit.page()
    landing = live.url + "/demo?utm_source=newsletter&utm_medium=email&utm_campaign=spring&gclid=abc123"
    page.goto(landing, referer="https://mail.example.com/inbox/42")
    _request_call(page, "+1 202 555 0143")
    profile = first_visit.context.storage_state()  # what stays in the browser: localStorage, no cookies

    [lead] = live.leads()
    assert lead.utm == {"source": "newsletter", "medium": "email", "campaign": "spring"}
    assert lead.referrer.startswith("https://mail.example.com/")
    assert lead.page_url == landing
    assert lead.source["label"] == "newsletter (email)"
    assert lead.source["visits"] == 1 and lead.source["returning"] is False
    assert lead.source["click_id"] == "gclid=abc123"
    assert lead.source["landing_page"] == landing
    assert lead.source["first_touch"] == lead.source["last_touch"]
    assert lead.source["first_touch"]["source"] == "newsletter"
    assert not profile["cookies"]

    # Days later, the same browser: an ad brings the visitor back; they browse on, then ask again.
    second_visit = visitor(storage_state=profile)
    page = second_visit.page()
    page.goto(live.url + "/demo?utm_source=google&utm_medium=cpc&utm_campaign=boots")
    page.goto(live.url + "/demo")  # another page of the same visit: no tags in its address
    _request_call(page, "+1 202 555 0144")

    _, again = live.leads()
    assert again.visitor_id == lead.visitor_id
    assert again.source["visits"] == 2 and again.source["returning"] is True
    assert again.source["first_seen"] == lead.source["first_seen"]
    assert again.source["first_touch"] == lead.source["first_touch"]  # still the newsletter
    assert again.source["last_touch"]["source"] == "google" and again.source["last_touch"]["medium"] == "cpc"
    assert again.utm == {"source": "google", "medium": "cpc", "campaign": "boots"}  # the visit's, not the page's
    assert again.page_url == live.url + "/demo"
    assert again.source["label"] == "Google Ads"


def test_consent_required_stores_nothing_until_the_host_says_so(live: LiveServer, visitor: Any) -> None:
    page = visitor().page()
    html = ('<!doctype html><title>Consent</title><body><h1>Shop</h1>'
            '<script async src="/widget.js" data-site="demo" data-consent-required></script>')
    page.route(lambda url: "/consent.html" in url, lambda route: route.fulfill(body=html, content_type="text/html"))
    page.goto(live.url + "/consent.html?utm_source=radio")
    _request_call(page, "+1 202 555 0143")
    stored = "() => [Object.keys(localStorage), Object.keys(sessionStorage), document.cookie]"
    assert page.evaluate(stored) == [[], [], ""]
    [lead] = live.leads()
    assert lead.utm == {"source": "radio"} and lead.source["visits"] == 1  # known for this page, kept nowhere

    page.evaluate("Ringback.consent()")  # the host's consent banner said yes
    kept = page.evaluate("JSON.parse(localStorage.getItem('ringback'))")
    assert kept["n"] == 1 and kept["id"]


def test_keyboard_only(live: LiveServer, visitor: Any) -> None:
    page = visitor().page()
    page.goto(live.url + "/demo")
    launcher = page.get_by_role("button", name="Call me back")
    expect(launcher).to_be_visible()
    focused = "e => e.getRootNode().activeElement === e"
    for _ in range(20):  # Tab through the page's own links and buttons to the widget's
        page.keyboard.press("Tab")
        if launcher.evaluate(focused):
            break
    else:
        raise AssertionError("Tab never reached the widget's button")
    expect(launcher).to_have_attribute("aria-expanded", "false")

    page.keyboard.press("Enter")
    phone = page.get_by_label("Your phone number")
    expect(phone).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    page.keyboard.type("(202) 555-0143")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Your name (optional)")).to_be_focused()
    page.keyboard.press("Tab")
    submit = page.get_by_role("button", name="Call me now")
    expect(submit).to_be_focused()
    page.keyboard.press("Tab")  # trapped: from the last control back to the first
    close = page.get_by_role("button", name="Close")
    expect(close).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(submit).to_be_focused()

    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(launcher).to_be_focused()  # focus goes back where it was

    page.keyboard.press("Enter")
    expect(phone).to_be_focused()
    expect(phone).to_have_value("(202) 555-0143")
    page.keyboard.press("Enter")  # submits the form
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)
    expect(close).to_be_focused()  # the form is gone; the keyboard stays in the panel
    assert shadow(page, "[role=status]").get_attribute("aria-live") == "polite"
    [lead] = live.leads()
    assert lead.phone == "+12025550143"
