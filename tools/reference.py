# ruff: noqa: INP001 - a script run as ``python -m tools.reference``, like bench/'s
"""The reference in docs/reference/, generated from the code so that it cannot drift from it.

* ``api-<service>.md``: each service's OpenAPI document, as ``timpora.<service>.main.SERVICE.create_app(settings)``
  builds it with the default settings (building an app connects to nothing: that is its lifespan's work);
* ``events.md``: the event contract (``timpora.common.events``): every event type, the JSON Schema of its data (the
  same as ``make schemas`` writes to libs/common/schemas/) and the topics (``timpora.common.topics``).

    python -m tools.reference            # (re)write docs/reference/ (make docs)
    python -m tools.reference --check    # exit 1, naming each file that differs from what the code gives now

docs/reference/ holds only what this writes: a file there that it does not write is removed (and --check names it).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "docs" / "reference"
SERVICES = ("registry", "alerts", "sharing", "portal")
GENERATED = "<!-- Generated from the code by tools/reference.py (make docs): do not edit by hand. -->"
#: An agency id the topic catalog accepts, shown as ``<agency>``.
_SOME_AGENCY = "zz-agency-zz"
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_MS_PER_DAY = 24 * 60 * 60 * 1000

Schema = Mapping[str, Any]


# --- Markdown -----------------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation dropped, spaces to dashes."""
    text = heading.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def code(text: object) -> str:
    """``text`` as an inline code span, whatever backticks it holds."""
    value = str(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", value)), default=0) + 1)
    padded = f" {value} " if value.startswith("`") or value.endswith("`") else value
    return f"{fence}{padded}{fence}"


def prose(text: str) -> str:
    """Text from a docstring or a description, on one line, safe in Markdown: ``<`` and ``>`` outside code spans
    would be read as HTML and vanish."""
    text = " ".join(text.split())
    parts: list[str] = []
    position = 0
    for match in _CODE_SPAN.finditer(text):
        parts.append(_escaped(text[position : match.start()]))
        parts.append(match.group(0))
        position = match.end()
    parts.append(_escaped(text[position:]))
    return "".join(parts)


def _escaped(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


def cell(text: str) -> str:
    """A table cell: on one line, its pipes escaped (in code spans too: GitHub reads them as column breaks)."""
    return " ".join(text.split()).replace("|", "\\|")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return lines


def link(name: str) -> str:
    return f"[{code(name)}](#{slug(name)})"


# --- JSON Schema, as a reader wants it ----------------------------------------------------------------------------


def type_of(schema: Schema) -> str:
    """What a value is: ``string (date)``, ``array of`` a linked type, ``one of`` its values, ``… or null``."""
    if "$ref" in schema:
        return link(str(schema["$ref"]).rsplit("/", 1)[-1])
    for combined in ("anyOf", "oneOf", "allOf"):
        if combined in schema:
            kinds = list(dict.fromkeys(type_of(part) for part in schema[combined]))
            return (" and " if combined == "allOf" else " or ").join(kinds)
    if "const" in schema:
        return code(_value(schema["const"]))
    if "enum" in schema:
        return "one of " + ", ".join(code(_value(value)) for value in schema["enum"])
    return _plain_type(schema)


def _plain_type(schema: Schema) -> str:
    kind = schema.get("type")
    if kind == "array":
        return "array of " + type_of(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        return "object of " + type_of(schema["additionalProperties"])
    if isinstance(kind, list):
        return " or ".join(str(each) for each in kind)
    if kind is None:
        return "any"
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def _value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _branches(schema: Schema) -> Iterator[Schema]:
    yield schema
    for combined in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(combined, ()):
            yield from _branches(part)


def constraints(schema: Schema) -> list[str]:
    """The limits a value must keep, from the schema and the branches of its ``anyOf``."""
    found: list[str] = []
    for branch in _branches(schema):
        found += _limits(branch, "minLength", "maxLength", "characters")
        found += _limits(branch, "minItems", "maxItems", "items")
        found += _limits(branch, "minimum", "maximum", "")
        if "exclusiveMinimum" in branch:
            found.append(f"more than {branch['exclusiveMinimum']}")
        if "exclusiveMaximum" in branch:
            found.append(f"less than {branch['exclusiveMaximum']}")
        if "pattern" in branch:
            found.append("pattern " + code(branch["pattern"]))
    if schema.get("default") is not None:
        found.append("default " + code(_value(schema["default"])))
    if schema.get("examples"):
        found.append("e.g. " + ", ".join(code(_value(example)) for example in schema["examples"]))
    return list(dict.fromkeys(found))


def _limits(schema: Schema, low_key: str, high_key: str, unit: str) -> list[str]:
    low, high = schema.get(low_key), schema.get(high_key)
    if low is not None and high is not None:
        return [f"{low} to {high}{_unit(high, unit)}"]
    if low is not None:
        return [f"at least {low}{_unit(low, unit)}"]
    if high is not None:
        return [f"at most {high}{_unit(high, unit)}"]
    return []


def _unit(count: object, unit: str) -> str:
    """`` characters``, or `` character`` after a 1."""
    if not unit:
        return ""
    return f" {unit.removesuffix('s')}" if count == 1 else f" {unit}"


def explained(schema: Schema, description: str | None = None) -> str:
    """A field's description, then its constraints."""
    text = prose(str(description if description is not None else schema.get("description", "")))
    limits = "; ".join(constraints(schema))
    if text and limits:
        return f"{text} ({limits})"
    return text or limits


def fields(schema: Schema) -> list[str]:
    """An object's properties as a table; anything else as one sentence."""
    properties: Mapping[str, Schema] = schema.get("properties", {})
    if not properties:
        if "enum" in schema or schema.get("type") != "object":
            return [f"A value: {type_of(schema)}."]
        return ["An object; its properties are not described."]
    required = set(schema.get("required", ()))
    rows = [
        [code(name), type_of(field), "yes" if name in required else "", explained(field)]
        for name, field in properties.items()
    ]
    return table(["field", "type", "required", "description"], rows)


def described_types(definitions: Mapping[str, Schema], level: str) -> list[str]:
    lines: list[str] = []
    for name in sorted(definitions):
        definition = definitions[name]
        lines += ["", f"{level} {code(name)}", ""]
        if definition.get("description"):
            lines += [prose(str(definition["description"])), ""]
        lines += fields(definition)
    return lines


# --- The services' APIs ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def default_settings() -> Iterator[None]:
    """The defaults, whatever this shell has exported: the reference is the same on every machine."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("TIMPORA_")}
    for name in saved:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(saved)


def openapi(service: str) -> tuple[dict[str, Any], bool]:
    """The service's OpenAPI document, as its app serves it at /openapi.json, and whether it serves /docs too."""
    definition = importlib.import_module(f"timpora.{service}.main").SERVICE
    with default_settings():
        app = definition.create_app(definition.settings_class())
    document: dict[str, Any] = app.openapi()
    return document, app.docs_url is not None


_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def api_page(service: str, document: Mapping[str, Any], *, docs_page: bool = True) -> str:
    info = document["info"]
    components = document.get("components", {})
    operations = [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in _METHODS
    ]
    headings = [f"{method} {path}" for method, path, _ in operations]
    _unique([*headings, *components.get("schemas", {}), "Authentication", "Operations", "Schemas"])
    lines = [
        f"# The {service} API",
        "",
        GENERATED,
        "",
        f"**{prose(info['title'])}** {info['version']}: {prose(info.get('description', ''))}",
        "",
        (
            f"This is the service's OpenAPI document as "
            f"{code(f'timpora.{service}.main.SERVICE.create_app(settings)')} builds it with the default settings; the "
            "running service serves it at `/openapi.json`"
            + (
                ", and at `/docs` to read and try."
                if docs_page
                else " (it has no `/docs` page: its pages are for people)."
            )
            + " How to connect: [agencies](../agencies.md); every operation's answers for a request without a valid "
            "key, too large or too slow are explained there too."
        ),
    ]
    lines += _authentication(components.get("securitySchemes", {}))
    rows = [
        [f"[{code(heading)}]({'#' + slug(heading)})", prose(operation.get("summary", "")), _keys(operation)]
        for heading, (_, _, operation) in zip(headings, operations, strict=True)
    ]
    lines += ["", "## Operations", "", *table(["operation", "what it does", "key"], rows)]
    for heading, (_, _, operation) in zip(headings, operations, strict=True):
        lines += _operation(heading, operation)
    if components.get("schemas"):
        lines += ["", "## Schemas", "", "The bodies the operations take and give."]
        lines += described_types(components["schemas"], "###")
    return "\n".join(lines) + "\n"


def _unique(headings: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for heading in headings:
        anchor = slug(heading)
        if anchor in seen:
            raise ValueError(f"two headings would have the anchor #{anchor}: {seen[anchor]!r} and {heading!r}")
        seen[anchor] = heading


def _authentication(schemes: Mapping[str, Schema]) -> list[str]:
    if not schemes:
        return ["", "## Authentication", "", "None: no operation here takes a key."]
    rows = [
        [
            code(name),
            f"HTTP {scheme.get('scheme', '')}" if scheme.get("type") == "http" else str(scheme.get("type")),
            prose(str(scheme.get("description", ""))),
        ]
        for name, scheme in schemes.items()
    ]
    return [
        "",
        "## Authentication",
        "",
        "Keys go in `Authorization: Bearer …`.",
        "",
        *table(["scheme", "kind", "what"], rows),
    ]


def _keys(operation: Schema) -> str:
    names = [name for requirement in operation.get("security", ()) for name in requirement]
    return ", ".join(code(name) for name in names) if names else "none"


def _operation(heading: str, operation: Schema) -> list[str]:
    lines = ["", f"### {code(heading)}", ""]
    if operation.get("summary"):
        lines += [prose(operation["summary"]) + ".", ""]
    if operation.get("description"):
        lines += [prose(operation["description"]), ""]
    lines.append(f"Key: {_keys(operation)}.")
    parameters = operation.get("parameters", ())
    if parameters:
        rows = [
            [
                code(parameter["name"]),
                parameter["in"],
                type_of(parameter.get("schema", {})),
                "yes" if parameter.get("required") else "",
                explained(parameter.get("schema", {}), parameter.get("description")),
            ]
            for parameter in parameters
        ]
        lines += ["", "Parameters:", "", *table(["name", "in", "type", "required", "description"], rows)]
    body = operation.get("requestBody")
    if body:
        required = " (required)" if body.get("required") else ""
        lines += ["", f"Request body{required}: {_content(body.get('content', {}))}."]
    rows = [
        [code(status), prose(answer.get("description", "")), _answer(answer)]
        for status, answer in sorted(operation.get("responses", {}).items())
    ]
    lines += ["", "Answers:", "", *table(["status", "meaning", "body"], rows)]
    return lines


def _content(content: Mapping[str, Schema]) -> str:
    kinds = []
    for media_type, given in content.items():
        schema = given.get("schema")
        kinds.append(f"{code(media_type)} {type_of(schema)}" if schema else code(media_type))
    return ", or ".join(kinds) if kinds else "none"


def _answer(answer: Schema) -> str:
    body = _content(answer.get("content", {})) if answer.get("content") else ""
    headers = ", ".join(f"header {code(name)}" for name in answer.get("headers", {}))
    return "; ".join(part for part in (body, headers) if part)


# --- The events -----------------------------------------------------------------------------------------------------


def events_page() -> str:
    from timpora.common.events.catalog import EVENT_SPECS, REGISTRY_EVENT_SPECS  # noqa: PLC0415 - the code's own
    from timpora.common.events.schemas import json_schema  # noqa: PLC0415
    from timpora.common.topics import TopicCatalog  # noqa: PLC0415

    catalog = TopicCatalog()
    registry_topic = catalog.registry_events.name
    agency_topic = _placeholder(catalog.agency_events(_SOME_AGENCY).name)
    schemas = {spec: json_schema(spec) for spec in EVENT_SPECS}
    shared: dict[str, Schema] = {}
    for schema in schemas.values():
        for name, definition in schema.get("$defs", {}).items():
            if shared.setdefault(name, definition) != definition:
                raise ValueError(f"two events define {name} differently: the reference would show one of them")
    _unique([*(spec.name for spec in EVENT_SPECS), *shared, "Topics", "Event types", "Types the events share"])
    lines = [
        "# Events",
        "",
        GENERATED,
        "",
        (
            "Every event is a CloudEvent 1.0 in Kafka binary mode: its attributes in `ce_*` headers (`ce_id`, "
            "`ce_source`, `ce_type`, `ce_subject`, `ce_time`, `ce_specversion`, `ce_dataschema`), `content-type: "
            "application/json`, and its data as the record's JSON value. Each type is versioned (`ce_type` ends in "
            "its version), and the JSON Schema of its data is in [`libs/common/schemas/`](../../libs/common/schemas) "
            "(`make schemas`). What an agency receives, and how it connects, is in "
            "[agencies](../agencies.md#topics-kafka-tls-and-your-login)."
        ),
        "",
        "## Topics",
        "",
        (
            f"Under the namespace {code(catalog.namespace)} (`TIMPORA_<SERVICE>_KAFKA__NAMESPACE`); "
            f"{code('<agency>')} is a member's id in the register."
        ),
        "",
    ]
    topics = [*catalog.static, catalog.agency_events(_SOME_AGENCY), catalog.agency_alerts(_SOME_AGENCY)]
    rows = [
        [
            code(_placeholder(topic.name)),
            prose(_placeholder(topic.key)),
            str(topic.partitions),
            _retention(topic.config.get("retention.ms")),
            prose(_placeholder(topic.description)),
        ]
        for topic in topics
    ]
    lines += table(["topic", "key", "partitions", "kept", "what"], rows)
    rows = [
        [
            link(spec.name),
            code(spec.ce_type),
            code(registry_topic if spec in REGISTRY_EVENT_SPECS else agency_topic),
            prose(spec.description),
        ]
        for spec in EVENT_SPECS
    ]
    lines += ["", "## Event types", "", *table(["event", "`ce_type`", "on", "what"], rows)]
    for spec, schema in schemas.items():
        topic = registry_topic if spec in REGISTRY_EVENT_SPECS else agency_topic
        lines += [
            "",
            f"## {code(spec.name)}",
            "",
            prose(spec.description),
            "",
            (
                f"`ce_type` {code(spec.ce_type)}, `ce_dataschema` {code(spec.dataschema)}, on {code(topic)}; its JSON "
                f"Schema: [{code('libs/common/schemas/' + spec.schema_file)}]"
                f"(../../libs/common/schemas/{spec.schema_file})."
            ),
            "",
            *fields(schema),
        ]
    lines += ["", "## Types the events share"]
    lines += described_types(shared, "###")
    return "\n".join(lines) + "\n"


def _placeholder(text: str) -> str:
    return text.replace(_SOME_AGENCY, "<agency>")


def _retention(milliseconds: str | None) -> str:
    if milliseconds is None:
        return "the broker's default"
    if int(milliseconds) < 0:
        return "forever"
    return f"{int(milliseconds) // _MS_PER_DAY} days"


# --- The files ------------------------------------------------------------------------------------------------------


def render() -> dict[str, str]:
    """Every file of docs/reference/, by name, as the code gives it now."""
    pages = {}
    for service in SERVICES:
        document, docs_page = openapi(service)
        pages[f"api-{service}.md"] = api_page(service, document, docs_page=docs_page)
    pages["events.md"] = events_page()
    return pages


def stale(directory: Path, pages: Mapping[str, str]) -> list[str]:
    """The files of ``directory`` that differ from ``pages``: missing, different, or not generated at all."""
    present = {path.name for path in directory.glob("*")} if directory.is_dir() else set()
    differing = [
        name
        for name, text in pages.items()
        if name not in present or (directory / name).read_text(encoding="utf-8") != text
    ]
    return sorted([*differing, *(present - set(pages))])


def write(directory: Path, pages: Mapping[str, str]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    changed = stale(directory, pages)
    for name in changed:
        path = directory / name
        if name in pages:
            path.write_text(pages[name], encoding="utf-8")
        else:
            path.unlink()
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.reference", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is not current")
    parser.add_argument("--directory", type=Path, default=REFERENCE, help="where the reference is (docs/reference)")
    args = parser.parse_args(argv)
    pages = render()
    if args.check:
        differing = stale(args.directory, pages)
        sys.stderr.writelines(f"out of date: {args.directory / name} (run: make docs)\n" for name in differing)
        return 1 if differing else 0
    for name in write(args.directory, pages):
        sys.stdout.write(f"{args.directory / name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
