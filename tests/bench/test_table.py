"""The results table ``make bench`` writes into bench/README.md: one table, replaced by each run, saying for each
figure whether its target was met."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bench.common import TABLE_END, TABLE_START, Result, rewrite_table

WHEN = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def _result(name: str, ours: float, raw: float, target: float | None, *, lower: bool = False) -> Result:
    return Result(name, "events/s", ours, raw, "raw", target=target, lower_is_better=lower)


def test_a_run_replaces_the_previous_table_and_keeps_the_rest(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nHow to run them.\n\n## Analysis\n\nWhy.\n", encoding="utf-8")

    rewrite_table(readme, [_result("first", 1, 2, 0.4)], "python -m bench.run", WHEN)
    rewrite_table(readme, [_result("second", 1, 4, 0.5), _result("third", 3, 2, None)], "python -m bench.run", WHEN)

    text = readme.read_text(encoding="utf-8")
    assert text.count(TABLE_START) == text.count(TABLE_END) == 1
    assert "| first |" not in text
    assert "| second | 1.0 events/s | 4.0 events/s: raw | 0.25 | ratio ≥ 0.5 | **no** |" in text
    assert "| third | 3.0 events/s | 2.0 events/s: raw | 1.50 | — | — |" in text
    assert text.startswith("# Benchmarks\n")
    assert text.endswith("How to run them.\n\n## Analysis\n\nWhy.\n")
    assert "2026-12-05 10:00 UTC" in text


@given(
    ours=st.floats(0.001, 1e6),
    raw=st.floats(0.001, 1e6),
    target=st.floats(0.01, 10),
    lower=st.booleans(),
)
def test_a_target_is_met_exactly_when_the_ratio_is_on_its_side(
    ours: float, raw: float, target: float, *, lower: bool
) -> None:
    result = _result("x", ours, raw, target, lower=lower)
    assert result.met is ((ours / raw <= target) if lower else (ours / raw >= target))


@given(
    ours=st.floats(0.001, 1e6),
    raw=st.floats(0.001, 1e6),
    target=st.none() | st.floats(0.01, 10),
    ceiling=st.floats(0.001, 1e6),
)
def test_a_ceiling_is_met_only_with_ours_under_it_and_the_ratio_on_its_side(
    ours: float, raw: float, target: float | None, ceiling: float
) -> None:
    result = Result("memory", "MB", ours, raw, "raw", target=target, lower_is_better=True, ceiling=ceiling)
    ratio_met = target is None or ours / raw <= target
    assert result.met is (ours <= ceiling and ratio_met)
    assert f"ours ≤ {ceiling:g} MB" in result.target_text
