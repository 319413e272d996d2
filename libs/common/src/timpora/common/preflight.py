"""docker-compose's one-shot ``preflight`` service: every password compose passes is checked before anything is
made with it. PostgreSQL initialises its volume with its superuser's password, ``kafka-certs`` writes a keystore
with the store password, the broker formats its storage with the operator's: a placeholder refused only later
(by ``db-bootstrap``, ``kafka-setup`` or the services) would already be persisted, and a stack started again
with real passwords would be stuck with it. So these start only after this has passed::

    python -m timpora.common.preflight

checks each ``TIMPORA_*_PASSWORD`` variable of its environment with :func:`refuse_placeholder`, and those
written unquoted into the broker's configuration or a database URL for the characters these can hold. A password beside
a username variable that is empty (``TIMPORA_ALERTS_SMTP_USERNAME``: no relay login) may be empty too. It
prints one line per refused variable, naming the variable and never its value, and exits 2 (compose then
starts nothing that depends on it: set real ones in deploy/.env and start again); 0 when all pass.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

from timpora.common.settings import refuse_placeholder

_PASSWORD = re.compile(r"TIMPORA_[A-Z0-9_]*PASSWORD")
#: Passwords written without quoting: the broker's own (the operator's, the keystore's) into a JAAS line and a
#: --add-scram argument (deploy/compose/kafka-start refuses others, but only after kafka-certs has written the
#: keystore), the databases' into the URLs of docker-compose.yml (an @ or / there makes another URL).
_UNQUOTED_PASSWORD = re.compile(r"TIMPORA_(KAFKA_[A-Z0-9_]*|PG_[A-Z0-9_]*|[A-Z]+_DB_)PASSWORD")
#: What both can hold as they are (URL-unreserved characters).
_UNQUOTED_CHARACTERS = re.compile(r"[A-Za-z0-9._~-]+")


def refused(environ: Mapping[str, str]) -> list[str]:
    """One line per password variable in ``environ`` that may not be used: the variable and why, never its value."""
    lines: list[str] = []
    for name in sorted(name for name in environ if _PASSWORD.fullmatch(name)):
        value = environ[name]
        username = name.removesuffix("PASSWORD") + "USERNAME"
        if not value and username in environ and not environ[username]:
            continue  # no login at all
        try:
            refuse_placeholder(value)
        except ValueError as error:
            lines.append(f"{name} refused: {error}")
            continue
        if _UNQUOTED_PASSWORD.fullmatch(name) and not _UNQUOTED_CHARACTERS.fullmatch(value):
            lines.append(
                f"{name} refused: it may hold letters, digits and . _ ~ - only (make one with: openssl rand -hex 24)"
            )
    return lines


def main(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    checked = [name for name in environ if _PASSWORD.fullmatch(name)]
    if not checked:
        sys.stderr.write("preflight: no TIMPORA_*_PASSWORD variable to check: the compose file passes them\n")
        return 2
    lines = refused(environ)
    if lines:
        sys.stderr.write("".join(f"preflight: {line}\n" for line in lines))
        return 2
    sys.stderr.write(f"preflight: {len(checked)} passwords checked, none a placeholder\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
