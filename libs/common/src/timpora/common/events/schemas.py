"""JSON Schema of every event type's data, for agencies to validate what they receive.

``timpora-schemas export DIR`` writes one file per event type; ``timpora-schemas check DIR`` fails when
the files in DIR differ from the contract (the repository keeps them in ``libs/common/schemas``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from timpora.common.events.catalog import EVENT_SPECS, EventSpec

DEFAULT_DIR = Path(__file__).resolve().parents[4] / "schemas"


def json_schema(spec: EventSpec) -> dict[str, Any]:
    schema = spec.model.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": spec.dataschema,
        "title": spec.ce_type,
        "description": spec.description,
        **{key: value for key, value in schema.items() if key not in {"title", "description"}},
    }


def rendered() -> dict[str, str]:
    return {spec.schema_file: json.dumps(json_schema(spec), indent=2, sort_keys=True) + "\n" for spec in EVENT_SPECS}


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path) -> list[str]:
    """Names of schema files that are missing from, or differ in, ``directory``."""
    return [
        name
        for name, text in rendered().items()
        if not (directory / name).is_file() or (directory / name).read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="timpora-schemas", description=__doc__)
    parser.add_argument("command", choices=["export", "check"])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    if args.command == "export":
        for path in export(args.directory):
            print(path)
        return 0
    differing = stale(args.directory)
    for name in differing:
        print(f"out of date: {args.directory / name} (run: timpora-schemas export)", file=sys.stderr)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
