"""The officers' portal's keys to the registry (``trp_...``): each request names the immigration office and the officer
it is for, and acts as that officer of that office (timpora.registry.api.deps.get_operator). Staff without the portal
use their own operator token (timpora.registry.operators)."""

from __future__ import annotations

from timpora.common.access import KeyStore
from timpora.registry.models import portal_keys

PORTAL_KEYS = KeyStore(portal_keys, holder="portal", prefix="trp_")
