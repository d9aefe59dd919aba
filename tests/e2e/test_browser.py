"""End to end in a real browser: an operator builds a scheme from an empty one without typing any
YAML, previews it and submits it; an approver publishes it; an event posted through the API then
shows in the member's view with its trace. Screenshots of each main page, in English and Chinese,
are saved under artifacts/screenshots."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from playwright.sync_api import Browser, Page, expect

from .conftest import PASSWORD, Live

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b id="bold">bold</b>'


def sign_in(browser: Browser, live: Live, username: str) -> Page:
    page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
    page.goto(live.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


def field(page: Page, path: str) -> Any:
    # Quasar puts a field's attributes on its native input (QInput) or on its root (the others).
    return page.locator(f':is(input, textarea)[data-path="{path}"], [data-path="{path}"] :is(input, textarea)').first


def fill(page: Page, path: str, value: str) -> None:
    box = field(page, path)
    box.fill(value)
    box.blur()


def add(page: Page, path: str) -> None:
    page.locator(f'[data-add="{path}"]').click()


def choose(page: Page, attribute: str, path: str, option: str) -> None:
    page.locator(f'[data-{attribute}="{path}"]').click()
    page.get_by_role("option", name=option, exact=True).click()


def api(live: Live, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{live.url}/api/v1{path}", data=json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Bearer {live.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_an_operator_builds_previews_and_submits_an_approver_publishes_and_the_member_view_shows_the_trace(browser: Browser, live: Live) -> None:
    page = sign_in(browser, live, "operator")
    live.shot(page, "en-01-home")
    page.get_by_role("button", name="New empty scheme").click()
    expect(page.get_by_text("The scheme is valid.")).to_be_visible()
    fill(page, "id", "tea-house")
    fill(page, "name", "Tea House")
    page.locator('input[data-zh="name"]').fill("茶馆会员")

    page.get_by_role("tab", name="Balances").click()
    page.locator('input[data-newkey="balances"]').fill("growth")
    add(page, "balances")
    page.locator('[data-path="balances.growth.spendable"]').click()  # growth is earned, never spent

    page.get_by_role("tab", name="Tiers").click()
    add(page, "tiers")
    fill(page, "tiers.metric.balance", "growth")
    for i, (tier, threshold) in enumerate((("basic", "0"), ("gold", "500"))):
        add(page, "tiers.levels")
        fill(page, f"tiers.levels[{i}].id", tier)
        fill(page, f"tiers.levels[{i}].name", tier.title())
        fill(page, f"tiers.levels[{i}].threshold", threshold)

    page.get_by_role("tab", name="Rules").click()
    add(page, "rules")
    fill(page, "rules[0].id", "earn")
    fill(page, "rules[0].on", "purchase")
    fill(page, "rules[0].when", "event.amount >= 1000")
    expect(page.get_by_text("event.amount >= 1000")).to_have_count(0)  # a value, not a label
    add(page, "rules[0].then")
    fill(page, "rules[0].then[0].award.balance", "points")
    fill(page, "rules[0].then[0].award.amount", "event.amount / 100")
    add(page, "rules[0].then")
    fill(page, "rules[0].then[1].award.balance", "growth")
    fill(page, "rules[0].then[1].award.amount", "event.amount / 100")
    fill(page, "rules[0].when", "event.amount >= ")  # checked as it is typed, shown at the field
    message = page.locator('.q-field:has(input[data-path="rules[0].when"])')
    expect(message).to_contain_text("invalid syntax", timeout=10000)
    fill(page, "rules[0].when", "event.amount >= 1000")
    live.shot(page, "en-02-editor-rules")

    page.get_by_role("tab", name="Coupons").click()
    page.locator('input[data-newkey="coupons"]').fill("welcome")
    add(page, "coupons")
    fill(page, "coupons.welcome.name", "Welcome: 5 off")
    choose(page, "kind", "coupons.welcome.benefit", "amount_off")
    fill(page, "coupons.welcome.benefit.amount", "500")
    fill(page, "coupons.welcome.validity.days", "30")

    page.get_by_role("tab", name="Campaigns").click()
    add(page, "campaigns")
    fill(page, "campaigns[0].id", "double-december")
    fill(page, "campaigns[0].name", "Double points in December")
    fill(page, "campaigns[0].start", "2026-12-01T00:00:00")
    fill(page, "campaigns[0].end", "2027-01-01T00:00:00")
    fill(page, "campaigns[0].rollout", "0.5")
    add(page, "campaigns[0].rules")
    fill(page, "campaigns[0].rules[0].id", "double")
    fill(page, "campaigns[0].rules[0].on", "purchase")
    add(page, "campaigns[0].rules[0].then")
    fill(page, "campaigns[0].rules[0].then[0].award.balance", "points")
    fill(page, "campaigns[0].rules[0].then[0].award.amount", "event.amount / 100")
    expect(page.get_by_text("The scheme is valid.")).to_be_visible(timeout=15000)
    live.shot(page, "en-03-editor-campaign")

    page.get_by_role("tab", name="Preview").click()
    page.get_by_role("button", name="Run").first.click()
    expect(page.get_by_text("✔ earn: fired")).to_be_visible()
    live.shot(page, "en-04-preview")

    page.get_by_role("tab", name="YAML").click()
    expect(page.get_by_text("tea-house").first).to_be_visible()

    page.get_by_role("tab", name="Submit for approval").click()
    page.get_by_label("Comment").fill("The tea house, first version")
    page.get_by_role("button", name="Submit for approval").last.click()
    expect(page.get_by_text("submitted")).to_be_visible()

    approver = sign_in(browser, live, "approver")
    approver.goto(live.url + "/approvals")
    expect(approver.get_by_text("The tea house, first version")).to_be_visible()
    live.shot(approver, "en-05-approvals")
    approver.get_by_role("button", name="Publish now").click()
    expect(approver.get_by_text("Nothing is waiting for approval.")).to_be_visible()
    approver.goto(live.url + "/versions")
    expect(approver.get_by_text("user:operator").first).to_be_visible()
    live.shot(approver, "en-06-versions")

    api(live, "PUT", "/members/m-e2e", {"home_store": "s1"})
    decision = api(live, "POST", "/events", {
        "id": "e2e-1", "type": "purchase", "member_id": "m-e2e", "occurred_at": "2026-11-20T12:00:00+08:00", "attributes": {"amount": 12800},
    })
    assert decision["balances"]["points"] == 128

    support = sign_in(browser, live, "support")
    support.goto(live.url + "/members")
    support.get_by_label("Phone, email or member id").fill("m-e2e")
    support.get_by_role("button", name="Search").click()
    support.get_by_role("link", name="m-e2e").click()
    expect(support.get_by_text("128").first).to_be_visible()
    support.get_by_text("purchase · e2e-1").click()  # the event's decision, folded under it
    expect(support.get_by_text("✔ earn: fired")).to_be_visible()
    live.shot(support, "en-07-member")


def test_hostile_text_is_shown_as_text_in_the_browser(browser: Browser, live: Live) -> None:
    page = sign_in(browser, live, "operator")
    page.get_by_role("button", name="New empty scheme").click()
    expect(page.get_by_text("The scheme is valid.")).to_be_visible()
    page.get_by_label("Title").fill(HOSTILE)
    fill(page, "name", HOSTILE)
    fill(page, "description", HOSTILE)
    expect(page.get_by_text(re.compile(r"Saved · r[2-9]"))).to_be_visible(timeout=10000)
    page.get_by_role("tab", name="YAML").click()
    page.goto(live.url + "/")
    expect(page.get_by_text(HOSTILE).first).to_be_visible()  # the title, as text in the table
    page.get_by_text(HOSTILE).first.click()
    page.get_by_role("tab", name="YAML").click()
    expect(page.get_by_text("window.pwned", exact=False).first).to_be_visible()
    assert page.evaluate("window.pwned") is None
    assert page.locator("#bold").count() == 0


def test_the_editor_sends_security_headers_and_a_strict_cookie(browser: Browser, live: Live) -> None:
    page = sign_in(browser, live, "support")
    response = page.goto(live.url + "/members")
    assert response is not None
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"] and "object-src 'none'" in headers["content-security-policy"]
    assert (headers["x-frame-options"], headers["x-content-type-options"], headers["referrer-policy"]) == ("DENY", "nosniff", "same-origin")
    cookie = next(c for c in page.context.cookies() if c["name"] == "perkflow_editor")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_every_main_page_in_english_and_chinese(browser: Browser, live: Live) -> None:
    page = sign_in(browser, live, "admin")
    pages = [("home", "/"), ("editor", "/drafts/1"), ("approvals", "/approvals"), ("versions", "/versions"),
             ("members", "/members"), ("member", "/members/m-e2e"), ("event", "/events?id=e2e-1"), ("audit", "/audit"),
             ("users", "/users"), ("report-flows", "/reports/flows"), ("report-tiers", "/reports/tiers"), ("report-liability", "/reports/liability"),
             ("report-campaigns", "/reports/campaigns"), ("report-retention", "/reports/retention"), ("report-rfm", "/reports/rfm")]
    for language, switch_to in (("en", "中文"), ("zh", None)):
        for name, path in pages:
            page.goto(live.url + path)
            page.wait_for_load_state("networkidle")
            live.shot(page, f"{language}-page-{name}")
        if switch_to:
            page.locator(".q-header .q-select").click()
            page.get_by_role("option", name=switch_to).click()
            expect(page.get_by_role("button", name="退出")).to_be_visible()
    expect(page.get_by_text("审计日志").first).to_be_visible()
