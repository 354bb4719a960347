"""The engine: steps leads through the state machine, persists each step, then acts on it."""

from __future__ import annotations

from dialer.engine.engine import CONCURRENCY, Engine

__all__ = ["CONCURRENCY", "Engine"]
