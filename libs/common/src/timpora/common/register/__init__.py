"""The register of the supervision team's member agencies: one file, read by every service that tells agencies
anything (alerts, sharing), holding per member its identity, kind, jurisdiction, time zone, channels, escalation
contacts and data-sharing agreement.

The file is kept in version control and is the one way to change a member or an agreement: edit it, check it
(``timpora-register check FILE``), deploy it. Every service re-reads it within a second of a change, without a
restart; a file with an error is refused whole, with the path and the fields at fault, and the register in force
stays in force (at start there is none, and the service does not start).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from timpora.common import regions
from timpora.common.config_files import ConfigFileError, load_model, refuse_repeats
from timpora.common.register import destinations
from timpora.common.register.agreements import Agreement, Agreements
from timpora.common.register.members import Agency, AgencyKind

log = logging.getLogger(__name__)

DEFAULT_REGISTER = Path(__file__).with_name("default_register.yaml")
#: How often a service looks at the file's modification time at most.
_CHECK_EVERY_S = 0.5


def register_file_setting() -> Path:
    """The ``register_file`` setting of every service that reads the register: one variable for all of them,
    ``TIMPORA_REGISTER_FILE``, so two services can never read two registers (the settings class needs
    ``populate_by_name`` for ``register_file=`` to work in code)."""
    return Field(
        default=DEFAULT_REGISTER,
        validation_alias="TIMPORA_REGISTER_FILE",
        description="The register of member agencies and their agreements (YAML)",
    )


class RegisterFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[Agency]

    @model_validator(mode="after")
    def _unique(self) -> RegisterFile:
        refuse_repeats((member.id for member in self.members), "more than one member with id")
        _offices_apart([member for member in self.members if member.controller])
        for member in self.members:
            webhook = member.channels.webhook
            if webhook is not None and webhook.secret is not None:
                raise ValueError(
                    f"members.{member.id}.channels.webhook: name the secret's environment variable (secret_env); "
                    "a secret is never written in the register"
                )
        allowed = destinations.allowed_networks()
        for member in self.members:
            webhook = member.channels.webhook
            if webhook is not None:
                try:
                    destinations.check_url(webhook.url, allowed)
                except destinations.RefusedDestinationError as error:
                    raise ValueError(f"members.{member.id}.channels.webhook.url: {error}") from None
        return self


def _offices_apart(controllers: list[Agency]) -> None:
    """Being a controller means receiving what it holds, unrecorded as a disclosure: only immigration offices are,
    each of its own area, and no place is two offices' (which one's staff may change a person there would be
    ambiguous, and one office would process another's data)."""
    for member in controllers:
        if member.kind is not AgencyKind.IMMIGRATION:
            raise ValueError(f"members.{member.id}: only an immigration office (kind immigration) is a controller")
    for index, member in enumerate(controllers):
        for other in controllers[index + 1 :]:
            # Where two areas overlap, the narrower code of each overlapping pair is the place both would control.
            shared = sorted(
                {
                    mine if regions.is_within(mine, theirs) else theirs
                    for mine in member.jurisdiction
                    for theirs in other.jurisdiction
                    if regions.is_within(mine, theirs) or regions.is_within(theirs, mine)
                }
            )
            if shared:
                raise ValueError(
                    f"members {member.id} and {other.id} both control {', '.join(shared)}: each place has one "
                    "controlling immigration office"
                )


@dataclass(frozen=True, slots=True)
class Register:
    """The members as one file declared them, and a digest of that file (which register is in force)."""

    members: Mapping[str, Agency]
    digest: str = ""
    #: The agreements found by where a person is: built once per register, asked about every event.
    indexed: Agreements = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "indexed", Agreements(self.agreements.values()))

    @property
    def agreements(self) -> dict[str, Agreement]:
        """Every member's agreement, in force or not, by agency id."""
        return {member.id: member.agreement for member in self.members.values() if member.agreement is not None}

    def office(self, agency_id: str) -> Agency | None:
        """The immigration office (a controller) of that id, if the register has it."""
        member = self.members.get(agency_id)
        return member if member is not None and member.controller else None

    def members_of(self, office: Agency) -> frozenset[str]:
        """The members whose whole jurisdiction lies in ``office``'s area, the office among them: what they received
        is the office's data's, and they are the office's to look after (what a member beyond the area, a national
        one or another office's, received or was sent is not)."""
        area = regions.as_set(tuple(office.jurisdiction))
        within = (
            member.id
            for member in self.members.values()
            if all(regions.is_within_any(code, area) for code in member.jurisdiction)
        )
        return frozenset({*within, office.id})

    @property
    def offices(self) -> list[Agency]:
        """The immigration offices, each the controller of its own area."""
        return [member for member in self.members.values() if member.controller]

    def in_force(self, moment: datetime) -> dict[str, Agreement]:
        """The agreements in force at ``moment`` (each by its own region's calendar), by agency id."""
        return {
            agency_id: agreement for agency_id, agreement in self.agreements.items() if agreement.in_force_at(moment)
        }


def load(path: Path) -> Register:
    """The register in ``path``; raises :class:`ConfigFileError` naming the file and the fields at fault."""
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ConfigFileError(f"{path}: {error.strerror}") from None
    members = load_model(path, RegisterFile).members
    return Register(members={member.id: member for member in members}, digest=hashlib.sha256(content).hexdigest()[:16])


@dataclass
class RegisterBook:
    """The register in force for one file: read again when the file changes; a broken file is refused and the
    register in force kept (``refused`` says why)."""

    path: Path
    register: Register | None = None
    refused: str | None = None
    _stamp: tuple[int, int, int] | None = None
    _checked: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> Register:
        now = time.monotonic()
        if self.register is not None and now - self._checked < _CHECK_EVERY_S:
            return self.register
        with self._lock:
            self._checked = now
            try:
                stat = self.path.stat()
                stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            except OSError as error:
                if self.register is None:
                    raise ConfigFileError(f"{self.path}: {error.strerror}") from None
                self.refused = f"{self.path}: {error.strerror}"  # mid-deploy: the register in force stays
                return self.register
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    loaded = load(self.path)
                    if self.register is not None:
                        _same_version_same_terms(self.register, loaded, self.path)
                    self.register = loaded
                    self.refused = None
                    log.info("register loaded", extra={"members": len(self.register.members)})
                except ConfigFileError as error:
                    if self.register is None:
                        raise
                    self.refused = str(error)
                    log.error(  # noqa: TRY400 - the reason is the message; a traceback adds nothing
                        "register file refused; the register in force stays", extra={"reason": self.refused}
                    )
            if self.register is None:  # pragma: no cover - a first read either loads or raises
                raise ConfigFileError(f"{self.path}: not loaded")
            return self.register


def _same_version_same_terms(previous: Register, loaded: Register, path: Path) -> None:
    """Refuses an agreement whose terms changed under the same version: what an agency was allowed to see is
    known by its version (in the disclosure log, the projections), so new terms need a new number."""
    for agency_id, agreement in loaded.agreements.items():
        before = previous.agreements.get(agency_id)
        if before is not None and before.version == agreement.version and before != agreement:
            raise ConfigFileError(
                f"{path}: members.{agency_id}.agreement: the terms changed but the version is still "
                f"{agreement.version}; raise it so the change is recorded and the projection rebuilt"
            )


_BOOKS: dict[Path, RegisterBook] = {}


def current(path: Path) -> Register:
    """The register in force from ``path``, in this process (one book per file)."""
    book = _BOOKS.get(path)
    if book is None:
        book = _BOOKS.setdefault(path, RegisterBook(path))
    return book.current()


def book(path: Path) -> RegisterBook:
    """The book of ``path`` (what ``current`` reads), to see why a file on disk is not in force."""
    current(path)
    return _BOOKS[path]
