"""Errors as HTTP answers in one shape, FastAPI's own: ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from timpora.registry.domain.errors import RegistryError


def error_response(error: RegistryError) -> JSONResponse:
    detail = [{"loc": list(error.field), "msg": error.message, "type": error.error_type}]
    return JSONResponse({"detail": detail}, status_code=error.status_code)


async def _registry_error(_: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, RegistryError):
        raise error
    return error_response(error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RegistryError, _registry_error)
