"""API keys of the alerts service: agency keys (``tak_...``, an agency's own alerts) and operator keys
(``tao_...``, the directory, routing decisions, deliveries and replays)."""

from __future__ import annotations

from timpora.alerts.models import agency_keys, operator_keys, portal_keys
from timpora.common.access import KeyStore

AGENCY_KEYS = KeyStore(agency_keys, holder="agency_id", prefix="tak_")
OPERATOR_KEYS = KeyStore(operator_keys, holder="operator", prefix="tao_")
#: The officers' portal's keys (``tap_...``): it acts for the agency and officer each request names.
PORTAL_KEYS = KeyStore(portal_keys, holder="portal", prefix="tap_")
