"""Sign-in floods: the attempt limit cannot be raced, one address cannot lock someone else out, and
argon2 runs in the password pool's threads, never on the event loop the engine shares."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from dialer.accounts import passwords, signin_limit
from tests.server.dashboard.asgi import Browser
from tests.server.dashboard.conftest import ANNA, BOB, OWNER, PASSWORD, Dash

WRONG = "guess guess guess"
# Fifteen times the password pool's threads: each checked at argon2's real cost (a quarter of a second
# or more on a loaded machine), so the loop would stall for seconds if one ran on it.
FLOOD = 15 * passwords.WORKERS


def _browser(dash: Dash, ip: str) -> Browser:
    return Browser(dash.client.app, ip)


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the thread each password check ran on."""
    threads: list[str] = []
    real: Callable[[str, str], bool] = passwords._verify

    def counting(stored: str, password: str) -> bool:
        threads.append(threading.current_thread().name)
        return real(stored, password)

    monkeypatch.setattr(passwords, "_verify", counting)
    return threads


def test_forty_parallel_guesses_check_at_most_the_limit(dash: Dash, checked: list[str]) -> None:
    async def flood() -> list[int]:
        client = _browser(dash, "203.0.113.9")
        csrf = await client.csrf()
        return list(await asyncio.gather(*(client.login(ANNA, WRONG, csrf) for _ in range(40))))

    statuses = dash.run(flood)
    assert statuses.count(401) == signin_limit.PER_ACCOUNT_AND_ADDRESS
    assert statuses.count(429) == 40 - signin_limit.PER_ACCOUNT_AND_ADDRESS
    assert len(checked) == signin_limit.PER_ACCOUNT_AND_ADDRESS


def test_one_address_cannot_lock_a_known_email_out(dash: Dash) -> None:
    async def go() -> tuple[list[int], int, int]:
        attacker, anna = _browser(dash, "203.0.113.66"), _browser(dash, "198.51.100.20")
        csrf = await attacker.csrf()
        tries = [await attacker.login(ANNA, WRONG, csrf) for _ in range(8)]
        right_from_attacker = await attacker.login(ANNA, PASSWORD, csrf)
        return tries, right_from_attacker, await anna.login(ANNA, PASSWORD)

    tries, from_attacker, from_anna = dash.run(go)
    assert tries == [401] * 5 + [429] * 3
    assert from_attacker == 429
    assert from_anna == 303, "Anna, from her own address, signs in"


@pytest.mark.sqlite_only
def test_one_address_is_limited_across_emails(dash: Dash) -> None:
    async def go() -> tuple[list[int], int]:
        bot, owner = _browser(dash, "203.0.113.70"), _browser(dash, "198.51.100.21")
        csrf = await bot.csrf()
        tries = [await bot.login(f"user{i}@shop.example", WRONG, csrf) for i in range(22)]
        return tries, await owner.login(OWNER, PASSWORD)

    tries, owner = dash.run(go)
    assert tries == [401] * signin_limit.PER_ADDRESS + [429] * 2
    assert owner == 303


@pytest.mark.sqlite_only
def test_a_successful_sign_in_uses_up_nothing(dash: Dash) -> None:
    async def go() -> list[int]:
        statuses = []
        for _ in range(10):  # ten sign-ins in a row from one address, each a fresh browser
            statuses.append(await _browser(dash, "198.51.100.22").login(BOB, PASSWORD))
        return statuses

    assert dash.run(go) == [303] * 10


@pytest.mark.sqlite_only
def test_a_flood_of_sign_ins_leaves_the_event_loop_free(dash: Dash, checked: list[str]) -> None:
    """FLOOD failed sign-ins from as many addresses at once while /healthz is asked in a loop: every
    password is checked in the pool's threads (the loop thread never hashes). The latencies are printed,
    not asserted."""

    async def go() -> tuple[list[int], list[float], str]:
        loop_thread = threading.current_thread().name
        clients = [_browser(dash, f"192.0.2.{i + 1}") for i in range(FLOOD)]
        csrfs = [await c.csrf() for c in clients]
        checked.clear()
        done = asyncio.Event()
        latencies: list[float] = []

        async def probe() -> None:
            health = _browser(dash, "198.51.100.99")
            while not done.is_set():
                start = time.perf_counter()
                await asyncio.sleep(0.01)  # a stalled loop wakes this late
                assert (await health.request("GET", "/healthz")).status == 200
                latencies.append(time.perf_counter() - start - 0.01)

        prober = asyncio.create_task(probe())
        # Unknown e-mails: checked against the dummy hash, made with argon2's real (default) cost.
        statuses = await asyncio.gather(*(c.login(f"nobody{i}@shop.example", WRONG, t)
                                          for i, (c, t) in enumerate(zip(clients, csrfs, strict=True))))
        done.set()
        await prober
        return list(statuses), latencies, loop_thread

    statuses, latencies, loop_thread = dash.run(go)
    print(f"\n/healthz during {FLOOD} parallel failed sign-ins: {len(latencies)} answers, "
          f"worst delay {max(latencies) * 1000:.0f} ms, median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms")
    assert statuses == [401] * FLOOD
    assert len(checked) == FLOOD
    assert all(name.startswith(passwords.THREAD_PREFIX) for name in checked), set(checked)
    assert loop_thread not in checked
    assert len(latencies) > 1, "/healthz answered while the passwords were being checked"


def test_a_full_password_pool_answers_busy_at_once() -> None:
    pool = passwords.PasswordPool(workers=1, max_waiting=1)
    release = threading.Event()

    async def go() -> None:
        first = asyncio.ensure_future(pool.run(release.wait))
        second = asyncio.ensure_future(pool.run(release.wait))
        await asyncio.sleep(0)
        with pytest.raises(passwords.Busy):
            await pool.run(release.wait)
        release.set()
        assert await first and await second
        assert await pool.run(lambda: 1) == 1  # room again

    asyncio.run(go())
