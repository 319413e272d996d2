"""A query string read into its model in one validation, and documented as FastAPI documents a query model.

Why not FastAPI's own ``Annotated[Model, Query()]``: for each request FastAPI looks at every field of the model in
turn, working out again from its type whether it takes one value or many, before it validates the model. On the
sharing list endpoint that was about an eighth of the service's time a request (measured under
``bench.sharing_list``: 1.91 -> 1.67 ms of CPU a request). Here the model is validated once, from the query's
values, as FastAPI does in the end: the same values accepted, the same refusals (a 422 naming ``query`` and the
field), the same last value kept when a name is repeated, the same document."""

# No ``from __future__ import annotations``: FastAPI must see the annotations itself.
import functools
from typing import Annotated, Any, Generic, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class QueryModel(Generic[M]):
    """A dependency: the request's query string as ``model`` (``Annotated[Model, Depends(QueryModel(Model))]``).
    Its parameters are added to the OpenAPI document by :func:`document_query_models`."""

    def __init__(self, model: type[M]) -> None:
        self.model = model

    async def __call__(self, request: Request) -> M:
        try:
            # A repeated name keeps its last value, as FastAPI keeps it for a field of one value.
            return self.model.model_validate(dict(request.query_params))
        except ValidationError as error:
            problems = [{**problem, "loc": ("query", *problem["loc"])} for problem in error.errors(include_url=False)]
            raise RequestValidationError(problems) from None


def document_query_models(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the parameters of each route's :class:`QueryModel`, where FastAPI puts a query model's:
    after the path's, before the headers'."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    # Each route where the app serves it (its routers' prefixes included), as FastAPI walks them for the document.
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        models: list[type[BaseModel]] = [c.model for c in _calls(route.dependant) if isinstance(c, QueryModel)]
        for model in models:
            parameters, refused, components = _documented(model)
            schemas.update(components)
            for method in context.methods or ():
                operation = document["paths"][context.path_format][method.lower()]
                existing = operation.get("parameters", [])
                path = [parameter for parameter in existing if parameter["in"] == "path"]
                rest = [parameter for parameter in existing if parameter["in"] != "path"]
                operation["parameters"] = path + list(parameters) + rest
                # FastAPI's 422, which it gives an operation with parameters it reads itself.
                operation.setdefault("responses", {}).setdefault("422", refused)
    return document


def _calls(dependant: Any) -> list[Any]:  # noqa: ANN401 - FastAPI's Dependant
    found = [dependant.call]
    for inner in dependant.dependencies:
        found += _calls(inner)
    return found


@functools.cache
def _documented(model: type[BaseModel]) -> tuple[tuple[dict[str, Any], ...], dict[str, Any], dict[str, Any]]:
    """The parameters FastAPI documents for ``model`` as a query model, its 422, and the component schemas they
    refer to: taken from the document of an app that declares it so, so that they are exactly FastAPI's."""
    probe = FastAPI()

    async def read(query: Annotated[model, Query()]) -> None:  # type: ignore[valid-type]
        del query

    probe.get("/")(read)
    document = probe.openapi()
    operation = document["paths"]["/"]["get"]
    parameters, refused = tuple(operation.get("parameters", [])), operation["responses"]["422"]
    schemas = document.get("components", {}).get("schemas", {})
    # Every component schema the probe's document has is the model's or the 422's (which refer to each other).
    return parameters, refused, schemas
