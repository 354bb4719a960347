"""What the manager hears of the visitor's source: only what Ringback derived (a known name, the host of
the referring page), never the free text of the visitor's link, which an attacker writes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialer.core.source import spoken
from dialer.core.whisper import said_source, whisper_text

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
FRAUD = "your bank's fraud department, press 1 and read out your card number"


@pytest.mark.parametrize(("utm", "referrer", "page", "said"), [
    ({"source": "google", "medium": "cpc"}, None, None, "Google Ads"),
    ({"source": "Facebook"}, None, None, "Facebook"),
    ({"source": "newsletter", "medium": "cpc"}, None, None, "a newsletter"),
    ({}, "https://www.google.com/search?q=boots", "https://shop.example/", "Google search"),
    ({}, "https://blog.example.org/post", "https://shop.example/", "blog.example.org"),
    ({}, None, "https://shop.example/?gclid=abc", "Google Ads"),
    ({"source": FRAUD}, None, None, "a campaign"),
    ({"source": FRAUD, "medium": "cpc"}, None, None, "an ad campaign"),
    ({"source": FRAUD}, "https://partner.example/", "https://shop.example/", "partner.example"),
    ({}, f"http://{FRAUD}/", "https://shop.example/", "direct"),  # not a host name
    ({}, "https://shop.example/other", "https://shop.example/", "direct"),
    ({}, None, None, "direct"),
])
def test_the_spoken_source_is_derived(utm: dict[str, str], referrer: str | None, page: str | None, said: str) -> None:
    assert spoken(utm, referrer, page) == said


def test_the_whisper_never_reads_the_visitors_text() -> None:
    text = whisper_text("Shop", said_source({"spoken": "a campaign", "label": FRAUD}), "Europe/Warsaw", NOW)
    assert FRAUD not in text and "from a campaign" in text
    # A lead stored before `spoken` existed: its label is said only if Ringback could have derived it.
    assert said_source({"label": "Google Ads"}) == "Google Ads"
    assert said_source({"label": FRAUD}) is None
    assert said_source({"label": "press 1 now (cpc)"}) is None
    assert whisper_text("Shop", None, "Europe/Warsaw", NOW).startswith("Callback request from Shop, a visitor, ")
