"""A SQLAlchemy statement compiled once, run on asyncpg directly: for a hot read whose shape repeats.

Why: building a SELECT with SQLAlchemy's expression language, keying it for the compiled cache and running it through
a session costs about a millisecond of Python on every request (a profile of the sharing list endpoint), and the
session opens a transaction (BEGIN, then ROLLBACK when it closes) around a single statement. Here the statement is
written in the expression language as everywhere else, with a named :func:`~sqlalchemy.bindparam` for each value a
request supplies, compiled for asyncpg once, and then run as one prepared statement, one round trip, per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]  # SQLAlchemy's is untyped


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """``sql`` with positional parameters; :meth:`arguments` puts a request's values in their places."""

    sql: str
    #: The bind parameters' names, in the order of ``$1``, ``$2``, ...
    order: tuple[str, ...]
    #: The parameters a request must give a value for: those named with ``bindparam(name, ...)``.
    given: frozenset[str]
    #: The other parameters' values as compiled (the constants the statement holds, such as a JSON key), ready to send.
    constants: Mapping[str, object]
    #: What SQLAlchemy would do to a value before sending it, for the parameters whose type does something.
    processors: Mapping[str, Callable[[Any], Any]]

    @classmethod
    def of(cls, statement: ClauseElement) -> CompiledQuery:
        """Compiles ``statement``; each of its named bind parameters needs a placeholder value of its type (an
        ``IN`` list is expanded as compiled: its values are constants)."""
        compiled = statement.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"not a statement: {type(statement).__name__}")
        processors: dict[str, Callable[[Any], Any]] = {}
        for name, processor in compiled._bind_processors.items():  # noqa: SLF001 - no public way to them
            # An IN list's processor is keyed by the list, not by the values it was expanded into: they would be
            # sent unprocessed.
            if not callable(processor) or compiled.binds[name].expanding:
                raise TypeError(f"{name}: a tuple, or an IN list of a type that converts its values: not handled")
            processors[name] = processor
        # Anonymous parameters are the statement's own constants (a literal, a JSON key); named ones are the request's.
        given = frozenset(name for name, bind in compiled.binds.items() if not bind.unique)
        constants = {
            name: (processors[name](value) if name in processors else value)
            for name, value in (compiled.construct_params() or {}).items()
            if name not in given
        }
        return cls(compiled.string, tuple(compiled.positiontup or ()), given, constants, processors)

    def arguments(self, values: Mapping[str, object]) -> list[object]:
        """The positional arguments for ``values``: one for each named parameter, no more, no fewer."""
        if values.keys() != self.given:
            # A value with no place would be dropped (a filter that filters nothing); one left out would be sent as
            # its placeholder (a time compiled at start, an empty agency).
            unknown, missing = sorted(values.keys() - self.given), sorted(self.given - values.keys())
            raise KeyError(f"values for the statement's parameters: unknown {unknown}, missing {missing}")
        processed = {
            name: (self.processors[name](value) if name in self.processors else value) for name, value in values.items()
        }
        return [processed[name] if name in processed else self.constants[name] for name in self.order]

    async def fetch(self, connection: asyncpg.Connection, values: Mapping[str, object]) -> Sequence[asyncpg.Record]:
        return await connection.fetch(self.sql, *self.arguments(values))
