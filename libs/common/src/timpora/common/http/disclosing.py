"""The disclosure log as the services' HTTP answers use it: one log per process, and each answer that shows someone
written to it before it is given — if the log cannot be written, nothing is shown (503), on every service alike."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException, status
from sqlalchemy.exc import SQLAlchemyError

from timpora.common.disclosures import Disclosure, DisclosureLog
from timpora.common.service import ServiceRuntime

_STATE = "disclosure_log"
REFUSED = "the disclosure log cannot be written, so nothing is disclosed"


def install(runtime: ServiceRuntime) -> DisclosureLog:
    """The process's disclosure log (its group commits), closed with the process."""
    log = DisclosureLog(runtime.engine)
    runtime.state[_STATE] = log
    runtime.shutdown.append(log.close)
    return log


async def record(runtime: ServiceRuntime, rows: Sequence[Disclosure], *, refusal: str = REFUSED) -> None:
    """``rows`` durable in the log, or 503 with ``refusal`` (and the answer that would have shown them not given)."""
    log = runtime.state[_STATE]
    if not isinstance(log, DisclosureLog):
        raise TypeError(f"the {runtime.name} runtime has no disclosure log installed")
    try:
        await log.record(rows)
    except (SQLAlchemyError, OSError, RuntimeError):  # the database, the pool, the network, a closed log
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, refusal) from None
