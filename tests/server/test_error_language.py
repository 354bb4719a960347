"""A visitor reads every refusal as a sentence in the widget's language, countries by their names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

import server.api
from dialer.db.models import Site
from server.errors import DOWN_MESSAGE, in_language
from server.widget_texts import ERRORS, LANGUAGES
from tests.conftest import World
from tests.harness import app_client

pytestmark = pytest.mark.sqlite_only


async def _poland_only(world: World) -> None:
    async with world.runtime.sessions() as session, session.begin():
        site = await session.get(Site, world.site.id)
        assert site is not None
        site.any_country = False
        site.settings = {**site.settings, "abuse": {**site.settings["abuse"], "countries": ["PL", "DE"]}}


@pytest.fixture
def shop(database_url: str) -> Iterator[tuple[TestClient, World]]:
    with app_client(database_url, run_engine=False, then=_poland_only) as pair:
        yield pair


def _refusal(client: TestClient, query: str = "", headers: dict[str, str] | None = None, **body: Any) -> str:
    answer = client.post("/api/v1/callbacks" + query, json={"site": "shop", "phone": "+1 202 555 0143", **body},
                         headers=headers or {})
    assert answer.status_code >= 400, answer.text
    return str(answer.json()["error"]["message"])


def test_a_refused_country_is_named_in_the_visitors_language(shop: tuple[TestClient, World]) -> None:
    client, _ = shop
    assert _refusal(client) == "Sorry, we can only call numbers from Poland and Germany."
    assert _refusal(client, "?lang=pl") == "Przepraszamy, dzwonimy tylko na numery z tych krajów: Polska i Niemcy."
    assert _refusal(client, "?lang=de") == "Leider rufen wir nur Nummern aus diesen Ländern an: Polen und Deutschland."
    # Without the widget's `lang`, the browser's languages decide; one the widget does not speak is skipped.
    assert _refusal(client, headers={"Accept-Language": "fr-FR,ru;q=0.8"}).startswith("К сожалению")
    assert _refusal(client, "?lang=pl", phone="12") == (
        "Ten numer telefonu jest nieprawidłowy. Sprawdź cyfry lub dodaj numer kierunkowy kraju (np. +48).")
    assert _refusal(client, "?lang=pl", phone="") == "Podaj swój numer telefonu."
    assert _refusal(client, "?lang=ru", phone="+48 501 234 567", name="x" * 201) == (
        "Слишком длинно: не более 200 символов.")


def test_the_database_away_is_said_in_every_widget_language(
    shop: tuple[TestClient, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = shop

    async def lost(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT …", {}, ConnectionRefusedError(111, "Connect call failed"))

    monkeypatch.setattr(server.api, "write", lost)
    seen = {lang: _refusal(client, f"?lang={lang}", phone="+48 501 234 567") for lang in LANGUAGES}
    assert seen["en"] == DOWN_MESSAGE
    assert len(set(seen.values())) == len(LANGUAGES)  # a sentence of its own in each


def test_every_language_translates_the_same_sentences() -> None:
    english = set(ERRORS["pl"])
    assert all(set(ERRORS[lang]) == english for lang in LANGUAGES if lang != "en")
    assert set(ERRORS) == set(LANGUAGES) - {"en"}
    assert in_language("Something new.", "pl") == "Something new."  # no translation yet: the English one
