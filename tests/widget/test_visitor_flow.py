"""A visitor on the plain landing page, in real Chromium, against the real server on the simulator."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from dialer.telephony.simulator import Behaviour
from tests.widget.conftest import ACCEPTED, OUTPUT, LiveServer, drive_until, shadow

pytestmark = pytest.mark.browser

VISITOR = "+48501234567"
# Records every status the widget announces, through the queue stub, before widget.js has loaded.
RECORD = """
window.Ringback = function () { (Ringback.q = Ringback.q || []).push(arguments); };
window.seen = [];
Ringback('on', 'status', function (e) { seen.push(e); });
"""


def test_a_visitor_types_a_national_number_and_follows_the_call_to_connected(
    live: LiveServer, visitor: Any
) -> None:
    live.update_site(country="PL")
    live.sim.script(VISITOR, Behaviour.answers(after=3, talk_for=600))
    profile = visitor()
    profile.context.add_init_script(RECORD)
    page = profile.page()
    page.goto(live.url + "/demo")

    page.get_by_role("button", name="Call me back").click()
    expect(page.get_by_role("dialog", name="We will call you back")).to_be_visible()
    phone = page.get_by_label("Your phone number")
    expect(phone).to_be_focused()
    expect(phone).to_have_attribute("placeholder", "512 345 678")  # a Polish mobile, the site's country
    phone.fill("501 234 567")
    page.get_by_label("Your name (optional)").fill("Ola")
    page.get_by_role("button", name="Call me now").click()

    status = page.get_by_role("status")
    expect(status).to_have_text(ACCEPTED)
    expect(page.get_by_label("Your phone number")).to_be_hidden()
    drive_until(live, page, "calling_manager")
    expect(status).to_have_text("Calling a manager — 1 of 3")  # the first never answers…
    drive_until(live, page, "calling_visitor")
    expect(status).to_have_text("A manager is ready, your phone will ring.")
    drive_until(live, page, "connected")
    expect(status).to_have_text("Connected. Enjoy your call!")
    # Every try is announced, and no "waiting for a free manager" while all three were free.
    assert [e["text"] for e in page.evaluate("seen")] == [
        ACCEPTED, "Calling a manager — 1 of 3", "Calling a manager — 2 of 3", "Calling a manager — 3 of 3",
        "A manager is ready, your phone will ring.", "Connected. Enjoy your call!"]
    # The page's own listener, registered through the stub in examples/demo.html, heard it too.
    expect(page.locator("#last-status")).to_have_text("Connected. Enjoy your call!")

    [lead] = live.leads()
    assert lead.phone == VISITOR and lead.name == "Ola" and lead.status == "connected"
    assert lead.timezone == "Europe/Warsaw"  # the browser's own zone
    assert lead.page_url == live.url + "/demo"
    assert lead.visitor_id and lead.source["visits"] == 1 and lead.source["returning"] is False
    assert lead.source["language"] == "en-US"


def test_an_invalid_number_shows_the_servers_message_next_to_the_field(live: LiveServer, visitor: Any) -> None:
    page = visitor().page()
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    page.get_by_label("Your phone number").fill("12")
    page.get_by_role("button", name="Call me now").click()

    phone = page.get_by_label("Your phone number")
    message = shadow(page, "#rb-phone-e")
    said = "This phone number is not valid. Check the digits, or add the country code (e.g. +44)."
    expect(message).to_have_text(said)
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(phone).to_have_accessible_description(re.compile(re.escape(said)))
    expect(phone).to_be_focused()
    assert live.leads() == []

    phone.fill("+1 202 555 0143")  # fixed, the message goes and the request is made
    page.get_by_role("button", name="Call me now").click()
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)
    expect(message).to_be_hidden()
    [lead] = live.leads()
    assert lead.phone == "+12025550143"


@pytest.mark.parametrize(
    ("name", "viewport", "options"),
    [
        ("desktop", {"width": 1280, "height": 800}, {}),
        ("phone", {"width": 390, "height": 844}, {"is_mobile": True, "has_touch": True, "device_scale_factor": 2}),
    ],
)
def test_the_open_panel_fits_the_screen_and_is_photographed(
    live: LiveServer, visitor: Any, name: str, viewport: dict[str, int], options: dict[str, Any]
) -> None:
    page = visitor(viewport=viewport, **options).page()
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.evaluate("e => Promise.all(e.getAnimations().map(a => a.finished))")  # it slides in
    submit = page.get_by_role("button", name="Call me now")
    expect(submit).to_be_in_viewport(ratio=1)
    box = dialog.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 1  # subpixel rounding
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"] + 1
    if name == "phone":
        assert box["width"] == viewport["width"]  # a bottom sheet across the whole screen
    # 16px inputs: phones do not zoom into the page when the visitor taps the field.
    font = page.get_by_label("Your phone number").evaluate("e => getComputedStyle(e).fontSize")
    assert font == "16px"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"panel-{name}.png"))
    assert (OUTPUT / f"panel-{name}.png").stat().st_size > 0


def test_the_status_follows_the_visitor_to_the_next_page(live: LiveServer, visitor: Any) -> None:
    live.sim.script("+12025550143", Behaviour.answers(after=3, talk_for=600))
    page = visitor().page()
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    page.get_by_label("Your phone number").fill("+1 202 555 0143")
    page.get_by_role("button", name="Call me now").click()
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)

    page.goto(live.url + "/examples/strict-csp.html")  # on to another page while waiting
    page.get_by_role("button", name="Call me back").click()
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)
    expect(page.get_by_label("Your phone number")).to_be_hidden()
    drive_until(live, page, "connected")
    expect(page.get_by_role("status")).to_have_text("Connected. Enjoy your call!")


def test_when_nobody_answers_the_widget_says_so_and_offers_to_try_again(live: LiveServer, visitor: Any) -> None:
    live.sim.script("+12025550103", Behaviour.never_answers())  # the manager who would have pressed 1
    page = visitor().page()
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    page.get_by_label("Your phone number").fill("+1 202 555 0143")
    page.get_by_role("button", name="Call me now").click()
    drive_until(live, page, "missed")
    expect(page.get_by_role("status")).to_have_text(
        "Sorry, no manager could answer just now. Your request is saved and we will call you back.")
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_label("Your phone number")).to_have_value("+1 202 555 0143")
    expect(page.get_by_label("Your phone number")).to_be_focused()
    expect(page.get_by_role("status")).to_have_text("")
    dialed = [call.to for call in live.sim.dialed]
    assert len(dialed) == 3 and "+12025550143" not in dialed  # three managers tried, the visitor never dialed


def test_the_visitor_cancels_while_a_manager_is_rung(live: LiveServer, visitor: Any) -> None:
    page = visitor().page()
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    page.get_by_label("Your phone number").fill("+1 202 555 0143")
    page.get_by_role("button", name="Call me now").click()
    cancel = page.get_by_role("button", name="Cancel my request")
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)
    expect(cancel).to_be_visible()
    drive_until(live, page, "calling_manager")  # the first manager's phone rings
    assert len(live.sim.active_calls()) == 1
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.get_by_role("dialog").screenshot(path=str(OUTPUT / "status-cancel.png"))

    cancel.click()
    status = page.get_by_role("status")
    expect(status).to_have_text("This request was cancelled.")
    expect(status).to_have_attribute("data-status", "cancelled")
    expect(cancel).to_be_hidden()
    expect(page.get_by_role("button", name="Close")).to_be_focused()  # the keyboard stays in the panel
    [lead] = live.leads()
    assert lead.status == "cancelled"
    live.advance(60)
    assert live.sim.active_calls() == [] and len(live.sim.dialed) == 1  # hung up, and nobody else rung
    page.reload()  # the request is over: a new page offers the form again
    page.get_by_role("button", name="Call me back").click()
    expect(page.get_by_label("Your phone number")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel my request")).to_be_hidden()


def _luminance(rgb: str) -> float:
    values = [int(v) / 255 for v in re.findall(r"\d+", rgb)[:3]]
    r, g, b = (v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in values)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("colors", [{}, {"accent": "#ffd400", "panel": "#14213d", "text": "#1a1a1a"}])
def test_text_contrast_is_aa_as_rendered(live: LiveServer, visitor: Any, colors: dict[str, str]) -> None:
    live.update_site({"colors": colors})
    page = visitor().page()
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    pairs = {  # element: the element whose background is behind its text
        ".b": ".b", ".s[type=submit]": ".s[type=submit]", "h2": ".p", "label[for=rb-phone]": ".p", ".x": ".p", "#rb-phone": "#rb-phone",
    }
    for text, behind in pairs.items():
        fg = shadow(page, text).evaluate("e => getComputedStyle(e).color")
        bg = shadow(page, behind).evaluate("e => getComputedStyle(e).backgroundColor")
        assert _contrast(fg, bg) >= 4.5, (text, fg, bg)


def test_a_time_zone_the_server_does_not_know_does_not_stop_the_visitor(live: LiveServer, visitor: Any) -> None:
    profile = visitor()
    # As Chromium reports it on a machine whose zone is not set.
    profile.context.add_init_script("""
      const resolved = Intl.DateTimeFormat.prototype.resolvedOptions;
      Intl.DateTimeFormat.prototype.resolvedOptions = function () {
        return Object.assign(resolved.call(this), {timeZone: 'Etc/Unknown'}); };""")
    page = profile.page()
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    page.get_by_label("Your phone number").fill("+48 501 234 567")
    page.get_by_role("button", name="Call me now").click()
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)
    [lead] = live.leads()
    assert lead.timezone == "Europe/Warsaw" and lead.source["timezone_source"] == "phone number"


def test_a_form_left_open_past_its_tokens_age_is_sent_with_a_fresh_token(live: LiveServer, visitor: Any) -> None:
    """The page stayed open for hours: the server refuses the old token (`expired`); the widget fetches a
    new config and sends the same request again, once, and the visitor only sees it go through."""
    live.update_site(settings={"abuse": {"form_token": True, "min_fill_seconds": 0, "form_token_max_age": 600,
                                         "rate_limits": {"ip": None}}})
    page = visitor().page()
    configs: list[str] = []
    page.on("request", lambda r: configs.append(r.url) if "/config" in r.url else None)
    posts: list[int] = []
    page.on("response", lambda r: posts.append(r.status) if r.request.method == "POST" else None)
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    page.get_by_label("Your phone number").fill("+1 202 555 0143")
    live.advance(3600)  # an hour later, on the server
    page.get_by_role("button", name="Call me now").click()
    expect(shadow(page, "form")).to_be_hidden()
    assert posts == [422, 201] and len(configs) == 2
    [lead] = live.leads()
    assert lead.phone == "+12025550143"
    assert shadow(page, "form [role=alert]").text_content() == ""


def test_a_token_refused_again_after_renewal_is_not_retried_forever(live: LiveServer, visitor: Any) -> None:
    live.update_site(settings={"abuse": {"form_token": True, "min_fill_seconds": 0, "form_token_max_age": 0}})
    page = visitor().page()
    posts: list[int] = []
    page.on("response", lambda r: posts.append(r.status) if r.request.method == "POST" else None)
    page.goto(live.url + "/demo")
    page.get_by_role("button", name="Call me back").click()
    page.get_by_label("Your phone number").fill("+1 202 555 0143")
    live.advance(5)

    def late(route: Any) -> None:  # the new token is already too old when it arrives
        response = route.fetch()
        live.advance(5)
        route.fulfill(response=response)

    page.route(re.compile(r"/config"), late)
    page.get_by_role("button", name="Call me now").click()
    expect(shadow(page, "form [role=alert]")).to_have_text(
        "The form has expired. Please reload the page and send it again.")
    assert posts == [422, 422] and live.leads() == []
