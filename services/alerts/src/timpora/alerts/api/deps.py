"""What the alerts routes need: the key's holder (an agency or an operator) and the alerting state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from timpora.alerts.access import AGENCY_KEYS, OPERATOR_KEYS, PORTAL_KEYS
from timpora.alerts.alerting import Alerting
from timpora.alerts.settings import AlertsSettings
from timpora.common.access import ApiKey
from timpora.common.http.deps import Acting, Runtime, acting_for, key_holder, member_key_holder
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
