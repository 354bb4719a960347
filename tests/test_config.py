"""Settings read from the environment: the Twilio pace, the call limit and the retry delay, refused clearly
when unusable."""

from __future__ import annotations

import pytest

from dialer.config import ConfigError, Settings
from dialer.runtime import Runtime


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


def test_the_call_limit_and_the_retry_delay_are_read_and_refused_when_unusable() -> None:
    settings = Settings.from_env({"RINGBACK_MAX_CALL_SECONDS": "18", "RINGBACK_RETRY_SECONDS": "15"})
    assert (settings.max_call_seconds, settings.retry_seconds) == (18, 15)
    assert (Settings.from_env({}).max_call_seconds, Settings.from_env({}).retry_seconds) == (14400, 180)
    for name in ("RINGBACK_MAX_CALL_SECONDS", "RINGBACK_RETRY_SECONDS"):
        for bad in ("soon", "0", "-5", "1.5"):
            with pytest.raises(ConfigError, match=name):
                Settings.from_env({name: bad})


def test_the_engine_waits_the_retry_delay_it_was_given() -> None:
    runtime = Runtime.build(Settings(retry_seconds=15, max_call_seconds=18))
    assert (runtime.engine.policy.retry_delay, runtime.engine.policy.max_call_seconds) == (15, 18)
