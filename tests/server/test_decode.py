"""Reading a request body into the API's types: each refusal names the field, with a code and a sentence
a visitor can act on; visit facts from the browser are cleaned, never a reason to refuse."""

from __future__ import annotations

from typing import Any

import pytest

from server.decode import callback_request
from server.errors import ApiError

GOOD = {"site": "shop", "phone": "+48501234567"}

REFUSED = [
    ({"site": "shop"}, "phone", "required", "Please enter your phone number."),
    ({**GOOD, "phone": None}, "phone", "required", "Please enter your phone number."),
    ({**GOOD, "phone": 48501234567}, "phone", "invalid_type", "This must be text."),
    ({"phone": "1"}, "site", "required", None),
    ({**GOOD, "site": "x" * 65}, "site", "too_long", None),
    ({**GOOD, "name": "x" * 201}, "name", "too_long", "This is too long: at most 200 characters."),
    ({**GOOD, "name": ["Ann"]}, "name", "invalid_type", "This must be text."),
    ({**GOOD, "consent": "yes"}, "consent", "invalid_type", "This must be true or false."),
    ({**GOOD, "utm": []}, "utm", "invalid_type", "This must be an object."),
    ({**GOOD, "utm": {"evil": "1"}}, "utm.evil", "unknown_field", None),
    ({**GOOD, "utm": {"source": ["g"]}}, "utm.source", "invalid_type", "This must be text."),
    ({**GOOD, "hacker": 1}, "hacker", "unknown_field", None),
    ({**GOOD, "scheduled_for": "2026-11-24T10:00:00"}, "scheduled_for", "invalid_datetime",
     "The time needs a UTC offset, e.g. 2026-11-23T10:00:00+01:00."),
    ({**GOOD, "scheduled_for": "tomorrow"}, "scheduled_for", "invalid_datetime", None),
    ({**GOOD, "form_token": "1." + "x" * 300}, "form_token", "invalid", "Please reload the page and send the form again."),
    ({**GOOD, "hp": 7}, "hp", "bot_suspected", None),
]


@pytest.mark.parametrize(("body", "field", "code", "message"), REFUSED)
def test_a_field_that_does_not_fit_is_refused_by_name_in_a_sentence(
    body: dict[str, Any], field: str, code: str, message: str | None
) -> None:
    with pytest.raises(ApiError) as refused:
        callback_request(body)
    error = refused.value
    assert (error.status, error.field, error.code) == (422, field, code)
    assert error.message[0].isupper() and error.message.endswith(".") and "`" not in error.message
    if message is not None:
        assert error.message == message


def test_an_empty_string_counts_as_not_given() -> None:
    request = callback_request({**GOOD, "name": "", "timezone": "", "scheduled_for": "", "utm": ""})
    assert (request.name, request.timezone, request.scheduled_for, request.utm) == (None, None, None, None)


def test_visit_facts_are_cleaned_not_refused() -> None:
    visit = {"visits": 10**9, "first_seen": "x" * 500, "language": 5, "junk": {"a": 1},
             "first_touch": {"source": "google", "medium": "", "campaign": 3, "evil": "x"}, "last_touch": "direct"}
    request = callback_request({**GOOD, "visit": visit})
    assert request.visit is not None
    assert request.visit.visits == 1_000_000 and request.visit.first_seen == "x" * 300
    assert request.visit.language is None and request.visit.last_touch is None
    assert request.visit.first_touch is not None and request.visit.first_touch.source == "google"
    assert request.visit.first_touch.medium is None and request.visit.first_touch.campaign is None
    assert callback_request({**GOOD, "visit": [1, 2]}).visit is None
