"""Settings read from the environment: the Twilio pace, refused clearly when unusable."""

from __future__ import annotations

import pytest

from dialer.config import ConfigError, Settings


def test_the_twilio_pace_is_read_and_refused_when_unusable() -> None:
    settings = Settings.from_env({"TWILIO_CALLS_PER_SECOND": "5", "TWILIO_CONCURRENT_REQUESTS": "20"})
    assert (settings.twilio_calls_per_second, settings.twilio_concurrent_requests) == (5.0, 20)
    assert Settings.from_env({}).twilio_calls_per_second == 1.0
    for bad in ({"TWILIO_CALLS_PER_SECOND": "fast"}, {"TWILIO_CALLS_PER_SECOND": "0"},
                {"TWILIO_CONCURRENT_REQUESTS": "-1"}):
        with pytest.raises(ConfigError, match="TWILIO_CALLS_PER_SECOND"):
            Settings.from_env(bad)


def test_the_demos_simulated_account_keeps_twilios_default_pace_and_serve_has_none_unless_asked() -> None:
    assert Settings.from_env({}, demo=True).simulator_calls_per_second == 1.0
    assert Settings.from_env({}).simulator_calls_per_second is None
    assert Settings.from_env({"RINGBACK_SIMULATOR_CALLS_PER_SECOND": "5"}).simulator_calls_per_second == 5.0
    assert Settings.from_env({"RINGBACK_SIMULATOR_CALLS_PER_SECOND": ""}, demo=True).simulator_calls_per_second is None
    for bad in ("fast", "0", "-2", "nan"):
        with pytest.raises(ConfigError, match="RINGBACK_SIMULATOR_CALLS_PER_SECOND"):
            Settings.from_env({"RINGBACK_SIMULATOR_CALLS_PER_SECOND": bad})
