"""Officers' accounts: roles, passwords (argon2id), one-time passwords, the TOTP second factor.

Nothing here touches the database or the web: the rules, so they are the same for the command that creates an
account, the login page and the tests.
"""

from __future__ import annotations

import secrets
import string
from datetime import datetime
from enum import StrEnum

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: argon2id (the library's default type), with its default cost: about 50 ms and 64 MiB a check on this machine.
_HASHER = PasswordHasher()
#: Checked against when the username is unknown, so that a wrong username takes as long as a wrong password.
_NOBODY = _HASHER.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 12
#: Letters and digits a person can read out and type on a phone: no 0/O, 1/l/I.
_CODE_DIGITS = 6
_READABLE = "".join(sorted(set(string.ascii_letters + string.digits) - set("0O1lI")))


class Role(StrEnum):
    """What an officer does in the portal; immigration and operators must use a second factor."""

    OFFICER = "officer"
    VILLAGE = "village"
    IMMIGRATION = "immigration"
    OPERATOR = "operator"

    @property
    def needs_second_factor(self) -> bool:
        return self in {Role.IMMIGRATION, Role.OPERATOR}


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one hashed; with no hash (no such officer), the same work, and False."""
    try:
        return _HASHER.verify(stored_hash or _NOBODY, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def one_time_password() -> str:
    """A password for the first login only: four groups of four readable characters."""
    return "-".join("".join(secrets.choice(_READABLE) for _ in range(4)) for _ in range(4))


def password_problem(password: str, *, username: str, current: str | None = None) -> str | None:
    """Why ``password`` may not be an officer's new password (a message key of ``web.TEXTS``), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return "password.too_short"
    if username.casefold() in password.casefold():
        return "password.has_username"
    if current is not None and password == current:
        return "password.same"
    return None


def new_totp_secret() -> str:
    return pyotp.random_base32()


def is_totp_secret(secret: str) -> bool:
    """Whether ``secret`` is one :func:`new_totp_secret` makes (32 base32 characters): a form's hidden field is
    the browser's to change."""
    return len(secret) == 32 and all(character in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for character in secret)  # noqa: PLR2004


def totp_uri(secret: str, *, username: str) -> str:
    """What an authenticator app takes (typed in, or from a QR code): ``otpauth://totp/TIMPORA:user?...``."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="TIMPORA")


def totp_step(secret: str, code: str, moment: datetime, *, after: int | None) -> int | None:
    """The time step ``code`` is good for at ``moment`` (the step before and after count too: a phone's clock may
    be a little off), if that step is later than ``after`` (a code is good once); else None."""
    code = code.strip().replace(" ", "")
    if not (len(code) == _CODE_DIGITS and code.isdigit()) or not is_totp_secret(secret):
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(moment.timestamp()) // totp.interval
    for step in (now_step - 1, now_step, now_step + 1):
        if (after is None or step > after) and secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None
