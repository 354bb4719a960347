"""The command line for an owner setting up: every option explained with its default; sites, managers and
users listed and removed; a site's countries set; and a wrong database setting answered in one line."""

from __future__ import annotations

import argparse
import io
import secrets
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from server.cli import main, parser
from tests.harness import PG_URL, REDIS_URL

pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RINGBACK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)  # no stray .env
    assert main(["migrate"]) == 0
    capsys.readouterr()


def _say(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> str:
    assert main(list(argv)) == code, argv
    seen = capsys.readouterr()
    return seen.out if code == 0 else seen.err


def _parsers(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [p]
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _parsers(child)
    return found


def test_every_option_says_what_it_does_and_its_default() -> None:
    for p in _parsers(parser()):
        for action in p._actions:
            if not action.option_strings or action.dest == "help":
                continue
            text = p.formatter_class(prog="x")._get_help_string(action)  # type: ignore[attr-defined]
            assert action.help, (p.prog, action.dest)
            assert action.required or "default" in text, (p.prog, action.dest, text)


def test_sites_managers_and_users_are_listed_changed_and_removed(
    cli: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "No sites yet" in _say(capsys, "site", "list")
    _say(capsys, "site", "add", "--name", "Shop", "--key", "shop", "--country", "pl", "--origin", "https://shop.example/")
    assert _say(capsys, "site", "countries", "--site", "shop") == "shop calls numbers from Poland\n"
    assert _say(capsys, "site", "countries", "--site", "shop", "PL", "de", "US") == (
        "shop calls numbers from Poland, Germany and the United States\n")
    assert "calls Poland, Germany and the United States" in _say(capsys, "site", "list").replace("numbers from ", "")
    _say(capsys, "manager", "add", "--site", "shop", "--name", "Anna", "--phone", "501 234 567")
    _say(capsys, "manager", "add", "--site", "shop", "--name", "Bartek", "--phone", "502 345 678")
    assert "no longer rung" in _say(capsys, "manager", "remove", "--site", "shop", "--manager", "Anna")
    listed = _say(capsys, "manager", "list", "--site", "shop").splitlines()
    assert [line.split("  ")[1:] for line in listed] == [["Anna", "+48501234567", "(order 1, removed)"],
                                                         ["Bartek", "+48502345678", "(order 2)"]]
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    _say(capsys, "user", "add", "--email", "Owner@Shop.example", "--role", "owner")
    assert "owner@shop.example  (owner)" in _say(capsys, "user", "list")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert "at least 10 characters" in _say(capsys, "user", "password", "--email", "owner@shop.example", code=2)
    monkeypatch.setattr("sys.stdin", io.StringIO("another long password\n"))
    assert "new password set" in _say(capsys, "user", "password", "--email", "owner@shop.example")
    _say(capsys, "user", "remove", "--email", "owner@shop.example")
    assert "No users yet" in _say(capsys, "user", "list")
    _say(capsys, "site", "remove", "--site", "shop")
    assert "No sites yet" in _say(capsys, "site", "list")


def test_wrong_input_is_one_line_and_a_non_zero_exit(cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert _say(capsys, "site", "add", "--name", "S", "--country", "XX", code=2) == (
        "ringback: --country: 'XX' is not a country: use a two-letter code such as US, GB or PL.\n")
    assert _say(capsys, "site", "add", "--name", "S", "--origin", "shop.example", code=2).startswith(
        "ringback: --origin: 'shop.example' is not an origin: write it as https://shop.example")
    _say(capsys, "site", "add", "--name", "Shop", "--key", "shop")
    assert "'XX' is not a country" in _say(capsys, "site", "countries", "--site", "shop", "XX", code=2)
    assert "No site with this key" in _say(capsys, "site", "remove", "--site", "nope", code=2)


_PG = make_url(PG_URL)
WRONG = [
    ("postgres://ringback@localhost/ringback", "is not a database URL Ringback can use"),
    ("sqlite+aiosqlite:////no/such/directory/ringback.db", "cannot open the SQLite file"),
    ("postgresql+asyncpg://postgres@127.0.0.1:1/ringback", "nothing answers at"),
    (_PG.set(username="no_such_role_here").render_as_string(hide_password=False), "does not know the user"),
    (_PG.set(database="no_such_database_here").render_as_string(hide_password=False), "does not exist: create it"),
]


# aiosqlite's worker thread, after a failed open, may report to the loop `asyncio.run` already closed; the
# command's own output is what is checked here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize(("url", "said"), WRONG, ids=["url", "sqlite-dir", "refused", "role", "database"])
@pytest.mark.parametrize("command", [["migrate"], ["site", "list"], ["worker"]], ids=" ".join)
def test_a_wrong_database_setting_is_one_clear_line(
    url: str, said: str, command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RINGBACK_DATABASE_URL", url)
    monkeypatch.setenv("RINGBACK_SECRET_KEY", secrets.token_urlsafe(32))
    # a worker apart needs Redis on SQLite (refused before the database is opened): give it one, so that
    # what is said is about the database
    monkeypatch.setenv("RINGBACK_REDIS_URL", REDIS_URL)
    assert main(command) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ringback: database: ") and said in err, err
    assert "Traceback" not in err
