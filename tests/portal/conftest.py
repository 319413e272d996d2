"""The portal against the real PostgreSQL: its app in the test's loop, a browser-like client, officers made by the
operator's own command."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from playwright.async_api import Browser, Page, async_playwright
from pydantic import SecretStr
from sqlalchemy import func, select

from tests.alerts.conftest import AlertsUnderTest
from tests.registry.conftest import registry_settings
from tests.support.clock import ManualClock
from tests.support.factories import sample_event
from tests.support.processes import free_port
from timpora.alerts import access as alerts_access
from timpora.common import register
from timpora.common.events import CloudEvent, new_event
from timpora.common.events.payloads import (
    Contract,
    ForeignerSnapshot,
    ForeignerUpdated,
    Permit,
    PermitStatus,
    PermitType,
    Residence,
)
from timpora.common.service import ServiceRuntime
from timpora.common.settings import DatabaseSettings, KafkaSettings
from timpora.portal.commands import officers
from timpora.portal.main import SERVICE
from timpora.portal.settings import PortalSettings
from timpora.registry import access as registry_access
from timpora.registry.main import SERVICE as REGISTRY
from timpora.registry.models import foreigners
from timpora.registry.operators import add_operator
from timpora.sharing import access, projection
from timpora.sharing.main import SERVICE as SHARING
from timpora.sharing.settings import SharingSettings

START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
LAJING, AROSBAYA = "35.26.05.2003", "35.26.05.2004"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: A password that passes the rules.
GOOD_PASSWORD = "garam-madura-2026!"  # noqa: S105 - a test's


def csrf_of(page: Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


async def officers_command(settings: PortalSettings, *argv: str) -> tuple[int, str]:
    """``timpora-portal officers ARGV``, as an operator runs it: its exit code and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = await officers(settings, list(argv))
    return code, out.getvalue()


@dataclass
class Portal:
    runtime: ServiceRuntime
    settings: PortalSettings
    clock: ManualClock
    app: object
    #: Each test's browsers come from an address of its own: the throttle per address sees this test's alone.
    address: str = field(default_factory=lambda: "10." + ".".join(str(byte) for byte in uuid.uuid4().bytes[:3]))

    def browser(self, *, https: bool = False) -> AsyncClient:
        transport = ASGITransport(app=self.app, client=(self.address, 50_000))  # type: ignore[arg-type]
        return AsyncClient(transport=transport, base_url="https://portal" if https else "http://portal")

    async def command(self, *argv: str) -> tuple[int, str]:
        return await officers_command(self.settings, *argv)

    async def officer(
        self, agency: str = "pemkab-bangkalan", role: str = "officer", *, name: str | None = None
    ) -> tuple[str, str]:
        """A new officer's username (``name``, else a new one) and one-time password."""
        username = name or f"{role}-{uuid.uuid4().hex[:8]}"
        code, printed = await self.command("add", agency, username, "--role", role, "--operator", "the test")
        assert code == 0
        return username, printed.strip()

    async def log_in(self, browser: AsyncClient, username: str, password: str) -> Response:
        page = await browser.get("/login")
        return await browser.post(
            "/login", data={"username": username, "password": password, "csrf_token": csrf_of(page)}
        )

    async def ready(self, browser: AsyncClient, agency: str = "pemkab-bangkalan", role: str = "officer") -> str:
        """An officer of ``agency`` logged in on ``browser``, their first password changed; their username."""
        username, one_time = await self.officer(agency, role)
        assert (await self.log_in(browser, username, one_time)).headers["location"] == "/password"
        form = await browser.get("/password")
        changed = await browser.post(
            "/password",
            data={"new_password": GOOD_PASSWORD, "new_password_again": GOOD_PASSWORD, "csrf_token": csrf_of(form)},
        )
        assert changed.status_code == 303, changed.text
        return username


@pytest.fixture
async def portal(database_settings: dict[str, DatabaseSettings]) -> AsyncIterator[Portal]:
    async for started in started_portal(PortalSettings(database=database_settings["portal"])):
        yield started


async def started_portal(settings: PortalSettings) -> AsyncIterator[Portal]:
    clock = ManualClock(START)
    app = SERVICE.create_app(settings, clock=clock)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        yield Portal(runtime=app.state.runtime, settings=settings, clock=clock, app=app)


@contextlib.asynccontextmanager
async def served(app: FastAPI, *, started: bool = False) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free port of loopback, its start and stop included (unless ``started``: a test
    started it already): its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off" if started else "auto"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def resident(village: str, *, name: str, expires_in_days: int) -> CloudEvent[Contract]:
    """A registry event about a new person living in ``village`` on an ITAS, as the sharing service projects it."""
    base = sample_event(jurisdiction=village)
    snapshot: ForeignerSnapshot = base.data.foreigner  # type: ignore[attr-defined]
    expires_on = START.date() + timedelta(days=expires_in_days)
    permit = Permit(
        permit_id=uuid.uuid4(),
        number="ITAS" + uuid.uuid4().hex[:8].upper(),
        type=PermitType.ITAS,
        issued_on=expires_on - timedelta(days=300),
        expires_on=expires_on,
        status=PermitStatus.ACTIVE,
    )
    residence = Residence(address="Jl. Raya Lajing 1", village_code=village, since=expires_on - timedelta(days=200))
    data = ForeignerUpdated(
        foreigner=snapshot.model_copy(
            update={"version": 2, "full_name": name, "permit": permit, "residence": residence}
        ),
        jurisdiction=village,
        changed_fields=["residence", "permit"],
    )
    # Recorded the day before the portal's and the sharing service's clock (START): in every count as of START.
    return new_event(data, source="/timpora/registry", subject=base.subject, time=START - timedelta(days=1))


@dataclass
class WithData:
    """The portal reading a real sharing service (served over HTTP) that holds two people of this test's own."""

    portal: Portal
    sharing: ServiceRuntime
    sharing_url: str
    #: This test's people: their names (unique to the test) and ids.
    lajing: tuple[str, str]
    arosbaya: tuple[str, str]
    tag: str


@pytest.fixture
async def with_data(
    request: pytest.FixtureRequest, kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]
) -> AsyncIterator[WithData]:
    sharing_settings = SharingSettings(kafka=kafka_settings, database=database_settings["sharing"])
    # The sharing service's own clock at the portal's: days to expiry, and so the screenshots, do not move daily.
    sharing_app = SHARING.create_app(sharing_settings, clock=ManualClock(START))
    # The test's own (each test run has a database of its own): the same from run to run, so its screenshots are.
    tag = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:6]
    people = {
        "lajing": resident(LAJING, name=f"Li Wei {tag}", expires_in_days=20),
        "arosbaya": resident(AROSBAYA, name=f"Anna Schmidt {tag}", expires_in_days=-5),
    }
    async with served(sharing_app) as sharing_url:
        runtime: ServiceRuntime = sharing_app.state.runtime
        async with runtime.sessions() as session, session.begin():
            in_force = list(register.load(register.DEFAULT_REGISTER).agreements.values())
            for event in people.values():
                await projection.apply(session, event, in_force, START, kafka_settings.catalog)
            _, key = await access.PORTAL_KEYS.issue(session, "portal")
        settings = PortalSettings(
            database=database_settings["portal"], sharing_url=sharing_url, sharing_key=SecretStr(key)
        )
        async for started in started_portal(settings):
            yield WithData(
                portal=started,
                sharing=runtime,
                sharing_url=sharing_url,
                lajing=(f"Li Wei {tag}", str(people["lajing"].subject)),
                arosbaya=(f"Anna Schmidt {tag}", str(people["arosbaya"].subject)),
                tag=tag,
            )


#: Debian's Chromium (``make test`` installs it when missing); Playwright's own browser download cannot work here.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: As the machine's closed network needs: no background connections, no first-run or update checks.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is not installed at {CHROMIUM}: make test installs it (make browser)")
        pytest.skip("Chromium is not installed (make browser installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def first_login(page: Page, url: str, username: str, one_time: str) -> None:
    await page.goto(f"{url}/login")
    await page.get_by_label("Nama pengguna").fill(username)
    await page.get_by_label("Kata sandi").fill(one_time)
    await page.get_by_role("button", name="Masuk").click()
    await page.wait_for_url(f"{url}/password")
    await page.get_by_label("Kata sandi baru", exact=True).fill(GOOD_PASSWORD)
    await page.get_by_label("Ulangi kata sandi baru").fill(GOOD_PASSWORD)
    await page.get_by_role("button", name="Simpan kata sandi").click()


async def second_factor(page: Page, url: str, clock: ManualClock) -> None:
    """Enrols the TOTP second factor an immigration officer (or operator) must have, as the page shows its key."""
    await page.wait_for_url(f"{url}/totp")
    secret = (await page.locator("#totp-secret").inner_text()).strip()
    await page.get_by_label("Kode 6 angka").fill(pyotp.TOTP(secret).at(clock.now()))
    await page.get_by_role("button", name="Verifikasi").click()
    await page.wait_for_url(f"{url}/?totp=1")


async def enrolled(
    portal: Portal, browser: AsyncClient, agency: str = "kanim-pamekasan", role: str = "immigration"
) -> str:
    """An officer who must use a second factor, logged in on ``browser`` with it enrolled; their username."""
    username = await portal.ready(browser, agency, role)
    enrol = await browser.get("/totp")
    secret = re.search(r'name="secret" value="([A-Z2-7]+)"', enrol.text)
    assert secret is not None
    code = pyotp.TOTP(secret.group(1)).at(portal.clock.now())
    done = await browser.post("/totp", data={"secret": secret.group(1), "code": code, "csrf_token": csrf_of(enrol)})
    assert done.status_code == 303, done.text
    return username


@dataclass
class Desk:
    portal: Portal
    registry: Any  # the registry's runtime
    registry_url: str

    async def people(self) -> int:
        async with self.registry.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(foreigners)) or 0)

    async def version(self, foreigner_id: str) -> int:
        async with self.registry.sessions() as session:
            return int(await session.scalar(select(foreigners.c.version).where(foreigners.c.id == foreigner_id)) or 0)

    @contextlib.asynccontextmanager
    async def staff(self) -> AsyncIterator[AsyncClient]:
        """The registry's API as one of its own operators (every office's area: the register has one office)."""
        async with self.registry.sessions() as session, session.begin():
            token = await add_operator(session, f"loket-{uuid.uuid4().hex[:6]}")
        async with AsyncClient(base_url=self.registry_url, headers={"Authorization": f"Bearer {token}"}) as client:
            yield client


@pytest.fixture
async def desk(kafka_settings: KafkaSettings, database_settings: dict[str, DatabaseSettings]) -> AsyncIterator[Desk]:
    """Registry (its relay running), sharing (its projection consuming) and the portal, on the test's clocks."""
    registry_app = REGISTRY.create_app(
        registry_settings(kafka_settings, database_settings["registry"], relay=True), clock=ManualClock(START)
    )
    sharing_app = SHARING.create_app(
        SharingSettings(kafka=kafka_settings, database=database_settings["sharing"]), clock=ManualClock(START)
    )
    async with served(registry_app) as registry_url, served(sharing_app) as sharing_url:
        async with registry_app.state.runtime.sessions() as session, session.begin():
            _, registry_key = await registry_access.PORTAL_KEYS.issue(session, "portal")
        async with sharing_app.state.runtime.sessions() as session, session.begin():
            _, sharing_key = await access.PORTAL_KEYS.issue(session, "portal")
        settings = PortalSettings(
            database=database_settings["portal"],
            registry_url=registry_url,
            registry_key=SecretStr(registry_key),
            sharing_url=sharing_url,
            sharing_key=SecretStr(sharing_key),
        )
        async for portal in started_portal(settings):
            yield Desk(portal=portal, registry=registry_app.state.runtime, registry_url=registry_url)


async def on_alerts(service: AlertsUnderTest, database_settings: dict[str, DatabaseSettings]) -> AsyncIterator[Portal]:
    """The portal reading and acting through the real alerts service (served over HTTP), with its own portal key."""
    async with service.runtime.sessions() as session, session.begin():
        _, key = await alerts_access.PORTAL_KEYS.issue(session, "portal")
    async with served(service.app, started=True) as alerts_url:
        settings = PortalSettings(
            database=database_settings["portal"], alerts_url=alerts_url, alerts_key=SecretStr(key)
        )
        async for started in started_portal(settings):
            yield started


async def registry_away(database_settings: dict[str, DatabaseSettings]) -> AsyncIterator[Portal]:
    """The portal with a key to a registry that does not answer (nothing listens where it is said to be)."""
    settings = PortalSettings(
        database=database_settings["portal"],
        registry_url=f"http://127.0.0.1:{free_port()}",
        registry_key=SecretStr("trp_x"),
    )
    async for started in started_portal(settings):
        yield started
