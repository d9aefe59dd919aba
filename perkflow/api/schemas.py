"""Request and response models of the rule API: what the endpoints parse, and what openapi.json shows.

Field names are the vocabulary of the scheme and the service (snake_case, no aliases but `from`,
a Python keyword). Money is an integer of minor units, never a float. Request models forbid
unknown fields, so a typo is a 422 that names it. The event body is generated per scheme version
(`event_models`): each event type's attributes, as the active scheme declares them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from perkflow.engine import Program
from perkflow.rules.builtins import SYSTEM_EVENT_TYPES
from perkflow.rules.models import Attribute, text_in

Money = Annotated[
    int,
    Field(ge=0, strict=True, description="An amount of money in minor units (fen, cents); never a float."),
]
Ident = Annotated[str, Field(min_length=1, max_length=200)]
MAX_INTEGER = 2**53 - 1  # what JSON carries exactly


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reply(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- requests ------------------------------------------------------------------------------------


class LineItem(Request):
    sku: str
    category: str = ""
    quantity: int = Field(1, ge=1, strict=True)
    amount: Money


class EventEnvelope(Request):
    """An event as an integrator posts it. `attributes` depend on `type`: see the event types."""

    id: Ident = Field(
        description="Unique across the deployment; prefix it with your system's name. A retry sends the same id."
    )
    type: str = Field(description="An event type of the scheme in force.")
    member_id: Ident = Field(description="Your id for the member (the external id).")
    occurred_at: AwareDatetime = Field(
        description="When it happened, with an offset: 2026-11-20T10:00:00+08:00."
    )
    store: str = Field("", max_length=200)
    channel: str = Field("", max_length=200)
    attributes: dict[str, Any] = Field(default_factory=dict)


class MemberIn(Request):
    """Create or update a member; only the fields given change. Personal data is stored encrypted."""

    phone: str | None = None
    email: str | None = None
    name: str | None = Field(None, max_length=200)
    birthday: str | None = Field(None, description="A date such as 1990-05-17.")
    home_store: str | None = Field(None, max_length=64)
    tags: list[str] | None = None
    attributes: dict[str, str | int | bool] | None = None
    locale: Literal["en", "zh-CN"] | None = Field(None, description="The language of the member's notifications.")


class AdjustmentIn(Request):
    balance: str
    amount: int = Field(strict=True, description="Units added (positive) or taken (negative); never 0.")
    reason: str = Field(min_length=1, description="Why: kept in the ledger and the audit log.")


class TierOverrideIn(Request):
    kind: Literal["floor", "fixed"] = Field(description="floor: the member is at least this tier; fixed: exactly this tier.")
    tier: str = Field(description="A tier of the scheme in force.")
    until: AwareDatetime | None = Field(None, description="When the override ends (excluded), with an offset; absent: until ended by DELETE.")
    reason: str = Field(min_length=1, description="Why: kept in the trace, the tier history and the audit log.")


class MergeIn(Request):
    from_: Ident = Field(
        alias="from", description="The member merged into this one; it keeps its id, with status merged."
    )


class LookupIn(Request):
    """One of phone or email: in the body, so that it never reaches an access log with the URL."""

    phone: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=320)


class RevealIn(Request):
    fields: list[Literal["phone", "email", "name", "birthday"]] | None = Field(
        None, min_length=1, description="What to show in full; all four when absent."
    )
    reason: str = Field(
        min_length=1, max_length=500,
        description="Why: kept in the audit log, so it may not hold a phone number or an email address.",
    )


class ReasonIn(Request):
    reason: str = Field(
        min_length=1, max_length=500,
        description="Why: kept in the audit log, so it may not hold a phone number or an email address.",
    )


class CouponValidationIn(Request):
    member_id: Ident
    order_amount: Money = Field(description="The order before coupons, in minor units.")
    coupons: list[Ident] = Field(
        max_length=50, description="Coupon ids, in the order the customer chose them."
    )
    at: AwareDatetime | None = Field(None, description="When the order is made; now when absent.")


class CodeBatchIn(Request):
    policy: Ident = Field(description="A coupon policy that declares `codes`; the codes follow its prefix, length and uses.")
    count: int = Field(ge=1, le=1_000_000, description="How many codes, 1 to 1,000,000.")


class CodeBatchOut(BaseModel):
    batch: str
    policy: str
    count: int
    codes: list[str] | None = Field(None, description="The codes, for a batch of at most 1,000.")


class CodeImportIn(Request):
    policy: Ident = Field(description="A coupon policy that declares `codes`.")
    csv: str = Field(max_length=900_000, description="CSV text, one `code[,uses]` a line; a header line `code,uses` is allowed.")


class CodeRefusal(BaseModel):
    line: int
    code: str
    reason: str = Field(description="bad_code, bad_uses, duplicate_code or code_exists")
    message: str


class CodeImportOut(BaseModel):
    batch: str | None
    policy: str
    imported: int
    refused: list[CodeRefusal]


class CodeOut(BaseModel):
    code: str
    policy: str
    uses_left: int
    max_uses: int


class CodeClaimIn(Request):
    member_id: Ident
    store: str = Field("", max_length=200)
    channel: str = Field("api", max_length=200)


class CouponRedeemIn(Request):
    member_id: Ident | None = Field(None, description="When given, it must be the coupon's holder.")
    order_amount: Money = 0
    store: str = Field("", max_length=200)
    channel: str = Field("api", max_length=200)


class CouponVoidIn(Request):
    reason: str = Field(min_length=1, max_length=1000)


class RewardRedeemIn(Request):
    member_id: Ident
    store: str = Field("", max_length=200)
    channel: str = Field("api", max_length=200)


class VersionIn(Request):
    content: str | dict[str, Any] = Field(
        description="The scheme: YAML or JSON text, or the scheme as a JSON object."
    )
    comment: str = Field("", max_length=2000)
    effective_at: AwareDatetime | None = Field(
        None, description="When it takes effect; when published if absent."
    )


class CommentIn(Request):
    comment: str = Field("", max_length=2000)


# --- answers -------------------------------------------------------------------------------------


class ProblemError(BaseModel):
    pointer: str = Field(description="RFC 6901 pointer into the request body; empty for the whole body.")
    code: str
    message: str


class ProblemOut(BaseModel):
    """RFC 9457 problem details. Programs match on `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable snake_case code, e.g. unknown_member, event_id_reused.")
    instance: str | None = None
    errors: list[ProblemError] = Field(default_factory=list)
    request_id: str | None = Field(None, description="The request's id, as in its X-Request-Id header and in the logs.")


class EffectOut(Reply):
    kind: str = Field(
        description=(
            "earn, spend, expire, clawback, adjust, opening, activate, coupon_issued, coupon_redeemed, reward_granted, tier_changed, "
            "tier_override, tier_override_end, tagged, untagged, notify, "
            "achieved (an achievement completed: rule achievement:<id>, tag its badge, reason the period)"
        )
    )
    rule: str | None = None
    balance: str | None = None
    amount: int | None = None
    coupon: str | None = None
    discount: int | None = None
    code: str | None = Field(None, description="coupon_issued: the coupon's code, when it was claimed with one or a rule handed one out.")


class TraceOut(Reply):
    rule: str
    outcome: Literal["fired", "skipped", "clipped"] = Field(
        description="fired, skipped, or clipped: an award of the rule was cut by a balance's limit"
    )
    reason: str | None = Field(
        None, description="Why it was skipped: when_false, cap_reached, budget_exhausted, ...; or clipped: earn_cap, max_balance"
    )
    read: dict[str, Any] | None = Field(None, description="The values its condition read.")
    detail: str | None = None


class DecisionOut(Reply):
    """What an event did: its effects, the member after it, the version that decided, the trace."""

    event_id: str
    event_type: str
    member_id: str
    version: str = Field(description="The content hash of the scheme version that decided.")
    occurred_at: str
    effects: list[EffectOut]
    trace: list[TraceOut]
    balances: dict[str, int] = Field(description="Spendable balances after the event.")
    tier: str | None
    dry_run: bool | None = None


class BatchItemOut(BaseModel):
    id: str | None
    status: int
    body: DecisionOut | None = None
    problem: ProblemOut | None = None


class StoredEventOut(BaseModel):
    id: str
    event: dict[str, Any] = Field(description="The event as posted.")
    decision: DecisionOut
    source: str
    recorded_at: str


class AchievementOut(BaseModel):
    """A member's progress towards one achievement, as of the server's time."""

    progress: int = Field(description="What counts now: this period's count or sum, or the current streak (0 if broken)")
    target: int
    completions: int = Field(description="Times completed, in all")
    first_completed_at: str | None = Field(None, description="The first completion, in the scheme's timezone: the date of the badge")
    badge: str | None = Field(None, description="The badge (a tag) the completion gave, once completed")


class ReferralOut(Reply):
    """A member's referral code and, when another member invited them, by whom and with what outcome."""

    code: str = Field(description="The member's referral code (the member id): a signup's referral_code names it")
    referred_by: str | None = Field(None, description="The member whose code the member's signup carried")
    status: str | None = Field(
        None, description="pending until the first purchase; rewarded when it qualified, unqualified when it did not"
    )


class MemberOut(Reply):
    """A member's state. Personal data (phone, email, name, birthday) is never returned."""

    id: str
    status: str = Field(description="active, merged (see merged_into), or erased (the id is a pseudonym)")
    home_store: str
    joined_at: str
    tier: str | None = None
    tier_since: str | None = None
    tier_review_at: str | None = Field(None, description="When the tier's term ends or its next review falls (local time); absent when never reviewed.")
    tier_override: dict[str, Any] | None = Field(
        None, description="A tier held by staff: {kind: floor | fixed, tier, until, reason, set_at}; absent when none."
    )
    balances: dict[str, int] = Field(default_factory=dict)
    lots: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    coupons: list[dict[str, Any]] = Field(default_factory=list)
    counters: dict[str, int] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    achievements: dict[str, AchievementOut] | None = Field(
        None, description="Each achievement of the scheme in force (absent when it declares none)"
    )
    referral: ReferralOut | None = Field(None, description="The referral code and who invited the member (absent when the scheme has no referrals)")
    merged_into: str | None = None


class ProfileOut(Reply):
    """A member's personal data: masked (`138****0000`, `a***@example.com`), or in full after a reveal."""

    id: str
    masked: bool
    status: str | None = None
    phone: str | None = None
    email: str | None = None
    name: str | None = None
    birthday: str | None = None


class SubjectExportOut(Reply):
    """Everything held on one member (format perkflow-subject-export-v1)."""

    format: str
    exported_at: str
    member: dict[str, Any]
    balances: list[dict[str, Any]]
    lots: list[dict[str, Any]]
    ledger: list[dict[str, Any]]
    coupons: list[dict[str, Any]]
    tier_history: list[dict[str, Any]]
    events: list[dict[str, Any]]
    messages: list[dict[str, Any]]


class ErasedOut(BaseModel):
    id: str = Field(description="The pseudonym the member's ledger and decisions are now kept under.")
    erased: str = Field(description="The member id that was erased.")
    status: Literal["erased"]


class NeedOut(BaseModel):
    """What a member still lacks for one tier, reward or coupon."""

    kind: str = Field(description="tier (an upgrade), tier_keep (保级 at the next review), reward, coupon, or achievement")
    id: str = Field(description="The tier id, the reward id, the coupon's id, or the achievement id")
    name: dict[str, str] = Field(description="Its name per language (en, zh-CN)")
    unit: str = Field(description="What is counted: a balance or a counter; money (minor units) for a coupon's minimum spend; count, sum or streak for an achievement")
    have: int = Field(description="What the member has now (for a coupon: the order_amount asked about, else 0)")
    need: int = Field(description="What is needed: the tier's threshold or retain value, the reward's cost, the coupon's minimum spend")
    lacking: int = Field(description="need - have, at least 0")
    met: bool
    reason: str | None = Field(None, description="For a reward that cannot be had however much is earned: out_of_stock, limit_reached; for an achievement done (this period): completed")
    until: str | None = Field(None, description="tier_keep: the review date; coupon: when it stops being valid (excluded)")
    text: dict[str, str] = Field(description="The sentence per language: '120 more growth to Gold', '再获得 120 成长值即可升级为金卡'")


class ProgressOut(BaseModel):
    """What a member still needs ("what do I still need"), as of the server's time."""

    id: str
    as_of: str = Field(description="The instant the figures are for, in the scheme's timezone")
    tier: str | None = None
    order_amount: int | None = Field(None, description="The order amount asked about, when given")
    items: list[NeedOut] = Field(description="Tiers above the member's, the current tier's review, each reward, each usable coupon, each achievement")


class HoldIn(Request):
    """Reserve points and stored value for an order at the till; a purchase naming the hold captures it."""

    order_amount: Money = Field(le=MAX_INTEGER, description="The bill before points and stored value pay, after coupons, in minor units.")
    points_paid: int = Field(0, ge=0, le=MAX_INTEGER, strict=True, description="Units of the paying points balance to reserve.")
    stored_value_paid: Money = Field(0, le=MAX_INTEGER, description="Minor units of the paying stored-value balance to reserve.")
    ttl_seconds: int = Field(300, ge=1, le=1800, strict=True, description="How long the hold lasts (5 minutes unless given; at most 30).")
    store: str = Field("", max_length=64, description="The store of the till, for the record.")


class PaymentQuoteOut(BaseModel):
    balance: str
    attribute: str = Field(description="The purchase attribute that pays with it: points_paid or stored_value_paid")
    available: int = Field(description="Spendable now, less what active holds reserve")
    held: int = Field(description="Reserved by active holds")
    most: int = Field(description="The most units that may pay this order (0 when fewer than the minimum redemption)")
    worth: int = Field(description="What `most` is worth in minor units")
    parts: dict[str, int] | None = Field(None, description="For stored value with parts: how `most` would be drawn now")


class QuoteOut(BaseModel):
    """How much of an order each paying balance may pay, as of the server's time."""

    member_id: str
    order_amount: int
    at: str
    version: str
    balances: list[PaymentQuoteOut]


class HoldOut(BaseModel):
    id: str
    member_id: str
    status: Literal["active", "captured", "cancelled", "expired"]
    order_amount: int
    amounts: dict[str, int] = Field(description="Units reserved per balance")
    pay: dict[str, int] = Field(description="What the capturing purchase carries: points_paid and stored_value_paid")
    created_at: str
    expires_at: str = Field(description="The hold reserves nothing from this instant on")
    closed_at: str | None = None
    captured_by: str | None = Field(None, description="The purchase event that captured it")


class MemberRef(BaseModel):
    id: str


class MemberListOut(BaseModel):
    items: list[MemberRef]


class LedgerRow(BaseModel):
    id: int
    event_id: str
    balance: str
    part: str | None
    kind: str = Field(description="earn, spend, expire, clawback, adjust, merge_in, merge_out")
    amount: int
    rule: str | None
    version: str
    occurred_at: str


class LedgerOut(BaseModel):
    items: list[LedgerRow]
    next: str | None = Field(description="Pass as ?after= for the next page; null on the last page.")


class CouponCheckOut(BaseModel):
    coupon: str
    policy: str | None
    applies: bool
    order: int | None = None
    discount: int | None = None
    code: str | None = Field(
        None,
        description="Why it does not apply: unknown_coupon, coupon_twice, coupon_not_usable, coupon_min_spend, coupon_not_stackable, coupon_kind_excluded",
    )
    message: str | None = None


class CouponValidationOut(BaseModel):
    member_id: str
    order_amount: int
    at: str
    version: str
    applies: list[CouponCheckOut] = Field(description="The coupons that apply, in the order they apply.")
    refused: list[CouponCheckOut] = Field(description="The others, in the order listed, each with the reason.")
    discount: int
    payable: int


class CouponOut(BaseModel):
    id: str
    policy: str
    member_id: str
    status: str


class VersionOut(BaseModel):
    id: int
    scheme_id: str
    number: int | None
    status: str = Field(description="submitted, published or returned")
    hash: str
    author: str
    approver: str | None
    comment: str
    effective_at: str | None
    created_at: str
    published_at: str | None


class VersionDetailOut(VersionOut):
    content: dict[str, Any] = Field(description="The scheme, in canonical form.")


class VersionListOut(BaseModel):
    items: list[VersionOut]


class DiffOut(BaseModel):
    changes: list[dict[str, Any]]
    text: str = Field(description="The same changes, rendered for people.")


class HealthOut(BaseModel):
    status: str


# --- event bodies generated from a scheme ----------------------------------------------------------


def _attribute_type(attribute: Attribute) -> Any:
    kind = attribute.type
    if kind == "str" and attribute.values:
        return Literal[tuple(attribute.values)]
    return {
        "int": Annotated[int, Field(strict=True)],
        "money": Money,
        "decimal": Decimal,
        "str": str,
        "bool": bool,
        "instant": AwareDatetime,
        "str_list": list[str],
        "items": list[LineItem],
    }[kind]


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def event_models(program: Program | None) -> dict[str, type[BaseModel]]:
    """One event model per event type an integrator may post under `program`, its attributes typed."""
    if program is None:
        return {}
    models: dict[str, type[BaseModel]] = {}
    for name, declared in sorted(program.event_types.items()):
        if name in SYSTEM_EVENT_TYPES:
            continue
        fields: dict[str, Any] = {}
        for attr_name, attribute in declared.attributes.items():
            kind = _attribute_type(attribute)
            described = (
                Field(description=text_in(attribute.description) or None)
                if attribute.required
                else Field(None, description=text_in(attribute.description) or None)
            )
            fields[attr_name] = (kind if attribute.required else kind | None, described)
        attributes = create_model(f"{_camel(name)}Attributes", __base__=Request, **fields)
        model = create_model(
            f"{_camel(name)}Event",
            __base__=EventEnvelope,
            __doc__=text_in(declared.description) or f"A {name} event.",
            type=(Literal[name], Field(description=f"'{name}'")),
            attributes=(
                attributes,
                Field(default_factory=attributes)
                if not attributes.model_fields
                or all(not f.is_required() for f in attributes.model_fields.values())
                else ...,
            ),
        )
        models[name] = model
    return models


# --- webhooks (issue 6) --------------------------------------------------------------------------

WebhookKind = Literal["points_changed", "tier_changed", "coupon_issued", "coupon_redeemed", "reward_redeemed", "member_notification"]


class WebhookIn(Request):
    url: str = Field(max_length=2000, description="Where to POST; its host must resolve to public addresses (or be allowed by PERKFLOW_WEBHOOK_ALLOW).")
    kinds: list[WebhookKind] = Field(default_factory=list, description="The kinds to receive; empty: all.")
    description: str = Field("", max_length=500)
    active: bool = True


class WebhookPatchIn(Request):
    url: str | None = Field(None, max_length=2000)
    kinds: list[WebhookKind] | None = None
    description: str | None = Field(None, max_length=500)
    active: bool | None = None


class WebhookOut(Reply):
    id: int
    url: str
    kinds: list[str]
    description: str
    active: bool
    created_at: str
    updated_at: str
    secret: str | None = Field(None, description="whsec_<base64>: verifies the webhook-signature header (Standard Webhooks).")


class WebhookListOut(BaseModel):
    items: list[WebhookOut]


class DeliveryOut(Reply):
    id: int
    subscription_id: int
    message_id: str = Field(description="The webhook-id header: the same on every try of the message.")
    kind: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: str | None
    last_attempt_at: str | None
    last_status: int | None
    last_error: str
    created_at: str | None
    delivered_at: str | None


class DeliveryListOut(BaseModel):
    items: list[DeliveryOut]


class LabelOut(BaseModel):
    en: str
    zh_cn: str = Field(alias="zh-CN")


class ReportColumnOut(BaseModel):
    key: str = Field(description="The key of this column in each row.")
    label: LabelOut


class ReportTableOut(BaseModel):
    name: str
    title: LabelOut
    columns: list[ReportColumnOut]
    rows: list[dict[str, str | int | float | None]]


class ReportOut(BaseModel):
    """A report: its tables (columns labelled in English and Chinese, then rows), the filters it
    applied as resolved (period, timezone, as-of instant, stores), and notes on its method."""

    report: str
    title: LabelOut
    filters: dict[str, Any]
    tables: list[ReportTableOut]
    notes: list[str]
