"""A call's recordings on Twilio: which of those listed have media and where it is, and fetching that
media with the account's credentials, only from the Twilio API's own host. `twilio.py` lists the
recordings and hands its HTTP session here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from dialer.telephony.base import ProviderError

RECORDING_CHUNK = 64 * 1024  # bytes passed on at a time when a recording is streamed to the dashboard
TWILIO_API = "https://api.twilio.com"


def completed(found: list[Any], api_base_url: str | None) -> list[str]:
    """The media addresses of the listed recordings that are `completed` (only those have media; one still
    `processing` is asked about again), the oldest first."""
    done = [r for r in found if r.status == "completed" and (r.media_url or r.uri)]
    done.sort(key=lambda r: r.date_created or datetime.min.replace(tzinfo=UTC))
    return [media_address(api_base_url, r.media_url, r.uri) for r in done]


def media_address(api_base_url: str | None, media_url: str | None, uri: str | None) -> str:
    """The recording's media as the recording callback's `RecordingUrl` names it: its `media_url`, or
    its `uri` (relative to the API's host) without `.json`."""
    if media_url:
        return media_url
    base = (api_base_url or TWILIO_API).rstrip("/")
    return f"{base}{(uri or '').removesuffix('.json')}"


def recording_address(api_base_url: str | None, url: str) -> str:
    """Only addresses on the Twilio API's own host are fetched, so the credentials go nowhere else."""
    base = urlsplit(api_base_url or TWILIO_API)
    target = urlsplit(url)
    if (target.scheme, target.netloc) != (base.scheme, base.netloc):
        raise ProviderError(f"not a Twilio recording address: {url}", permanent=True)
    return url


async def stream_media(
    session: aiohttp.ClientSession, target: str, authorization: str, timeout: float
) -> tuple[str, AsyncIterator[bytes]]:
    """The recording's content type and its bytes as they arrive (a dual-channel WAV is large: it is
    never held whole in memory). Raises `ProviderError` before the first byte when it cannot be had."""
    headers = {"Authorization": authorization}
    limits = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
    try:
        response = await session.get(target, headers=headers, timeout=limits)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise ProviderError(f"the recording could not be fetched ({type(exc).__name__})", permanent=False) from None
    if response.status != 200:
        response.release()
        raise ProviderError(f"Twilio answered {response.status} for the recording", permanent=False)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.content.iter_chunked(RECORDING_CHUNK):
                yield chunk
        finally:
            response.release()

    return response.headers.get("Content-Type", "audio/wav"), chunks()


async def fetch_media(
    session: aiohttp.ClientSession, target: str, authorization: str, timeout: float
) -> tuple[bytes, str]:
    """The recording's bytes and content type, whole."""
    headers = {"Authorization": authorization}
    limits = aiohttp.ClientTimeout(total=timeout * 6)  # recordings can be a few megabytes
    try:
        async with session.get(target, headers=headers, timeout=limits) as response:
            if response.status != 200:
                raise ProviderError(f"Twilio answered {response.status} for the recording", permanent=False)
            return await response.read(), response.headers.get("Content-Type", "audio/wav")
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise ProviderError(f"the recording could not be fetched ({type(exc).__name__})", permanent=False) from None
