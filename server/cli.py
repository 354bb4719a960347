"""The `ringback` command line: serve, worker, migrate, demo; and site, manager and user (server/commands.py).
A wrong database setting is answered with one line and exit status 3, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from datetime import UTC, datetime
from typing import Any

from dialer import db, logs
from dialer.config import ConfigError, Settings
from dialer.core.errors import InvalidField, NotFound
from dialer.runtime import Runtime
from server import access_log, commands, demo

log = logging.getLogger("ringback")

DRAIN_SECONDS = 30.0  # how long a stopping worker waits for the simulated calls it placed


def alone_needs_messages(settings: Settings, what: str) -> None:
    """A web process without an engine and the engines apart from it must hear each other (live updates,
    "a lead is due now"): through Redis, or PostgreSQL's LISTEN/NOTIFY; SQLite alone has no way."""
    if db.is_sqlite(settings.database_url) and not settings.redis_url:
        raise ConfigError(
            f"{what} on SQLite needs RINGBACK_REDIS_URL for the web and engine processes to hear each other "
            "(or use PostgreSQL, or run a single `ringback serve`)"
        )


def uvicorn_config(app: Any, host: str, port: int, *, proxy_headers: bool = False,
                   forwarded_allow_ips: str | None = None) -> Any:
    """uvicorn's settings for `serve`. Proxy headers (X-Forwarded-For, -Proto) are believed only with
    `--proxy-headers`, and only from the addresses `--forwarded-allow-ips` lists (uvicorn's own default
    trusts them from 127.0.0.1, which lets anything on the machine pose as any visitor to the limits).
    A WebSocket message from a browser is refused (1009) past a few kilobytes, not uvicorn's 16 MB: the
    sockets only ever tell the browser things (server/live.py)."""
    import uvicorn

    from server.live import MAX_CLIENT_MESSAGE

    config = uvicorn.Config(
        # log_config=None: uvicorn's lines go through our one handler (dialer/logs.py: redacted, text or JSON)
        app, host=host, port=port, log_level="info", lifespan="on", log_config=None,
        proxy_headers=proxy_headers, forwarded_allow_ips=(forwarded_allow_ips or "") if proxy_headers else "",
        ws_max_size=MAX_CLIENT_MESSAGE,
    )
    access_log.install()  # after uvicorn set its logging up: no lead tokens or reschedule signatures logged
    return config


def serve(
    settings: Settings, host: str, port: int, *, banner: str | None = None, run_engine: bool = True,
    proxy_headers: bool = False, forwarded_allow_ips: str | None = None,
) -> None:
    import uvicorn

    from server.app import create_app

    settings = settings.served_at(host, port)
    settings.check()
    if proxy_headers and not forwarded_allow_ips:
        raise ConfigError("--proxy-headers needs --forwarded-allow-ips: the address(es) of your proxy, e.g. 127.0.0.1")
    if not run_engine:
        alone_needs_messages(settings, "`serve --no-engine`")
    commands.check_database(settings)
    runtime = Runtime.build(settings)
    if settings.demo:
        demo.script_simulator(runtime.provider)
    app = create_app(runtime=runtime, run_engine=run_engine)
    config = uvicorn_config(app, host, port, proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips)
    server = uvicorn.Server(config)
    if banner is not None:
        print(banner.replace("{url}", settings.public_url), flush=True)

    async def main() -> None:
        try:
            await server.serve()
        finally:  # in the loop that opened them: the database's connections close cleanly
            await runtime.close()
            await runtime.database.dispose()

    # uvicorn stops on SIGINT/SIGTERM and then raises the signal again for the handler it found: a quiet
    # one, so that a stop asked for ends with exit status 0 instead of a KeyboardInterrupt or 143.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    asyncio.run(main())


def worker(settings: Settings) -> None:
    """The engine alone, for scale-out: stops claiming on SIGTERM and finishes what it holds."""

    settings.check()
    alone_needs_messages(settings, "`worker`")
    commands.check_database(settings)

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


def parser() -> argparse.ArgumentParser:
    shown = commands.Defaults  # every option's help says its default
    p = argparse.ArgumentParser(prog="ringback", description="Self-hosted website callback service.",
                                formatter_class=shown)
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "web and engine in one process"), ("demo", "the demo site on the simulator")):
        s = sub.add_parser(name, help=text, description=text, formatter_class=shown)
        s.add_argument("--host", default="127.0.0.1", help="the address to listen on (0.0.0.0: every interface)")
        s.add_argument("--port", type=int, default=8000, help="the port to listen on")
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
    sub.add_parser("worker", help="the engine alone (scale-out)", formatter_class=shown)
    sub.add_parser("migrate", help="create or upgrade the database schema", formatter_class=shown)
    commands.add_parsers(sub, shown)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = Settings.from_env(demo=args.command == "demo")
        logs.configure(settings.log_format, secrets=settings.secrets)
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
            commands.run_db(settings, lambda session: demo.seed(session, datetime.now(UTC)))
            serve(settings, args.host, args.port, banner=demo.banner("{url}"))
        else:
            commands.run(settings, args)
    except ConfigError as exc:
        print(f"ringback: configuration: {exc}", file=sys.stderr)
        return 2
    except (InvalidField, NotFound) as exc:
        field = getattr(exc, "field", None)
        print(f"ringback: {'--' + field.replace('_', '-') + ': ' if field else ''}{exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        problem = database_problem(exc, settings.database_url if settings else "")
        if problem is None:
            raise
        print(f"ringback: database: {problem}", file=sys.stderr)
        return 3
    return 0


def database_problem(exc: BaseException, url: str) -> str | None:
    """One line saying what is wrong with the database setting (a bad URL, nobody listening, a missing
    role or database), or None when `exc` is not about reaching the database."""
    shown = _without_password(url)
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain)
    names = {type(e).__name__ for e in chain}
    if {"ArgumentError", "NoSuchModuleError"} & names:
        return (f"RINGBACK_DATABASE_URL={shown} is not a database URL Ringback can use: write "
                "postgresql+asyncpg://USER@HOST/DATABASE or sqlite+aiosqlite:///./ringback.db")
    if "no such table" in text or "relation" in text and "does not exist" in text:
        return f"the database at {shown} has no tables yet: run `ringback migrate` first"
    if "InvalidAuthorizationSpecificationError" in names or "role" in text and "does not exist" in text:
        return (f"PostgreSQL does not know the user in {shown}: create the role first (see the README, "
                "'Setting up PostgreSQL') or name an existing one in RINGBACK_DATABASE_URL")
    if "InvalidPasswordError" in names or "password authentication failed" in text:
        return f"PostgreSQL refused the password of the user in {shown}"
    if "InvalidCatalogNameError" in names or "database" in text and "does not exist" in text:
        return f"the database in {shown} does not exist: create it first (see the README, 'Setting up PostgreSQL')"
    if "unable to open database file" in text:
        return f"cannot open the SQLite file of {shown}: does its directory exist, and may Ringback write there?"
    if {"ConnectionRefusedError", "gaierror", "TimeoutError"} & names or "Connect call failed" in text:
        return f"nothing answers at {shown}: is the database server running, and are its host and port right?"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found and len(found) < 10:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _without_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: say it as given, cut short
        return url[:80]


if __name__ == "__main__":
    sys.exit(main())
