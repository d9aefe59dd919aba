"""The editor as its users meet it (NiceGUI's simulated user over a real service on SQLite)."""

from __future__ import annotations

from pathlib import Path

from nicegui import ui
from nicegui.testing import User

from perkflow.service.core import Service, open_service
from perkflow.service.drafts import EMPTY_SCHEME
from perkflow.service.problems import Problem
from perkflow.service.staff import Staff
from perkflow.service.workbench import Workbench

from ..databases import Clock, publish
from .conftest import PASSWORD, sign_in
from .test_build_scheme import click, element, fill

SCHEME = """
id: club
name: {en: Club, zh-CN: 俱乐部}
balances:
  points: {}
rules:
  - id: earn
    on: purchase
    when: event.amount >= 1000
    then:
      - award: {balance: points, amount: "event.amount / 100"}
"""
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="alert(1)"><b>bold</b>'


def staff(svc: Service, username: str) -> Staff:
    signed = svc.staff.sign_in(username, PASSWORD)
    assert isinstance(signed, tuple), signed
    return signed[1]


async def test_signing_in_needs_the_right_password_and_five_failures_lock_the_account(user: User, svc: Service) -> None:
    for _ in range(4):
        await user.open("/login")
        user.find("Username").type("operator")
        user.find("Password").type("wrong password!")
        user.find("Sign in").click()
        await user.should_see("Wrong username or password.", retries=50)
    user.find("Password").type("still wrong")
    user.find("Sign in").click()
    await user.should_see("Too many failed sign-ins", retries=50)
    locked = svc.staff.sign_in("operator", PASSWORD)  # even the right password, while locked
    assert not isinstance(locked, tuple) and locked.reason == "locked"


async def test_pages_need_a_session_and_the_role_for_them(user: User, svc: Service) -> None:
    await user.open("/approvals")
    await user.should_see("Sign in")  # redirected: no session
    await sign_in(user, "support")
    for page in ("/approvals", "/versions", "/audit", "/drafts/1"):
        await user.open(page)
        await user.should_see(marker="not-allowed")
    await user.open("/members")
    await user.should_see(marker="member-query")


async def test_a_revoked_session_ends_at_the_next_page(user: User, svc: Service) -> None:
    await sign_in(user, "operator")
    admin = staff(svc, "admin")
    assert svc.staff.revoke_sessions("operator", by=admin) >= 1
    await user.open("/")
    await user.should_see("Sign in")


async def test_a_draft_survives_a_server_restart_mid_edit(user: User, svc: Service, tmp_path: Path) -> None:
    await sign_in(user, "operator")
    await click(user, "new-empty")
    await fill(user, "path:id", "kept-after-restart")
    await user.should_see("r2", retries=30)  # autosaved
    drafts = svc.drafts.list(by=staff(svc, "operator"))
    assert not isinstance(drafts, Problem)
    draft_id = drafts[0].id
    # A new process on the same database file: what was typed is there.
    restarted = open_service(str(svc.engine.url), tmp_path / "data", clock=Clock())
    reopened = restarted.drafts.get(draft_id, by=staff(restarted, "operator"))
    assert not isinstance(reopened, Problem) and reopened.content["id"] == "kept-after-restart"
    restarted.engine.dispose()


async def test_two_people_editing_one_draft_are_told_not_overwritten(user: User, svc: Service) -> None:
    operator = staff(svc, "operator")
    admin = staff(svc, "admin")
    draft = svc.drafts.create("shared", dict(EMPTY_SCHEME), by=operator)
    assert not isinstance(draft, Problem)
    await sign_in(user, "operator")
    await user.open(f"/drafts/{draft.id}")
    await user.should_see(marker="path:id")
    saved = svc.drafts.save(draft.id, dict(EMPTY_SCHEME) | {"id": "admins-version"}, draft.revision, by=admin)  # someone else saves first
    assert not isinstance(saved, Problem)
    await fill(user, "path:id", "operators-version")
    await user.should_see(marker="conflict", retries=30)
    await user.should_see("user:admin saved this draft")
    kept = svc.drafts.get(draft.id, by=admin)
    assert not isinstance(kept, Problem) and kept.content["id"] == "admins-version"


async def test_hostile_text_in_names_is_kept_as_data_and_no_page_renders_markup(user: User, svc: Service) -> None:
    await sign_in(user, "operator")
    await click(user, "new-empty")
    await fill(user, "draft-title", HOSTILE)
    await fill(user, "path:name", HOSTILE)
    await fill(user, "path:description", HOSTILE)
    await user.should_see("r2", retries=30)
    await user.open("/")
    assert element(user, "drafts-table").rows[0]["title"] == HOSTILE  # a table cell's text
    await user.open("/drafts/1")
    assert element(user, "path:name").value == HOSTILE  # an input's value
    # Only ui.html and ui.markdown would turn text into markup; the editor never uses them.
    assert not [e for e in user.find(kind=ui.element).elements if isinstance(e, ui.html | ui.markdown)]


async def test_an_approver_publishes_what_an_operator_submitted_and_not_their_own(user: User, svc: Service) -> None:
    version = svc.versions.submit(SCHEME, author="user:operator", comment="first")
    assert not isinstance(version, Problem)
    await sign_in(user, "approver")
    await user.open("/approvals")
    await user.should_see(marker=f"waiting-{version.id}")
    await user.should_see("first")
    click_approve = user.find(marker="approve")
    click_approve.click()
    await user.should_see(marker="nothing-waiting", retries=30)
    assert [(v.number, v.status, v.approver) for v in svc.versions.list()] == [(1, "published", "user:approver")]


async def test_support_finds_a_member_reads_the_trace_and_adjusts_with_a_reason(user: User, svc: Service) -> None:
    publish(svc, SCHEME)
    svc.members.put("m-42", {"home_store": "s1", "phone": "13800138000"}, actor="test")
    for number, amount in enumerate((500, 2500), 1):
        result = svc.events.post({"id": f"p{number}", "type": "purchase", "member_id": "m-42", "occurred_at": f"2026-11-20T1{number}:00:00+08:00", "attributes": {"amount": amount}})
        assert not isinstance(result, Problem), result
    await sign_in(user, "support")
    await user.open("/members")
    await fill(user, "member-query", "13800138000")
    await click(user, "member-search")
    await user.should_see(marker="member-link")
    await user.open("/members/m-42")
    await user.should_see(marker="member-balances")
    await user.should_see("25")
    await user.should_see("earn: skipped · when_false")  # why p1 earned nothing: the trace says
    await fill(user, "adjust-amount", 10)
    await click(user, "adjust-apply")
    await user.should_see("Reason", retries=5)
    adjusted = svc.members.get("m-42")
    assert not isinstance(adjusted, Problem) and adjusted["balances"]["points"] == 25  # no reason: nothing changed
    await fill(user, "adjust-reason", "goodwill")
    await click(user, "adjust-apply")
    await user.should_see("35", retries=30)


async def test_the_language_is_chosen_per_user(user: User, svc: Service) -> None:
    await sign_in(user, "operator")
    await user.should_see("New empty scheme")
    element(user, "language").value = "zh-CN"
    await user.should_see("新建空白方案", retries=30)
    operator = staff(svc, "operator")
    assert operator.locale == "zh-CN"



async def test_an_admin_creates_a_user_who_must_choose_a_password(user: User, svc: Service) -> None:
    await sign_in(user, "admin")
    await user.open("/users")
    await fill(user, "new-user", "li.na")
    await fill(user, "new-user-roles", ["operator"])
    await click(user, "create-user")
    await user.should_see(marker="one-time-password", retries=30)
    one_time = [e.text for e in user.find(kind=ui.label).elements if e.classes and "font-mono" in e.classes][0]
    signed = svc.staff.sign_in("li.na", one_time)
    assert isinstance(signed, tuple) and signed[1].must_change_password and signed[1].roles == {"operator"}


async def test_only_admins_reach_users_and_keys(user: User, svc: Service) -> None:
    await sign_in(user, "auditor")
    await user.open("/users")
    await user.should_see(marker="not-allowed")
    await user.open("/audit")
    await user.should_see(marker="audit-table")


async def test_a_chinese_speaking_operator_gets_chinese_labels_hints_and_errors(user: User, svc: Service) -> None:
    from perkflow.builder_ui.hints_zh import HINTS_ZH

    operator = staff(svc, "operator")
    svc.staff.set_locale(operator, "zh-CN")
    draft = svc.drafts.create("zh", dict(EMPTY_SCHEME) | {"currency": "yuan"}, by=operator)
    assert not isinstance(draft, Problem)
    await sign_in(user, "operator")
    await user.open(f"/drafts/{draft.id}")
    timezone = element(user, "path:timezone")
    assert timezone.props["label"] == "时区" and timezone.props["hint"].startswith(HINTS_ZH["Scheme.timezone"])
    assert element(user, "path:currency").error.startswith("格式不正确：")  # the kind in Chinese, then the loader's words
    await user.should_see("提交前需修正 1 个错误")


async def test_support_sees_masked_personal_data_and_reveals_it_only_with_a_reason(user: User, svc: Service) -> None:
    publish(svc, SCHEME)
    svc.members.put("m-7", {"phone": "13800138000", "email": "li@example.com"}, actor="test")
    await sign_in(user, "support")
    await user.open("/members/m-7")
    await user.should_see("phone: 138****8000")
    await user.should_see("email: l***@example.com")
    await click(user, "reveal")
    await user.should_see("phone: 138****8000")  # no reason: nothing shown, nothing audited
    await fill(user, "personal-reason", "member called about a lost card")
    await click(user, "reveal")
    await user.should_see("phone: +8613800138000", retries=30)
    # The reveal is in the audit log, with its reason and without the number.
    rows = Workbench(svc).audit(staff(svc, "auditor"), action="personal_data_revealed")
    assert not isinstance(rows, Problem) and len(rows) == 1 and "lost card" in rows[0]["detail"] and "13800138000" not in rows[0]["detail"]


async def test_the_member_view_says_what_the_member_still_needs(user: User, svc: Service) -> None:
    publish(svc, SCHEME.replace("balances:\n  points: {}", "balances:\n  points: {}\ntiers:\n  metric: {balance: points}\n  levels:\n    - {id: basic, name: Basic, threshold: 0}\n    - {id: gold, name: Gold, threshold: 100}"))
    svc.members.put("m-8", {}, actor="test")
    assert not isinstance(svc.events.post({"id": "g1", "type": "purchase", "member_id": "m-8", "occurred_at": "2026-11-20T10:00:00+08:00", "attributes": {"amount": 3000}}), Problem)
    await sign_in(user, "support")
    await user.open("/members/m-8")
    await user.should_see(marker="progress")
    await user.should_see("70 more")


async def test_support_holds_a_members_tier_with_a_reason_and_sees_the_override_and_the_term_end(user: User, svc: Service) -> None:
    tiers = "tiers:\n  metric: {balance: points}\n  levels:\n    - {id: basic, name: Basic, threshold: 0}\n    - {id: gold, name: Gold, threshold: 100}\n  downgrade: {kind: term, term: 12mo}"
    publish(svc, SCHEME.replace("balances:\n  points: {}", "balances:\n  points: {}\n" + tiers))
    svc.members.put("m-9", {}, actor="test")
    await sign_in(user, "support")
    await user.open("/members/m-9")
    await fill(user, "override-tier", "gold")
    await fill(user, "override-reason", "ticket 9: late delivery")
    await click(user, "override-apply")
    await user.should_see(marker="member-tier-override", retries=30)
    await user.should_see("ticket 9: late delivery")
    await user.should_see(marker="member-term-end")
    held = svc.members.get("m-9")
    assert not isinstance(held, Problem) and held["tier"] == "gold" and held["tier_override"]["kind"] == "floor"
    await click(user, "override-end")
    await user.should_not_see(marker="member-tier-override", retries=30)


async def test_finance_reads_the_dashboard_and_a_store_manager_only_their_stores(user: User, svc: Service) -> None:
    publish(svc, SCHEME)
    await sign_in(user, "finance")
    await user.open("/reports/flows")
    await user.should_see(marker="report-title")
    await user.should_see(marker="table-by_period")
    refused = Workbench(svc).report(staff(svc, "store_manager"), "flows", {"store": ["s2"]})
    assert isinstance(refused, Problem) and refused.status == 403
