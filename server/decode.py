"""Reading a request body into the API's types (server/schema.py), with every refusal in the house shape:
a 4xx naming the field, and a sentence the visitor can act on.

The body is at most `MAX_BODY` bytes of JSON, holds no text the database cannot store, and then must fit
the request's class: msgspec checks types, lengths and unknown fields, and its refusal ("Expected `str`
of length <= 200 - at `$.name`") is turned into the field it names and a sentence in plain words.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from dialer.protection import screen
from server.errors import ApiError
from server.schema import VISIT_TEXT, CallbackRequest, Touch, Visit

MAX_BODY = 16 * 1024
T = TypeVar("T", bound=msgspec.Struct)

_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_NAMED = re.compile(r"Object (?:contains unknown|missing required) field `(?P<name>[^`]*)`")
_MAX = re.compile(r"Expected `(?:str|array|object)` of length <= (?P<n>\d+)")
_TYPE = re.compile(r"Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`")
_KINDS = {
    "str": "text",
    "bool": "true or false",
    "int": "a whole number",
    "datetime": "a time such as 2026-11-23T10:00:00+01:00",
    "object": "an object",
    "array": "a list",
}
# Fields the visitor never types: a refusal says what they can do about it.
_HIDDEN: dict[str, tuple[str | None, str]] = {
    "site": (None, "This page's callback widget is set up wrongly: check the data-site attribute of its tag."),
    "form_token": ("invalid", "Please reload the page and send the form again."),
    "hp": ("bot_suspected", "This request looks automated and was not sent."),
    "captcha": ("invalid", "Please confirm you are not a robot."),
}
_REQUIRED = {"phone": "Please enter your phone number."}


async def read_json(request: Request) -> dict[str, Any]:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise ApiError(413, "too_large", f"The request is too large (at most {MAX_BODY} bytes).")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, "too_large", f"The request is too large (at most {MAX_BODY} bytes).")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", "The request body must be JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    if (where := screen.first_unstorable(data)) is not None:
        raise ApiError(422, "invalid_text", "This text holds characters that cannot be stored.", where[:40])
    return data


def callback_request(data: dict[str, Any]) -> CallbackRequest:
    """The request as its class, or ApiError(422) naming the first field that does not fit it."""
    given = {key: None if value == "" else value for key, value in data.items()}
    if "visit" in given:
        given["visit"] = visit_facts(given["visit"])
    return convert(given, CallbackRequest)


def convert(data: dict[str, Any], kind: type[T]) -> T:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise refusal(str(exc)) from None


def refusal(text: str, kind: type[msgspec.Struct] = CallbackRequest) -> ApiError:
    """msgspec's words for what is wrong, as the house error: the field, a code and a plain sentence."""
    found = _AT.match(text)
    what, path = (found.group("what"), found.group("path") or "") if found else (text, "")
    field = ".".join(part for part in re.split(r"[.\[\]]+", path) if part)
    if named := _NAMED.match(what):
        field = f"{field}.{named.group('name')}" if field else named.group("name")
    field = field[:40] or "body"
    code, message = _explain(what, field, required=field in _required(kind))
    if field in _HIDDEN and code != "unknown_field":
        code, message = _HIDDEN[field][0] or code, _HIDDEN[field][1]
    return ApiError(422, code, message, field)


def _required(kind: type[msgspec.Struct]) -> set[str]:
    return {f.name for f in msgspec.structs.fields(kind) if f.required}


def _explain(what: str, field: str, *, required: bool) -> tuple[str, str]:
    typed = _TYPE.match(what)
    if what.startswith("Object contains unknown field"):
        return "unknown_field", f"This request holds a field we do not know: '{field}'. Leave it out."
    if what.startswith("Object missing required field") or required and typed and typed.group("got") == "null":
        return "required", _REQUIRED.get(field, "Please fill this in.")
    if limit := _MAX.match(what):
        return "too_long", f"This is too long: at most {limit.group('n')} characters."
    if "timezone component" in what:
        return "invalid_datetime", "The time needs a UTC offset, e.g. 2026-11-23T10:00:00+01:00."
    if "datetime" in what:
        return "invalid_datetime", "This is not a time we can read. Use one such as 2026-11-23T10:00:00+01:00."
    if typed:
        kinds = [_KINDS.get(k.strip(), k.strip()) for k in typed.group("expected").split("|") if k.strip() != "null"]
        return "invalid_type", f"This must be {' or '.join(kinds)}."
    return "invalid", "This value is not one we can take."


def visit_facts(raw: Any) -> dict[str, Any] | None:
    """The visit facts that fit `Visit`, with text cut short and counts kept in range; the rest dropped."""
    if not isinstance(raw, dict):
        return None
    kept: dict[str, Any] = {}
    for name in Visit.__struct_fields__:
        value = raw.get(name)
        if name.endswith("_touch"):
            value = _touch(value)
        elif isinstance(value, str):
            value = value[:VISIT_TEXT]
        elif isinstance(value, int) and not isinstance(value, bool):
            value = max(0, min(value, 1_000_000))
        if value is None or value == "":
            continue
        try:
            msgspec.convert({name: value}, Visit)
        except msgspec.ValidationError:
            continue
        kept[name] = value
    return kept


def _touch(raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, dict):
        return None
    kept = {k: v[:VISIT_TEXT] for k in Touch.__struct_fields__ if isinstance(v := raw.get(k), str) and v}
    return kept or None
