"""The `ringback site|manager|user …` commands: setting up sites, their managers and the dashboard's users
from the command line (server/cli.py parses the rest and runs these)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from dialer import db
from dialer.config import Settings
from dialer.core.countries import country_list
from dialer.core.errors import InvalidField
from dialer.sites.lookup import site_by_key

MANAGER_HELP = (
    "which of the site's managers this user is: their id (as `manager add` printed it), phone number or "
    "name; on a lead's page, \"call back now\" then rings them first unless they pick someone else"
)


def run_db(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """`work(session)` in one transaction on the configured database."""

    async def go() -> Any:
        engine = db.create_engine(settings.database_url)
        try:
            async with db.sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def check_database(settings: Settings) -> None:
    """Reach the database and its tables once, so that `serve` and `worker` say in one line what is
    wrong with it before they start (server/cli.py's `database_problem`)."""
    from sqlalchemy import select

    from dialer.db.models import Site

    async def probe(session: Any) -> None:
        await session.execute(select(Site.id).limit(1))

    run_db(settings, probe)


def read_password() -> str:
    """From a prompt (asked twice) on a terminal, else the first line of stdin: never from argv."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password again: "):
            raise InvalidField("password", "The two passwords differ.", "mismatch")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _countries_of(site: Any) -> str:
    from dialer.sites.config import from_row

    allowed = from_row(site, []).abuse.countries
    return "any country" if allowed is None else country_list(allowed)


def _as_manager(manager: Any) -> str:
    return f", manager {manager.id} {manager.name}" if manager is not None else ""


# site ------------------------------------------------------------------------------------------------

async def site_add(session: Any, args: argparse.Namespace) -> str:
    from dialer.sites.admin import add_site

    site = await add_site(session, name=args.name, key=args.key, timezone=args.timezone, country=args.country,
                          caller_id=args.caller_id, origins=args.origin, now=datetime.now(UTC))
    return str(site.key)


async def site_list(session: Any, args: argparse.Namespace) -> str:
    from dialer.sites.admin import list_sites

    lines = [f"{s.key}  {s.name}  ({s.country}, {s.timezone}; calls {_countries_of(s)}; "
             f"origins: {', '.join(s.origins or []) or 'any page'})" for s in await list_sites(session)]
    return "\n".join(lines) or "No sites yet: add one with `ringback site add --name NAME`."


async def site_remove(session: Any, args: argparse.Namespace) -> str:
    from dialer.sites.admin import count_leads, remove_site

    site = await site_by_key(session, args.site)
    leads = await count_leads(session, site)
    if leads and not args.with_leads:
        raise InvalidField("with_leads", f"{site.name} has {leads} call requests; add --with-leads to delete "
                           "them with the site.", "has_leads")
    await remove_site(session, site)
    return f"removed site {site.key} ({site.name}) and {leads} call requests"


async def site_countries(session: Any, args: argparse.Namespace) -> str:
    from dialer.sites.admin import set_countries

    site = await site_by_key(session, args.site)
    if args.country:
        set_countries(site, args.country)
    return f"{site.key} calls numbers from {_countries_of(site)}"


async def site_block(session: Any, args: argparse.Namespace) -> str:
    from dialer.protection import number_rules

    site = await site_by_key(session, args.site)
    if args.action == "block":
        return f"blocked {await number_rules.block(session, site, args.number)}"
    if args.action == "unblock":
        return f"unblocked {await number_rules.unblock(session, site, args.number)}"
    return "\n".join(number_rules.blocked_entries(site)) or "(the block list is empty)"


# manager ---------------------------------------------------------------------------------------------

async def manager_add(session: Any, args: argparse.Namespace) -> str:
    from dialer.sites.admin import add_manager

    site = await site_by_key(session, args.site)
    manager = await add_manager(session, site=site, name=args.name, phone=args.phone, position=args.order)
    return f"manager {manager.id}: {manager.name} {manager.phone} (order {manager.position})"


async def manager_list(session: Any, args: argparse.Namespace) -> str:
    from dialer.sites.admin import site_managers

    site = await site_by_key(session, args.site)
    lines = [f"{m.id}  {m.name}  {m.phone}  (order {m.position}{'' if m.active else ', removed'})"
             for m in await site_managers(session, site)]
    return "\n".join(lines) or f"{site.name} has no managers yet: add one with `ringback manager add`."


async def manager_remove(session: Any, args: argparse.Namespace) -> str:
    from dialer.sites.lookup import find_manager

    site = await site_by_key(session, args.site)
    manager = await find_manager(session, site, args.manager)
    manager.active = False
    return f"manager {manager.id} {manager.name} is no longer rung for {site.name} (past calls keep their name)"


# user ------------------------------------------------------------------------------------------------

async def user_add(session: Any, args: argparse.Namespace, password: str) -> str:
    from dialer.accounts.users import add_user
    from dialer.sites.lookup import find_manager

    site = await site_by_key(session, args.site) if args.site else None
    manager = await find_manager(session, site, args.manager) if site and args.manager else None
    user = await add_user(session, email=args.email, password=password, role=args.role, site=site,
                          manager=manager, now=datetime.now(UTC))
    return f"user {user.id}: {user.email} ({user.role}{', site ' + site.key if site else ''}{_as_manager(manager)})"


async def user_link(session: Any, args: argparse.Namespace) -> str:
    from dialer.accounts.users import add_membership, user_by_email
    from dialer.sites.lookup import find_manager

    user = await user_by_email(session, args.email)
    site = await site_by_key(session, args.site)
    manager = await find_manager(session, site, args.manager)
    await add_membership(session, user, site, manager.id)
    return f"user {user.id}: {user.email} (site {site.key}{_as_manager(manager)})"


async def user_list(session: Any, args: argparse.Namespace) -> str:
    from dialer.accounts.users import list_users

    users = await list_users(session)
    return "\n".join(f"{u.id}  {u.email}  ({u.role})" for u in users) or (
        "No users yet: add the first with `ringback user add --email EMAIL --role owner`.")


async def user_remove(session: Any, args: argparse.Namespace) -> str:
    from dialer.accounts.users import remove_user, user_by_email

    user = await user_by_email(session, args.email)
    await remove_user(session, user)
    return f"removed user {user.email}"


async def user_password(session: Any, args: argparse.Namespace, password: str) -> str:
    from dialer.accounts.users import set_password, user_by_email

    user = await user_by_email(session, args.email)
    await set_password(session, user, password)
    return f"new password set for {user.email}; their dashboard sessions have ended"


def run(settings: Settings, args: argparse.Namespace) -> None:
    """Run the parsed `site|manager|user` command and print what it did."""
    work: Callable[[Any, argparse.Namespace], Awaitable[str]] = args.work
    if getattr(args, "needs_password", False):
        if getattr(args, "manager", None) and not args.site:
            raise InvalidField("manager", "Say which site they are a manager of (--site KEY).", "required")
        password = read_password()
        print(run_db(settings, lambda session: work(session, args, password)))  # type: ignore[call-arg]
    else:
        print(run_db(settings, lambda session: work(session, args)))


# the parser ------------------------------------------------------------------------------------------

class Defaults(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already says it or the option is required."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.required or not action.option_strings or action.default is argparse.SUPPRESS:
            return text
        if action.default is None or action.default == []:
            return f"{text} (default: none)"
        if action.default is False:
            return f"{text} (default: off)"
        return f"{text} (default: %(default)s)"


def add_parsers(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """`site`, `manager` and `user` with their actions, every option explained with its default."""

    def command(group: Any, name: str, text: str, work: Callable[..., Awaitable[str]]) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(name, help=text, description=text, formatter_class=formatter)
        p.set_defaults(work=work)
        return p

    def site_option(p: argparse.ArgumentParser, text: str = "the site's key (as `site add` printed it)") -> None:
        p.add_argument("--site", required=True, metavar="KEY", help=text)

    site = sub.add_parser("site", help="sites: add, list, remove, countries, block lists",
                          formatter_class=formatter).add_subparsers(dest="action", required=True)
    add = command(site, "add", "add a site and print its key", site_add)
    add.add_argument("--name", required=True, help="the site's name, as managers hear it in the whisper")
    add.add_argument("--key", help="the public key the widget tag carries (default: a random one)")
    add.add_argument("--timezone", default="UTC", help="the site's IANA time zone, for business hours")
    add.add_argument("--country", default="US", help="the site's country: national numbers are read as its own, "
                     "and only its numbers are called until `site countries` says more")
    add.add_argument("--caller-id", help="the number managers and visitors see calling (a Twilio number)")
    add.add_argument("--origin", action="append", default=[], help="a page origin allowed to use the widget, "
                     "e.g. https://shop.example; repeat for more (default: none, so any page)")
    command(site, "list", "list the sites with their countries and origins", site_list)
    remove = command(site, "remove", "delete a site with its managers", site_remove)
    site_option(remove)
    remove.add_argument("--with-leads", action="store_true", help="also delete its call requests (needed when it has any)")
    countries = command(site, "countries", "print, or set, the countries whose numbers a site calls", site_countries)
    site_option(countries)
    countries.add_argument("country", nargs="*", help="two-letter codes (PL DE), or 'any' for any country "
                           "(none: print the present list)")
    for action, text in (("block", "refuse a number or prefix (e.g. +44870) on a site"),
                         ("unblock", "take a number or prefix off a site's block list"),
                         ("blocked", "print a site's block list")):
        block = command(site, action, text, site_block)
        site_option(block)
        if action != "blocked":
            block.add_argument("number", help="a whole number, or a prefix with its country code")

    manager = sub.add_parser("manager", help="a site's managers: add, list, remove",
                             formatter_class=formatter).add_subparsers(dest="action", required=True)
    madd = command(manager, "add", "add a manager to a site", manager_add)
    site_option(madd)
    madd.add_argument("--name", required=True, help="the manager's name (the dashboard shows it)")
    madd.add_argument("--phone", required=True, help="their phone number, national (site's country) or +E.164")
    madd.add_argument("--order", type=int, help="their place in the hunt (default: after the others)")
    mlist = command(manager, "list", "list a site's managers in hunt order", manager_list)
    site_option(mlist)
    mremove = command(manager, "remove", "stop ringing a manager (their past calls keep their name)", manager_remove)
    site_option(mremove)
    mremove.add_argument("--manager", required=True, metavar="WHO", help="their id, phone number or name")

    user = sub.add_parser("user", help="dashboard users: add, link, list, remove, password",
                          formatter_class=formatter).add_subparsers(dest="action", required=True)
    uadd = command(user, "add", "add a dashboard user (password from a prompt, or stdin's first line)", user_add)
    uadd.set_defaults(needs_password=True)
    uadd.add_argument("--email", required=True, help="their sign-in address")
    uadd.add_argument("--role", required=True, choices=["owner", "manager"],
                      help="an owner sees every site and the settings; a manager the leads of their sites")
    uadd.add_argument("--site", metavar="KEY", help="the site key a manager works on")
    uadd.add_argument("--manager", metavar="WHO", help=MANAGER_HELP)
    link = command(user, "link", "say which of a site's managers an existing user is", user_link)
    link.add_argument("--email", required=True, help="the user's sign-in address")
    site_option(link, "the site key (a manager user also gets to see its leads)")
    link.add_argument("--manager", metavar="WHO", required=True, help=MANAGER_HELP)
    command(user, "list", "list the dashboard's users", user_list)
    uremove = command(user, "remove", "delete a user: they can no longer sign in", user_remove)
    uremove.add_argument("--email", required=True, help="the user's sign-in address")
    password = command(user, "password", "set a user's password (from a prompt, or stdin's first line)",
                       user_password)
    password.set_defaults(needs_password=True, site=None)
    password.add_argument("--email", required=True, help="the user's sign-in address")
