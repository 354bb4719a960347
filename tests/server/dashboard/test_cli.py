"""`ringback user add`: the password comes from stdin (or a prompt), never from the command line."""

from __future__ import annotations

import asyncio
import io

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
