"""Which group of a campaign a decision put the member in, read from its trace.

A member is reached by a campaign when one of its rules got past the campaign's own checks (the
window, the audience) to the holdout draw: `in_holdout` puts the member in the holdout, any later
outcome (fired, when_false, cap_reached, budget_exhausted, ...) in the treatment. Members outside
the rollout are in neither group, so the lift compares the two groups the draw made alike.
"""

from __future__ import annotations

from perkflow.rules.models import Scheme

from .evaluate import Decision

# Skips decided before the holdout draw (or, for an expression error, where it cannot be told).
_NOT_DRAWN = frozenset(
    {
        "other_campaign", "outside_window", "not_in_audience", "segment_unknown", "expression_error", "not_in_rollout",
        "out_of_scope", "after_exclusive",
    }
)


def campaign_rules(scheme: Scheme) -> dict[str, str]:
    """Rule id -> the id of the campaign it belongs to."""
    return {rule.id: campaign.id for campaign in scheme.campaigns for rule in campaign.rules}


def campaign_groups(owners: dict[str, str], decision: Decision) -> dict[str, str]:
    """Campaign id -> "treatment" or "holdout" for each campaign the decision's trace reached."""
    groups: dict[str, str] = {}
    for line in decision.trace:
        campaign = owners.get(line.rule)
        if campaign is not None and line.reason not in _NOT_DRAWN:
            groups.setdefault(campaign, "holdout" if line.reason == "in_holdout" else "treatment")
    return groups
