"""The widget and the page it lives on leave each other alone: aggressive host CSS, a strict CSP, another
origin."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from dialer.telephony.simulator import Behaviour
from tests.widget.conftest import ACCEPTED, LiveServer, drive_until

pytestmark = pytest.mark.browser

# What a visitor would see change: type, colours, box, position, and what could hide or warp it.
PROPERTIES = [
    "display", "position", "visibility", "opacity", "transform", "filter", "zoom", "font-family", "font-size",
    "font-weight", "line-height", "letter-spacing", "text-transform", "color", "background-color", "border-top",
    "border-radius", "padding-top", "padding-left", "margin-top", "width", "height", "box-sizing", "z-index",
    "pointer-events",
]
WIDGET_PARTS = ["", ".b", ".b span", ".p", "h2", ".x", "label[for=rb-phone]", "#rb-phone", "#rb-name", ".s"]
HOST_PARTS = ["html", "body", "h1", "p", "form", "label", "input", "button", ".promo"]

STYLES = """([parts, props]) => parts.map(sel => {
  const host = document.querySelector('ringback-widget');
  const el = sel === '' ? host : host.shadowRoot.querySelector(sel);
  const css = getComputedStyle(el), box = el.getBoundingClientRect();
  // The host element is an empty inline box after <body>: where it sits depends on the page.
  return [sel, Object.fromEntries(props.map(p => [p, css.getPropertyValue(p)])),
          sel === '' ? [box.width, box.height] : [box.x, box.y, box.width, box.height].map(Math.round)];
})"""
HOST_STYLES = """([parts, props]) => [
  parts.map(sel => { const css = getComputedStyle(document.querySelector(sel));
                     return [sel, Object.fromEntries(props.map(p => [p, css.getPropertyValue(p)]))]; }),
  document.styleSheets.length, document.body.children.length,
  document.documentElement.scrollWidth, document.documentElement.scrollHeight,
]"""
# Every violation of the page's policy, wherever in the page (or its shadow roots) it happens.
WATCH_CSP = """
window.violations = [];
document.addEventListener('securitypolicyviolation',
  e => violations.push(e.violatedDirective + ' ' + e.blockedURI), true);
"""


def _open_panel(page: Any) -> None:
    page.get_by_role("button", name="Call me back").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.evaluate("e => Promise.all(e.getAnimations().map(a => a.finished))")


def test_host_css_does_not_reach_the_widget(live: LiveServer, visitor: Any) -> None:
    profile = visitor()
    plain, hostile = profile.page(), profile.page()
    plain.goto(live.url + "/demo")
    hostile.goto(live.url + "/examples/strict-csp.html")
    for page in (plain, hostile):
        _open_panel(page)
    # The host's CSS is live on its own elements (Comic Sans, dashed borders)…
    assert "Comic Sans" in hostile.locator("h1").evaluate("e => getComputedStyle(e).fontFamily")
    # …and the widget is the same, property by property and pixel box by pixel box.
    ours = plain.evaluate(STYLES, [WIDGET_PARTS, PROPERTIES])
    theirs = hostile.evaluate(STYLES, [WIDGET_PARTS, PROPERTIES])
    for mine, other in zip(ours, theirs, strict=True):
        assert mine == other, mine[0]
    expect(hostile.get_by_label("Your phone number")).to_be_editable()


def test_the_widget_does_not_change_the_host_page(live: LiveServer, visitor: Any) -> None:
    profile = visitor()
    without = profile.page()
    without.route("**/widget.js", lambda route: route.abort())
    without.goto(live.url + "/examples/strict-csp.html")
    expect(without.locator("h1")).to_be_visible()
    keys_without = without.evaluate("Object.keys(window)")
    bare = without.evaluate(HOST_STYLES, [HOST_PARTS, PROPERTIES])

    page = profile.page()
    page.goto(live.url + "/examples/strict-csp.html")
    _open_panel(page)
    page.get_by_label("Your phone number").fill("+1 202 555 0143")
    assert page.evaluate(HOST_STYLES, [HOST_PARTS, PROPERTIES]) == bare
    # One global, and no element inside <body>: the widget hangs after it, in its own shadow root.
    assert sorted(set(page.evaluate("Object.keys(window)")) - set(keys_without)) == ["Ringback"]
    assert page.evaluate("document.querySelectorAll('body ringback-widget').length") == 0


def test_the_strict_csp_page_works_with_no_violation(live: LiveServer, visitor: Any) -> None:
    live.sim.script("+12025550143", Behaviour.answers(after=3, talk_for=600))
    profile = visitor()
    profile.context.add_init_script(WATCH_CSP)
    page = profile.page()
    response = page.goto(live.url + "/examples/strict-csp.html")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    _open_panel(page)
    page.get_by_label("Your phone number").fill("(202) 555-0143")
    page.get_by_role("button", name="Call me now").click()
    drive_until(live, page, "connected")  # over the WebSocket, which connect-src 'self' allows
    expect(page.get_by_role("status")).to_have_text("Connected. Enjoy your call!")
    assert page.evaluate("violations") == []
    assert not [m for m in profile.console if "Content Security Policy" in m]
    # The policy is really enforced: a script the page did not ship is refused.
    ran = page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.inlineRan = true'; document.head.appendChild(s); return window.inlineRan; }""")
    assert ran is None
    assert any("script-src" in v for v in page.evaluate("violations"))


def _cross_origin(live: LiveServer, page_host: str) -> str:
    return f"http://{page_host}:{live.port}/examples/cross-origin.html"


def test_a_page_on_another_origin_works_when_the_site_allows_it(live: LiveServer, visitor: Any) -> None:
    allowed = f"http://localhost:{live.port}"
    live.update_site(origins=[allowed])
    page = visitor().page()
    page.goto(_cross_origin(live, "localhost"))
    script = page.locator("script[data-site]")
    expect(script).to_have_attribute("src", f"http://127.0.0.1:{live.port}/widget.js")
    _open_panel(page)
    page.get_by_label("Your phone number").fill("+1 202 555 0143")
    page.get_by_role("button", name="Call me now").click()
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)
    drive_until(live, page, "calling_manager")
    [lead] = live.leads()
    assert lead.page_url == allowed + "/examples/cross-origin.html"


def test_a_page_on_an_origin_the_site_does_not_allow_gets_nothing(live: LiveServer, visitor: Any) -> None:
    live.update_site(origins=[f"http://localhost:{live.port}"])
    profile = visitor()
    page = profile.page()
    with page.expect_event("requestfailed", lambda r: "/config" in r.url):
        page.goto(_cross_origin(live, "127.0.0.1"))  # the widget comes from localhost: not allowed
    assert any("blocked by CORS policy" in m for m in profile.console)
    # No button that could not work; the global is there, harmless.
    expect(page.locator("ringback-widget")).to_have_count(0)
    page.evaluate("Ringback.open()")
    # And the API refuses a request sent from this page by hand.
    refused = page.evaluate(f"""() => fetch('http://localhost:{live.port}/api/v1/callbacks', {{
        method: 'POST', headers: {{'Content-Type': 'application/json'}},
        body: JSON.stringify({{site: 'demo', phone: '+12025550143'}})}}).then(r => 'sent', e => 'blocked')""")
    assert refused == "blocked"
    assert live.leads() == []
