"""A careless operator: an empty, short or repeated secret key, or the demo (whose key is public) on real
telephony. Each is refused before anything is served or written, in one clear line."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest

from dialer.config import ConfigError, Settings
from server.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RINGBACK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    for name in ("RINGBACK_SECRET_KEY", "RINGBACK_TELEPHONY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("key", ["", "x", "a" * 64, "abc" * 30, "0123456789" * 3, "PLACEHOLDER"])
def test_a_weak_secret_key_is_refused(here: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                      key: str) -> None:
    monkeypatch.setenv("RINGBACK_SECRET_KEY", key)
    _refused(["serve", "--port", "1"], capsys, "RINGBACK_SECRET_KEY", "32 random bytes", "token_urlsafe(32)")
    _refused(["worker"], capsys, "RINGBACK_SECRET_KEY")


def test_the_env_example_as_shipped_is_refused(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(REPO / ".env.example", here / ".env")
    _refused(["serve", "--port", "1"], capsys, "RINGBACK_SECRET_KEY")


def test_a_random_key_of_32_bytes_is_enough() -> None:
    for key in (secrets.token_urlsafe(32), secrets.token_hex(32)):
        Settings(secret_key=key).check()
    with pytest.raises(ConfigError):
        Settings(secret_key=secrets.token_hex(16)).check()


def test_the_demo_refuses_real_telephony(here: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGBACK_TELEPHONY", "twilio")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "x" * 32)
    _refused(["demo", "--port", "1"], capsys, "ringback demo", "RINGBACK_TELEPHONY=twilio")
    assert not (here / "cli.db").exists()  # refused before the demo site was written anywhere
