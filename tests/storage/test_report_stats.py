"""Student's t quantile, computed without a statistics library, against printed tables."""

from __future__ import annotations

import pytest

from perkflow.storage.reports.stats import t_quantile, welch


@pytest.mark.parametrize(("df", "quantile"), [(1, 12.706), (2, 4.303), (5, 2.571), (10, 2.228), (30, 2.042), (120, 1.980)])
def test_the_975_quantile_matches_the_table(df: float, quantile: float):
    assert round(t_quantile(0.975, df), 3) == quantile


def test_welch_needs_two_members_in_each_group_and_some_spread():
    assert welch(1, 5.0, 25.0, 10, 50.0, 260.0) is None
    assert welch(3, 6.0, 12.0, 3, 6.0, 12.0) is None  # neither group varies
    interval = welch(3, 6.0, 14.0, 3, 3.0, 5.0)
    assert interval is not None and interval.difference == 1.0 and interval.low < 1.0 < interval.high
