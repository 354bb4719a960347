"""A burst under load, for real: 300 leads at once for 30 managers on three sites, carried by two engines
on one PostgreSQL, the simulator ten times faster than life (every manager presses 1, every visitor
answers and talks 20 s). What the people involved would notice:

- every lead ends, and ends talked (`completed`): nobody is dropped by the crowd;
- nobody's leg is dialed twice: the shared dial log has each leg once;
- no provider report is lost: the simulator counts each one the engines did not take;
- no manager is left idle while a lead of their site waits: every look at the database taken while both
  engines were at rest (nothing in hand, nothing started during the look) finds no free manager beside a
  queued lead that could take them. Wall-clock idle time is printed, not asserted: on a shared machine it
  measures the machine as much as the engine (bench/burst.py prints the same figures).
"""

from __future__ import annotations

from pathlib import Path

from tests.scale.burst import Burst, run


async def test_a_burst_for_two_engines_ends_every_lead_with_no_idle_manager(postgresql_url: str, tmp_path: Path) -> None:
    figures = await run(postgresql_url, Burst(leads=300, sites=3, managers_per_site=10, speed=10, deadline=120),
                        tmp_path)
    print("\n" + "\n".join(figures.lines()))
    assert figures.drained is not None, figures.statuses
    assert dict(figures.statuses) == {"completed": 300}
    assert figures.dialed_twice == []
    assert figures.lost == [] and figures.reported > 300 * 6  # a lead's calls make at least six reports
    assert figures.looks_at_rest > 10, "the engines were never at rest: nothing was looked at"
    assert figures.forgotten == [], figures.forgotten[:5]
    assert not figures.errors, figures.errors  # no deadlock, no pool running dry, no step failing
