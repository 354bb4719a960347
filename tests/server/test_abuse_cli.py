"""The owner's block list from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.cli import main


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGBACK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)  # no stray .env
    assert main(["migrate"]) == 0
    assert main(["site", "add", "--name", "Shop", "--key", "shop", "--country", "GB"]) == 0


def test_the_owner_blocks_and_unblocks_numbers_and_prefixes(cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["site", "block", "--site", "shop", "07400 123456"]) == 0
    assert main(["site", "block", "--site", "shop", "+44 870"]) == 0
    assert capsys.readouterr().out.split("\n")[:2] == ["blocked +447400123456", "blocked +44870"]
    assert main(["site", "blocked", "--site", "shop"]) == 0
    assert capsys.readouterr().out.split() == ["+447400123456", "+44870"]
    assert main(["site", "unblock", "--site", "shop", "+447400123456"]) == 0
    assert main(["site", "blocked", "--site", "shop"]) == 0
    assert capsys.readouterr().out.split()[-1] == "+44870"


def test_a_wrong_entry_is_refused_with_a_reason(cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["site", "block", "--site", "shop", "not a number"]) == 2
    assert "prefix with its country code" in capsys.readouterr().err
    assert main(["site", "unblock", "--site", "shop", "+44870"]) == 2
    assert main(["site", "block", "--site", "nope", "+44870"]) == 2
