"""A group as it is sent, whatever notices it holds: every notice exactly once (in full or by id), the most
urgent shown first up to the cap, a summary that adds up, a subject that says how many, the e-mail's list complete."""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from timpora.alerts.domain import notices

_RANK = {"critical": 0, "warning": 1, "info": 2}
_KIND = {"escalation": 0, "alert": 1, "resolved": 2}


@st.composite
def _notice(draw: st.DrawFn) -> dict[str, Any]:
    alert_id = uuid.UUID(int=draw(st.integers(min_value=0, max_value=2**128 - 1)))
    kind = draw(st.sampled_from(sorted(_KIND)))
    event_type = draw(st.sampled_from(["permit.expired", "permit.expiring", "foreigner.arrived", "permit.revoked"]))
    return {
        "message_id": str(alert_id if kind == "alert" else uuid.uuid5(alert_id, kind)),
        "message": kind,
        "alert_id": str(alert_id),
        "agency_id": "polres-bangkalan",
        "event": {"id": str(uuid.uuid4()), "type": event_type, "time": "2026-12-05T01:00:00+00:00"},
        "severity": draw(st.sampled_from(sorted(_RANK))),
        "place": "35.26.05.2003",
        "title": {"id": "Judul", "en": "Title"},
        "person": {"foreigner_id": str(uuid.uuid4()), "full_name": draw(st.sampled_from(["Li Wei", "Anna Berg"]))},
        "details": {},
    }


def _urgency(notice: dict[str, Any]) -> tuple[bool, int, int]:
    """Resolutions after everything still open; then by severity, an escalation before a new alert."""
    return notice["message"] == "resolved", _RANK[notice["severity"]], _KIND[notice["message"]]


@given(
    held=st.lists(_notice(), min_size=1, max_size=60, unique_by=lambda notice: notice["message_id"]),
    cap=st.integers(min_value=1, max_value=80),
)
def test_every_notice_is_in_a_group_once_and_the_most_urgent_are_shown(held: list[dict[str, Any]], cap: int) -> None:
    stored = notices.group_message(message_id=uuid.uuid4(), agency_id="polres-bangkalan", notices=held)
    sent = notices.as_sent(stored, cap)

    ids = [notice["message_id"] for notice in held]
    shown = [notice["message_id"] for notice in sent["alerts"]]
    counted = [entry["message_id"] for entry in sent["not_shown"]]
    assert Counter(sent["notice_ids"]) == Counter(ids)
    assert Counter(shown + counted) == Counter(ids)
    assert len(shown) == min(cap, len(held))
    assert all("person" not in entry for entry in sent["not_shown"])
    if sent["not_shown"]:
        least_urgent_shown = max(_urgency(notice) for notice in sent["alerts"])
        most_urgent_counted = min(
            (entry["message"] == "resolved", _RANK[entry["severity"]], _KIND[entry["message"]])
            for entry in sent["not_shown"]
        )
        assert least_urgent_shown <= most_urgent_counted
    summary = sent["summary"]
    assert (summary["total"], summary["shown"], summary["not_shown"]) == (len(held), len(shown), len(counted))
    assert sum(entry["count"] for entry in summary["by_type"]) == len(held)
    ranks = [(entry["message"] == "resolved", _RANK[entry["severity"]]) for entry in summary["by_type"]]
    assert ranks == sorted(ranks)

    mail = notices.email(sent, ZoneInfo("Asia/Jakarta"))
    subject = " ".join(mail.subject.split())
    if len(held) > 1:
        assert subject.startswith(f"[TIMPORA] {len(held)} pemberitahuan: ")
        assert len(subject) <= 110  # a phone shows the first words: Indonesian only, two kinds at most
    else:
        assert subject.startswith("[TIMPORA] ")  # a message of one reads as that notice
        assert subject.endswith(
            "Judul / Escalation, not yet acknowledged: Title"
            if held[0]["message"] == "escalation"
            else "Judul / Resolved: Title"
            if held[0]["message"] == "resolved"
            else "Judul / Title"
        )
    (name, listed), *_ = mail.attachments
    assert name == "pemberitahuan.csv"
    rows = list(csv.DictReader(io.StringIO(listed)))
    assert Counter(row["message_id"] for row in rows) == Counter(ids)
    assert sorted(row["message_id"] for row in rows if row["shown"] == "yes") == sorted(shown)
    if counted:
        assert f"{len(counted)} more not shown — see the alerts list." in mail.text
    else:
        assert "not shown" not in mail.text


def test_a_message_that_is_not_a_group_is_sent_as_it_is() -> None:
    notice = {"message_id": str(uuid.uuid4()), "message": "alert", "title": {"id": "a", "en": "b"}}
    assert notices.as_sent(notice, 1) == notice
