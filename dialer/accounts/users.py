"""Dashboard users: argon2-hashed passwords, roles, and which sites each user may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.accounts import passwords, sessions
from dialer.core.errors import InvalidField
from dialer.db.models import AuditLog, Manager, Site, User, UserSite

ROLES = ("owner", "manager")
MIN_PASSWORD = 10


@dataclass(frozen=True)
class Access:
    """What a signed-in user may see: every site (owner) or a fixed set (manager)."""

    user_id: int
    email: str
    role: str
    site_ids: frozenset[int] | None  # None: all sites

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"

    def may_see(self, site_id: int) -> bool:
        return self.site_ids is None or site_id in self.site_ids


def normal_email(email: str) -> str:
    return email.strip().lower()


async def add_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    role: str,
    now: datetime,
    site: Site | None = None,
    manager: Manager | None = None,
) -> User:
    """A new dashboard user; with `site`, a member of it, and with `manager`, that site's manager they are
    (so "call back now" offers their phone first)."""
    address = normal_email(email)
    if "@" not in address or len(address) > 254 or address.startswith("@") or address.endswith("@"):
        raise InvalidField("email", "Give an email address such as anna@shop.example.", "invalid_email")
    if role not in ROLES:
        raise InvalidField("role", "The role is 'owner' or 'manager'.", "invalid_role")
    if role == "manager" and site is None:
        raise InvalidField("site", "A manager needs a site (--site KEY).", "required")
    if manager is not None and (site is None or manager.site_id != site.id):
        raise InvalidField("manager", "The manager must be one of the user's site's (--site KEY).", "invalid")
    check_new_password(password)
    if (await session.execute(select(User.id).where(User.email == address))).first():
        raise InvalidField("email", f"A user with email {address} exists already.", "duplicate")
    hashed = await passwords.hash_password(password)
    user = User(email=address, password_hash=hashed, role=role, active=True, created_at=now)
    session.add(user)
    await session.flush()
    if site is not None:
        await add_membership(session, user, site, manager.id if manager is not None else None)
    return user


async def add_membership(session: AsyncSession, user: User, site: Site, manager_id: int | None = None) -> None:
    """Make `user` a member of `site` (a manager sees its leads), as the manager `manager_id` of it if
    given; an existing membership keeps its manager unless another is given."""
    row = await session.get(UserSite, (user.id, site.id))
    if row is None:
        session.add(UserSite(user_id=user.id, site_id=site.id, manager_id=manager_id))
    elif manager_id is not None:
        row.manager_id = manager_id
    await session.flush()


async def user_by_email(session: AsyncSession, email: str) -> User:
    user = (await session.execute(select(User).where(User.email == normal_email(email)))).scalar_one_or_none()
    if user is None:
        raise InvalidField("email", f"There is no user {normal_email(email)}.", "not_found")
    return user


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidField("password", f"Use a password of at least {MIN_PASSWORD} characters.", "too_short")


async def active_user(session: AsyncSession, email: str) -> User | None:
    user = (await session.execute(select(User).where(User.email == normal_email(email)))).scalar_one_or_none()
    return user if user is not None and user.active else None


async def password_matches(user: User | None, password: str) -> bool:
    """Checked in the password pool (never on the event loop); an unknown user costs as long as a known one.
    Raises `passwords.Busy` when the pool is full."""
    return await passwords.verify(user.password_hash if user is not None else passwords.DUMMY_HASH, password) \
        and user is not None


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    user = await active_user(session, email)
    if not await password_matches(user, password) or user is None:
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash_password(password)
    return user


async def access_for(session: AsyncSession, user_id: int) -> Access | None:
    user = await session.get(User, user_id)
    if user is None or not user.active:
        return None
    if user.role == "owner":
        return Access(user.id, user.email, user.role, None)
    rows = await session.execute(select(UserSite.site_id).where(UserSite.user_id == user.id))
    return Access(user.id, user.email, user.role, frozenset(rows.scalars()))


async def own_manager_id(session: AsyncSession, user_id: int, site_id: int) -> int | None:
    """The manager a user is on this site, as their membership says (`ringback user add --manager`)."""
    row = await session.get(UserSite, (user_id, site_id))
    return row.manager_id if row is not None else None


async def visible_sites(session: AsyncSession, access: Access) -> list[Site]:
    query = select(Site).order_by(Site.name, Site.id)
    if access.site_ids is not None:
        query = query.where(Site.id.in_(access.site_ids or {-1}))
    return list((await session.execute(query)).scalars())


async def site_managers(session: AsyncSession, site_id: int) -> list[Manager]:
    query = select(Manager).where(Manager.site_id == site_id).order_by(Manager.position, Manager.id)
    return list((await session.execute(query)).scalars())


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.execute(select(User).order_by(User.id))).scalars())


async def set_password(session: AsyncSession, user: User, password: str) -> None:
    """A new password (from the command line): every dashboard session of the user ends."""
    check_new_password(password)
    await sessions.set_password(session, user, await passwords.hash_password(password))
    await session.flush()


async def remove_user(session: AsyncSession, user: User) -> None:
    """The user can no longer sign in (their sessions end); the audit log keeps what they did (without them)."""
    await sessions.end_all(session, user.id)
    await session.execute(delete(UserSite).where(UserSite.user_id == user.id))
    await session.execute(update(AuditLog).where(AuditLog.user_id == user.id).values(user_id=None))
    await session.delete(user)
    await session.flush()
