"""A lead's traffic source in words a manager understands ("Google Ads", "Google search", "direct")."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

_PAID_MEDIUMS = {"cpc", "ppc", "paid", "paidsearch", "paid_search", "cpm", "display", "paid_social"}
_CLICK_IDS = {"gclid": "Google Ads", "msclkid": "Microsoft Ads", "fbclid": "Facebook", "yclid": "Yandex Direct"}
_SEARCH = {"google": "Google", "bing": "Bing", "duckduckgo": "DuckDuckGo", "yandex": "Yandex", "yahoo": "Yahoo"}


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
