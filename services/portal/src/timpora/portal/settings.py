"""Settings of the portal, read from ``TIMPORA_PORTAL_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from timpora.common.register import register_file_setting
from timpora.common.settings import HttpSettings, ServiceSettings


class PortalSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="TIMPORA_PORTAL_", env_nested_delimiter="__", extra="ignore", populate_by_name=True
    )

    service_name: str = "portal"
    http: HttpSettings = HttpSettings(port=8004)
    #: The register of members (``TIMPORA_REGISTER_FILE``): an officer belongs to one of its agencies.
    register_file: Path = register_file_setting()
    #: A session left unused this long ends (the officer logs in again).
    session_idle_s: float = Field(default=30 * 60, gt=0)
    #: A session ends this long after its login, however busy.
    session_absolute_s: float = Field(default=12 * 3600, gt=0)
    #: Cookies are marked Secure (sent over TLS only). They are anyway on a request that came over https; set this
    #: when TLS ends at a proxy in front of the portal.
    secure_cookies: bool = False
    #: Wrong passwords (or codes) for one account within a minute before its logins are refused for the minute.
    failures_per_account: int = Field(default=5, ge=1)
    #: Wrong passwords from one address within a minute before its logins are refused for the minute (an office's
    #: officers share one address behind its router: higher than an account's).
    failures_per_address: int = Field(default=20, ge=1)
    #: The sharing service the agencies' pages read, for the officer logged in.
    sharing_url: str = "http://127.0.0.1:8003"
    #: The portal's key to it (``timpora-sharing portal-keys issue portal --operator YOU`` prints it). Without it the
    #: agencies' pages say the portal is not connected.
    sharing_key: SecretStr | None = None
    #: The alerts service: an agency's alerts, read and acted on for the officer logged in.
    alerts_url: str = "http://127.0.0.1:8002"
    #: The portal's key to it (``timpora-alerts portal-keys issue portal --operator YOU``).
    alerts_key: SecretStr | None = None
    #: The registry: immigration staff record the office's work through it (arrivals and residences so far).
    registry_url: str = "http://127.0.0.1:8001"
    #: The portal's key to it (``timpora-registry portal-keys issue portal --operator YOU``).
    registry_key: SecretStr | None = None
    #: The largest village report the portal takes (its photo and words). Larger than the alerts service's limit on
    #: the photo (``TIMPORA_ALERTS_REPORT_PHOTO_MAX_BYTES``, 6 MB by default) on purpose: a photo over that reaches
    #: the form, which says so beside the photo with the words kept, instead of a bare refusal.
    report_upload_max_bytes: int = Field(default=9 * 1024 * 1024, ge=64 * 1024, le=30 * 1024 * 1024)
    #: How long a page waits for the sharing service before saying it is unavailable.
    upstream_timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("sharing_key", "alerts_key", "registry_key", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        # docker-compose passes an unset key as an empty variable: that is no key, not a key "".
        return None if value == "" else value
