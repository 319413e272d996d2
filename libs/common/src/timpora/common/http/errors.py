"""The bodies of the services' refusals, for their OpenAPI documents, and what every document adds to its
operations: a service answers exactly these shapes, and its document says which operation answers which.

Every operation that needs a key may answer 401 (no valid key) and 429 (too many requests: without a valid key
from one address, or with one key, see ``HttpSettings`` and the sharing service's limit); every operation that
takes a body may answer 413 (``HttpSettings.max_body_bytes``) and 408 (``HttpSettings.body_timeout_s``). They are
added to each operation's document here, in one place, from what the operation is (``security``,
``requestBody``), so that no route can forget them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from timpora.common.http.query import document_query_models


class ErrorMessage(BaseModel):
    """A refusal that concerns the request as a whole (its key, its size, its rate, the resource)."""

    detail: str


class FieldError(BaseModel):
    #: Where: ``body``, ``query``, ``path`` or ``header``, then the field's name (and the nested fields' names).
    loc: list[str | int]
    #: Why, without repeating the value sent.
    msg: str
    type: str


class FieldErrors(BaseModel):
    """A refusal naming each field at fault (FastAPI's shape for a 422)."""

    detail: list[FieldError]


def described(description: str, model: type[BaseModel] = ErrorMessage) -> dict[str, Any]:
    """One entry of a route's ``responses``: what the answer means, and its body's model."""
    return {"description": description, "model": model}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
#: What every operation of the kind may answer, beside what its route declares.
AUTHENTICATED: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "401": ("No valid key (sent without one, or an unknown or revoked one)", {}),
    "429": (
        "Too many requests: this address sent too many without a valid key, or this key too many; see Retry-After",
        _RETRY_AFTER,
    ),
}
WITH_BODY: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "413": ("The request body is larger than the service accepts (1 MiB unless configured otherwise)", {}),
    "408": ("The request body did not arrive in time (30 s unless configured otherwise)", {}),
}


def document_edges(app: FastAPI) -> None:
    """Adds to ``app``'s OpenAPI document, once, the answers every operation of a kind may give (see above)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_edges(document_query_models(app, generate()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _with_edges(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorMessage, FieldError, FieldErrors):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas.setdefault(model.__name__, schema)
    message = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _never_null(parameter.get("schema", {}))
            answers = operation.setdefault("responses", {})
            kinds = [AUTHENTICATED] if operation.get("security") else []
            if "requestBody" in operation:
                kinds.append(WITH_BODY)
            for kind in kinds:
                for status, (description, headers) in kind.items():
                    answers[status] = {"description": description, "content": message} | (
                        {"headers": dict(headers)} if headers else {}
                    )
    return document


def _never_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without the ``null`` pydantic gives an optional one: a path, query or header
    parameter is left out to mean nothing, and a client that sends the text ``null`` sends a value."""
    choices = schema.get("anyOf")
    if not isinstance(choices, list) or {"type": "null"} not in choices:
        return schema
    kept = [choice for choice in choices if choice != {"type": "null"}]
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    if rest.get("default", "") is None:
        del rest["default"]
    return rest | kept[0] if len(kept) == 1 else rest | {"anyOf": kept}


def allowed_methods(app: FastAPI, path: str) -> list[str] | None:
    """The methods the document lists for ``path`` (None if it lists none): a 405's ``Allow``. Starlette names only
    the methods of the first route it tried, where several routes share a path (``GET`` and ``POST`` of a list)."""
    for pattern, methods in _templates(app).items():
        if pattern.fullmatch(path):
            return methods
    return None


def _templates(app: FastAPI) -> dict[re.Pattern[str], list[str]]:
    templates: dict[re.Pattern[str], list[str]] | None = getattr(app.state, "method_templates", None)
    if templates is None:
        templates = {
            re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))): sorted(method.upper() for method in item)
            for path, item in app.openapi().get("paths", {}).items()
        }
        app.state.method_templates = templates
    return templates
