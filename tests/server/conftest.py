"""The app driven through a TestClient over a world whose clock the test moves: see tests/harness/apps.py
(`client_world` is one of the harness's fixtures). The names tests import from here are the harness's."""

from __future__ import annotations

from tests.harness.apps import client_for, count
from tests.harness.fixtures import client_world

__all__ = ["client_for", "client_world", "count"]
