"""Errors a change can end in. Each names the request field at fault, so the API can answer with a
field-level message in the same shape as FastAPI's own validation errors."""

from __future__ import annotations


class RegistryError(Exception):
    status_code = 400
    error_type = "invalid"

    def __init__(self, message: str, *, field: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidChangeError(RegistryError):
    """The request is well-formed but breaks a rule of the registry (departure before arrival, ...)."""

    status_code = 422
    error_type = "value_error.registry"


class NotFoundError(RegistryError):
    status_code = 404
    error_type = "not_found"


class ConflictError(RegistryError):
    """The change collides with the record as it is (a permit number in use, a person already present)."""

    status_code = 409
    error_type = "conflict"


class StaleVersionError(RegistryError):
    """``If-Match`` named a version of the foreigner that is no longer the current one."""

    status_code = 412
    error_type = "precondition_failed"
