"""The scheme language: pydantic models, the single source of truth.

Validation, the JSON Schema (`perkflow schema`), the editor's forms and the reference docs are all
derived from these classes. Field descriptions are written for operators; they show up as hints in
the editor and as the `description` of each JSON Schema property.

Conventions the models fix (see docs/semantics.md for the full statement):
- money is an integer in minor units (fen, cents); points and growth are whole numbers;
- rates and multipliers are `Decimal`, loaded from their source text, never from a float;
- times written in a scheme (campaign windows, coupon dates) are local times in `Scheme.timezone`;
- durations are written `30d`, `2w`, `12mo`, `1y`, `6h` or `15min`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1


class Model(BaseModel):
    """Base of every scheme model: immutable, and unknown keys are errors (a typo never passes)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=False)


def _json_decimal(value: Decimal) -> float:
    # Written as a JSON number, so a stored version reads back as the number it is (text would
    # read back as text where a benefit may be either). At most 15 significant digits, so the
    # shortest float representation is the decimal itself: 1.5 and 1.50 both write 1.5.
    return float(value)


Dec = Annotated[
    Decimal,
    Field(max_digits=15),
    PlainSerializer(_json_decimal, return_type=float, when_used="json"),
]
"""A decimal number (a rate, a multiplier, a share). Written as a number in YAML."""

Name = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="A name that expressions can read: lower case letters, digits and _, starting with a letter.",
    ),
]
Id = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="An identifier: lower case letters, digits, - and _.",
    ),
]
Duration = Annotated[
    str,
    Field(
        pattern=r"^[1-9][0-9]{0,4}(min|h|d|w|mo|y)$",
        description="A duration: a whole number and a unit, min, h, d, w, mo or y (30d, 12mo, 1y).",
        examples=["30d", "12mo"],
    ),
]
Money = Annotated[int, Field(ge=0, description="An amount of money in minor units (fen, cents).")]
Expr = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1000,
        description="An expression over event.*, member.*, tier.*, counters.*, campaign.* and now.",
        json_schema_extra={"x-perkflow": "expression"},  # the editor checks it as it is typed
    ),
]
Lang = Literal["en", "zh-CN"]
Text = Annotated[
    str | dict[Lang, str],
    Field(
        description="Text for people: a string, or one string per language (en, zh-CN).",
        json_schema_extra={"x-perkflow": "text"},  # the editor shows one box per language
    ),
]
Rounding = Literal["floor", "ceil", "half_up", "half_even"]
# The RFM segments of the rfm report (docs/reports.md), recomputed daily by the scheduler: the eight
# classic ones from high or low recency, frequency and monetary value, and the churn warning.
Segment = Literal[
    "at_risk",
    "important_value",
    "important_keep",
    "important_develop",
    "important_win_back",
    "general_value",
    "general_keep",
    "general_develop",
    "general_win_back",
]


def duration_parts(duration: str) -> tuple[int, str]:
    """Split a validated duration such as `12mo` into (12, "mo")."""
    match = re.fullmatch(r"([0-9]+)([a-z]+)", duration)
    assert match is not None, duration
    return int(match.group(1)), match.group(2)


def text_in(text: str | dict[str, str] | None, lang: str = "en") -> str:
    """The text in one language, falling back to any language given."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    return text.get(lang) or next(iter(text.values()), "")


# --- balances ----------------------------------------------------------------------------------


class Expiry(Model):
    """When earned units stop being usable. The expiry instant itself is excluded: a lot that
    expires at 2027-01-01T00:00 local can be spent at 23:59:59 on 31 December, not at midnight."""

    kind: Literal["never", "rolling", "period_end"] = Field(
        "never",
        description="never; rolling: a duration after the day it was earned; period_end: at the end of a calendar period.",
    )
    after: Duration | None = Field(
        None, description="rolling: how long a lot lives, counted in whole local days from the day it was earned."
    )
    period: Literal["month", "quarter", "year"] | None = Field(
        None, description="period_end: the calendar period whose end expires the lot."
    )
    periods_after: int = Field(
        0,
        ge=0,
        le=10,
        description="period_end: 0 expires at the end of the period it was earned in, 1 at the end of the next one.",
    )

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Expiry:
        if self.kind == "rolling" and self.after is None:
            raise ValueError("a rolling expiry needs 'after' (for example 12mo)")
        if self.kind == "period_end" and self.period is None:
            raise ValueError("a period_end expiry needs 'period' (month, quarter or year)")
        if self.kind != "rolling" and self.after is not None:
            raise ValueError("'after' only applies to a rolling expiry")
        if self.kind != "period_end" and (self.period is not None or self.periods_after):
            raise ValueError("'period' and 'periods_after' only apply to a period_end expiry")
        return self


class PartSpending(Model):
    """How a spend is drawn from the parts of a balance (储值: principal 本金 and bonus 赠送金)."""

    order: list[Name] | None = Field(None, description="Draw the parts in this order, each until it is empty.")
    ratio: dict[Name, int] | None = Field(
        None,
        description="Draw the parts in this ratio (principal: 5, bonus: 1); when a part runs out the rest comes from the others.",
    )

    @model_validator(mode="after")
    def _one_way(self) -> PartSpending:
        if (self.order is None) == (self.ratio is None):
            raise ValueError("say either 'order' or 'ratio', not both")
        if self.ratio is not None and any(v <= 0 for v in self.ratio.values()):
            raise ValueError("every ratio share must be a positive whole number")
        return self


class Pending(Model):
    """New lots wait before they can be spent (积分冻结期): for a duration, until a named event
    about the purchase that earned them, or until whichever comes first."""

    duration: Duration | None = Field(
        None, description="How long a new lot stays pending after the event that earned it (14d)."
    )
    until_event: Name | None = Field(
        None,
        description="The event type that activates the lots a purchase earned, naming it in original_event_id (order_completed).",
    )

    @model_validator(mode="after")
    def _some_end(self) -> Pending:
        if self.duration is None and self.until_event is None:
            raise ValueError("say how long lots stay pending: 'duration', 'until_event', or both")
        return self


class EarnCap(Model):
    """The most a member may earn in a balance per period (成长值每日封顶)."""

    limit: int = Field(ge=1, description="Units a member may earn per period; an award beyond it is cut to what is left, and the trace says so.")
    per: Literal["day", "week", "month"] = Field(
        "day", description="The period: a local calendar day, ISO week or month in the scheme's timezone."
    )


class OrderPayment(Model):
    """Paying part of an order with a balance (积分抵现, 储值消费): a purchase's `points_paid` (a points
    balance) or `stored_value_paid` (a money balance) spends it."""

    max_share: Dec | None = Field(
        None,
        gt=0,
        le=1,
        description="积分抵扣上限: at most this share of the order may be paid with the balance, valued at its `value` (0.5: half).",
    )
    max_units: int | None = Field(None, ge=1, description="At most this many units may pay one order.")


class Limits(Model):
    """Limits of a balance: what a member may earn, hold and spend."""

    earn_cap: EarnCap | None = Field(None, description="The most a member may earn per day, week or month; absent: no cap.")
    max_balance: int | None = Field(
        None,
        ge=1,
        description="The most a member may hold, pending units included. An award beyond it is cut to what fits; on a money balance the event is refused instead, so paid money is never dropped.",
    )
    min_redemption: int | None = Field(
        None,
        ge=1,
        description="The fewest units spent at once on an order or a reward (a reward may not cost less).",
    )


class Balance(Model):
    label: Text | None = None
    unit: Literal["count", "money"] = Field("count", description="count: points or growth; money: minor units.")
    expiry: Expiry = Field(default_factory=Expiry)
    consumption: Literal["soonest_expiry", "oldest_first"] = Field(
        "soonest_expiry",
        description="Which lots a spend takes first. soonest_expiry: lots without expiry come last, ties go to the oldest lot.",
    )
    allow_negative: bool = Field(
        False, description="Whether a deduction or clawback may leave a debt that later earnings pay off first."
    )
    spendable: bool = Field(True, description="False for a balance that is only earned, such as growth value.")
    rounding: Rounding = Field("floor", description="How an award with a fraction is rounded to a whole number.")
    parts: list[Name] | None = Field(
        None, description="Named parts of a money balance, such as [principal, bonus]. Awards name their part."
    )
    spending: PartSpending | None = Field(None, description="How a spend draws on the parts.")
    pending: Pending | None = Field(
        None, description="Whether new lots wait before they can be spent; shown with the date they activate."
    )
    remind_before: Duration | None = Field(
        None,
        description="Send a points_expiring event this long before lots expire (7d); absent: no reminders.",
    )
    value: Dec | None = Field(
        None, description="What one unit is worth in minor units of the currency, for liability reports and paying orders."
    )
    limits: Limits = Field(default_factory=Limits, description="Earning caps, a maximum balance and a minimum redemption.")
    order_payment: OrderPayment | None = Field(
        None,
        description="Whether this balance pays part of an order, within these limits: a purchase's `points_paid` spends a points balance, its `stored_value_paid` a money balance. One balance of each unit at most.",
    )

    @model_validator(mode="after")
    def _parts_are_consistent(self) -> Balance:
        if self.parts is not None:
            if len(set(self.parts)) != len(self.parts) or len(self.parts) < 2:
                raise ValueError("'parts' needs at least two different names")
            if self.spending is None:
                raise ValueError("a balance with parts needs 'spending' (an order or a ratio)")
            named = set(self.spending.order or []) | set(self.spending.ratio or {})
            if named != set(self.parts):
                raise ValueError("'spending' must name exactly the balance's parts")
        elif self.spending is not None:
            raise ValueError("'spending' only applies to a balance with parts")
        if self.order_payment is not None:
            if not self.spendable:
                raise ValueError("a balance that is not spendable cannot pay orders")
            if self.order_payment.max_share is not None and self.value is None:
                raise ValueError("'order_payment.max_share' needs the balance's 'value' (what one unit is worth)")
        return self


# --- tiers -------------------------------------------------------------------------------------


class Metric(Model):
    """What qualifies a member for a tier: exactly one of a balance, a counter or an expression."""

    balance: Name | None = None
    counter: Name | None = None
    expr: Expr | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Metric:
        if sum(x is not None for x in (self.balance, self.counter, self.expr)) != 1:
            raise ValueError("name exactly one of 'balance', 'counter' or 'expr'")
        return self


BenefitValue = bool | int | Dec | str


class TierLevel(Model):
    id: Id
    name: Text
    threshold: int = Field(ge=0, description="The metric value that reaches this tier.")
    retain: int | None = Field(
        None, ge=0, description="保级: the metric value needed at a review to keep the tier (default: threshold)."
    )
    benefits: dict[Name, BenefitValue] = Field(
        default_factory=dict,
        description="Named values that expressions read as tier.<name>, such as points_multiplier: 1.5.",
    )
    on_reach: list[Action] = Field(
        default_factory=list, description="Actions taken once when a member first reaches this tier by upgrade."
    )


class Downgrade(Model):
    kind: Literal["never", "immediate", "review", "term"] = Field(
        "never",
        description=(
            "never; immediate: the tier follows the metric down at once; review: checked at each review date; "
            "term: the tier holds for a term of whole local days from the day it was reached, then a review."
        ),
    )
    every: Duration | None = Field(None, description="review: time between reviews, from the instant the tier was reached.")
    term: Duration | None = Field(
        None,
        description="term (等级有效期): how long a tier holds, counting the local day it was reached as the first; a review at its end.",
    )
    grace: Duration | None = Field(
        None, description="review or term: how long a member who fails a review keeps the tier before the downgrade."
    )

    @model_validator(mode="after")
    def _review_has_period(self) -> Downgrade:
        if self.kind == "review" and self.every is None:
            raise ValueError("a review downgrade needs 'every' (for example 12mo)")
        if self.kind == "term" and self.term is None:
            raise ValueError("a term downgrade needs 'term' (for example 12mo)")
        if self.term is not None and self.term.endswith(("min", "h")):
            raise ValueError("a tier's 'term' is whole local days: use d, w, mo or y")
        if self.kind != "review" and self.every is not None:
            raise ValueError("'every' only applies to kind: review")
        if self.kind != "term" and self.term is not None:
            raise ValueError("'term' only applies to kind: term")
        if self.kind not in ("review", "term") and self.grace is not None:
            raise ValueError("'grace' only applies to kind: review or term")
        return self


class Tiers(Model):
    metric: Metric
    levels: list[TierLevel] = Field(min_length=1, description="From the lowest to the highest tier.")
    downgrade: Downgrade = Field(default_factory=Downgrade)

    @model_validator(mode="after")
    def _levels_are_ordered(self) -> Tiers:
        ids = [level.id for level in self.levels]
        if len(set(ids)) != len(ids):
            raise ValueError("tier ids must be different")
        if self.levels[0].threshold != 0:
            raise ValueError("the first tier must have threshold 0, so every member has a tier")
        thresholds = [level.threshold for level in self.levels]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("tier thresholds must rise strictly from the first tier to the last")
        keys = {frozenset(level.benefits) for level in self.levels}
        if len(keys) > 1:
            raise ValueError("every tier must declare the same benefit names, so tier.<name> always has a value")
        return self


# --- counters and events -----------------------------------------------------------------------


class Counter(Model):
    """A per-member aggregate that rules can read as counters.<name>. Counters include the current
    event: they are updated before the rules for that event are evaluated."""

    kind: Literal["count", "sum", "streak"]
    on: list[Name] = Field(min_length=1, description="The event types that move this counter.")
    when: Expr | None = Field(None, description="Only events for which this is true are counted.")
    of: Expr | None = Field(None, description="sum: the amount each event adds (may be negative).")
    window: Duration | None = Field(
        None, description="count and sum: a rolling window of local days ending today; none means lifetime."
    )

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Counter:
        if self.kind == "sum" and self.of is None:
            raise ValueError("a sum counter needs 'of' (for example event.amount)")
        if self.kind != "sum" and self.of is not None:
            raise ValueError("'of' only applies to a sum counter")
        if self.kind == "streak" and self.window is not None:
            raise ValueError("a streak counts consecutive local days and takes no 'window'")
        if self.window is not None and duration_parts(self.window)[1] in ("min", "h"):
            raise ValueError("a counter window is counted in whole days: use d, w, mo or y")
        return self


AttributeType = Literal["int", "money", "decimal", "str", "bool", "instant", "str_list", "items"]


class Attribute(Model):
    type: AttributeType
    required: bool = Field(
        True, description="An optional attribute that is absent reads as 0, empty text, false or an empty list."
    )
    values: list[str] | None = Field(None, description="For str: the only values allowed.")
    description: Text | None = None


class EventType(Model):
    description: Text | None = None
    attributes: dict[Name, Attribute] = Field(default_factory=dict)


# --- rules and actions -------------------------------------------------------------------------


class Cap(Model):
    limit: int = Field(ge=1, description="How many times the rule may fire for one member in the period.")
    per: Literal["lifetime", "day", "week", "month"] = Field(
        "lifetime", description="Periods are local calendar days, ISO weeks and months in the scheme's timezone."
    )


class Scope(Model):
    stores: list[str] | None = Field(None, description="Only events from these stores.")
    channels: list[str] | None = Field(None, description="Only events from these channels.")


class AwardSpec(Model):
    balance: Name
    amount: Expr = Field(description="How much to award; rounded by 'rounding' or the balance's rounding.")
    part: Name | None = Field(None, description="For a balance with parts: which part receives the award.")
    rounding: Rounding | None = None


class DeductSpec(Model):
    balance: Name
    amount: Expr
    rounding: Rounding | None = None


class IssueCouponSpec(Model):
    coupon: Id = Field(description="The coupon policy to issue.")
    count: int = Field(1, ge=1, le=100)
    code: bool = Field(
        False,
        description="Hand each coupon out with a code in the policy's codes format, shown to the member; the policy must declare codes.",
    )


class GrantRewardSpec(Model):
    reward: Id


class SetTierSpec(Model):
    tier: Id


class NotifySpec(Model):
    template: Id
    channel: str = Field("log", description="The channel that delivers it: log, webhook, or one the deployment adds.")


class Award(Model):
    award: AwardSpec


class Deduct(Model):
    deduct: DeductSpec


class IssueCoupon(Model):
    issue_coupon: IssueCouponSpec


class GrantReward(Model):
    grant_reward: GrantRewardSpec


class SetTier(Model):
    set_tier: SetTierSpec


class AddTag(Model):
    tag: Name


class RemoveTag(Model):
    untag: Name


class Notify(Model):
    notify: NotifySpec


ACTION_KINDS = ("award", "deduct", "issue_coupon", "grant_reward", "set_tier", "tag", "untag", "notify")


def _action_kind(value: Any) -> str | None:
    # Actions are written as one-key mappings (`- award: {...}`); the key says which kind.
    if isinstance(value, dict):
        keys = list(value)
        return keys[0] if len(keys) == 1 and keys[0] in ACTION_KINDS else None
    for kind in ACTION_KINDS:
        if hasattr(value, kind):
            return kind
    return None


Action = Annotated[
    Annotated[Award, Tag("award")]
    | Annotated[Deduct, Tag("deduct")]
    | Annotated[IssueCoupon, Tag("issue_coupon")]
    | Annotated[GrantReward, Tag("grant_reward")]
    | Annotated[SetTier, Tag("set_tier")]
    | Annotated[AddTag, Tag("tag")]
    | Annotated[RemoveTag, Tag("untag")]
    | Annotated[Notify, Tag("notify")],
    Discriminator(
        _action_kind,
        custom_error_type="unknown_action",
        custom_error_message="an action is one of: " + ", ".join(ACTION_KINDS),
    ),
]


class Rule(Model):
    id: Id
    name: Text | None = None
    description: Text | None = None
    on: Name = Field(description="The event type this rule listens to.")
    when: Expr | None = Field(None, description="The condition; no condition means always.")
    then: list[Action] = Field(min_length=1)
    priority: int = Field(0, description="Rules are tried from the highest priority down; ties in file order.")
    exclusive: bool = Field(False, description="When this rule fires, no later rule is tried for the event.")
    caps: list[Cap] = Field(default_factory=list, description="Frequency caps per member.")
    scope: Scope | None = None
    enabled: bool = True
    group: Id | None = Field(
        None, description="The evaluation group this rule competes in (declared under `groups`); a campaign's group applies to its rules."
    )


# --- achievements ------------------------------------------------------------------------------


class Achievement(Model):
    """A declared goal (成就): a count, a sum or a streak of a member's events, measured over a
    calendar period in the scheme's timezone; reaching the target completes it, which gives the
    badge (a tag kept with the date it was first earned) and runs its actions like a rule's."""

    name: Text
    description: Text | None = None
    on: list[Name] = Field(min_length=1, description="The event types that move the goal.")
    measure: Literal["count", "sum", "streak"] = Field(
        description="count: events; sum: the total of 'of' over the events; streak: consecutive local days with an event."
    )
    when: Expr | None = Field(None, description="Only events for which this is true count (a category, a minimum amount).")
    of: Expr | None = Field(None, description="sum: what each event adds (event.amount).")
    period: Literal["lifetime", "month", "quarter", "year"] = Field(
        "lifetime",
        description="count and sum: progress counts afresh each local month, quarter or year; streak: the period a repeat is counted in.",
    )
    target: int = Field(ge=1, description="The progress that completes the goal (7 days, 4 purchases, 50000 fen).")
    repeat: Literal["once", "per_period"] = Field(
        "once", description="once: completed at most once per member; per_period: at most once in each period."
    )
    badge: Name | None = Field(None, description="A tag the member gets on first completion, shown with the date it was earned.")
    then: list[Action] = Field(default_factory=list, description="What completing the goal gives, each time it is completed.")

    @model_validator(mode="after")
    def _fields_match_measure(self) -> Achievement:
        if self.measure == "sum" and self.of is None:
            raise ValueError("a sum goal needs 'of' (for example event.amount)")
        if self.measure != "sum" and self.of is not None:
            raise ValueError("'of' only applies to a sum goal")
        if self.repeat == "per_period" and self.period == "lifetime":
            raise ValueError("repeat: per_period needs a 'period' (month, quarter or year)")
        if self.measure == "streak" and self.repeat == "once" and self.period != "lifetime":
            raise ValueError("a streak counts consecutive days: its 'period' only says how often repeat: per_period may complete it")
        if self.badge is None and not self.then:
            raise ValueError("give the goal a 'badge', actions in 'then', or both")
        return self


class Referrals(Model):
    """邀请有礼: a member's referral code is their member id. A signup carrying `referral_code` binds
    the new member to the referrer; the referee's first purchase decides: when it meets `qualify`,
    the referee gets `referee_then` and the referrer gets a `reward_event` event made by Perkflow
    (id `referral:<referee>`), which the scheme's rules reward, with their caps per period."""

    qualify: Expr | None = Field(None, description="The referee's first purchase rewards both sides when this is true (event.amount >= 9900).")
    reward_event: Name = Field(
        description="The event type the referrer gets, with attributes referee (the friend's member id) and first_order_amount."
    )
    referee_then: list[Action] = Field(default_factory=list, description="What the referee gets for a qualifying first purchase.")


# --- coupons and rewards -----------------------------------------------------------------------


class AmountOff(Model):
    kind: Literal["amount_off"]
    amount: Money


class PercentOff(Model):
    kind: Literal["percent_off"]
    percent: Dec = Field(gt=0, le=100)
    max_off: Money | None = Field(None, description="The most this coupon takes off one order.")


class FreeItem(Model):
    kind: Literal["free_item"]
    sku: str
    value: Money = Field(description="What the free item costs the business, for budgets and reports.")


CouponBenefit = Annotated[AmountOff | PercentOff | FreeItem, Field(discriminator="kind")]


class Validity(Model):
    """A duration after issue, or fixed local dates (start inclusive, end inclusive to 23:59:59)."""

    days: int | None = Field(None, ge=1, le=3660, description="Valid for this many local days, the day of issue counting as the first.")
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Validity:
        if self.days is None and (self.start is None or self.end is None):
            raise ValueError("give either 'days', or both 'start' and 'end'")
        if self.days is not None and (self.start is not None or self.end is not None):
            raise ValueError("give either 'days' or dates, not both")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("'end' is before 'start'")
        return self


CouponKind = Literal["amount_off", "percent_off", "free_item"]


class Stacking(Model):
    """How a coupon of this policy combines with others on one order (叠加规则)."""

    with_others: bool = Field(True, description="Whether another coupon may be used on the same order.")
    not_with_kinds: list[CouponKind] = Field(
        default_factory=list,
        description="Kinds of coupon this one may not share an order with (percent_off): the exclusion works both ways.",
    )
    max_per_order: int = Field(1, ge=1, description="How many coupons of this policy one order may use.")
    apply_order: int = Field(
        0,
        description="Coupons apply from the lowest apply_order up; ties go amount_off, then free_item, then percent_off, then by policy id.",
    )


class Codes(Model):
    """Codes that stand for coupons of this policy (券码): generated in batches or imported, and
    claimed by members (领取) within the policy's per-member cap and budget."""

    prefix: str = Field("", pattern=r"^[A-Z0-9]{0,12}$", description="Letters and digits every generated code starts with (SPRING).")
    length: int = Field(
        10, ge=6, le=32, description="Random characters after the prefix, from 31 that cannot be mistaken for one another (no 0, O, 1, I, L)."
    )
    uses: int = Field(1, ge=1, description="How many members may claim one generated code: 1 single-use, more multi-use.")


class CouponPolicy(Model):
    name: Text
    description: Text | None = None
    benefit: CouponBenefit
    min_spend: Money = Field(0, description="The order amount needed to use the coupon.")
    validity: Validity
    budget: int | None = Field(None, ge=0, description="How many coupons may be issued in all (or per period and store, below).")
    budget_per: Literal["day", "week", "month"] | None = Field(
        None, description="单天预算: the budget counts afresh each local day, ISO week or month in the scheme's timezone."
    )
    budget_by_store: bool = Field(
        False, description="The budget counts separately for each store (the store of the event that issues the coupon)."
    )
    money_budget: Money | None = Field(
        None,
        description="The most face value the policy may give away in all, in minor units: an amount_off's amount, a free_item's value, a percent_off's max_off.",
    )
    per_member: int | None = Field(None, ge=1, description="How many one member may hold or have used in all.")
    stacking: Stacking = Field(default_factory=Stacking)
    codes: Codes | None = Field(None, description="Whether coupons of this policy are also handed out as codes members claim.")

    @model_validator(mode="after")
    def _budgets_fit(self) -> CouponPolicy:
        if (self.budget_per is not None or self.budget_by_store) and self.budget is None:
            raise ValueError("'budget_per' and 'budget_by_store' shape the 'budget': give one")
        if self.money_budget is not None and self.benefit.kind == "percent_off" and self.benefit.max_off is None:
            raise ValueError("a money_budget on a percent_off coupon needs 'max_off', its face value")
        return self

    def face_value(self) -> int:
        """What one coupon gives away at most, in minor units, for the money budget."""
        benefit = self.benefit
        if benefit.kind == "amount_off":
            return benefit.amount
        if benefit.kind == "free_item":
            return benefit.value
        return benefit.max_off or 0


class Cost(Model):
    balance: Name
    amount: int = Field(ge=1)


class RewardItem(Model):
    name: Text
    description: Text | None = None
    cost: Cost
    grants: list[Action] = Field(min_length=1, description="What the member receives: a coupon, a tier, a balance.")
    stock: int | None = Field(None, ge=0, description="How many can be redeemed in all.")
    per_member: int | None = Field(None, ge=1)


# --- campaigns ---------------------------------------------------------------------------------


class Audience(Model):
    when: Expr | None = Field(None, description="Members for whom this is true.")
    tags: list[Name] | None = Field(None, description="Members with any of these tags.")
    segments: list[Segment] | None = Field(
        None,
        min_length=1,
        description="Members whose RFM segment, as the scheduler last computed it, is one of these.",
    )


class CampaignBudget(Model):
    balance: Name
    limit: int = Field(ge=0, description="The most the campaign's rules may award in this balance, in all.")
    liability: Money | None = Field(
        None,
        description="A liability cap: the most value the campaign may issue, units × the balance's value, in minor units (rounded up per award).",
    )


class Campaign(Model):
    id: Id
    name: Text
    description: Text | None = None
    start: datetime = Field(description="Local time in the scheme's timezone at which the campaign starts (included).")
    end: datetime = Field(description="Local time at which it ends (excluded).")
    audience: Audience | None = None
    rollout: Dec = Field(
        Decimal(1), ge=0, le=1, description="灰度: the share of the eligible members outside the holdout who get it."
    )
    holdout: Dec = Field(
        Decimal(0), ge=0, lt=1, description="The share of the eligible members kept out to measure lift."
    )
    budget: CampaignBudget | None = None
    group: Id | None = Field(
        None, description="The evaluation group every rule of the campaign competes in, unless a rule names its own."
    )
    rules: list[Rule] = Field(min_length=1)

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("write a local time without an offset; the scheme's timezone applies")
        return value

    @model_validator(mode="after")
    def _window(self) -> Campaign:
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        return self


class Group(Model):
    """Rules and campaigns that compete for the same event (互斥组 / 叠加组): the policy says which fire."""

    name: Text | None = None
    description: Text | None = None
    policy: Literal["all", "first", "best", "lowest_cost"] = Field(
        description=(
            "all: every member rule that passes fires; first: only the first that passes, by priority then file order; "
            "best: only the one worth most to the member; lowest_cost: only the one that costs the business least."
        )
    )


# --- notifications and governance --------------------------------------------------------------


class Template(Model):
    text: dict[Lang, str] = Field(
        description="The message per language; {name} placeholders read the decision's variables."
    )


class Inactivity(Model):
    after: Duration = Field(description="An inactivity event once a member has made no purchase for this long (60d).")


class Governance(Model):
    require_approval: bool = Field(
        True, description="Four eyes: a new version must be approved by someone other than its author."
    )


# --- the scheme --------------------------------------------------------------------------------


class Scheme(Model):
    """A membership scheme: everything a business configures, and nothing else."""

    perkflow: Literal[1] = Field(SCHEMA_VERSION, description="The version of the scheme language.")
    id: Id
    name: Text
    description: Text | None = None
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$", description="ISO 4217 code; money is in its minor unit.")
    timezone: str = Field("Asia/Shanghai", description="IANA timezone for days, weeks, months and local times.")
    auto_enroll: bool = Field(False, description="Whether an event for an unknown member creates the member.")
    late_event_limit: Duration = Field(
        "7d", description="How much earlier than the member's latest event an event may be and still be applied."
    )
    balances: dict[Name, Balance] = Field(min_length=1)
    tiers: Tiers | None = None
    counters: dict[Name, Counter] = Field(default_factory=dict)
    event_types: dict[Name, EventType] = Field(
        default_factory=dict, description="Custom event types, and extra attributes of the built-in ones."
    )
    rules: list[Rule] = Field(default_factory=list)
    coupons: dict[Id, CouponPolicy] = Field(default_factory=dict)
    rewards: dict[Id, RewardItem] = Field(default_factory=dict)
    campaigns: list[Campaign] = Field(default_factory=list)
    achievements: dict[Id, Achievement] = Field(
        default_factory=dict, description="成就: goals members complete for a badge and a reward (a 7-day check-in streak, 4 visits in a month)."
    )
    groups: dict[Id, Group] = Field(
        default_factory=dict,
        description="Evaluation groups by id: rules and campaigns that name a group compete under its policy.",
    )
    referrals: Referrals | None = Field(None, description="邀请有礼: a friend's qualifying first purchase rewards both sides.")
    templates: dict[Id, Template] = Field(default_factory=dict)
    inactivity: Inactivity | None = Field(
        None, description="Whether the runtime sends an inactivity event, once per spell without a purchase."
    )
    governance: Governance = Field(default_factory=Governance)

    @model_validator(mode="after")
    def _limits_fit(self) -> Scheme:
        for campaign in self.campaigns:
            budget = campaign.budget
            balance = self.balances.get(budget.balance) if budget is not None else None
            if budget is not None and budget.liability is not None and (balance is None or balance.value is None):
                raise ValueError(f"campaign '{campaign.id}' caps its liability: balance '{budget.balance}' needs a 'value'")
        for name, balance in self.balances.items():
            until = balance.pending.until_event if balance.pending is not None else None
            declared = self.event_types.get(until) if until is not None else None
            if until is not None and until != "order_completed" and (declared is None or "original_event_id" not in declared.attributes):
                raise ValueError(
                    f"balance '{name}' is pending until '{until}': declare that event type with an 'original_event_id' attribute (or use order_completed)"
                )
        for unit in ("count", "money"):
            paying = [name for name, balance in self.balances.items() if balance.order_payment is not None and balance.unit == unit]
            if len(paying) > 1:
                raise ValueError(f"only one balance of unit {unit} may pay orders ('order_payment'), not {', '.join(paying)}")
        for reward_id, reward in self.rewards.items():
            balance = self.balances.get(reward.cost.balance)
            least = balance.limits.min_redemption if balance is not None else None
            if least is not None and reward.cost.amount < least:
                raise ValueError(
                    f"reward '{reward_id}' costs {reward.cost.amount} {reward.cost.balance}, below its minimum redemption of {least}"
                )
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone '{value}' (use an IANA name such as Asia/Shanghai)") from None
        return value


TierLevel.model_rebuild()
