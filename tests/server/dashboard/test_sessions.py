"""Server-side sessions: the cookie is a random token naming a row, so signing out, "sign out
everywhere", removing a user and changing a password end sessions for real, copied cookies included."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select

from dialer.db.models import DashboardSession, User
from server.dashboard.session import COOKIE
from tests.server.dashboard.conftest import ANNA, OWNER, PASSWORD, Dash


def _token(dash: Dash) -> str:
    token = dash.client.cookies.get(COOKIE)
    assert token
    return token


def _as_browser(dash: Dash, token: str | None) -> None:
    """The client now carries `token` as its only cookie: another browser, or a thief with a copy."""
    dash.client.cookies.clear()
    if token is not None:
        dash.client.cookies.set(COOKIE, token, path="/dashboard")


def _signed_in(dash: Dash) -> bool:
    return dash.client.get("/dashboard/leads", follow_redirects=False).status_code == 200


def _sign_in(dash: Dash, email: str, password: str = PASSWORD) -> str:
    _as_browser(dash, None)
    assert dash.login(email, password).status_code == 303
    return _token(dash)


@pytest.mark.sqlite_only
def test_the_cookie_is_a_random_token_and_only_its_hash_is_stored(dash: Dash) -> None:
    token = _sign_in(dash, OWNER)
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", token), "a random URL-safe token, nothing readable"
    assert "owner" not in token and "." not in token  # not a signed payload

    async def stored() -> list[str]:
        async with dash.world.runtime.sessions() as session:
            return list((await session.execute(select(DashboardSession.id))).scalars())

    assert dash.run(stored) == [hashlib.sha256(token.encode()).hexdigest()]


def test_a_copied_cookie_stops_working_after_sign_out(dash: Dash) -> None:
    token = _sign_in(dash, OWNER)
    assert _signed_in(dash)
    dash.post("/dashboard/logout", {}, page="/dashboard/leads")
    assert not _signed_in(dash)
    _as_browser(dash, token)  # the copy an attacker kept
    assert not _signed_in(dash)
    assert dash.client.post("/dashboard/logout", data={}).status_code in (401, 403)


@pytest.mark.sqlite_only
def test_signing_in_issues_a_new_token(dash: Dash) -> None:
    _as_browser(dash, None)
    dash.client.get("/dashboard/login")
    before = _token(dash)
    assert dash.login(OWNER).status_code == 303
    assert _token(dash) != before
    _as_browser(dash, before)  # a token planted before sign-in grants nothing after it
    assert not _signed_in(dash)


def test_sign_out_everywhere_ends_every_browser_of_the_user_only(dash: Dash) -> None:
    laptop = _sign_in(dash, ANNA)
    anna_phone = _sign_in(dash, ANNA)
    owner = _sign_in(dash, OWNER)
    _as_browser(dash, laptop)
    page = dash.client.get("/dashboard/account")
    assert page.status_code == 200 and "Where you are signed in" in page.text
    response = dash.post("/dashboard/logout-everywhere", {}, page="/dashboard/account")
    assert response.status_code == 303
    for token in (laptop, anna_phone):
        _as_browser(dash, token)
        assert not _signed_in(dash)
    _as_browser(dash, owner)
    assert _signed_in(dash), "another user's session is untouched"


def test_an_owner_removing_a_user_ends_their_sessions(dash: Dash) -> None:
    anna = _sign_in(dash, ANNA)
    assert _signed_in(dash)
    _sign_in(dash, OWNER)
    users = dash.client.get("/dashboard/users")
    assert users.status_code == 200 and ANNA in users.text

    async def anna_id() -> int:
        async with dash.world.runtime.sessions() as session:
            return (await session.execute(select(User.id).where(User.email == ANNA))).scalar_one()

    removed = dash.post(f"/dashboard/users/{dash.run(anna_id)}/remove", {}, page="/dashboard/users")
    assert removed.status_code == 303
    assert ANNA not in dash.client.get("/dashboard/users").text
    _as_browser(dash, anna)
    assert not _signed_in(dash)


@pytest.mark.sqlite_only
def test_a_manager_cannot_remove_users(dash: Dash) -> None:
    _sign_in(dash, ANNA)
    assert dash.client.get("/dashboard/users").status_code == 403


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(dash: Dash) -> None:
    phone = _sign_in(dash, ANNA)
    laptop = _sign_in(dash, ANNA)
    wrong = dash.post("/dashboard/account/password", {"current": "not it at all", "password": "a new long secret",
                                                      "again": "a new long secret"}, page="/dashboard/account")
    assert wrong.status_code == 422 and "not your current password" in wrong.text
    changed = dash.post("/dashboard/account/password", {"current": PASSWORD, "password": "a new long secret",
                                                        "again": "a new long secret"}, page="/dashboard/account")
    assert changed.status_code == 303
    assert _signed_in(dash), "the browser that changed it stays signed in"
    _as_browser(dash, phone)
    assert not _signed_in(dash)
    _as_browser(dash, laptop)
    assert _signed_in(dash)
    assert _sign_in(dash, ANNA, "a new long secret")


@pytest.mark.sqlite_only
def test_a_password_changed_elsewhere_ends_every_session(dash: Dash) -> None:
    """The command line changes the hash without knowing any session: the sessions notice by themselves."""
    token = _sign_in(dash, ANNA)

    async def change() -> None:
        async with dash.world.runtime.sessions() as session, session.begin():
            user = (await session.execute(select(User).where(User.email == ANNA))).scalar_one()
            user.password_hash = user.password_hash + "x"  # any new hash

    dash.run(change)
    _as_browser(dash, token)
    assert not _signed_in(dash)


@pytest.mark.sqlite_only
def test_a_session_expires_after_seven_days(dash: Dash) -> None:
    _sign_in(dash, OWNER)
    dash.run(dash.world.clock.advance, 6 * 24 * 3600)
    assert _signed_in(dash)
    dash.run(dash.world.clock.advance, 24 * 3600 + 1)
    assert not _signed_in(dash)
