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
