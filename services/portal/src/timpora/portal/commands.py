"""``timpora-portal officers``: accounts of the officers, created and managed by an operator.

``officers add AGENCY USERNAME --role ROLE --operator YOU`` prints the one-time password as its only line of output
(the officer must replace it at the first login); ``officers reset USERNAME`` gives a new one and ends the officer's
sessions; ``officers disable USERNAME`` ends them for good; ``officers list`` shows who has an account. Each change
is in the admin audit log, with the operator named, in the same transaction; never a password.
"""

from __future__ import annotations

import argparse
import re
import sys

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common import audit, register
from timpora.common.db.engine import make_session_factory
from timpora.common.db.migrations import migrated_engine
from timpora.common.register.members import AgencyKind
from timpora.common.settings import ServiceSettings, narrow
from timpora.common.types import OFFICER_USERNAME_PATTERN
from timpora.portal import repository as repo
from timpora.portal.domain import accounts
from timpora.portal.domain.accounts import Role
from timpora.portal.models import officers as officers_table
from timpora.portal.settings import PortalSettings

#: Which kind of member each role's officers belong to (None: any member).
_ROLE_KINDS: dict[Role, AgencyKind | None] = {
    Role.OFFICER: None,
    Role.VILLAGE: AgencyKind.VILLAGE,
    Role.IMMIGRATION: AgencyKind.IMMIGRATION,
    Role.OPERATOR: AgencyKind.IMMIGRATION,
}


def _refusal(settings: PortalSettings, agency_id: str, role: Role) -> str | None:
    member = register.current(settings.register_file).members.get(agency_id)
    if member is None:
        return f"no member {agency_id} in the register {settings.register_file}"
    kind = _ROLE_KINDS[role]
    if kind is not None and member.kind != kind:
        return f"a {role.value} account belongs to a member of kind {kind.value}; {agency_id} is {member.kind.value}"
    if kind is None and member.kind == AgencyKind.IMMIGRATION:
        # Immigration's staff hold the registry's data itself: theirs are the roles that must use a second factor.
        return f"{agency_id} is an immigration office: its staff are --role immigration or --role operator"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="timpora-portal officers")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="a new officer's account; prints the one-time password, and only it")
    add.add_argument("agency", help="the member agency's id in the register")
    add.add_argument("username", help="3 to 64 characters: lower-case letters, digits, '.', '_' or '-'")
    add.add_argument("--role", required=True, choices=[role.value for role in Role])
    audit.operator_argument(add)
    for name, text in (
        ("reset", "a new one-time password (printed, and only it); the officer's sessions end"),
        ("disable", "the account stops working; its sessions end"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("username")
        audit.operator_argument(action)
    actions.add_parser("list", help="every account: username, agency, role, whether disabled")
    return parser


async def officers(settings: ServiceSettings, argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    username = str(getattr(args, "username", "")).casefold()
    if args.action == "add":
        if not re.fullmatch(OFFICER_USERNAME_PATTERN, username):
            sys.stderr.write("username: 3 to 64 characters, lower-case letters, digits, '.', '_' or '-'\n")
            return 2
        if reason := _refusal(narrow(settings, PortalSettings), args.agency, Role(args.role)):
            sys.stderr.write(f"{reason}\n")
            return 1
    engine = await migrated_engine(settings, purpose="cli")
    try:
        async with make_session_factory(engine)() as session, session.begin():
            if args.action == "list":
                return await _list(session)
            actor = audit.Actor.command(args.operator)
            if args.action == "add":
                return await _add(
                    session, settings.service_name, actor, agency=args.agency, username=username, role=Role(args.role)
                )
            return await _change(session, settings.service_name, actor, args.action, username)
    finally:
        await engine.dispose()


async def _list(session: AsyncSession) -> int:
    rows = await session.execute(select(officers_table).order_by(officers_table.c.username))
    for row in rows:
        state = "disabled" if row.disabled_at else "active"
        sys.stdout.write(f"{row.username}\t{row.agency_id}\t{row.role}\t{state}\n")
    return 0


async def _add(
    session: AsyncSession, service: str, actor: audit.Actor, *, agency: str, username: str, role: Role
) -> int:
    if await repo.officer_named(session, username) is not None:
        sys.stderr.write(f"an officer {username} exists already\n")
        return 1
    password = accounts.one_time_password()
    officer_id = await repo.add_officer(
        session, agency_id=agency, username=username, role=role.value, password_hash=accounts.hash_password(password)
    )
    await audit.record(
        session,
        service=service,
        actor=actor,
        action="officers.add",
        target=username,
        new={"officer_id": officer_id, "agency_id": agency, "role": role.value},
    )
    sys.stdout.write(f"{password}\n")
    return 0


async def _change(session: AsyncSession, service: str, actor: audit.Actor, action: str, username: str) -> int:
    found = await repo.officer_named(session, username)
    if found is None:
        sys.stderr.write(f"no officer {username}\n")
        return 1
    # Either way every session of the officer ends: a reset password, or a disabled account, is not still logged in.
    ended = await repo.close_sessions_of(session, found.id)
    if action == "disable":
        await repo.update_officer(session, found.id, disabled_at=func.now())
        await audit.record(
            session,
            service=service,
            actor=actor,
            action="officers.disable",
            target=found.username,
            old={"disabled": found.disabled_at is not None},
            new={"disabled": True, "sessions_ended": ended},
        )
        return 0
    password = accounts.one_time_password()
    # A reset is for a forgotten password or a lost phone: the second factor is enrolled again at the next login.
    await repo.update_officer(
        session,
        found.id,
        password_hash=accounts.hash_password(password),
        must_change_password=True,
        totp_secret=None,
        totp_last_step=None,
    )
    await audit.record(
        session,
        service=service,
        actor=actor,
        action="officers.reset",
        target=found.username,
        new={"must_change_password": True, "second_factor": None, "sessions_ended": ended},
    )
    sys.stdout.write(f"{password}\n")
    return 0
