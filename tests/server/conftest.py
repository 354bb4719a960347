"""The app driven through a TestClient over a world whose clock the test moves: see tests/harness/apps.py
(the `client_world` fixture is the harness's, registered by tests/conftest.py). The names tests import
from here are the harness's."""

from __future__ import annotations

from tests.harness.apps import client_for, count

__all__ = ["client_for", "count"]
