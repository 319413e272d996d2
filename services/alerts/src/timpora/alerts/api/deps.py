"""What the alerts routes need: the key's holder (an agency or an operator) and the alerting state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from timpora.alerts.access import AGENCY_KEYS, OPERATOR_KEYS, PORTAL_KEYS
from timpora.alerts.alerting import Alerting
from timpora.alerts.settings import AlertsSettings
from timpora.common.access import ApiKey
from timpora.common.http.deps import Runtime, acting_for, key_holder, member_key_holder
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


@dataclass(frozen=True, slots=True)
class AgencyCaller:
    """Who asks: an agency with its own key, or the portal for one of the agency's officers."""

    key: ApiKey
    agency_id: str
    #: The portal's officer (each read and each action is theirs); None for an agency's own key.
    officer: str | None


async def get_agency_caller(request: Request, key: AgencyKey) -> AgencyCaller:
    agency_id, officer = acting_for(request, key)
    return AgencyCaller(key=key, agency_id=agency_id, officer=officer)


CurrentAgency = Annotated[AgencyCaller, Depends(get_agency_caller)]
OperatorKey = Annotated[
    ApiKey,
    Depends(
        key_holder(
            OPERATOR_KEYS, scheme="OperatorKey", description="an operator key (timpora-alerts operators issue NAME)"
        )
    ),
]


# async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
async def get_alerting(runtime: Runtime) -> Alerting:
    alerting = runtime.state["alerting"]
    if not isinstance(alerting, Alerting):
        raise TypeError("the alerts runtime was not set up")
    return alerting


AlertingDep = Annotated[Alerting, Depends(get_alerting)]
