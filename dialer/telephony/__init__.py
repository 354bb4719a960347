"""Telephony providers: one small interface, a simulator (the default) and Twilio."""

from __future__ import annotations

from dialer.telephony.base import CallRequest, Provider, ProviderError

__all__ = ["CallRequest", "Provider", "ProviderError"]
