"""The pages a newcomer reads (README.md and docs/) stay true to the repository.

* Every relative link and image points to a file that exists, and an anchor to a heading of that page (GitHub's
  anchors: lower case, punctuation dropped, spaces to dashes, ``-1`` after a repeated heading).
* Every project command the pages show in code exists: ``make`` targets in the Makefile; the console scripts of the
  pyproject files, with their subcommands, options and choices as their own argument parsers have them (for
  ``timpora-<service>``: ``serve``, ``migrate`` and the service's ``SERVICE.commands``); ``deploy/local/stack``'s and
  ``deploy/local/run``'s subcommands; ``python -m`` modules.
* Every repository path named in backticks exists, and every ``timpora.…`` module or attribute imports.
* The generated reference (docs/reference/) is what tools/reference.py gives now.

Code is read where commands are: inline code, and fenced blocks marked ``sh``/``bash``/``shell``/``console``. Prose
in backticks does not trip the checks: a principal or a consumer group named like a command
(``timpora-alerts-routing``), a topic (``timpora.registry.events.v1``), an image (``apache/kafka``), a placeholder
(``AGENCY``, ``[--since T]``, ``…``) are not commands or paths.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import re
import socket
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NoReturn
from unittest import mock
from urllib.parse import unquote

import pytest
from tools import reference

from timpora.common.service import ServiceDefinition

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
SHELL = frozenset({"sh", "bash", "shell", "console", "zsh"})
#: Files the pages tell the reader to make (`cp deploy/.env.example deploy/.env`): named, never in the repository.
MADE_BY_THE_READER = frozenset({"deploy/.env"})
#: Top-level directories made by running things, never in the repository (`.stack/logs/mail.log`).
RUNTIME = frozenset(
    {".venv", ".stack", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "build", "dist"}
)


def _name(page: Path) -> str:
    return page.relative_to(REPO).as_posix()


# --- Reading Markdown -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    """A piece of code a page shows: an inline span, or one command line of a shell block."""

    text: str
    line: int
    inline: bool


@dataclass(frozen=True)
class Page:
    path: Path
    #: The text outside fenced blocks (their lines left empty, so that positions keep their line numbers).
    prose: str
    #: Fenced blocks: their language and their lines, each with its line number.
    blocks: tuple[tuple[str, tuple[tuple[int, str], ...]], ...]

    def line_of(self, position: int) -> int:
        return self.prose.count("\n", 0, position) + 1

    def spans(self) -> Iterator[Code]:
        for match in _INLINE_CODE.finditer(self.prose):
            text = " ".join(match.group(2).replace("\\|", "|").split())
            yield Code(text, self.line_of(match.start()), inline=True)

    def prose_without_code(self) -> str:
        # Links inside code are not links: each span becomes as many x's (newlines kept, for line numbers).
        return _INLINE_CODE.sub(lambda match: re.sub(r"[^\n]", "x", match.group(0)), self.prose)

    def shell_lines(self) -> Iterator[Code]:
        for language, lines in self.blocks:
            if language not in SHELL:
                continue
            pending = ""
            for number, line in lines:
                pending += line.rstrip()
                if pending.endswith("\\"):
                    pending = pending[:-1] + " "
                    continue
                command = re.sub(r"(^|\s)#.*$", "", pending).strip()
                if command:
                    yield Code(command, number, inline=False)
                pending = ""

    def code(self) -> Iterator[Code]:
        yield from self.spans()
        yield from self.shell_lines()


_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
_INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n\s*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)


def parse(path: Path, text: str | None = None) -> Page:
    source = path.read_text(encoding="utf-8") if text is None else text
    prose: list[str] = []
    blocks: list[tuple[str, tuple[tuple[int, str], ...]]] = []
    fence: str | None = None
    language = ""
    inside: list[tuple[int, str]] = []
    for number, line in enumerate(source.splitlines(), start=1):
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence, language, inside = opening.group(1), opening.group(2).lower(), []
            prose.append("")
        elif fence is not None and re.match(rf"^\s*{fence[0]}{{{len(fence)},}}\s*$", line):
            blocks.append((language, tuple(inside)))
            fence = None
            prose.append("")
        elif fence is not None:
            inside.append((number, line))
            prose.append("")
        else:
            prose.append(line)
    assert fence is None, f"{_name(path)}: a fenced block is never closed"
    return Page(path, "\n".join(prose), tuple(blocks))


# --- Links and anchors ----------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text as rendered, lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's (or image's) text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Page) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in page.prose.splitlines():
        heading = re.match(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$", line)
        if heading:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    found |= set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", page.prose))
    return found


_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)


def broken_links(page: Page) -> list[str]:
    problems = []
    prose = page.prose_without_code()
    found = [*_LINK.finditer(prose), *_REFERENCE_LINK.finditer(prose)]
    for match in found:
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # https:, mailto:: not the repository's
        where = f"{_name(page.path)}:{page.line_of(match.start())}: {target}"
        path_part, _, anchor = target.partition("#")
        if not path_part:
            if anchor not in anchors(page):
                problems.append(f"{where}: no heading with that anchor in {_name(page.path)}")
            continue
        linked = (page.path.parent / unquote(path_part)).resolve()
        if not linked.is_relative_to(REPO) or not linked.exists():
            problems.append(f"{where}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(parse(linked)):
            problems.append(f"{where}: no heading with that anchor in {_name(linked)}")
    return problems


# --- The project's commands -----------------------------------------------------------------------------------------


@cache
def make_targets() -> frozenset[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    targets: set[str] = set()
    for line in text.splitlines():
        rule = re.match(r"^([A-Za-z0-9_.-][A-Za-z0-9_. -]*?)\s*::?(?!=)", line)
        if rule and not line.startswith((".", "\t")):
            targets.update(rule.group(1).split())
    return frozenset(targets)


@cache
def console_scripts() -> dict[str, str]:
    """Every console script the repository installs, with its entry point (``module:function``)."""
    scripts: dict[str, str] = {}
    for pyproject in [REPO / "libs/common/pyproject.toml", *sorted(REPO.glob("services/*/pyproject.toml"))]:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        scripts |= project.get("scripts", {})
    return scripts


@cache
def script_subcommands(script: str) -> frozenset[str]:
    """The words a shell script takes first: the labels of its top-level ``case "${1:-}" in``."""
    text = (REPO / script).read_text(encoding="utf-8")
    block = text.split('case "${1:-}" in', 1)[1].split("\nesac", 1)[0]
    labels = re.findall(r"^  ([^\s()*][^\s()]*)\)", block, flags=re.MULTILINE)
    return frozenset(word.strip('"') for label in labels for word in label.split("|")) - {""}


class _Parsed(Exception):  # noqa: N818 - not an error: how the parser is caught
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


class _WentFurther(Exception):  # noqa: N818
    """The command tried to run something (asyncio.run, a connection) instead of parsing its arguments first."""


def parser_of(call: Callable[[], object]) -> argparse.ArgumentParser | None:
    """The argument parser ``call`` builds, caught as it parses: nothing past parsing runs (no event loop, no
    connection), so no command does anything."""

    def caught(self: argparse.ArgumentParser, *_: object, **__: object) -> NoReturn:
        raise _Parsed(self)

    def refused(*_: object, **__: object) -> NoReturn:
        raise _WentFurther

    with (
        mock.patch.object(argparse.ArgumentParser, "parse_args", caught),
        mock.patch.object(argparse.ArgumentParser, "parse_known_args", caught),
        mock.patch.object(asyncio, "run", refused),
        mock.patch.object(socket.socket, "connect", refused),
    ):
        try:
            called = call()
            if inspect.iscoroutine(called):
                try:
                    called.send(None)  # outside any event loop: it cannot get past parsing to any I/O
                finally:
                    called.close()
        except _Parsed as parsed:
            return parsed.parser
        except (_WentFurther, RuntimeError):
            return None
    return None


@cache
def service_of(script: str) -> ServiceDefinition | None:
    module = importlib.import_module(console_scripts()[script].partition(":")[0])
    definition = getattr(module, "SERVICE", None)
    return definition if isinstance(definition, ServiceDefinition) else None


@cache
def command_parser(script: str, command: str | None = None) -> argparse.ArgumentParser | None:
    """The parser of ``script`` (a service's: of its ``command``), or None where it has none to catch."""
    definition = service_of(script)
    if definition is not None:
        if command is None or command not in definition.commands:
            return None
        run = definition.commands[command]
        try:
            settings = definition.settings_class()
        except Exception:  # noqa: BLE001 - this shell's settings do not matter: only the parser does
            settings = definition.settings_class.model_construct()  # type: ignore[attr-defined]
        return parser_of(lambda: run(settings, []))
    module_name, _, attribute = console_scripts()[script].partition(":")
    main: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    if not inspect.signature(main).parameters:
        return None  # it takes no arguments (timpora-db-bootstrap): calling it would run it
    return parser_of(lambda: main([]))


_LITERAL = re.compile(r"^[a-z0-9][a-z0-9-]*(\|[a-z0-9][a-z0-9-]*)*$")
_FREE = frozenset({"*", "+", argparse.REMAINDER})


def misused(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """What in ``words`` the parser would refuse: an unknown subcommand, choice or option. Placeholders (``AGENCY``,
    ``FILE.csv``, ``…``) are taken as the values they stand for."""
    problems: list[str] = []
    positionals = [action for action in parser._actions if not action.option_strings]
    index = 0
    while index < len(words):
        word = words[index].strip("[]")
        if not word or word.startswith(("…", "...")):
            break
        if word.startswith("-"):
            refused, index = _option(parser, words, index)
            problems += refused
            if refused and refused[-1].startswith(f"{parser.prog} has no option"):
                break
            continue
        if not positionals:
            break
        action = positionals[0]
        if isinstance(action, argparse._SubParsersAction):
            return problems + _subcommand(action, word, words[index + 1 :], parser.prog)
        problems += _unchosen(action, word, parser.prog)
        if action.nargs not in _FREE:
            positionals.pop(0)
        index += 1
    return problems


def _option(parser: argparse.ArgumentParser, words: list[str], index: int) -> tuple[list[str], int]:
    """The problems of the option at ``index`` (and of its value), and where the next word is."""
    name, given, _ = words[index].strip("[]").partition("=")
    option = parser._option_string_actions.get(name)
    if option is None:
        return [f"{parser.prog} has no option {name}"], index + 1
    if option.nargs == 0 or given:
        return [], index + 1
    value = words[index + 1].strip("[]") if index + 1 < len(words) else ""
    return _unchosen(option, value, f"{parser.prog} {name}"), index + 2


def _subcommand(action: argparse._SubParsersAction[Any], word: str, rest: list[str], prog: str) -> list[str]:
    if not _LITERAL.match(word):
        return []
    unknown = [each for each in word.split("|") if each not in action.choices]
    if unknown:
        return [f"{prog} has no subcommand {', '.join(unknown)}"]
    return [problem for each in word.split("|") for problem in misused(action.choices[each], rest)]


def _unchosen(action: argparse.Action, word: str, where: str) -> list[str]:
    if action.choices is None or not _LITERAL.match(word):
        return []
    unknown = [each for each in word.split("|") if each not in action.choices]
    return (
        [f"{where} takes none of {', '.join(unknown)} (only {', '.join(map(str, action.choices))})"] if unknown else []
    )


_MAKE = re.compile(r"(?<![^\s;&|(])make\s+(?!-)([^\s=;|&)]+)(?=$|[\s;|&)])")
_SCRIPT = re.compile(r"(?<![^\s;&|(\"'])(?:[\w.-]*/)*(timpora-(?:<service>|[a-z][a-z-]*[a-z]))(?=$|[\s;&|)\"'])")
_END_OF_COMMAND = re.compile(r"\s#|;|&&|\|\||\s\|\s|>|\)|\"|'|`|\$\(")
_DEPLOY_SCRIPT = re.compile(r"(?<![\w/.-])(deploy/local/(?:stack|run))(?:\s+([^\s;&|)\"']+))?")
_PYTHON_MODULE = re.compile(r"python3?\s+-m\s+([\w.]+)")


def command_problems(code: Code) -> list[str]:
    problems = [f"make {target}: no such target" for target in _MAKE.findall(code.text) if target not in make_targets()]
    for match in _SCRIPT.finditer(code.text):
        rest = _END_OF_COMMAND.split(code.text[match.end() :], maxsplit=1)[0]
        problems += script_problems(match.group(1), rest.split())
    for script, word in _DEPLOY_SCRIPT.findall(code.text):
        if word and re.match(r"^-?-?[a-z][a-z-]*$", word) and word not in script_subcommands(script):
            problems.append(
                f"{script} {word}: no such subcommand (only {', '.join(sorted(script_subcommands(script)))})"
            )
    for module in _PYTHON_MODULE.findall(code.text):
        if importlib.util.find_spec(module) is None:
            problems.append(f"python -m {module}: no such module")
    return problems


def script_problems(script: str, words: list[str]) -> list[str]:
    if script == "timpora-<service>":
        services = [name for name in console_scripts() if service_of(name) is not None]
        return [problem for name in services for problem in script_problems(name, words)]
    if script not in console_scripts():
        # A name alone may be a principal or a consumer group; with a subcommand after it, it is a command.
        return [f"{script}: no such command"] if words and _LITERAL.match(words[0]) else []
    definition = service_of(script)
    if definition is None:
        parser = command_parser(script)
        return [] if parser is None else misused(parser, words)
    if not words or not _LITERAL.match(words[0]):
        return []
    problems = []
    for command in words[0].split("|"):
        if command not in {"serve", "migrate", *definition.commands}:
            problems.append(
                f"{script} has no command {command} (only serve, migrate, {', '.join(definition.commands)})"
            )
            continue
        parser = command_parser(script, command)
        if parser is not None:
            problems += misused(parser, words[1:])
    return problems


# --- Paths and modules ----------------------------------------------------------------------------------------------


@cache
def roots() -> frozenset[str]:
    """The repository's top-level directories: a path in backticks that starts with one is a path to check."""
    return frozenset(path.name for path in REPO.iterdir() if path.is_dir() and path.name not in RUNTIME)


def path_problem(candidate: str) -> str | None:
    path = candidate.removeprefix("./").rstrip(".,:;")
    first = path.split("/", 1)[0]
    if "/" not in path or first not in roots() or path in MADE_BY_THE_READER or re.search(r"\s", path):
        return None
    pattern = re.sub(r"<[^>]+>", "*", path)
    pattern = re.sub(r"(^|/)(?:\.\.\.|…)(?=/|$)", r"\1**", pattern)
    if any(character in pattern for character in "*?["):
        matches = list(REPO.glob(pattern.rstrip("/")))
        found = any(match.is_dir() for match in matches) if path.endswith("/") else bool(matches)
    else:
        found = (REPO / path).is_dir() if path.endswith("/") else (REPO / path).exists()
    return None if found else f"{candidate}: no such file or directory in the repository"


def module_problem(name: str) -> str | None:
    """``timpora.common.kafka.consumer.InboxConsumer``: the longest importable module, then attributes."""
    parts = name.removesuffix("()").split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            found: object = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return f"{name}: {module_name} has no {'.'.join(parts[cut:])}"
            found = getattr(found, attribute)
        return None
    return f"{name}: no such module"


_MODULE = re.compile(r"^timpora(?:\.[A-Za-z_]\w*)+(?:\(\))?$")
_TOPIC_VERSION = re.compile(r"\.v\d+$")


def naming_problems(code: Code) -> list[str]:
    problems = []
    if code.inline:
        candidates = [code.text]
        if _MODULE.match(code.text) and not _TOPIC_VERSION.search(code.text):
            problems.append(module_problem(code.text))
    else:
        candidates = [token.strip("\"'()") for token in code.text.split()]
    problems += [path_problem(candidate) for candidate in candidates]
    return [problem for problem in problems if problem is not None]


# --- The checks -----------------------------------------------------------------------------------------------------


def code_problems(page: Page) -> list[str]:
    return [
        f"{_name(page.path)}:{code.line}: `{code.text}`: {problem}"
        for code in page.code()
        for problem in [*command_problems(code), *naming_problems(code)]
    ]


@pytest.mark.parametrize("path", PAGES, ids=_name)
def test_every_relative_link_and_anchor_resolves(path: Path) -> None:
    problems = broken_links(parse(path))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", PAGES, ids=_name)
def test_every_command_path_and_module_shown_exists(path: Path) -> None:
    problems = code_problems(parse(path))
    assert not problems, "\n".join(problems)


def test_the_pages_are_all_there() -> None:
    names = {_name(page) for page in PAGES}
    assert {"docs/agencies.md", "docs/operators.md", "docs/petugas.md", "docs/data-protection.md"} <= names
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 200, "the README is the front door: what it is, the two commands, where to read"


def test_the_generated_reference_is_current() -> None:
    # In a process of its own: it builds every service's app, with the default settings rather than this shell's.
    checked = subprocess.run(
        [sys.executable, "-m", "tools.reference", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert checked.returncode == 0, f"{checked.stderr}docs/reference/ is stale: run make docs"


# --- The checks themselves catch what they are for ------------------------------------------------------------------

SAMPLE = REPO / "docs" / "sample.md"  # never written: the checks read it as if it were there


def _sample(text: str) -> Page:
    return parse(SAMPLE, text)


def test_githubs_anchors() -> None:
    assert slug("The registry API (the immigration office's systems)") == (
        "the-registry-api-the-immigration-offices-systems"
    )
    assert slug("`GET /v1/foreigners/{foreigner_id}`") == "get-v1foreignersforeigner_id"
    assert slug("Reports: the monthly recap and the foreigners in an area") == (
        "reports-the-monthly-recap-and-the-foreigners-in-an-area"
    )
    page = _sample("# Notes\n\n## Notes\n\n```sh\n# not a heading\n```\n")
    assert anchors(page) == {"notes", "notes-1"}


def test_a_broken_link_or_anchor_is_caught() -> None:
    page = _sample(
        "[fine](agencies.md#webhooks) [gone](agencies.md#webhook) [missing](agencys.md) ![shot](screenshots/x.png)\n"
        "[here](#a-heading) [not here](#nowhere) `[in code](nowhere.md)` [out](https://example.org/x)\n\n"
        "## A heading\n"
    )
    assert [problem.split(": ", 1)[1] for problem in broken_links(page)] == [
        "agencies.md#webhook: no heading with that anchor in docs/agencies.md",
        "agencys.md: no such file",
        "screenshots/x.png: no such file",
        "#nowhere: no heading with that anchor in docs/sample.md",
    ]


def test_a_misspelt_command_is_caught() -> None:
    page = _sample(
        "`make tset` and `make run DEMO=1`; `timpora-sharng keys issue AGENCY`, `timpora-sharing key issue AGENCY`,\n"
        "`timpora-sharing keys isue AGENCY --operator YOU`, `timpora-sharing keys issue AGENCY --operater YOU`,\n"
        "`timpora-sharing recap AGENCY --format xml`, `timpora-agencies kafka grnt polres-bangkalan`,\n"
        "`timpora-portal officers reset|disabel USERNAME`, `deploy/local/stack upp`, `deploy/local/run --stp`,\n"
        "`python -m timpora.common.db.bootstrapp`, `timpora-<service> migrat`.\n\n"
        '```sh\neval "$(deploy/local/stack env)"\n(umask 077; .venv/bin/timpora-agencies kafka revok polres > x)\n```\n'
    )
    # What the problems say, without the lists of what there is (which change as commands are added).
    found = [re.sub(r" \(only .*\)$", "", problem.split(": ", 2)[2]) for problem in code_problems(page)]
    assert found == [
        "make tset: no such target",
        "timpora-sharng: no such command",
        "timpora-sharing has no command key",
        "timpora-sharing keys takes none of isue",
        "timpora-sharing keys has no option --operater",
        "timpora-sharing recap --format takes none of xml",
        "timpora-agencies kafka has no subcommand grnt",
        "timpora-portal officers has no subcommand disabel",
        "deploy/local/stack upp: no such subcommand",
        "deploy/local/run --stp: no such subcommand",
        "python -m timpora.common.db.bootstrapp: no such module",
        *(f"timpora-{name} has no command migrat" for name in ("alerts", "portal", "registry", "sharing")),
        "timpora-agencies kafka has no subcommand revok",
    ]


def test_a_wrong_path_or_module_is_caught_and_prose_is_not() -> None:
    page = _sample(
        "`services/alerts/src/timpora/alerts/channels/webhok.py`, `libs/common/.../topic.py`, `tests/edges/`,\n"
        "`timpora.common.kafka.consumer.InboxConsumr`, `timpora.registry.relays`, `deploy/docker-compose.yml`,\n"
        "`libs/common/.../topics.py`, `services/<name>/`, `deploy/.env`, `.stack/logs/mail.log`, `apache/kafka`,\n"
        "`timpora-alerts-routing`, `timpora.registry.events.v1`, `timpora.agency.<id>`, `timpora-alerts@localhost`,\n"
        "`timpora-registry`, `AGENCY`, `officers reset|disable USERNAME`, `timpora-<service> audit [--target …]`.\n\n"
        "```sh\ncp deploy/.env.example deploy/.env\ndocker compose -f deploy/docker-compos.yml up\n```\n"
    )
    found = [problem.split(": ", 2)[2] for problem in code_problems(page)]
    assert found == [
        "services/alerts/src/timpora/alerts/channels/webhok.py: no such file or directory in the repository",
        "libs/common/.../topic.py: no such file or directory in the repository",
        "timpora.common.kafka.consumer.InboxConsumr: timpora.common.kafka.consumer has no InboxConsumr",
        "timpora.registry.relays: timpora.registry has no relays",
        "deploy/docker-compos.yml: no such file or directory in the repository",
    ]


def test_a_stale_reference_is_caught(tmp_path: Path) -> None:
    (tmp_path / "events.md").write_text("# Events\n", encoding="utf-8")
    (tmp_path / "api-old.md").write_text("gone\n", encoding="utf-8")
    (tmp_path / "api-registry.md").write_text("# current\n", encoding="utf-8")
    pages = {"events.md": "# Events, now\n", "api-registry.md": "# current\n", "api-alerts.md": "# new\n"}
    assert reference.stale(tmp_path, pages) == ["api-alerts.md", "api-old.md", "events.md"]
    reference.write(tmp_path, pages)
    assert reference.stale(tmp_path, pages) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["api-alerts.md", "api-registry.md", "events.md"]
