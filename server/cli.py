"""The `ringback` command line: serve, worker, migrate, demo, site add, manager add, user add, user link."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from dialer import db
from dialer.config import ConfigError, Settings
from dialer.core.errors import InvalidField, NotFound
from dialer.runtime import Runtime
from dialer.sites.lookup import site_by_key
from server import access_log, demo

log = logging.getLogger("ringback")

DRAIN_SECONDS = 30.0  # how long a stopping worker waits for the simulated calls it placed


def _run_db(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        engine = db.create_engine(settings.database_url)
        try:
            async with db.sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def uvicorn_config(app: Any, host: str, port: int, *, proxy_headers: bool = False,
                   forwarded_allow_ips: str | None = None) -> Any:
    """uvicorn's settings for `serve`. Proxy headers (X-Forwarded-For, -Proto) are believed only with
    `--proxy-headers`, and only from the addresses `--forwarded-allow-ips` lists (uvicorn's own default
    trusts them from 127.0.0.1, which lets anything on the machine pose as any visitor to the limits)."""
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", lifespan="on",
        proxy_headers=proxy_headers, forwarded_allow_ips=(forwarded_allow_ips or "") if proxy_headers else "",
    )
    access_log.install()  # after uvicorn set its logging up: no lead tokens or reschedule signatures logged
    return config


def serve(
    settings: Settings, host: str, port: int, *, banner: str | None = None, run_engine: bool = True,
    proxy_headers: bool = False, forwarded_allow_ips: str | None = None,
) -> None:
    import uvicorn

    from server.app import create_app

    settings.check()
    if proxy_headers and not forwarded_allow_ips:
        raise ConfigError("--proxy-headers needs --forwarded-allow-ips: the address(es) of your proxy, e.g. 127.0.0.1")
    runtime = Runtime.build(settings)
    if settings.demo:
        demo.script_simulator(runtime.provider)
    app = create_app(runtime=runtime, run_engine=run_engine)
    config = uvicorn_config(app, host, port, proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips)
    server = uvicorn.Server(config)
    if banner:
        print(banner, flush=True)
    server.run()
    asyncio.run(runtime.close())


def worker(settings: Settings) -> None:
    """The engine alone, for scale-out: stops claiming on SIGTERM and finishes what it holds."""

    settings.check()

    async def go() -> None:
        runtime = Runtime.build(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await runtime.start()
        # What is in memory now (modules, settings) lives as long as the process: keep the garbage
        # collector's full passes, which pause the engine, from scanning it again and again.
        gc.collect()
        gc.freeze()
        log.info("worker started (telephony: %s)", settings.telephony)
        await stop.wait()
        log.info("worker stopping: no new claims, finishing what is in hand")
        runtime.engine.pause()
        quiet = getattr(runtime.provider, "quiet", None)
        if quiet is not None:
            # The simulated network lives in this process and ends with it: let its calls finish first.
            # Whatever is still going on after that is handed back: its deadline in the database wakes
            # another engine.
            try:
                await asyncio.wait_for(quiet(), DRAIN_SECONDS)
            except TimeoutError:
                log.info("calls still in progress after %s s: leaving them to the other engines", DRAIN_SECONDS)
        await runtime.close()

    asyncio.run(go())


def cmd_site_add(settings: Settings, args: argparse.Namespace) -> None:
    from dialer.sites.admin import add_site

    async def work(session: Any) -> str:
        site = await add_site(
            session,
            name=args.name,
            key=args.key,
            timezone=args.timezone,
            country=args.country,
            caller_id=args.caller_id,
            origins=args.origin,
            now=datetime.now(UTC),
        )
        return site.key

    print(_run_db(settings, work))


def cmd_manager_add(settings: Settings, args: argparse.Namespace) -> None:
    from dialer.sites.admin import add_manager

    async def work(session: Any) -> str:
        site = await site_by_key(session, args.site)
        manager = await add_manager(session, site=site, name=args.name, phone=args.phone, position=args.order)
        return f"manager {manager.id}: {manager.name} {manager.phone} (order {manager.position})"

    print(_run_db(settings, work))


def cmd_site_block(settings: Settings, args: argparse.Namespace) -> None:
    from dialer.protection import number_rules

    async def work(session: Any) -> str:
        site = await site_by_key(session, args.site)
        if args.action == "block":
            return f"blocked {await number_rules.block(session, site, args.number)}"
        if args.action == "unblock":
            return f"unblocked {await number_rules.unblock(session, site, args.number)}"
        return "\n".join(number_rules.blocked_entries(site)) or "(the block list is empty)"

    print(_run_db(settings, work))


def read_password() -> str:
    """From a prompt (asked twice) on a terminal, else the first line of stdin: never from argv."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password again: "):
            raise InvalidField("password", "The two passwords differ.", "mismatch")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _as_manager(manager: Any) -> str:
    return f", manager {manager.id} {manager.name}" if manager is not None else ""


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> None:
    from dialer.accounts.users import add_user
    from dialer.sites.lookup import find_manager

    if args.manager and not args.site:
        raise InvalidField("manager", "Say which site they are a manager of (--site KEY).", "required")
    password = read_password()

    async def work(session: Any) -> str:
        site = await site_by_key(session, args.site) if args.site else None
        manager = await find_manager(session, site, args.manager) if site and args.manager else None
        user = await add_user(session, email=args.email, password=password, role=args.role, site=site,
                              manager=manager, now=datetime.now(UTC))
        return f"user {user.id}: {user.email} ({user.role}{', site ' + site.key if site else ''}{_as_manager(manager)})"

    print(_run_db(settings, work))


def cmd_user_link(settings: Settings, args: argparse.Namespace) -> None:
    from dialer.accounts.users import add_membership, user_by_email
    from dialer.sites.lookup import find_manager

    async def work(session: Any) -> str:
        user = await user_by_email(session, args.email)
        site = await site_by_key(session, args.site)
        manager = await find_manager(session, site, args.manager)
        await add_membership(session, user, site, manager.id)
        return f"user {user.id}: {user.email} (site {site.key}{_as_manager(manager)})"

    print(_run_db(settings, work))


MANAGER_HELP = (
    "which of the site's managers this user is: their id (as `manager add` printed it), phone number or "
    "name; on a lead's page, \"call back now\" then rings them first unless they pick someone else"
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ringback", description="Self-hosted website callback service.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "web and engine in one process"), ("demo", "the demo site on the simulator")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--host", default="127.0.0.1")
        s.add_argument("--port", type=int, default=8000)
    sub.choices["serve"].add_argument(
        "--no-engine", action="store_true", help="web only: leave due leads to `ringback worker` processes"
    )
    sub.choices["serve"].add_argument(
        "--proxy-headers", action="store_true",
        help="behind a reverse proxy: take the visitor's address and scheme from X-Forwarded-For/-Proto",
    )
    sub.choices["serve"].add_argument(
        "--forwarded-allow-ips", metavar="IPS",
        help="comma-separated addresses of the proxies whose X-Forwarded-* headers are believed",
    )
    sub.add_parser("worker", help="the engine alone (scale-out)")
    sub.add_parser("migrate", help="create or upgrade the database schema")
    site = sub.add_parser("site", help="manage sites").add_subparsers(dest="action", required=True)
    add = site.add_parser("add", help="add a site and print its key")
    add.add_argument("--name", required=True)
    add.add_argument("--key")
    add.add_argument("--timezone", default="UTC")
    add.add_argument("--country", default="US")
    add.add_argument("--caller-id")
    add.add_argument("--origin", action="append", default=[])
    for action, text in (("block", "refuse a number or prefix (e.g. +44870) on a site"),
                         ("unblock", "take a number or prefix off a site's block list")):
        block = site.add_parser(action, help=text)
        block.add_argument("--site", required=True)
        block.add_argument("number")
    site.add_parser("blocked", help="print a site's block list").add_argument("--site", required=True)
    manager = sub.add_parser("manager", help="manage managers").add_subparsers(dest="action", required=True)
    madd = manager.add_parser("add", help="add a manager to a site")
    madd.add_argument("--site", required=True)
    madd.add_argument("--name", required=True)
    madd.add_argument("--phone", required=True)
    madd.add_argument("--order", type=int)
    user = sub.add_parser("user", help="manage dashboard users").add_subparsers(dest="action", required=True)
    uadd = user.add_parser("add", help="add a dashboard user (password from a prompt or stdin)")
    uadd.add_argument("--email", required=True)
    uadd.add_argument("--role", required=True, choices=["owner", "manager"])
    uadd.add_argument("--site", help="the site key a manager works on")
    uadd.add_argument("--manager", metavar="WHO", help=MANAGER_HELP)
    link = user.add_parser("link", help="say which of a site's managers an existing user is")
    link.add_argument("--email", required=True)
    link.add_argument("--site", required=True, help="the site key (a manager user also gets to see its leads)")
    link.add_argument("--manager", metavar="WHO", required=True, help=MANAGER_HELP)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env(demo=args.command == "demo")
        if args.command == "migrate":
            db.migrate(settings.database_url)
            print("database is up to date")
        elif args.command == "serve":
            serve(settings, args.host, args.port, run_engine=not args.no_engine, proxy_headers=args.proxy_headers,
                  forwarded_allow_ips=args.forwarded_allow_ips)
        elif args.command == "worker":
            worker(settings)
        elif args.command == "demo":
            settings.check()  # before anything is written: the demo refuses real telephony
            db.migrate(settings.database_url)
            _run_db(settings, lambda session: demo.seed(session, datetime.now(UTC)))
            url = f"http://{args.host}:{args.port}"
            serve(settings, args.host, args.port, banner=demo.banner(url))
        elif args.command == "site" and args.action in ("block", "unblock", "blocked"):
            cmd_site_block(settings, args)
        elif args.command == "site":
            cmd_site_add(settings, args)
        elif args.command == "manager":
            cmd_manager_add(settings, args)
        elif args.command == "user" and args.action == "link":
            cmd_user_link(settings, args)
        elif args.command == "user":
            cmd_user_add(settings, args)
    except ConfigError as exc:
        print(f"ringback: configuration: {exc}", file=sys.stderr)
        return 2
    except (InvalidField, NotFound) as exc:
        field = getattr(exc, "field", None)
        print(f"ringback: {'--' + field.replace('_', '-') + ': ' if field else ''}{exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
