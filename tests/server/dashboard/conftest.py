"""The dashboard driven through the app: a world on the simulator, an owner, a manager of the shop and
a manager of another site (`dash`); for the browser tests, the same world served by uvicorn (`live`),
with Chromium signing in (`sign_in`) and screenshots to test-output/dashboard/ (`shot`)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from starlette.testclient import TestClient

from dialer.accounts import passwords
from dialer.accounts.users import add_user
from dialer.db.models import Site
from dialer.sites.admin import add_manager, add_site
from tests.harness import LiveServer, World, app_client, world_for_app

PASSWORD = "correct horse battery"
OWNER, ANNA, BOB = "owner@shop.example", "anna@shop.example", "bob@other.example"
SHOTS = Path(__file__).resolve().parents[3] / "test-output" / "dashboard"
T = TypeVar("T")


@pytest.fixture(autouse=True)
def quick_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with its lightest parameters for the users these tests make and sign in (the real cost is
    tens of milliseconds a hash on a loaded machine, dozens of times per test). An unknown e-mail is still
    checked against `passwords.DUMMY_HASH`, made with the real parameters: the flood test uses those."""
    monkeypatch.setattr(passwords, "hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@dataclass
class Dash:
    client: TestClient
    world: World
    other: Site

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return self.client.portal.call(fn, *args)  # type: ignore[union-attr]

    def csrf(self, path: str = "/dashboard/login") -> str:
        page = self.client.get(path)
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, f"no CSRF field on {path}"
        return found.group(1)

    def login(self, email: str, password: str = PASSWORD) -> Any:
        return self.client.post("/dashboard/login", data={"email": email, "password": password,
                                                           "csrf": self.csrf()}, follow_redirects=False)

    def post(self, path: str, data: dict[str, str], *, page: str | None = None) -> Any:
        return self.client.post(path, data={**data, "csrf": self.csrf(page or path)}, follow_redirects=False)


async def add_people(world: World) -> None:
    """The other shop (New York, one manager) and the dashboard's users: the owner, Anna of the shop and
    Bob of the other shop."""
    async with world.runtime.sessions() as session, session.begin():
        other = await add_site(session, name="Other shop", key="other", timezone="America/New_York",
                               country="US", now=world.clock.now())
        await add_manager(session, site=other, name="Olga", phone="+12025550199")
        shop = await session.get(Site, world.site.id)
        now = world.clock.now()
        await add_user(session, email=OWNER, password=PASSWORD, role="owner", now=now)
        await add_user(session, email=ANNA, password=PASSWORD, role="manager", site=shop, now=now)
        await add_user(session, email=BOB, password=PASSWORD, role="manager", site=other, now=now)


async def other_site(world: World) -> Site:
    async with world.runtime.sessions() as session:
        return (await session.execute(select(Site).where(Site.key == "other"))).scalar_one()


def build_dash(database_url: str, base_url: str = "http://testserver") -> Iterator[Dash]:
    with app_client(database_url, base_url=base_url, then=add_people) as (client, world):
        yield Dash(client, world, client.portal.call(other_site, world))  # type: ignore[union-attr]


@pytest.fixture
def dash(database_url: str) -> Iterator[Dash]:
    yield from build_dash(database_url)


@pytest.fixture
def live(database_url: str) -> Iterator[LiveServer]:
    """The people of `add_people` in the real app under uvicorn, in its own thread and event loop, on the
    world's manual clock."""
    with LiveServer(world_for_app(database_url, then=add_people)) as server:
        yield server


def sign_in(page: Any, url: str, email: str = OWNER) -> None:
    """Chromium's `page` signs in to the dashboard served at `url` and lands on the live board."""
    page.goto(f"{url}/dashboard/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/?$"))


def shot(page: Any, name: str) -> None:
    """The whole page, to test-output/dashboard/`name`.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


class _FormReader(HTMLParser):
    """The values a browser would send for the first POST form of a page, as the page shows them."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._in_form = self._done = False
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method") == "post" and not self._done and "action" not in a:
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name", "")
        if tag == "input" and name:
            if a.get("type") != "checkbox" or "checked" in a:
                self.values[name] = a.get("value", "on" if a.get("type") == "checkbox" else "")
        elif tag == "textarea":
            self._textarea = name
            self.values[name] = ""
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and ("selected" in a or self._select not in self.values):
            self.values[self._select] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.values[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def form_values(page: str) -> dict[str, str]:
    reader = _FormReader()
    reader.feed(page)
    return reader.values
