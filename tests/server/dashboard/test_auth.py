"""Signing in and out, wrong passwords, CSRF and the limit on failed sign-ins."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dialer.db.models import AuditLog
from server.dashboard.session import COOKIE
from tests.server.dashboard.conftest import ANNA, OWNER, Dash, build_dash


@pytest.mark.sqlite_only
def test_sign_in_shows_the_dashboard_and_sign_out_ends_the_session(dash: Dash) -> None:
    assert dash.client.get("/dashboard/leads", follow_redirects=False).headers["location"].startswith(
        "/dashboard/login")
    response = dash.login(OWNER)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    page = dash.client.get("/dashboard/leads")
    assert page.status_code == 200 and OWNER in page.text
    dash.post("/dashboard/logout", {}, page="/dashboard/leads")
    after = dash.client.get("/dashboard/leads", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/dashboard/login")


@pytest.mark.sqlite_only
def test_a_wrong_password_is_refused_and_recorded(dash: Dash) -> None:
    response = dash.login(OWNER, "not the password")
    assert response.status_code == 401 and "Wrong email or password." in response.text
    assert dash.client.get("/dashboard/leads", follow_redirects=False).status_code == 303
    unknown = dash.login("nobody@shop.example")
    assert unknown.status_code == 401 and "Wrong email or password." in unknown.text

    async def failures() -> int:
        async with dash.world.runtime.sessions() as session:
            query = select(func.count()).select_from(AuditLog).where(AuditLog.action == "login_failed",
                                                                     AuditLog.target == OWNER)
            return (await session.execute(query)).scalar_one()

    assert dash.run(failures) == 1


@pytest.mark.sqlite_only
def test_a_form_without_the_sessions_csrf_token_is_refused(dash: Dash) -> None:
    missing = dash.client.post("/dashboard/login", data={"email": OWNER, "password": "correct horse battery"})
    assert missing.status_code == 403 and "expired" in missing.text
    forged = dash.client.post("/dashboard/login", data={"email": OWNER, "password": "correct horse battery",
                                                        "csrf": "forged"})
    assert forged.status_code == 403
    assert dash.login(OWNER).status_code == 303
    # Signed in, a settings form without the token changes nothing.
    before = dash.client.get(f"/dashboard/sites/{dash.world.site.id}").text
    refused = dash.client.post(f"/dashboard/sites/{dash.world.site.id}", data={"name": "Hacked"})
    assert refused.status_code == 403
    assert "Hacked" not in dash.client.get(f"/dashboard/sites/{dash.world.site.id}").text
    assert "Shop" in before


def test_repeated_failed_sign_ins_are_limited_even_with_the_right_password(dash: Dash) -> None:
    for _ in range(5):
        assert dash.login(ANNA, "guess guess guess").status_code == 401
    limited = dash.login(ANNA)
    assert limited.status_code == 429 and "Too many failed sign-ins" in limited.text
    assert dash.client.get("/dashboard/leads", follow_redirects=False).status_code == 303
    # Another user from the same address is not locked out by Anna's failures.
    assert dash.login(OWNER).status_code == 303
    # Fifteen minutes later Anna may try again.
    dash.run(dash.world.clock.advance, 15 * 60 + 1)
    dash.post("/dashboard/logout", {}, page="/dashboard/leads")
    assert dash.login(ANNA).status_code == 303


@pytest.mark.sqlite_only
def test_the_cookie_is_secure_over_https(database_url: str) -> None:
    for dash in build_dash(database_url, base_url="https://testserver"):
        response = dash.login(OWNER)
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(COOKIE) and "Secure" in cookie and "HttpOnly" in cookie
