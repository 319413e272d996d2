"""``timpora-register``: check a register file before it is deployed, or show what it holds.

timpora-register check [FILE]   # exit 1 with the path and the fields at fault
timpora-register show [FILE]    # one line per member: its kind, its agreement and how long it runs
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from timpora.common.config_files import ConfigFileError
from timpora.common.register import DEFAULT_REGISTER, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="timpora-register", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["check", "show"])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_REGISTER)
    args = parser.parse_args(argv)
    try:
        register = load(args.file)
    except ConfigFileError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    members = register.members.values()
    if args.action == "check":
        in_force = register.in_force(datetime.now(UTC))
        sys.stdout.write(
            f"{args.file}: {len(register.members)} members, {len(register.agreements)} agreements "
            f"({len(in_force)} in force today): OK\n"
        )
        return 0
    for member in members:
        agreement = member.agreement
        if member.controller:
            terms = "the controller: receives everything, as processing"
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
