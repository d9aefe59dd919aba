"""The built-in event types and the event envelope, shared by the checker, the engine and the API."""

from __future__ import annotations

from .models import Attribute, EventType, Scheme

ENVELOPE_FIELDS = ("id", "type", "member_id", "occurred_at", "store", "channel", "attributes")
"""Fields of every event; an attribute may not be named like one of them."""

_ITEMS = Attribute(type="items", required=False, description="Line items: sku, category, quantity, amount.")

PAYING_ATTRIBUTES = {"count": "points_paid", "money": "stored_value_paid"}
"""The purchase attribute naming what the paying balance (`order_payment`) of each unit paid."""

BUILTIN_EVENT_TYPES: dict[str, EventType] = {
    "signup": EventType(
        description="A member joins.",
        attributes={
            "referral_code": Attribute(
                type="str", required=False, description="The referral code (the member id) of the member who invited this one (scheme `referrals`)."
            )
        },
    ),
    "purchase": EventType(
        description="A paid order.",
        attributes={
            "amount": Attribute(type="money", description="What the member paid, in minor units."),
            "items": _ITEMS,
            "order_amount": Attribute(
                type="money",
                required=False,
                description="The order before coupons, in minor units; coupons' minimum spend is checked on it. Absent: amount.",
            ),
            "coupons": Attribute(type="str_list", required=False, description="Ids of coupons used on this order."),
            "points_paid": Attribute(
                type="int",
                required=False,
                description="Units of the points balance that pays orders (its `order_payment`) spent on this order, within its limits; not part of `amount`.",
            ),
            "stored_value_paid": Attribute(
                type="money",
                required=False,
                description="Minor units of the stored-value balance that pays orders (its `order_payment`) spent on this order; part of `amount`.",
            ),
            "hold": Attribute(
                type="str",
                required=False,
                description="The hold placed at the till (POST /api/v1/members/{id}/holds) that this purchase captures; the amounts paid must equal the hold's.",
            ),
        },
    ),
    "refund": EventType(
        description="Money given back for an earlier purchase or top-up.",
        attributes={
            "original_event_id": Attribute(type="str", description="The id of the purchase or top-up refunded."),
            "amount": Attribute(type="money", description="How much of it is refunded, in minor units."),
        },
    ),
    "order_completed": EventType(
        description="An order is complete (delivered, past its return window): the pending lots it earned activate.",
        attributes={"original_event_id": Attribute(type="str", description="The id of the purchase completed.")},
    ),
    "topup": EventType(
        description="Money put into a stored-value balance.",
        attributes={"amount": Attribute(type="money", description="What the member paid in, in minor units.")},
    ),
    "checkin": EventType(description="A visit or a daily check-in."),
    "birthday": EventType(
        description="The member's birthday, at local midnight in the scheme's timezone (produced by the scheduler; 29 Feb falls on 28 Feb in other years).",
        attributes={"year": Attribute(type="int", required=False, description="The year of the birthday.")},
    ),
    "profile_update": EventType(description="The member's profile changed."),
    "coupon_redemption": EventType(
        description="A member uses a coupon outside a purchase event (posted by POST /api/v1/coupons/{id}/redeem).",
        attributes={
            "coupon": Attribute(type="str", description="The id of the coupon used."),
            "order_amount": Attribute(
                type="money",
                required=False,
                description="The order the coupon is used on, before coupons, in minor units; its minimum spend is checked on it.",
            ),
        },
    ),
    "code_claim": EventType(
        description="A member claims a coupon by its code (领取; posted by POST /api/v1/coupon-codes/{code}/claim).",
        attributes={
            "code": Attribute(type="str", description="The code claimed."),
            "policy": Attribute(type="str", description="The coupon policy the code stands for."),
        },
    ),
    "reward_redemption": EventType(
        description="A member spends a balance on a reward from the catalogue.",
        attributes={"reward": Attribute(type="str", description="The id of the reward.")},
    ),
}

MEMBER_FIELDS = ("tier", "tier_rank", "tags", "joined_at", "home_store", "birthday_month", "birthday_day")
"""Names under member.* besides the balances."""

PERSONAL_FIELDS = ("phone", "email", "name", "birthday")
"""Personal data: never readable by an expression (member.* or event.*), so that no decision or
trace carries it and an erasure leaves every decision intact (docs/privacy.md)."""


def event_types(scheme: Scheme) -> dict[str, EventType]:
    """Every event type of a scheme: the built-ins, extended by the scheme, and its own."""
    merged = dict(BUILTIN_EVENT_TYPES)
    for name, declared in scheme.event_types.items():
        base = merged.get(name)
        if base is None:
            merged[name] = declared
        else:
            merged[name] = EventType(
                description=declared.description or base.description,
                attributes={**base.attributes, **declared.attributes},
            )
    return merged

REFERRAL_ATTRIBUTES: dict[str, str] = {"referee": "str", "first_order_amount": "money"}
"""The attributes of the event a referrer gets (scheme `referrals.reward_event`), with their types."""

SYSTEM_EVENT_TYPES: dict[str, EventType] = {
    "adjustment": EventType(
        description="A manual change of a balance by support staff, with its reason (made by the service).",
        attributes={
            "balance": Attribute(type="str", description="The balance adjusted."),
            "amount": Attribute(type="int", description="Units added (positive) or taken (negative)."),
            "reason": Attribute(type="str", description="Why: kept in the ledger and the audit log."),
        },
    ),
    "opening": EventType(
        description="A member's opening balances, tier and coupons from another system (made by `perkflow import-opening`).",
        attributes={"data": Attribute(type="str", description="The lots, tier with the date reached and coupons, as JSON.")},
    ),
    "expiry": EventType(description="Lots reach their expiry date (produced by the runtime)."),
    "activation": EventType(description="Pending lots reach the end of their pending time and can be spent (produced by the runtime)."),
    "tier_review": EventType(description="A member's tier is reviewed (produced by the runtime)."),
    "tier_override": EventType(
        description="Staff set a member's tier by hand, with a reason (made by the service; audited).",
        attributes={
            "kind": Attribute(type="str", values=["floor", "fixed"], description="floor: at least this tier; fixed: exactly this tier."),
            "tier": Attribute(type="str", description="The tier."),
            "until": Attribute(type="instant", required=False, description="When the override ends (excluded); absent: until removed."),
            "reason": Attribute(type="str", description="Why: kept in the trace, the tier history and the audit log."),
        },
    ),
    "tier_override_end": EventType(
        description="A tier override ends, at its end or removed by staff (made by the runtime or the service); the tier is then reviewed.",
    ),
    "points_expiring": EventType(
        description="Lots of a balance will expire soon: sent `remind_before` ahead (produced by the runtime).",
        attributes={
            "balance": Attribute(type="str", description="The balance whose lots expire."),
            "amount": Attribute(type="int", description="How many units expire at expires_at."),
            "expires_at": Attribute(type="instant", description="When they expire."),
        },
    ),
    "inactivity": EventType(
        description="A member has made no purchase for the scheme's `inactivity.after` (produced by the runtime, once per spell).",
        attributes={"since": Attribute(type="instant", description="The last purchase, or joining when there was none.")},
    ),
    "campaign_start": EventType(
        description="A campaign starts (produced by the runtime for each member who joined before, while a rule or counter listens to it).",
        attributes={"campaign": Attribute(type="str", description="The id of the campaign.")},
    ),
    "campaign_end": EventType(
        description="A campaign ends (produced by the runtime for each member who joined before, while a rule or counter listens to it).",
        attributes={"campaign": Attribute(type="str", description="The id of the campaign.")},
    ),
}
"""Events the runtime produces from time itself; rules may listen to them, integrators never post them."""
BUILTIN_EVENT_TYPES.update(SYSTEM_EVENT_TYPES)
