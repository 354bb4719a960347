"""A daily cap reached on a site is shown to the owners on the live board and the leads page until one of
them dismisses it (a CSRF-checked POST); managers are not shown it and cannot dismiss it."""

from __future__ import annotations

import re

from sqlalchemy import select

from dialer.db.models import Site, SiteNotice
from tests.server.dashboard.conftest import ANNA, OWNER, Dash

CAPPED = "daily cap of 0 calls reached: kept as a message instead of calling"


def _cap_reached(dash: Dash) -> None:
    """A visitor asks for a call on a site whose daily cap is 0: the request is kept as a message."""

    async def cap() -> None:
        async with dash.world.runtime.sessions() as session, session.begin():
            site = await session.get(Site, dash.world.site.id)
            assert site is not None
            site.settings = {**site.settings, "abuse": {**site.settings["abuse"], "daily_calls": 0}}

    dash.run(cap)
    created = dash.client.post("/api/v1/callbacks", json={"site": "shop", "phone": "+48501234567",
                                                          "timezone": "Europe/Warsaw"})
    assert created.status_code == 201, created.text


def _notices(dash: Dash) -> list[SiteNotice]:
    async def go() -> list[SiteNotice]:
        async with dash.world.runtime.sessions() as session:
            return list((await session.execute(select(SiteNotice))).scalars())

    return dash.run(go)


def test_the_owner_sees_a_cap_notice_until_dismissing_it(dash: Dash) -> None:
    _cap_reached(dash)
    assert dash.login(OWNER).status_code == 303
    for path in ("/dashboard/", "/dashboard/leads"):
        page = dash.client.get(path).text
        assert CAPPED in page and "Shop" in page, path
    found = re.search(r'data-notice="(\d+)"', page)
    assert found
    dismiss = f"/dashboard/notices/{found.group(1)}/seen"
    site = str(dash.world.site.id)
    refused = dash.client.post(dismiss, data={"site": site}, follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token: nothing happens
    assert _notices(dash)[0].seen_at is None

    done = dash.post(dismiss, {"site": site, "next": "/dashboard/leads?status=received"}, page="/dashboard/leads")
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/leads?status=received"
    [notice] = _notices(dash)
    assert notice.seen_at == dash.world.clock.now()
    for path in ("/dashboard/", "/dashboard/leads"):
        assert CAPPED not in dash.client.get(path).text, path
    again = dash.post(dismiss, {"site": site, "next": "https://elsewhere.example/"}, page="/dashboard/leads")
    assert again.status_code == 404  # dismissed already


def test_a_manager_is_not_shown_the_notices_and_cannot_dismiss_them(dash: Dash) -> None:
    _cap_reached(dash)
    [notice] = _notices(dash)
    assert dash.login(ANNA).status_code == 303  # a manager of the shop, not an owner
    assert CAPPED not in dash.client.get("/dashboard/leads").text
    refused = dash.post(f"/dashboard/notices/{notice.id}/seen", {"site": str(dash.world.site.id)},
                        page="/dashboard/leads")
    assert refused.status_code == 403
    assert _notices(dash)[0].seen_at is None


def test_a_dismissal_must_name_the_notices_own_site(dash: Dash) -> None:
    _cap_reached(dash)
    [notice] = _notices(dash)
    assert dash.login(OWNER).status_code == 303
    for site in (str(dash.other.id), "x", ""):
        wrong = dash.post(f"/dashboard/notices/{notice.id}/seen", {"site": site}, page="/dashboard/leads")
        assert wrong.status_code == 404, site
    assert _notices(dash)[0].seen_at is None
    done = dash.post(f"/dashboard/notices/{notice.id}/seen", {"site": str(dash.world.site.id),
                                                              "next": "//elsewhere.example/"}, page="/dashboard/")
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/"  # never off the dashboard
