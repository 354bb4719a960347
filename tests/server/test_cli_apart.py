"""A web process without an engine, or an engine alone, must hear the others: on SQLite without Redis
nothing could carry the news, so `serve --no-engine` and `worker` refuse to start, in one line."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from server.cli import main

pytestmark = pytest.mark.sqlite_only


@pytest.mark.parametrize("command", [["serve", "--no-engine"], ["worker"]])
def test_apart_on_sqlite_without_redis_is_refused_in_one_line(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("RINGBACK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'apart.db'}")
    monkeypatch.setenv("RINGBACK_SECRET_KEY", secrets.token_urlsafe(32))
    monkeypatch.delenv("RINGBACK_REDIS_URL", raising=False)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "on SQLite needs RINGBACK_REDIS_URL" in err and "PostgreSQL" in err
    assert not (tmp_path / "apart.db").exists()  # refused before anything was opened
