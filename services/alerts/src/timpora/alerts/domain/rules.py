"""Routing rules: which events, for which places and people, go to which agencies, on which channels.

A rule file is validated whole when it is read; a broken file is refused with the path and the
fields at fault, and the rules already in force stay in force (:class:`RuleBook`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from timpora.common.config_files import ConfigFileError, load_model, modified_ns, refuse_repeats
from timpora.common.events import REGISTRY_EVENT_SPECS
from timpora.common.events.payloads import PermitType
from timpora.common.register.members import Agency, AgencyKind, Channel
from timpora.common.types import AgencyId, Nationality

log = logging.getLogger(__name__)

DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")
EVENT_NAMES = frozenset(spec.name for spec in REGISTRY_EVENT_SPECS)
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
#: Events no rule may hold back for a daily digest.
_NEVER_DIGESTED = frozenset({"permit.expired"})


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Filters(BaseModel):
    """All given filters must hold; an empty list means no condition on that field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nationalities: list[Nationality] = Field(default_factory=list)
    permit_types: list[PermitType] = Field(default_factory=list)
    #: For ``permit.expiring``: the reminder thresholds (days) this rule is for.
    thresholds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list)
    #: Case-insensitive, whole occupation names.
    occupations: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(default_factory=list)


class Target(BaseModel):
    """One named agency, or the nearest agency of some kinds: village first, then district, regency, province."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agency: AgencyId | None = None
    nearest: list[AgencyKind] | None = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        if (self.agency is None) == (self.nearest is None):
            raise ValueError("a target names exactly one of 'agency' or 'nearest'")
        return self


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RuleId
    description: str = Field(default="", max_length=500)
    event_types: list[str] = Field(min_length=1)
    filters: Filters = Filters()
    to: list[Target] = Field(min_length=1)
    channels: list[Channel] = Field(default_factory=lambda: list(Channel), min_length=1)
    severity: Severity = Severity.INFO
    #: Gather into the agency's daily digest instead of sending at once.
    digest: bool = False

    @model_validator(mode="after")
    def _known_types(self) -> Rule:
        unknown = sorted(set(self.event_types) - EVENT_NAMES)
        if unknown:
            raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(sorted(EVENT_NAMES))}")
        if self.filters.thresholds and self.event_types != ["permit.expiring"]:
            raise ValueError("a thresholds filter only applies to a rule for permit.expiring alone")
        if self.digest and (self.severity is Severity.CRITICAL or _NEVER_DIGESTED & set(self.event_types)):
            # Each overstay day costs the person a fee and brings deportation closer (UU 6/2011 art. 78).
            raise ValueError("digest: an overstay, or anything critical, goes out at once, never in a digest")
        return self


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule]

    @model_validator(mode="after")
    def _unique(self) -> RuleFile:
        refuse_repeats((rule.id for rule in self.rules), "more than one rule with id")
        return self


def load(path: Path, known_agencies: Mapping[str, Agency]) -> tuple[Rule, ...]:
    """The rules in ``path``, each named agency checked against the register: it must exist, and its agreement
    must cover every event type of the rule (the controller needs none). An agency a rule picks as the nearest of
    its kind is checked when the rule is applied: one whose agreement does not admit the news is not chosen."""
    rules = tuple(load_model(path, RuleFile).rules)
    for rule in rules:
        named = [target.agency for target in rule.to if target.agency]
        missing = sorted({agency for agency in named if agency not in known_agencies})
        if missing:
            raise ConfigFileError(f"{path}: rule {rule.id}: unknown agency {', '.join(missing)}")
        for agency_id in named:
            agency = known_agencies[agency_id]
            if agency.controller:
                continue
            covered = set(agency.agreement.event_types) if agency.agreement is not None else set()
            uncovered = sorted(set(rule.event_types) - covered)
            if uncovered:
                raise ConfigFileError(
                    f"{path}: rule {rule.id}: the agreement of {agency_id} does not cover {', '.join(uncovered)}"
                    if agency.agreement is not None
                    else f"{path}: rule {rule.id}: {agency_id} has no data-sharing agreement"
                )
    return rules


class RuleBook:
    """The rules in force, re-read when their file changes; a broken file leaves the old rules in force.

    The first read happens at the service's start, where a broken file stops the start instead.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rules: tuple[Rule, ...] = ()
        self._loaded_ns: int | None = None
        #: Why the file on disk is not in force, if it is not.
        self.refused: str | None = None

    def refresh(self, known_agencies: Mapping[str, Agency]) -> tuple[Rule, ...]:
        """The rules, after reading the file again if it changed since it was last read."""
        try:
            stamp = modified_ns(self.path)
        except OSError as error:
            if self._loaded_ns is None:
                raise ConfigFileError(f"{self.path}: {error.strerror}") from None
            # Mid-deploy (a file being replaced): the rules in force keep routing.
            self.refused = f"{self.path}: {error.strerror}"
            return self.rules
        if stamp != self._loaded_ns:
            first = self._loaded_ns is None
            self._loaded_ns = stamp
            try:
                self.reload(known_agencies)
            except ConfigFileError:
                if first:
                    raise  # at start there are no rules to keep: the service does not start
        return self.rules

    def reload(self, known_agencies: Mapping[str, Agency]) -> None:
        """Reads the file; raises ``ConfigFileError`` (and keeps the rules in force) when it is broken."""
        try:
            self.rules = load(self.path, known_agencies)
        except ConfigFileError as error:
            self.refused = str(error)
            log.error(  # noqa: TRY400 - the reason is the message; a traceback adds nothing
                "rule file refused; the previous rules stay in force", extra={"reason": self.refused}
            )
            raise
        self.refused = None
        log.info("rules loaded", extra={"count": len(self.rules)})
