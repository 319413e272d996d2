"""``timpora-register``: check a register file before it is deployed, or show what it holds.

timpora-register check [FILE]   # exit 1 with the path and the fields at fault
timpora-register show [FILE]    # one line per member: its kind, its agreement and how long it runs
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from timpora.common.config_files import ConfigFileError
from timpora.common.register import DEFAULT_REGISTER, load

_VARIABLE = "TIMPORA_REGISTER_FILE"
#: An agreement ending this soon is named by ``check``.
_SOON = timedelta(days=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="timpora-register", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["check", "show"])
    parser.add_argument("file", nargs="?", type=Path, default=Path(os.environ.get(_VARIABLE) or DEFAULT_REGISTER))
    args = parser.parse_args(argv)
    try:
        register = load(args.file)
    except ConfigFileError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    members = register.members.values()
    if args.action == "check":
        now = datetime.now(UTC)
        in_force = register.in_force(now)
        # Deploying an agreement that is not in force stops that agency's sharing and deletes its projection: a
        # typo in a date should be seen before, not after.
        for agency_id, terms_of in sorted(register.agreements.items()):
            ends = terms_of.valid_to
            if agency_id not in in_force:
                sys.stdout.write(f"warning: the agreement of {agency_id} is not in force today: it will get nothing\n")
            elif ends is not None and ends <= terms_of.local_date(now) + _SOON:
                sys.stdout.write(f"warning: the agreement of {agency_id} ends on {ends.isoformat()}\n")
        sys.stdout.write(
            f"{args.file}: {len(register.members)} members, {len(register.agreements)} agreements "
            f"({len(in_force)} in force today): OK\n"
        )
        return 0
    for member in members:
        agreement = member.agreement
        terms: str
        if member.controller:
            terms = "the controller of its area: receives what it holds there, as processing"
        elif agreement is None:
            terms = "no agreement: receives nothing"
        else:
            until = agreement.valid_to.isoformat() if agreement.valid_to else "open-ended"
            terms = (
                f"agreement v{agreement.version}, {len(agreement.fields)} fields, "
                f"{len(agreement.event_types)} event types, {agreement.valid_from.isoformat()} to {until}"
            )
        sys.stdout.write(f"{member.id} ({member.kind}): {terms}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
