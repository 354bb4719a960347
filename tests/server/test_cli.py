"""The command line sets up a real site without the dashboard, and says clearly what is wrong."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from dialer import db
from dialer.db.models import Manager, Site
from server.cli import main


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("RINGBACK_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return url


def rows(url: str, model: type) -> list:  # type: ignore[type-arg]
    async def go() -> list:  # type: ignore[type-arg]
        engine = db.create_engine(url)
        async with db.sessionmaker(engine)() as session:
            found = list((await session.execute(select(model))).scalars())
        await engine.dispose()
        return found

    return asyncio.run(go())


def test_migrate_site_add_and_manager_add(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert main(["site", "add", "--name", "Shop", "--key", "shop", "--country", "PL", "--timezone",
                 "Europe/Warsaw", "--caller-id", "22 123 45 67", "--origin", "https://shop.example/"]) == 0
    assert capsys.readouterr().out.strip().endswith("shop")
    assert main(["manager", "add", "--site", "shop", "--name", "Anna", "--phone", "501 234 567"]) == 0
    assert main(["manager", "add", "--site", "shop", "--name", "Bartek", "--phone", "+48 502 345 678"]) == 0
    (site,) = rows(database, Site)
    assert (site.caller_id, site.origins, site.timezone) == ("+48221234567", ["https://shop.example"], "Europe/Warsaw")
    managers = rows(database, Manager)
    assert [(m.name, m.phone, m.position) for m in managers] == [("Anna", "+48501234567", 1),
                                                                  ("Bartek", "+48502345678", 2)]


def test_bad_input_names_the_option_and_writes_nothing(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["migrate"])
    capsys.readouterr()
    assert main(["site", "add", "--name", "Shop", "--timezone", "Mars/Base"]) == 2
    assert "--timezone" in capsys.readouterr().err
    assert rows(database, Site) == []
    assert main(["manager", "add", "--site", "nope", "--name", "A", "--phone", "501234567"]) == 2
    assert "--site" in capsys.readouterr().err
    main(["site", "add", "--name", "Shop", "--key", "shop", "--country", "PL"])
    assert main(["manager", "add", "--site", "shop", "--name", "A", "--phone", "12"]) == 2
    assert "--phone" in capsys.readouterr().err
    assert rows(database, Manager) == []


def test_serving_without_a_secret_key_is_refused(database: str, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RINGBACK_SECRET_KEY", raising=False)
    assert main(["serve", "--port", "1"]) == 2
    assert "RINGBACK_SECRET_KEY" in capsys.readouterr().err
