"""`ringback user add`: the password comes from stdin (or a prompt), never from the command line."""

from __future__ import annotations

import asyncio
import io
import re

import pytest

from dialer import db
from dialer.accounts.users import authenticate
from server import cli


def test_user_add_reads_the_password_from_stdin(database_url: str, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RINGBACK_DATABASE_URL", database_url)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    assert cli.main(["user", "add", "--email", "Owner@Shop.example", "--role", "owner"]) == 0
    out = capsys.readouterr().out
    assert "owner@shop.example (owner)" in out and "secret" not in out

    async def check() -> bool:
        engine = db.create_engine(database_url)
        try:
            async with db.sessionmaker(engine)() as session:
                return await authenticate(session, "owner@shop.example", "a long enough secret") is not None
        finally:
            await engine.dispose()

    assert asyncio.run(check())
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["user", "add", "--email", "m@shop.example", "--role", "owner"]) == 2
    assert "at least 10 characters" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["user", "add", "--email", "x@shop.example", "--role", "owner", "--password", "hunter22222"])


def _memberships(database_url: str) -> list[tuple[str, int, int | None]]:
    from sqlalchemy import select

    from dialer.db.models import User, UserSite

    async def go() -> list[tuple[str, int, int | None]]:
        engine = db.create_engine(database_url)
        try:
            async with db.sessionmaker(engine)() as session:
                rows = await session.execute(select(User.email, UserSite.site_id, UserSite.manager_id).join(UserSite))
                return [tuple(row) for row in rows]  # type: ignore[misc]
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_a_manager_user_is_linked_to_their_manager_by_name_phone_or_id(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RINGBACK_DATABASE_URL", database_url)
    assert cli.main(["site", "add", "--name", "Shop", "--key", "shop", "--country", "PL"]) == 0
    for name, phone in (("Anna", "501 234 567"), ("Bartek", "502 345 678"), ("Bartek", "503 456 789")):
        assert cli.main(["manager", "add", "--site", "shop", "--name", name, "--phone", phone]) == 0
    out = capsys.readouterr().out
    anna, bartek, other_bartek = (int(n) for n in re.findall(r"manager (\d+):", out))

    def add(email: str, *extra: str) -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
        return cli.main(["user", "add", "--email", email, "--role", "manager", "--site", "shop", *extra])

    assert add("anna@shop.example", "--manager", "anna") == 0  # by name, any case
    assert f"manager {anna} Anna" in capsys.readouterr().out
    assert add("bartek@shop.example", "--manager", "+48 503 456 789") == 0  # by phone, any form
    assert add("b2@shop.example", "--manager", str(bartek)) == 0  # by id
    assert add("nobody@shop.example") == 0  # not every user is a manager
    assert add("who@shop.example", "--manager", "Bartek") == 2  # two managers of that name
    assert "--manager: 2 managers of Shop are called 'Bartek'" in capsys.readouterr().err
    assert add("who@shop.example", "--manager", "Zoe") == 2
    assert "--manager: Shop has no manager 'Zoe'" in capsys.readouterr().err
    site_id = _memberships(database_url)[0][1]
    assert sorted(_memberships(database_url)) == sorted([
        ("anna@shop.example", site_id, anna), ("bartek@shop.example", site_id, other_bartek),
        ("b2@shop.example", site_id, bartek), ("nobody@shop.example", site_id, None)])

    # An existing user is linked afterwards.
    assert cli.main(["user", "link", "--email", "nobody@shop.example", "--site", "shop", "--manager", "Anna"]) == 0
    assert ("nobody@shop.example", site_id, anna) in _memberships(database_url)
    assert cli.main(["user", "link", "--email", "ghost@shop.example", "--site", "shop", "--manager", "Anna"]) == 2
    assert "--email: There is no user ghost@shop.example" in capsys.readouterr().err
