"""A lead's traffic source in words a manager understands ("Google Ads", "Google search", "direct").

`label` is for the dashboard (shown as text, escaped) and may repeat what the visitor's link said;
`spoken` is for the manager's whisper, read aloud on the phone, and holds only what Ringback derived: a
source it knows by name, or the host name of the referring page, never free text from the request (a
`utm_source` of "your bank's fraud department, press 1 and read out your card number" is "a campaign").
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

_PAID_MEDIUMS = {"cpc", "ppc", "paid", "paidsearch", "paid_search", "cpm", "display", "paid_social"}
_CLICK_IDS = {"gclid": "Google Ads", "msclkid": "Microsoft Ads", "fbclid": "Facebook", "yclid": "Yandex Direct"}
_SEARCH = {"google": "Google", "bing": "Bing", "duckduckgo": "DuckDuckGo", "yandex": "Yandex", "yahoo": "Yahoo"}


# utm_source values (lower case) that name a source Ringback knows, and how to say it.
_KNOWN = {
    **{key: name for key, name in _SEARCH.items()},
    "facebook": "Facebook", "fb": "Facebook", "instagram": "Instagram", "ig": "Instagram",
    "linkedin": "LinkedIn", "twitter": "X", "x": "X", "tiktok": "TikTok", "youtube": "YouTube",
    "pinterest": "Pinterest", "reddit": "Reddit", "newsletter": "a newsletter", "email": "an e-mail",
    "mailchimp": "an e-mail",
}
_HOST = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
# Every value `spoken` can return that is not a host name: what the whisper may say of older leads.
SPOKEN_NAMES = frozenset(
    {"direct", "a campaign", "an ad campaign"}
    | set(_KNOWN.values())
    | {f"{name} Ads" for name in _KNOWN.values()}
    | set(_CLICK_IDS.values())
    | {f"{name} search" for name in _SEARCH.values()}
)


def _host(url: str | None) -> str:
    try:
        host = urlsplit(url or "").hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def label(utm: dict[str, Any], referrer: str | None, page_url: str | None) -> str:
    source = str(utm.get("source") or "").strip()
    medium = str(utm.get("medium") or "").strip().lower()
    if source:
        name = _SEARCH.get(source.lower(), source)
        if medium in _PAID_MEDIUMS:
            return f"{name} Ads" if source.lower() in _SEARCH else f"{name} ({medium})"
        return f"{name} ({medium})" if medium else name
    query = parse_qs(urlsplit(page_url or "").query) if page_url else {}
    for key, name in _CLICK_IDS.items():
        if key in query:
            return name
    host = _host(referrer)
    if not host or host == _host(page_url):
        return "direct"
    engine = next((name for key, name in _SEARCH.items() if key in host.split(".")), None)
    return f"{engine} search" if engine else host


def spoken(utm: dict[str, Any], referrer: str | None, page_url: str | None) -> str:
    """The source as the whisper says it: derived values only (see the module's docstring)."""
    source = str(utm.get("source") or "").strip().lower()
    paid = str(utm.get("medium") or "").strip().lower() in _PAID_MEDIUMS
    if source in _KNOWN:
        name = _KNOWN[source]
        return f"{name} Ads" if paid and not name.startswith(("a ", "an ")) else name
    query = parse_qs(urlsplit(page_url or "").query) if page_url else {}
    for key, name in _CLICK_IDS.items():
        if key in query:
            return name
    host = _host(referrer).lower()
    if host and host != _host(page_url).lower() and _HOST.match(host):
        engine = next((name for key, name in _SEARCH.items() if key in host.split(".")), None)
        return f"{engine} search" if engine else host
    if source:
        return "an ad campaign" if paid else "a campaign"
    return "direct"


def speakable(text: str) -> bool:
    """Whether `text` is something `spoken` could have said (for leads stored before it existed)."""
    return text in SPOKEN_NAMES or bool(_HOST.match(text))
