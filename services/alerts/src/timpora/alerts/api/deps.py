"""What the alerts routes need: the key's holder (an agency or an operator) and the alerting state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from timpora.alerts.access import AGENCY_KEYS, OPERATOR_KEYS, PORTAL_KEYS
from timpora.alerts.alerting import Alerting
from timpora.alerts.settings import AlertsSettings
from timpora.common import audit, register
from timpora.common.access import ApiKey
from timpora.common.http.deps import Acting, Runtime, acting_for, is_portal, key_holder, member_key_holder
from timpora.common.settings import narrow

AgencyKey = Annotated[
    ApiKey,
    Depends(
        member_key_holder(
            AGENCY_KEYS,
            scheme="AgencyKey",
            description="an agency key (timpora-alerts keys issue AGENCY)",
            register_file=lambda settings: narrow(settings, AlertsSettings).register_file,
            portal=PORTAL_KEYS,
        )
    ),
]


async def get_acting(request: Request, key: AgencyKey) -> Acting:
    return acting_for(request, key)


#: Who an agency route acts for: the key's agency, or the agency and officer the portal names.
CurrentAgency = Annotated[Acting, Depends(get_acting)]
#: What an immigration office's operator does here through the portal's pages: the directory with each channel's
#: health, the deliveries with their attempts, the dead letters, the audit log, and replays. The rest of the operators'
#: API (webhooks re-enabled, rules reloaded, an event's routing, the register in force) stays with operator keys.
PORTAL_OPERATIONS = frozenset(
    {
        ("GET", "/v1/admin/agencies"),
        ("GET", "/v1/admin/deliveries"),
        ("GET", "/v1/admin/dead-letters"),
        ("GET", "/v1/admin/audit"),
        ("POST", "/v1/admin/agencies/{agency_id}/replay"),
    }
)
_operator_or_portal = key_holder(
    OPERATOR_KEYS,
    scheme="OperatorKey",
    description="an operator key (timpora-alerts operators issue NAME), or the portal's key",
    portal=PORTAL_KEYS,
)


@dataclass(frozen=True, slots=True)
class Operating:
    """Who an operator route acts for, and what over."""

    key: ApiKey
    #: The agencies they look after: None for an operator key (every one); through the portal, the office's own and
    #: those of its area (another office's are not this office's to watch, replay or read about).
    reach: frozenset[str] | None = None
    #: The portal's officer, when it is one (audited as an officer, not as a key's holder), and their office.
    officer: str | None = None
    office: str | None = None

    @property
    def actor(self) -> audit.Actor:
        if self.officer is not None:
            return audit.Actor(audit.ActorKind.OFFICER, self.key.holder, key_id=self.key.key_id)
        return audit.Actor.operator_key(self.key.holder, self.key.key_id)

    def reaches(self, agency_id: str) -> bool:
        return self.reach is None or agency_id in self.reach


async def get_operator(
    runtime: Runtime, request: Request, key: Annotated[ApiKey, Depends(_operator_or_portal)]
) -> Operating:
    """The operator: an operator key's holder; or, through the portal, the officer its request names, of the
    immigration office it names (a controller in the register in force), over the agencies of that office's area —
    what they do is audited under their name, with the portal's key id."""
    if not is_portal(key):
        return Operating(key)
    route = request.scope.get("route")
    if (request.method, getattr(route, "path", None)) not in PORTAL_OPERATIONS:
        # The portal's key reaches what its pages do, and nothing else: a portal broken into is not an operator.
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the portal's key does not reach this operation")
    acting = acting_for(request, key)
    book = register.current(narrow(runtime.settings, AlertsSettings).register_file)
    office = book.office(acting.agency_id)
    if office is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an immigration office's operator may act here")
    holder = f"{acting.officer} (portal, {acting.agency_id})"
    # Every agency is the one office's where the register has one office (as in the registry); with several, each
    # office's operator looks after its own area's.
    reach = None if len(book.offices) == 1 else book.members_of(office)
    return Operating(ApiKey(key_id=key.key_id, holder=holder), reach, acting.officer, office.id)


#: Who an operator route acts for, and over which agencies (see :func:`get_operator`).
OperatorKey = Annotated[Operating, Depends(get_operator)]


# async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
async def get_alerting(runtime: Runtime) -> Alerting:
    alerting = runtime.state["alerting"]
    if not isinstance(alerting, Alerting):
        raise TypeError("the alerts runtime was not set up")
    return alerting


AlertingDep = Annotated[Alerting, Depends(get_alerting)]
