"""Migration 0010 on a database that already holds two active requests for one number (the old check
let them through under load): the upgrade goes through, those stay, and new ones are held by the index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dialer.db import connect as db

pytestmark = pytest.mark.sqlite_only

LEAD = ("INSERT INTO leads (id, site_id, kind, status, version, token_hash, phone, timezone, attempt, consent,"
        " utm, source, created_at, updated_at) VALUES (?, 1, 'call', 'queued', 1, 'h', '+48501234567', 'UTC', 1,"
        " 0, '{}', '{}', '2026-11-01 10:00:00', '2026-11-01 10:00:00')")


def test_the_upgrade_keeps_old_duplicates_and_guards_new_leads(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    db.migrate(url, "0006")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO sites (id, key, name, timezone, country, currency, consent_required, recording,"
                     " routing, any_country, origins, settings, created_at) VALUES (1, 'shop', 'Shop', 'UTC', 'PL',"
                     " 'PLN', 0, 0, 'sequential', 0, '[]', '{}', '2026-11-01 10:00:00')")
        conn.execute(LEAD, ("a" * 32,))
        conn.execute(LEAD, ("b" * 32,))
    db.migrate(url, "0010")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM leads WHERE one_per_number = 0").fetchone() == (2,)
        conn.execute(LEAD.replace("consent,", "consent, one_per_number,").replace("1, 0, '{}'", "1, 0, 1, '{}'"),
                     ("c" * 32,))
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(LEAD.replace("consent,", "consent, one_per_number,").replace("1, 0, '{}'", "1, 0, 1, '{}'"),
                         ("d" * 32,))
