"""Agency API keys of the sharing service (``tsk_...``), kept as :mod:`timpora.common.access` keeps every key."""

from __future__ import annotations

from timpora.common.access import KeyStore
from timpora.sharing.models import api_keys, portal_keys

KEYS = KeyStore(api_keys, holder="agency_id", prefix="tsk_")
#: The portal's keys (``tsp_...``): it acts for the agency and officer each request names.
PORTAL_KEYS = KeyStore(portal_keys, holder="portal", prefix="tsp_")
