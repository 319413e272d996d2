"""On what terms an agency may be told about people now, and the disclosure record of telling it: the one gate
every alerts channel passes (webhook, e-mail, Kafka, the alerts API), whatever the notice was written under."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from timpora.alerts.domain import notices
from timpora.common.disclosures import CONTROLLER_PURPOSE, Basis, Channel, Disclosure
from timpora.common.register.agreements import Agreement
from timpora.common.register.members import Agency


@dataclass(frozen=True, slots=True)
class Terms:
    agency_id: str
    basis: Basis
    purpose: str
    agreement_version: int
    allowed: frozenset[str]
    #: The agreement in force; None for the controller, which may hear of anything.
    agreement: Agreement | None

    def payload(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        """A message as the agency may be given it now; None: not at all."""
        return notices.payload_within(payload, self.allowed, self.agreement)

    def notice(self, notice: Mapping[str, Any]) -> dict[str, Any] | None:
        return notices.within(notice, self.allowed, self.agreement)

    def disclosures(
        self,
        channel: Channel,
        reference: str,
        given: Sequence[Mapping[str, Any]],
        now: datetime,
        query: Mapping[str, Any] | None = None,
        *,
        name_notices: bool = False,
    ) -> list[Disclosure]:
        """The record of giving these notices (as given: see :meth:`payload`), none if they carry nobody: one entry
        per set of fields given, naming the people given exactly those — so a person's entry never claims the
        fields of someone else's notice in the same message. ``name_notices``: each entry names its notices by
        message id too (a message of several)."""
        by_fields: dict[frozenset[str], list[Mapping[str, Any]]] = {}
        for notice in given:
            if notice.get("person"):
                by_fields.setdefault(frozenset(notices.disclosed_fields(notice)), []).append(notice)
        return [
            Disclosure(
                agency_id=self.agency_id,
                channel=channel,
                reference=reference,
                record_ids=list(dict.fromkeys(notice["person"]["foreigner_id"] for notice in same)),
                fields=sorted(fields),
                basis=self.basis,
                purpose=self.purpose,
                agreement_version=self.agreement_version,
                disclosed_at=now,
                query={
                    "events": sorted({notice["event"]["type"] for notice in same}),
                    **(query or {}),
                    **({"notices": [notice["message_id"] for notice in same]} if name_notices else {}),
                },
            )
            for fields, same in sorted(by_fields.items(), key=lambda item: sorted(item[0]))
        ]


def terms_for(agency: Agency, now: datetime) -> Terms | None:
    """The controller's processing, or the agency's agreement in force at ``now``; None: it may be told nothing."""
    if agency.controller:
        return Terms(agency.id, Basis.CONTROLLER, CONTROLLER_PURPOSE, 0, agency.allowed, None)
    agreement = agency.agreement_at(now)
    if agreement is None:
        return None
    return Terms(agency.id, Basis.AGREEMENT, agreement.purpose, agreement.version, agreement.allowed, agreement)
