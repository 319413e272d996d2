"""Declarative files an operator keeps in version control (agreements, agencies, routing rules):
read as YAML, validated by a pydantic model, refused whole with the file's path and the fields at fault.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from timpora.common.events.envelope import describe_validation_error

M = TypeVar("M", bound=BaseModel)


class ConfigFileError(ValueError):
    """A file that cannot be used; the message says where and why, without echoing values."""


def load_model(path: Path, model: type[M]) -> M:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigFileError(f"{path}: {error}") from None
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise ConfigFileError(f"{path}: {describe_validation_error(error, limit=20, quoting=True)}") from None


def modified_ns(path: Path) -> int:
    """The file's modification time, the cache key that makes an edited file be read again."""
    return path.stat().st_mtime_ns


def refuse_repeats(values: Iterable[str], what: str) -> None:
    """Raises ``ValueError`` naming each value that occurs more than once, e.g. an agency listed twice."""
    counted = Counter(values)
    repeated = sorted(value for value, count in counted.items() if count > 1)
    if repeated:
        raise ValueError(f"{what} {', '.join(repeated)}")
