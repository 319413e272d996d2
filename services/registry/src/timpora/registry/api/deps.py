"""What every route needs: the runtime, the authenticated operator, and the write executor that
gives each change its transaction, its ``If-Match`` check and its ``Idempotency-Key`` replay."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from timpora.common import register
from timpora.common.access import ApiKey
from timpora.common.disclosures import CONTROLLER_PURPOSE, Basis, Channel, Disclosure
from timpora.common.events.payloads import ForeignerSnapshot
from timpora.common.http import disclosing
from timpora.common.http.auth import BearerGate
from timpora.common.http.deps import PORTAL_HOLDER, Runtime, acting_for
from timpora.common.register.fields import FIELD_NAMES
from timpora.common.service import ServiceRuntime
from timpora.common.settings import narrow
from timpora.registry.access import PORTAL_KEYS
from timpora.registry.api.errors import error_response
from timpora.registry.domain.areas import Area
from timpora.registry.domain.changes import ChangeContext
from timpora.registry.domain.errors import ConflictError, InvalidChangeError, RegistryError
from timpora.registry.models import idempotency_keys
from timpora.registry.operators import Operator, authenticate
from timpora.registry.settings import RegistrySettings

UNIQUE_VIOLATION = "23505"
RETRYABLE = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
_ETAG = re.compile(r'^(?:W/)?"?(\d+)"?$')
#: What If-Match may hold, in the OpenAPI document as in the check: a version's ETag, or ``*``.
IF_MATCH_PATTERN = r'^(\*|(W/)?"?[0-9]+"?)$'


#: What the portal's pages do in the registry (immigration's desk), the only operations its key reaches: finding a
#: person, reading their record, and the daily changes of the office (arrival, residence, permits, departure, the
#: overstay's fee, deportation and ban). Correcting a record (PATCH, passports), hotels' reports and the exit and
#: re-entry permits stay with the registry's own operators.
PORTAL_OPERATIONS = frozenset(
    {
        ("POST", "/v1/arrivals"),
        ("POST", "/v1/foreigners/{foreigner_id}/residence"),
        ("GET", "/v1/worklist"),
        ("GET", "/v1/foreigners"),
        ("GET", "/v1/foreigners/{foreigner_id}"),
        ("POST", "/v1/foreigners/{foreigner_id}/permits"),
        ("POST", "/v1/foreigners/{foreigner_id}/permits/{permit_id}/extension"),
        ("POST", "/v1/foreigners/{foreigner_id}/permits/{permit_id}/conversion"),
        ("POST", "/v1/foreigners/{foreigner_id}/permits/{permit_id}/revocation"),
        ("POST", "/v1/foreigners/{foreigner_id}/permits/{permit_id}/overstay-fee"),
        ("POST", "/v1/foreigners/{foreigner_id}/departure"),
        ("POST", "/v1/foreigners/{foreigner_id}/enforcement"),
        ("POST", "/v1/foreigners/{foreigner_id}/deportation"),
        ("POST", "/v1/foreigners/{foreigner_id}/ban"),
    }
)


async def _staff_or_portal(session: AsyncSession, token: str) -> Operator | ApiKey | None:
    if token.startswith(PORTAL_KEYS.prefix):
        found = await PORTAL_KEYS.authenticate(session, token)
        return None if found is None else ApiKey(key_id=found.key_id, holder=PORTAL_HOLDER + found.holder)
    return await authenticate(session, token)


_operators = BearerGate(
    _staff_or_portal,
    scheme="OperatorToken",
    description="An operator token (timpora-registry operators add NAME), or the portal's key",
    refusal="a valid operator token is required",
)
_authenticated = _operators.dependency()


async def get_operator(request: Request, principal: Annotated[Operator | ApiKey, Depends(_authenticated)]) -> Operator:
    """Who makes the change: the operator of the token; or, through the portal, the officer and the office its
    request names — always one office (the portal never acts for every office's area), which get_area then checks
    is a controller in the register in force."""
    if isinstance(principal, Operator):
        return principal
    route = request.scope.get("route")
    if (request.method, getattr(route, "path", None)) not in PORTAL_OPERATIONS:
        # The portal's key reaches what its pages do, and nothing else: a portal broken into is not the registry.
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the portal's key does not reach this operation")
    acting = acting_for(request, principal)
    # The portal's officers are its own accounts, not registry operators: each gets an id of its own under the key
    # (their Idempotency-Keys are theirs alone), the same on every request.
    officer_id = uuid.uuid5(principal.key_id, f"{acting.agency_id}/{acting.officer}")
    return Operator(
        id=officer_id,
        name=f"{acting.officer} (portal)",
        office=acting.agency_id,
        portal_officer=acting.officer,
        key_id=principal.key_id,
    )


CurrentOperator = Annotated[Operator, Depends(get_operator)]


NO_OFFICE = (
    "the register has several immigration offices and you belong to none: an operator adds you again with "
    "--office (timpora-registry operators add NAME --office ID)"
)


# async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
async def get_area(runtime: Runtime, operator: CurrentOperator) -> Area | None:
    """The area the operator acts in: their office's, as the register in force says (None: every office's).
    An office the register no longer has as a controller gives its staff nothing at all."""
    settings = narrow(runtime.settings, RegistrySettings)
    book = register.current(settings.register_file)
    if operator.office is None:
        # Every office's area is an operator's only where there is one office (or theirs would be everyone's).
        if len(book.offices) > 1:
            raise HTTPException(status.HTTP_403_FORBIDDEN, NO_OFFICE)
        return None
    office = book.office(operator.office)
    if office is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "your immigration office is not a controller in the register in force"
        )
    return Area.of(office)


#: The area of the operator making the request (authenticated first).
OperatorArea = Annotated[Area | None, Depends(get_area)]


#: What a read of the registry discloses: everything it holds about the person (the controller's own data).
READ_FIELDS = tuple(name for name in FIELD_NAMES if name != "birth_year")


@dataclass(frozen=True, slots=True)
class ReadLog:
    """Records a read of people's records in the disclosure log, before it is answered: the registry's staff and the
    portal's immigration officers reading their office's own data (processing by the controller, not a disclosure
    to another agency, recorded all the same, so that a person's request to know who saw their data is answered
    whole). If the log cannot be written, nothing is answered (503)."""

    runtime: ServiceRuntime
    operator: Operator
    request: Request

    async def record(self, record_ids: Sequence[UUID]) -> None:
        book = register.current(narrow(self.runtime.settings, RegistrySettings).register_file)
        # An operator of every office's area acts where the register has one office: that office is the controller.
        office = self.operator.office or next((office.id for office in book.offices), "registry")
        await disclosing.record(
            self.runtime,
            [
                Disclosure(
                    agency_id=office,
                    channel=Channel.REGISTRY,
                    reference=f"{self.request.method} {self.request.url.path}",
                    officer=self.operator.officer,
                    # Which key read: a registry operator and a portal officer of the same name are told apart.
                    key_id=self.operator.key_id or self.operator.id,
                    query=dict(self.request.query_params),
                    record_ids=list(record_ids),
                    fields=READ_FIELDS,
                    basis=Basis.CONTROLLER,
                    purpose=CONTROLLER_PURPOSE,
                    agreement_version=0,
                    disclosed_at=self.runtime.clock.now(),
                )
            ],
            refusal="the read cannot be recorded, so nothing is shown",
        )


# async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
async def get_read_log(runtime: Runtime, operator: CurrentOperator, request: Request) -> ReadLog:
    return ReadLog(runtime, operator, request)


Reads = Annotated[ReadLog, Depends(get_read_log)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Send the same key when retrying: the change is made once and the first answer replayed. "
        "A key once used for another request is refused (422).",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=IF_MATCH_PATTERN,
        description='The foreigner\'s version as its ETag ("3"), or *: refused with 412 if stale.',
    ),
]


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.match(value.strip())
    if match is None:
        raise InvalidChangeError('If-Match must be a version ETag such as "3"', field=("header", "If-Match"))
    return int(match.group(1))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a change answers: a status, a body, and the foreigner's new version for the ETag."""

    status_code: int
    body: BaseModel
    version: int


Change = Callable[[AsyncSession, ChangeContext], Awaitable[Outcome]]
SnapshotChange = Callable[[AsyncSession, ChangeContext], Awaitable[ForeignerSnapshot]]


@dataclass(frozen=True, slots=True)
class WriteExecutor:
    runtime: ServiceRuntime
    operator: Operator
    area: Area | None
    request: Request
    idempotency_key: str | None
    if_match: str | None

    async def __call__(self, change: Change) -> JSONResponse:
        try:
            settings = narrow(self.runtime.settings, RegistrySettings)
            context = ChangeContext(
                actor=self.operator.name,
                clock=self.runtime.clock,
                source=settings.event_source,
                topic=settings.kafka.catalog.registry_events.name,
                expected_version=parse_if_match(self.if_match),
                overstay=settings.overstay,
                area=self.area,
            )
            fingerprint = await self._fingerprint()
            return await self._run(change, context, fingerprint)
        except RegistryError as error:
            return error_response(error)

    async def snapshot(self, change: SnapshotChange, *, status_code: int = status.HTTP_200_OK) -> JSONResponse:
        """For the many changes that answer with the foreigner's new snapshot."""

        async def outcome(session: AsyncSession, context: ChangeContext) -> Outcome:
            snapshot = await change(session, context)
            return Outcome(status_code, snapshot, snapshot.version)

        return await self(outcome)

    async def _fingerprint(self) -> str:
        body = await self.request.body()
        return hashlib.sha256(
            self.request.method.encode() + b" " + self.request.url.path.encode() + b"\n" + body
        ).hexdigest()

    async def _run(self, change: Change, context: ChangeContext, fingerprint: str) -> JSONResponse:
        try:
            async with self.runtime.sessions() as session, session.begin():
                # The key is claimed before the change: a concurrent retry waits here until this
                # transaction ends, then replays its answer (or, if it failed, makes the change itself).
                if self.idempotency_key is not None and not await self._claim(session, fingerprint):
                    return await self._replay(session, fingerprint)
                outcome = await change(session, context)
                body = outcome.body.model_dump(mode="json")
                if self.idempotency_key is not None:
                    await self._remember(session, outcome.status_code, body, outcome.version)
        except IntegrityError as error:
            if getattr(error.orig, "sqlstate", None) != UNIQUE_VIOLATION:
                raise  # a broken constraint that validation should have caught: a bug, not the caller's fault
            # The same new passport or permit number registered by a concurrent request.
            raise ConflictError("a concurrent change collided with this one; reload and try again") from None
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) not in RETRYABLE:
                raise
            raise ConflictError("the change met a concurrent one; send it again") from None
        return JSONResponse(body, status_code=outcome.status_code, headers={"ETag": etag(outcome.version)})

    def _key_row(self) -> ColumnElement[bool]:
        return and_(idempotency_keys.c.operator_id == self.operator.id, idempotency_keys.c.key == self.idempotency_key)

    async def _claim(self, session: AsyncSession, fingerprint: str) -> bool:
        statement = (
            insert(idempotency_keys)
            .values(
                operator_id=self.operator.id,
                key=self.idempotency_key,
                request_sha256=fingerprint,
                status_code=0,
                response={},
            )
            .on_conflict_do_nothing()
            .returning(idempotency_keys.c.key)
        )
        return (await session.execute(statement)).first() is not None

    async def _replay(self, session: AsyncSession, fingerprint: str) -> JSONResponse:
        stored = (await session.execute(select(idempotency_keys).where(self._key_row()))).one()
        if stored.request_sha256 != fingerprint:
            raise InvalidChangeError(
                "this Idempotency-Key was used for a different request", field=("header", "Idempotency-Key")
            )
        response: dict[str, Any] = stored.response
        return JSONResponse(
            response["body"],
            status_code=stored.status_code,
            headers={"ETag": etag(response["version"]), "Idempotent-Replayed": "true"},
        )

    async def _remember(self, session: AsyncSession, status_code: int, body: dict[str, Any], version: int) -> None:
        await session.execute(
            update(idempotency_keys)
            .where(self._key_row())
            .values(status_code=status_code, response={"body": body, "version": version})
        )


# async: FastAPI runs a plain ``def`` dependency in a worker thread, on every request.
async def get_writer(  # noqa: PLR0917 - FastAPI fills each by its own dependency
    runtime: Runtime,
    operator: CurrentOperator,
    area: OperatorArea,
    request: Request,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> WriteExecutor:
    return WriteExecutor(runtime, operator, area, request, idempotency_key, if_match)


Writer = Annotated[WriteExecutor, Depends(get_writer)]
