"""A query string read into its model in one validation, and documented as FastAPI documents a query model.

Why not FastAPI's own ``Annotated[Model, Query()]``: for each request FastAPI looks at every field of the model in
turn, working out again from its type whether it takes one value or many, before it validates the model. On the
sharing list endpoint that was about an eighth of the service's time a request (measured under
``bench.sharing_list``: 1.91 -> 1.67 ms of CPU a request). Here the model is validated once, from the query's
values, as FastAPI does in the end: the same values accepted, the same refusals (a 422 naming ``query`` and the
field), the same last value kept when a name is repeated, the same document."""

# No ``from __future__ import annotations``: FastAPI must see the annotations itself.
import copy
import functools
from typing import Annotated, Any, Generic, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi._compat import field_annotation_is_sequence
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class QueryModel(Generic[M]):
    """A dependency: the request's query string as ``model`` (``Annotated[Model, Depends(QueryModel(Model))]``).
    Its parameters are added to the OpenAPI document by :func:`document_query_models`."""

    def __init__(self, model: type[M]) -> None:
        # What a dict of the query cannot hold as FastAPI would: a name given many times read as a list of values.
        if model.model_config.get("extra") == "allow":
            raise TypeError(f"{model.__name__}: a query model here forbids or ignores names it does not have")
        for name, field in model.model_fields.items():
            if field_annotation_is_sequence(field.annotation):
                raise TypeError(f"{model.__name__}.{name}: a query model here has fields of one value only")
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
            # A copy of what is kept for the next document: the document's own are changed after (document_edges).
            parameters, refused, components = copy.deepcopy(_documented(model))
            schemas.update(components)
            item = document["paths"].get(context.path_format, {})
            for method in context.methods or ():
                if method.lower() in item:  # not if the route is left out of the document
                    item[method.lower()] = _with_parameters(item[method.lower()], list(parameters), refused)
    return document


def _with_parameters(operation: dict[str, Any], parameters: list[Any], refused: dict[str, Any]) -> dict[str, Any]:
    """``operation`` with a query model's ``parameters`` and 422, in the places FastAPI gives them: the parameters
    after the path's and before the rest; and the keys in FastAPI's order for an operation with parameters, so that
    the document is FastAPI's own, key for key."""
    existing = operation.get("parameters", [])
    path = [parameter for parameter in existing if parameter["in"] == "path"]
    rest = [parameter for parameter in existing if parameter["in"] != "path"]
    given = operation | {"parameters": path + parameters + rest}
    # FastAPI's 422, which it gives an operation with parameters it reads itself.
    given["responses"] = operation.get("responses", {}) | {"422": operation.get("responses", {}).get("422", refused)}
    first = {key: given[key] for key in _OPERATION_KEYS if key in given}
    return first | {key: value for key, value in given.items() if key not in first}


#: The order of an operation's keys in FastAPI's document, where it has parameters.
_OPERATION_KEYS = (
    "tags", "summary", "description", "operationId", "deprecated", "security", "parameters", "requestBody", "responses",
)  # fmt: skip


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
