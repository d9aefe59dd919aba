"""An operator builds a whole scheme from an empty one with the forms alone, and submits it."""

from __future__ import annotations

from typing import Any

from nicegui.testing import User

from perkflow.service.core import Service

from .conftest import sign_in


def element(user: User, marker: str) -> Any:
    found = user.find(marker=marker).elements
    assert len(found) == 1, (marker, found)
    return next(iter(found))


async def fill(user: User, marker: str, value: Any) -> None:
    await user.should_see(marker=marker)
    element(user, marker).value = value


async def click(user: User, marker: str) -> None:
    await user.should_see(marker=marker)
    user.find(marker=marker).click()


async def open_tab(user: User, name: str) -> None:
    user.find(name).click()


async def test_an_operator_builds_a_scheme_from_empty_and_submits_it(user: User, svc: Service) -> None:
    await sign_in(user, "operator")
    await click(user, "new-empty")
    await user.should_see(marker="error-summary")

    await fill(user, "path:id", "tea-house")
    await fill(user, "path:name", "Tea House")
    await fill(user, "zh:name", "茶馆会员")

    await open_tab(user, "Tiers")
    await click(user, "add:tiers")
    await fill(user, "path:tiers.metric.balance", "points")
    for i, (tier, threshold) in enumerate([("basic", 0), ("gold", 500)]):
        await click(user, "add:tiers.levels")
        await fill(user, f"path:tiers.levels[{i}].id", tier)
        await fill(user, f"path:tiers.levels[{i}].name", tier.title())
        await fill(user, f"path:tiers.levels[{i}].threshold", threshold)

    await open_tab(user, "Rules")
    await click(user, "add:rules")
    await fill(user, "path:rules[0].id", "earn")
    await fill(user, "path:rules[0].on", "purchase")
    await fill(user, "path:rules[0].when", "event.amount >= 1000")
    await fill(user, "addkind:rules[0].then", "award")
    await click(user, "add:rules[0].then")
    await fill(user, "path:rules[0].then[0].award.balance", "points")
    await fill(user, "path:rules[0].then[0].award.amount", "event.amount / 100")

    await open_tab(user, "Coupons")
    await fill(user, "newkey:coupons", "welcome")
    await click(user, "add:coupons")
    await fill(user, "path:coupons.welcome.name", "Welcome 5 off")
    await fill(user, "kind:coupons.welcome.benefit", "amount_off")
    await fill(user, "path:coupons.welcome.benefit.amount", 500)
    await fill(user, "path:coupons.welcome.validity.days", 30)

    await open_tab(user, "Campaigns")
    await click(user, "add:campaigns")
    await fill(user, "path:campaigns[0].id", "double-december")
    await fill(user, "path:campaigns[0].name", "Double points in December")
    await fill(user, "path:campaigns[0].start", "2026-12-01T00:00:00")
    await fill(user, "path:campaigns[0].end", "2027-01-01T00:00:00")
    await fill(user, "path:campaigns[0].rollout", 0.5)
    await click(user, "add:campaigns[0].audience")
    await fill(user, "path:campaigns[0].audience.segments", ["at_risk", "important_win_back"])  # picked from the RFM segments
    await click(user, "add:campaigns[0].rules")
    await fill(user, "path:campaigns[0].rules[0].id", "double")
    await fill(user, "path:campaigns[0].rules[0].on", "purchase")
    await fill(user, "addkind:campaigns[0].rules[0].then", "award")
    await click(user, "add:campaigns[0].rules[0].then")
    await fill(user, "path:campaigns[0].rules[0].then[0].award.balance", "points")
    await fill(user, "path:campaigns[0].rules[0].then[0].award.amount", "event.amount / 100")

    await user.should_see("The scheme is valid.", retries=30)  # checked and saved as it is typed
    drafts = svc.drafts.list(by=svc.staff.session(None) or _operator(svc))
    assert not isinstance(drafts, Exception)

    await open_tab(user, "Submit for approval")
    await fill(user, "submit-comment", "first version of the tea house")
    await click(user, "submit")
    await user.should_see(marker="drafts-table", retries=30)
    versions = svc.versions.list()
    assert [(v.status, v.author, v.comment) for v in versions] == [("submitted", "user:operator", "first version of the tea house")]
    scheme = svc.versions.find(f"id:{versions[0].id}")
    assert not isinstance(scheme, Exception)
    content = scheme[1]
    for text in ('"tea-house"', '"茶馆会员"', '"gold"', '"event.amount >= 1000"', '"double-december"', '"rollout":0.5', '"welcome"', '"segments":["at_risk","important_win_back"]'):
        assert text in content, text


def _operator(svc: Service) -> Any:
    token = svc.staff.sign_in("operator", "correct horse battery")
    assert isinstance(token, tuple)
    return token[1]
