"""The services' HTTP edges against the real processes (issue 11): a request body is limited before it is read,
requests without a valid key are limited per client address and never keep a database connection, and an
unauthenticated request learns nothing but that it is unauthenticated."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import TEST_DATABASE
from tests.edges.conftest import SERVICES, Running, from_address, start
from tests.registry.conftest import arrival, permit
from tests.support.kafka import delete_namespace, new_namespace
from tests.support.processes import ServiceProcess, start_service
from tests.support.stack import Stack
from tests.support.waiting import until
from timpora.alerts.settings import AlertsSettings
from timpora.common.settings import DatabaseSettings
from timpora.portal.settings import PortalSettings

LIMIT = 1_048_576  # the default http.max_body_bytes
UNAUTHENTICATED_PER_MINUTE = 60  # the default http.unauthenticated_per_minute
#: A body-taking operation of each service (the sharing service takes none: a body sent to a read is limited too).
WRITES = {
    "registry": ("POST", "/v1/arrivals"),
    "alerts": ("POST", f"/v1/alerts/{uuid.uuid4()}/acknowledge"),
    "sharing": ("GET", "/v1/foreigners"),
}


def padded(document: dict[str, Any], size: int) -> bytes:
    """``document`` as JSON, padded with whitespace to exactly ``size`` bytes (still the same document)."""
    raw = json.dumps(document).encode()
    return raw + b" " * (size - len(raw))


async def chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """The body sent chunked (no Content-Length): the only way to know its size is to read it."""
    for start_at in range(0, len(body), size):
        yield body[start_at : start_at + size]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "with-key"])
@pytest.mark.parametrize("service", SERVICES)
async def test_a_body_over_the_limit_is_refused_413_in_every_service(
    services: dict[str, Running], service: str, *, authenticated: bool, chunked: bool
) -> None:
    running = services[service]
    method, path = WRITES[service]
    body = padded({"any": "thing"}, LIMIT + 1)
    headers = {"Content-Type": "application/json", **from_address()}
    if authenticated:
        headers |= auth(running.key)
    async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
        answer = await client.request(method, path, content=chunks(body) if chunked else body, headers=headers)
        # The connection stays usable: the rest of the body was discarded, not left in the way of the next request.
        after = await client.get("/healthz")

    assert answer.status_code == 413, answer.text
    assert answer.json() == {"detail": f"the request body is larger than the {LIMIT} bytes allowed"}
    assert after.status_code == 200


@pytest.fixture(scope="module")
async def portal(
    stack: Stack, database_settings: dict[str, DatabaseSettings], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceProcess]:
    """The portal as `make run` starts it (it does not use Kafka: it is not in SERVICES, which have API keys)."""
    process = start_service(
        "portal",
        kafka=stack.kafka,
        database=database_settings["portal"],
        log=tmp_path_factory.mktemp("edges-portal") / "portal.log",
    )
    try:
        await process.ready()
        yield process
    finally:
        await process.stop()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_refused_413_by_the_portal_too(portal: ServiceProcess, *, chunked: bool) -> None:
    # Its login form stands for its writes: the limit holds before anything reads the body, login or not.
    body = b"username=" + b"a" * LIMIT
    headers = {"Content-Type": "application/x-www-form-urlencoded", **from_address()}
    async with httpx.AsyncClient(base_url=portal.url, timeout=30) as client:
        answer = await client.post("/login", content=chunks(body) if chunked else body, headers=headers)
        after = await client.get("/healthz")

    assert answer.status_code == 413, answer.text
    assert after.status_code == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_villages_report_has_a_larger_limit_of_its_own_and_nothing_else_does(
    services: dict[str, Running], portal: ServiceProcess, *, chunked: bool
) -> None:
    # A phone's photo is over the 1 MiB every other path takes; the reports' own limits still hold, and only for a
    # request with credentials (a key, a session): an anonymous one cannot make a service hold megabytes.
    alerts_limit = AlertsSettings().report_photo_max_bytes * 4 // 3 + 64 * 1024
    portal_limit = PortalSettings().report_upload_max_bytes
    key = {"Authorization": "Bearer tak_not-a-key"}
    session = {"Cookie": "timpora_session=not-a-session"}
    alerts, pages = services["alerts"].url, portal.url
    cases: list[tuple[str, str, dict[str, str], int, int]] = [
        (alerts, "/v1/reports", key, LIMIT + 1, 401),  # read whole, then refused for its key
        (alerts, "/v1/reports", {}, LIMIT + 1, 413),  # anonymous: the common limit
        (alerts, "/v1/reports", key, alerts_limit + 1, 413),
        (alerts, "/v1/alerts/00000000-0000-0000-0000-000000000000/acknowledge", key, LIMIT + 1, 413),
        (pages, "/reports", session, LIMIT + 1, 303),  # read whole, then sent to the login
        (pages, "/reports", {}, LIMIT + 1, 413),
        (pages, "/reports", session, portal_limit + 1, 413),
        (pages, "/login", session, LIMIT + 1, 413),
    ]
    for url, path, credentials, size, expected in cases:
        body = padded({"any": "thing"}, size)
        headers = {"Content-Type": "application/json", **from_address(), **credentials}
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            answer = await client.post(path, content=chunks(body) if chunked else body, headers=headers)
        assert (path, credentials, size, answer.status_code) == (path, credentials, size, expected), answer.text


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_at_the_limit_is_taken_whole_and_one_over_it_writes_nothing(
    services: dict[str, Running], *, chunked: bool
) -> None:
    registry = services["registry"]
    at_limit = arrival()
    over = arrival()
    async with httpx.AsyncClient(base_url=registry.url, headers=auth(registry.key), timeout=30) as client:
        headers = {"Content-Type": "application/json"}
        body = padded(at_limit, LIMIT)
        taken = await client.post("/v1/arrivals", content=chunks(body) if chunked else body, headers=headers)
        body = padded(over, LIMIT + 1)
        refused = await client.post("/v1/arrivals", content=chunks(body) if chunked else body, headers=headers)
        found = await client.get("/v1/foreigners", params={"passport_number": over["passport"]["number"]})

    assert taken.status_code == 201, taken.text
    assert refused.status_code == 413
    assert found.json()["items"] == []


@contextlib.asynccontextmanager
async def registry_with(
    settings: dict[str, str], stack: Stack, database_settings: dict[str, DatabaseSettings], log: Path
) -> AsyncIterator[Running]:
    """The registry alone, in a namespace of its own, with ``TIMPORA_REGISTRY_<name>`` settings, no relay."""
    kafka = stack.kafka.model_copy(update={"namespace": new_namespace()})
    extra = {f"TIMPORA_REGISTRY_{name}": value for name, value in (settings | {"RELAY__ENABLED": "false"}).items()}
    started = await start("registry", kafka, database_settings, log, extra)
    try:
        yield started
    finally:
        await started.process.stop()
        await delete_namespace(kafka)


@pytest.fixture
async def tight_registry(
    stack: Stack, database_settings: dict[str, DatabaseSettings], tmp_path: Path
) -> AsyncIterator[Running]:
    """The registry with a short body timeout and room for four connections at once."""
    settings = {"HTTP__BODY_TIMEOUT_S": "2", "HTTP__MAX_CONNECTIONS": "4"}
    async with registry_with(settings, stack, database_settings, tmp_path / "registry.log") as started:
        yield started


async def _connect(running: Running) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = httpx.URL(running.url)
    assert url.port is not None
    return await asyncio.open_connection(url.host, url.port)


async def test_a_body_that_trickles_in_is_refused_408_once_its_time_is_up(tight_registry: Running) -> None:
    registry = tight_registry
    person = arrival()
    body = json.dumps(person).encode()
    reader, writer = await _connect(registry)
    try:
        head = (
            f"POST /v1/arrivals HTTP/1.1\r\nHost: registry\r\nAuthorization: Bearer {registry.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        # Everything but the last byte, then nothing more: the body never completes.
        writer.write(head.encode() + body[:-1])
        await writer.drain()
        # To the end: the server closes the connection after this answer.
        answer = await asyncio.wait_for(reader.read(), timeout=60)
    finally:
        writer.close()

    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 408"), answer
    assert b"connection: close" in rest.lower()
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {"detail": "the request body did not arrive within 2 s"}
    async with httpx.AsyncClient(base_url=registry.url, headers=auth(registry.key), timeout=30) as client:
        found = await client.get("/v1/foreigners", params={"passport_number": person["passport"]["number"]})
    assert found.json()["items"] == []


async def test_a_client_refused_408_cannot_keep_its_connection_by_trickling(tight_registry: Running) -> None:
    registry = tight_registry
    reader, writer = await _connect(registry)
    head = (
        f"POST /v1/arrivals HTTP/1.1\r\nHost: registry\r\nAuthorization: Bearer {registry.key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 10\r\n\r\n"
    )
    writer.write(head.encode() + b"{")
    await writer.drain()
    refused = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=60)
    assert refused.startswith(b"HTTP/1.1 408"), refused

    async def trickle() -> None:
        # The rest of the body, then the start of a request whose header never ends, a byte a second: each
        # byte would put off the server's keep-alive timeout, for ever.
        with contextlib.suppress(OSError):
            writer.write(b"x" * 9 + b"GET /healthz HTTP/1.1\r\nHost: registry\r\nX-Slow: ")
            while True:
                await writer.drain()
                await asyncio.sleep(1)
                writer.write(b"a")

    trickling = asyncio.create_task(trickle())
    try:
        # The server ends the connection after its answer: reading reaches the end well before the timeout (or
        # the connection is reset, when a trickled byte reached the server after it had closed its side).
        try:
            rest = await asyncio.wait_for(reader.read(), timeout=30)
        except ConnectionResetError:
            rest = b""
    finally:
        trickling.cancel()
        writer.close()
    assert b"HTTP/1.1" not in rest  # nothing more was answered on it


async def test_connections_beyond_the_limit_are_answered_503_and_served_again_once_they_close(
    tight_registry: Running,
) -> None:
    registry = tight_registry
    # Three connections held open, saying nothing: with the fourth, the limit is reached.
    held = [await _connect(registry) for _ in range(3)]
    try:
        async with httpx.AsyncClient(base_url=registry.url, timeout=30) as client:
            refused = await client.get("/healthz")
    finally:
        for _, writer in held:
            writer.close()
            await writer.wait_closed()
    assert refused.status_code == 503

    async with httpx.AsyncClient(base_url=registry.url, timeout=30) as client:
        # The server notices the closed connections as it reads them: asked again until it has.
        answer = await client.get("/healthz")
        for _ in range(100):
            if answer.status_code == 200:
                break
            await asyncio.sleep(0.1)
            answer = await client.get("/healthz")
    assert answer.status_code == 200


@pytest.mark.parametrize("service", SERVICES)
async def test_requests_without_a_valid_key_are_limited_per_client_address(
    services: dict[str, Running], service: str
) -> None:
    running = services[service]
    _, path = _a_read(service)
    guesser, neighbour = from_address(), from_address()
    async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
        # An agency at work behind the address (an office's NAT) before someone there starts guessing.
        working = await client.get(path, headers=guesser | auth(running.key))
        refused = [
            (await client.get(path, headers=guesser | auth(f"guess-{n}"))).status_code
            for n in range(UNAUTHENTICATED_PER_MINUTE)
        ]
        limited = await client.get(path, headers=guesser | auth("one-more-guess"))
        # Once over, the address is refused any key not known to be good: a guesser learns nothing more this minute.
        unknown_key = await client.get(path, headers=guesser | auth(running.unused_key))
        # A key that authenticated lately still works from it: an agency behind the same NAT is not locked out.
        known_key = await client.get(path, headers=guesser | auth(running.key))
        elsewhere = await client.get(path, headers=neighbour)

    assert working.status_code == 200
    assert set(refused) == {401}
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json() == {"detail": "too many requests without a valid key from this address"}
    assert unknown_key.status_code == 429
    assert known_key.status_code == 200
    assert elsewhere.status_code == 401


async def test_requests_with_a_valid_key_do_not_count_against_their_address(services: dict[str, Running]) -> None:
    registry = services["registry"]
    address = from_address()
    async with httpx.AsyncClient(base_url=registry.url, timeout=60) as client:
        # All at once, more than the limit: none of them may be refused while the others' keys are looked up.
        answers = await asyncio.gather(
            *(
                client.get("/v1/accommodations", headers=address | auth(registry.key))
                for _ in range(UNAUTHENTICATED_PER_MINUTE + 30)
            )
        )
        wrong = await client.get("/v1/accommodations", headers=address | auth("not-a-key"))

    assert {answer.status_code for answer in answers} == {200}
    assert wrong.status_code == 401


def _a_read(service: str) -> tuple[str, str]:
    return {
        "registry": ("GET", "/v1/accommodations"),
        "alerts": ("GET", "/v1/alerts"),
        "sharing": ("GET", "/v1/agreement"),
    }[service]


@pytest.fixture
async def small_pool_registry(
    stack: Stack, database_settings: dict[str, DatabaseSettings], tmp_path: Path
) -> AsyncIterator[Running]:
    """The registry with one database connection and no overflow, and nothing else of its own using it."""
    settings = {"DATABASE__POOL_SIZE": "1", "DATABASE__MAX_OVERFLOW": "0"}
    async with registry_with(settings, stack, database_settings, tmp_path / "registry.log") as started:
        yield started


async def _admin(stack: Stack) -> asyncpg.Connection:
    url = make_url(stack.pg_admin_url).set(drivername="postgresql", database=TEST_DATABASE)
    connection: asyncpg.Connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    return connection


async def test_an_address_over_its_limit_is_refused_without_a_key_lookup(
    small_pool_registry: Running, stack: Stack
) -> None:
    registry = small_pool_registry
    guesser = from_address()
    admin = await _admin(stack)
    async with httpx.AsyncClient(base_url=registry.url, timeout=10) as client:
        for n in range(UNAUTHENTICATED_PER_MINUTE):
            assert (await client.get("/v1/accommodations", headers=guesser | auth(f"guess-{n}"))).status_code == 401
        try:
            # Every key lookup now waits for the lock: an answer at all means no lookup was made.
            async with admin.transaction():
                await admin.execute("LOCK TABLE registry.operators IN ACCESS EXCLUSIVE MODE")
                answers = await asyncio.gather(
                    *(client.get("/v1/accommodations", headers=guesser | auth(f"more-{n}")) for n in range(20))
                )
        finally:
            await admin.close()

    assert {answer.status_code for answer in answers} == {429}


async def test_a_flood_of_bad_keys_does_not_starve_authenticated_requests(
    small_pool_registry: Running, stack: Stack
) -> None:
    registry = small_pool_registry
    async with httpx.AsyncClient(base_url=registry.url, timeout=60) as client:

        async def bad(n: int) -> int:
            # Each from an address of its own, so that every one of them is looked up.
            return (await client.get("/v1/accommodations", headers=from_address() | auth(f"bad-{n}"))).status_code

        async def good() -> int:
            return (await client.get("/v1/accommodations", headers=from_address() | auth(registry.key))).status_code

        outcomes = await asyncio.gather(*(bad(n) for n in range(200)), *(good() for _ in range(20)))

    assert outcomes[:200] == [401] * 200
    assert outcomes[200:] == [200] * 20
    admin = await _admin(stack)

    async def none_held() -> bool:
        # The service's own work (its expiry pass at start) may be between two statements at any one look; a
        # connection kept past its lookup would stay so.
        held: int = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'timpora-registry' "
            "AND state = 'idle in transaction'"
        )
        return held == 0

    try:
        await until(none_held, what="no registry connection left idle in a transaction", timeout_s=30)
    finally:
        await admin.close()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security")
    ]


def _broken_path(path: str) -> str:
    """Every path parameter given a value no schema accepts."""
    return re.sub(r"\{[^}]+\}", "not-a-valid-value", path)


@pytest.mark.parametrize("service", SERVICES)
async def test_an_unauthenticated_request_is_told_401_before_anything_else(
    services: dict[str, Running], service: str
) -> None:
    running = services[service]
    async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
        document = (await client.get("/openapi.json")).json()
        operations = _operations(document)
        answers: dict[str, int] = {}
        for method, path, operation in operations:
            broken = {
                "If-Match": "not an etag",
                "Idempotency-Key": "k" * 500,
                "Content-Type": "application/json",
            }
            bodies: list[bytes | None] = [None]
            if "requestBody" in operation:
                bodies = [b'{"unfinished": ', b"\xff\xfe not utf-8", b"[]"]
            for body in bodies:
                for credentials in ({}, auth("not-a-key")):
                    answer = await client.request(
                        method,
                        _broken_path(path),
                        params={"limit": "-1", "cursor": "???", "after": "???", "status": "nonsense"},
                        content=body,
                        headers=broken | credentials | from_address(),
                    )
                    answers[f"{method} {path} {body!r} {bool(credentials)}"] = answer.status_code

    assert operations, "the document names no authenticated operation"
    assert {key: code for key, code in answers.items() if code != 401} == {}


async def test_an_authenticated_request_with_a_body_that_does_not_parse_is_told_so(
    services: dict[str, Running],
) -> None:
    registry = services["registry"]
    async with httpx.AsyncClient(base_url=registry.url, headers=auth(registry.key), timeout=30) as client:
        answer = await client.post(
            "/v1/arrivals", content=b'{"unfinished": ', headers={"Content-Type": "application/json"}
        )

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("permits", permit(issued_on="2026-11-01", expires_on="2026-10-01"), ["body", "expires_on"]),
        ("permits", permit(issued_on="2026-11-01", expires_on="2026-11-01"), ["body", "expires_on"]),
        (
            "permits/00000000-0000-0000-0000-000000000001/conversion",
            permit(issued_on="2026-11-01", expires_on="2026-10-01"),
            ["body", "expires_on"],
        ),
        (
            "passport",
            {
                "passport": {"number": "E7654321", "issuing_country": "CHN", "expires_on": "2026-01-01"},
                "renewed_on": "2026-11-01",
            },
            ["body", "renewed_on"],
        ),
        (
            "stays",
            {"accommodation_id": str(uuid.uuid4()), "provider": "Hotel", "check_in": "2026-11-05"},
            ["body", "provider"],
        ),
        ("stays", {"provider": "Hotel", "check_in": "2026-11-05"}, ["body", "village_code"]),
        (
            "stays",
            {"provider": "Hotel", "village_code": "35.26.01.1001", "check_in": "2026-11-05", "check_out": "2026-11-04"},
            ["body", "check_out"],
        ),
        ("ban", {"since": "2026-11-05", "until": "2026-11-05", "reference": "B-1"}, ["body", "until"]),
    ],
)
async def test_a_cross_field_rule_names_its_field(
    services: dict[str, Running], path: str, body: dict[str, Any], loc: list[str]
) -> None:
    registry = services["registry"]
    async with httpx.AsyncClient(base_url=registry.url, headers=auth(registry.key), timeout=30) as client:
        answer = await client.post(f"/v1/foreigners/{uuid.uuid4()}/{path}", json=body)

    assert answer.status_code == 422, answer.text
    assert [problem["loc"] for problem in answer.json()["detail"]] == [loc]


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"date_of_birth": "2026-11-01"}, ["body", "arrived_on"]),
        (
            {"passport": {"number": "E7654321", "issuing_country": "CHN", "expires_on": "2026-10-01"}},
            ["body", "arrived_on"],
        ),
        ({"previous_passport_number": "SAME1234"}, ["body", "previous_passport_number"]),
    ],
)
async def test_an_arrivals_cross_field_rules_name_their_fields(
    services: dict[str, Running], overrides: dict[str, Any], loc: list[str]
) -> None:
    registry = services["registry"]
    body = arrival(**overrides)
    if "previous_passport_number" in overrides:
        body["passport"]["number"] = overrides["previous_passport_number"]
    async with httpx.AsyncClient(base_url=registry.url, headers=auth(registry.key), timeout=30) as client:
        answer = await client.post("/v1/arrivals", json=body)

    assert answer.status_code == 422, answer.text
    assert [problem["loc"] for problem in answer.json()["detail"]] == [loc]
    assert all(str(value) not in answer.text for value in ("2026-10-01", "SAME1234"))
