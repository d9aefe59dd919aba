"""Writes events.jsonl for Nova Shop (新星优选): an online shop from February to June 2026.

Sixty-two members sign up between February and May, in the app or on the web; the first forty
get the welcome coupon, the budget is spent after that. Members order, use their coupons, return
some orders in full or in part, invite friends (one invites five friends in March, and the monthly
cap pays for three), and spend points on vouchers. The limited ¥50 voucher (five in all) goes on
sale at 10:00 on 20 May ("520"): a dozen members ask for it within a minute, five get it and the rest are
refused. One member buys a TV, spends the points on vouchers and returns the TV: the points taken
back become a debt that his later orders pay off. In June a company buys TVs for its offices: the
daily earning cap and the maximum balance cut its points, and it pays orders with points within
the limits (two attempts beyond them are refused). On 10 and 11 June five new members claim
codes from the posters (three a day can be claimed, one per member). On 18 April a member
checks out with three ¥10 vouchers, of which one order takes two: the order is refused and placed
again with two. The warehouse confirms
receipt (order_completed) of most orders a few days after them, which makes their growth count.

The stream is deterministic: a seeded `random.Random`, and the engine replayed as the stream is
written, so the generator knows a member's points and coupons (coupon ids are `<event id>#c<n>`).
Standard library and perkflow only. From the repository root:

    .venv/bin/python examples/shop/generate.py            # rewrites examples/shop/events.jsonl
    .venv/bin/python examples/shop/generate.py OUT.jsonl  # writes elsewhere
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # examples/stream.py
from stream import Stream  # noqa: E402

from perkflow.engine.coupons import validate_coupons  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 20260201
TZ = timezone(timedelta(hours=8))
FIRST_DAY, LAST_DAY = date(2026, 2, 1), date(2026, 6, 30)
FLASH_SALE = datetime(2026, 5, 20, 10, 0, tzinfo=TZ)  # the limited voucher goes on sale on "520"
STACKING_DAY = datetime(2026, 4, 18, 20, 30, tzinfo=TZ)  # three ¥10 vouchers, at most two per order

CATALOGUE = {  # sku: (category, price in fen)
    "NUTS-MIX": ("snacks", 3990),
    "DRIED-MANGO": ("snacks", 2590),
    "COFFEE-BEANS": ("snacks", 6800),
    "TEA-GIFT": ("snacks", 12800),
    "FACE-CREAM": ("beauty", 18900),
    "SUNSCREEN": ("beauty", 8900),
    "LIPSTICK": ("beauty", 22900),
    "TOWEL-SET": ("home", 5900),
    "PILLOW": ("home", 12900),
    "STORAGE-BOX": ("home", 3900),
    "DESK-LAMP": ("home", 19900),
    "EARBUDS": ("electronics", 39900),
    "POWER-BANK": ("electronics", 14900),
    "SMART-TV-55": ("electronics", 329900),
}
SMALL = [sku for sku, (_, price) in CATALOGUE.items() if price < 40000]
DEBTOR = "nv-30007"  # buys a TV, spends the points, returns the TV
ADVOCATE = "nv-30004"  # invites five friends in March
ADVOCATE_FRIENDS = [f"nv-{30041 + n}" for n in range(5)]
BULK = "nv-30063"  # a company that buys TVs for its offices in June
TV = CATALOGUE["SMART-TV-55"][1]
EARBUDS = CATALOGUE["EARBUDS"][1]
TOWELS = CATALOGUE["TOWEL-SET"][1]
POSTER = [f"nv-{30064 + n}" for n in range(5)]  # join in June and claim poster codes
POSTER_CODES = [f"NOVA{''.join(random.Random(f'{SEED}:poster:{n}').choices('23456789ABCDEFGHJKMNPQRSTUVWXYZ', k=8))}" for n in range(6)]
POSTER_STORY: list[tuple[datetime, str, str, dict[str, Any]]] = [
    *[(datetime(2026, 6, 9, 20, n, tzinfo=TZ), member, "signup", {}) for n, member in enumerate(POSTER)],
    # three claims on 10 June; the fourth that day is refused (budget_exhausted)
    *[(datetime(2026, 6, 10, 9, n, tzinfo=TZ), POSTER[n], "code_claim", {"code": POSTER_CODES[n], "policy": "poster-20"}) for n in range(4)],
    # the next day: one more, and a second code for a member who has one (member_cap_reached)
    (datetime(2026, 6, 11, 9, 0, tzinfo=TZ), POSTER[3], "code_claim", {"code": POSTER_CODES[4], "policy": "poster-20"}),
    (datetime(2026, 6, 11, 9, 1, tzinfo=TZ), POSTER[0], "code_claim", {"code": POSTER_CODES[5], "policy": "poster-20"}),
]
REFUSED_REFERRALS: list[tuple[datetime, str, str]] = [
    # two late signups whose codes are refused (the signups themselves are not): their own code, and
    # a code no member has
    (datetime(2026, 6, 25, 20, 0, tzinfo=TZ), "nv-30069", "nv-30069"),
    (datetime(2026, 6, 25, 20, 5, tzinfo=TZ), "nv-30070", "nv-39999"),
]
LAPSED = "nv-30061"  # reaches Silver in March with one large order, then orders little
# 2 March: three pairs of earbuds as gifts, ordered by phone and confirmed by phone on 5 March (an id
# series of its own, so the app's, the web's and the warehouse's ids stay as they were): Silver is
# reached that day, and at the term's end on 5 June the member's recent orders are short of 600.
LAPSED_STORY: list[tuple[datetime, str, dict[str, Any]]] = [
    (datetime(2026, 3, 2, 19, 30, tzinfo=TZ), "purchase", {
        "amount": 3 * EARBUDS,
        "items": [{"sku": "EARBUDS", "category": "electronics", "quantity": 3, "amount": 3 * EARBUDS}],
    }),
    (datetime(2026, 3, 5, 11, 0, tzinfo=TZ), "order_completed", {"channel": "shop", "original_event_id": "hotline-000001"}),
]
# 人工调级: customer service sets tiers by hand (the API's POST/DELETE /members/{id}/tier-override
# make exactly these events, ids included). On 12 April the member who ordered most by then, still a
# Member, gets a Silver floor until 1 June for two lost parcels; it ends by itself. On 20 May the
# member with the most growth is held at Member (fixed, no end) while a resale complaint is looked
# into, and on 25 June staff end it.
GOODWILL_AT = datetime(2026, 4, 12, 10, 0, tzinfo=TZ)
GOODWILL_UNTIL = datetime(2026, 6, 1, 0, 0, tzinfo=TZ)
HELD_AT = datetime(2026, 5, 20, 15, 0, tzinfo=TZ)
RELEASED_AT = datetime(2026, 6, 25, 16, 0, tzinfo=TZ)
BULK_STORY: list[tuple[datetime, str, dict[str, Any]]] = [
    (datetime(2026, 6, 1, 9, 30, tzinfo=TZ), "signup", {}),
    (datetime(2026, 6, 2, 11, 0, tzinfo=TZ), "purchase", {"amount": 5 * TV}),  # 16,495 points: 10,000 a day
    (datetime(2026, 6, 2, 15, 0, tzinfo=TZ), "purchase", {"amount": EARBUDS}),  # the day's cap is reached
    (datetime(2026, 6, 3, 11, 0, tzinfo=TZ), "purchase", {"amount": 5 * TV}),
    (datetime(2026, 6, 4, 11, 0, tzinfo=TZ), "purchase", {"amount": 4 * TV}),  # 30,000 held: the maximum
    (datetime(2026, 6, 5, 11, 0, tzinfo=TZ), "purchase", {"amount": EARBUDS}),  # nothing fits
    # points pay at most 5,000 an order: 6,000 is refused, 5,000 accepted
    (datetime(2026, 6, 6, 11, 0, tzinfo=TZ), "purchase", {"amount": EARBUDS - 6000, "order_amount": EARBUDS, "points_paid": 6000}),
    (datetime(2026, 6, 6, 11, 1, tzinfo=TZ), "purchase", {"amount": EARBUDS - 5000, "order_amount": EARBUDS, "points_paid": 5000}),
    # at least 100 points at a time: 50 is refused; a fifth of the order is accepted
    (datetime(2026, 6, 7, 11, 0, tzinfo=TZ), "purchase", {"amount": TOWELS - 50, "order_amount": TOWELS, "points_paid": 50}),
    (datetime(2026, 6, 7, 11, 1, tzinfo=TZ), "purchase", {"amount": TOWELS - TOWELS // 5, "order_amount": TOWELS, "points_paid": TOWELS // 5}),
]


def clock(day: date, hour: float) -> datetime:
    seconds = int(hour * 3600)
    return datetime.combine(day, time(seconds // 3600, seconds // 60 % 60, seconds % 60), TZ)


class Shop:
    def __init__(self) -> None:
        self.stream = Stream(HERE / "scheme.yaml")
        self.members: dict[str, dict[str, Any]] = {}

    def state(self, member: dict[str, Any]) -> Any:
        return self.stream.replay.members[member["id"]]

    # --- planning ------------------------------------------------------------------------------

    def plan(self) -> None:
        for n in range(62):
            member_id = f"nv-{30001 + n}"
            rnd = random.Random(f"{SEED}:{member_id}")  # one stream of chance per member
            if member_id in ADVOCATE_FRIENDS:
                joined_day = date(2026, 3, 2) + timedelta(days=2 * ADVOCATE_FRIENDS.index(member_id))
            elif member_id == ADVOCATE:
                joined_day = FIRST_DAY + timedelta(days=rnd.randrange(14))
            elif member_id == DEBTOR:
                joined_day = date(2026, 5, 10)  # a new member, who comes for the TV
            else:
                joined_day = FIRST_DAY + timedelta(days=rnd.randrange(89))
            earlier = [
                m for m in self.members.values() if m["joined"].date() < joined_day and m["id"] != ADVOCATE
            ]
            referred_by = None
            if member_id in ADVOCATE_FRIENDS:
                referred_by = ADVOCATE
            elif earlier and rnd.random() < 0.3:
                referred_by = rnd.choice(earlier)["id"]
            member = {
                "id": member_id,
                "rnd": rnd,
                "joined": clock(joined_day, rnd.uniform(8, 23.5)),
                "channel": rnd.choice(["app", "app", "web"]),
                "orders_per_month": rnd.uniform(0.8, 3.0),
                "referred_by": referred_by,
                "orders": 0,
            }
            self.members[member_id] = member
        for member in self.members.values():
            self.stream.later(member["joined"], self.signup, member)
            days = 2 if member["referred_by"] == ADVOCATE else 10
            rnd = member["rnd"]
            first = member["joined"] + timedelta(minutes=rnd.randrange(10, days * 24 * 60))
            self.stream.later(first, self.order, member)
            day = first.date() + timedelta(days=1)
            while day <= LAST_DAY:
                if rnd.random() < member["orders_per_month"] / 30:
                    self.stream.later(clock(day, rnd.uniform(8, 23.9)), self.order, member)
                day += timedelta(days=1)
        debtor = self.members[DEBTOR]
        self.stream.later(datetime(2026, 5, 16, 21, 15, tzinfo=TZ), self.order, debtor, ["SMART-TV-55"])
        self.stream.later(FLASH_SALE, self.flash_sale)
        self.stream.later(STACKING_DAY, self.three_vouchers)
        for at, kind, attributes in BULK_STORY:
            self.stream.later(at, self.bulk, kind, attributes)
        for at, member_id, kind, attributes in POSTER_STORY:
            self.stream.later(at, self.poster, member_id, kind, attributes)
        for at, kind, attributes in LAPSED_STORY:
            self.stream.later(at, self.hotline, LAPSED, kind, attributes)
        for at, member_id, code in REFUSED_REFERRALS:
            self.stream.later(at, self.poster, member_id, "signup", {"referral_code": code})
        self.stream.later(GOODWILL_AT, self.goodwill)
        self.stream.later(HELD_AT, self.hold_at_member)

    # --- what members do -----------------------------------------------------------------------

    def signup(self, at: datetime, member: dict[str, Any]) -> None:
        # An invited friend signs up with the inviter's referral code (the inviter's member id).
        invited = {"referral_code": member["referred_by"]} if member["referred_by"] else {}
        self.stream.emit("signup", member["id"], at, member["channel"], **invited)

    def basket(self, member: dict[str, Any]) -> list[str]:
        rnd = member["rnd"]
        lines = [rnd.choice(SMALL) for _ in range(rnd.choice([1, 1, 1, 2, 2, 3]))]
        if rnd.random() < 0.04:
            lines.append("SMART-TV-55" if rnd.random() < 0.2 else "EARBUDS")
        return lines

    def order(
        self, at: datetime, member: dict[str, Any], lines: list[str] | None = None
    ) -> Iterator[timedelta]:
        rnd = member["rnd"]
        member_id = member["id"]
        state = self.state(member)
        points = state.balance("points")
        if points >= 800 and rnd.random() < 0.12 and at < datetime(2026, 6, 20, tzinfo=TZ):
            # The app offers a ¥10 voucher for points at checkout.
            self.stream.emit("reward_redemption", member_id, at, "app", reward="voucher-10")
            yield timedelta(seconds=20)
            at += timedelta(seconds=20)
            state = self.state(member)
        lines = list(lines) if lines is not None else self.basket(member)
        if member["referred_by"] == ADVOCATE and member["orders"] == 0:
            lines = ["NUTS-MIX", "TEA-GIFT"]  # the advocate's friends all start with her favourites
        coupons = self.stream.scheme.coupons
        usable = sorted((c for c in state.coupons if c.usable_at(at)), key=lambda c: (c.valid_until, c.id))
        chosen = None
        for coupon in usable:
            policy = coupons[coupon.policy]
            order = sum(CATALOGUE[sku][1] for sku in lines)
            if order < policy.min_spend and rnd.random() < 0.6:
                # 凑单: add something small to reach the coupon's minimum.
                while order < policy.min_spend:
                    sku = rnd.choice(SMALL)
                    lines.append(sku)
                    order += CATALOGUE[sku][1]
            if order >= policy.min_spend and rnd.random() < 0.85:
                chosen = coupon
                break
        order = sum(CATALOGUE[sku][1] for sku in lines)
        counted = Counter(lines)
        items = [
            {"sku": sku, "category": CATALOGUE[sku][0], "quantity": q, "amount": CATALOGUE[sku][1] * q}
            for sku, q in sorted(counted.items())
        ]
        attributes: dict[str, Any] = {"amount": order, "items": items}
        if chosen is not None:
            discount = min(order, coupons[chosen.policy].benefit.amount)  # type: ignore[union-attr]
            attributes = {
                "amount": order - discount,
                "order_amount": order,
                "items": items,
                "coupons": [chosen.id],
            }
        event = self.stream.emit("purchase", member_id, at, member["channel"], **attributes)
        member["orders"] += 1
        paid = event["attributes"]["amount"]
        returned_at: datetime | None = None
        if member_id == DEBTOR and "SMART-TV-55" in lines:
            returned_at = datetime(2026, 5, 23, 15, 40, tzinfo=TZ)
            self.stream.later(returned_at, self.refund, member, event, paid)
        elif paid > 0 and rnd.random() < 0.06 and member_id != DEBTOR:
            returned = paid if len(items) == 1 or rnd.random() < 0.6 else min(items[-1]["amount"], paid)
            returned_at = at + timedelta(days=rnd.randrange(2, 11), hours=rnd.randrange(0, 8))
            self.stream.later(returned_at, self.refund, member, event, returned)
        self.deliver(at, event, returned_at)

    def deliver(self, at: datetime, purchase: dict[str, Any], returned_at: datetime | None) -> None:
        """确认收货: most members confirm receipt 1 to 6 days after ordering (an order they return, the
        day after it); the rest never do, and the order's growth activates 14 days after it. A
        chance of its own, so the rest of the stream is drawn as before."""
        rnd = random.Random(f"{SEED}:delivery:{purchase['id']}")
        if returned_at is None and rnd.random() < 0.25:
            return
        received = at + timedelta(days=1 if returned_at is not None else rnd.randrange(1, 7), hours=rnd.randrange(0, 10))
        self.stream.later(received, self.received, purchase)

    def received(self, at: datetime, purchase: dict[str, Any]) -> None:
        self.stream.emit("order_completed", purchase["member_id"], at, "wms", channel="shop", original_event_id=purchase["id"])

    def refund(self, at: datetime, member: dict[str, Any], purchase: dict[str, Any], amount: int) -> None:
        self.stream.emit("refund", member["id"], at, "shop", original_event_id=purchase["id"], amount=amount)

    def poster(self, at: datetime, member_id: str, kind: str, attributes: dict[str, Any]) -> None:
        self.stream.emit(kind, member_id, at, "app", **attributes)

    def hotline(self, at: datetime, member_id: str, kind: str, attributes: dict[str, Any]) -> None:
        self.stream.emit(kind, member_id, at, "hotline", **attributes)

    def goodwill(self, at: datetime) -> None:
        members = [m for m in self.members.values() if m["joined"] < at and self.state(m).tier == "member"]
        member = max(members, key=lambda m: (m["orders"], m["id"]))
        reason = "two parcels lost: apology (ticket 4471) / 两次丢件致歉"
        self.stream.emit(
            "tier_override", member["id"], at, "", event_id="tier_override:cs-4471", channel="support",
            kind="floor", tier="silver", until=GOODWILL_UNTIL.isoformat(), reason=reason,
        )

    def hold_at_member(self, at: datetime) -> None:
        members = [m for m in self.members.values() if m["joined"] < at and m["id"] not in (DEBTOR, BULK)]
        member = max(members, key=lambda m: (self.state(m).balance("growth"), m["id"]))
        reason = "resale complaint under review (ticket 5102) / 疑似代购，核查中"
        self.stream.emit("tier_override", member["id"], at, "", event_id="tier_override:cs-5102", channel="support", kind="fixed", tier="member", reason=reason)
        self.stream.later(RELEASED_AT, self.release, member["id"])

    def release(self, at: datetime, member_id: str) -> None:
        self.stream.emit("tier_override_end", member_id, at, "", event_id=f"tier_override_end:{member_id}:by:cs-5102-closed", channel="support")

    def bulk(self, at: datetime, kind: str, attributes: dict[str, Any]) -> None:
        event = self.stream.emit(kind, BULK, at, "web", **attributes)
        refused = {r["event_id"] for r in self.stream.replay.rejections}
        if kind == "purchase" and event["id"] not in refused:
            self.deliver(at, event, None)

    def flash_sale(self, at: datetime) -> Iterator[timedelta]:
        """At 10:00 on 20 May a dozen members ask for the limited voucher within a minute."""
        rnd = random.Random(f"{SEED}:flash-sale")
        joined = [m for m in self.members.values() if m["joined"] < at and m["id"] != DEBTOR]
        rich = [m for m in joined if self.state(m).balance("points") >= 2000]
        poor = [m for m in joined if 0 < self.state(m).balance("points") < 2000]
        crowd = rnd.sample(rich, min(len(rich), 9))
        rnd.shuffle(crowd)
        short = rnd.sample(poor, 2)  # two who have too few points: one early, one late
        crowd = crowd[:1] + [self.members[DEBTOR], crowd[1], short[0]] + crowd[2:] + [short[1]]
        wait = timedelta(seconds=4)
        for member in crowd:
            yield wait
            at += wait
            self.stream.emit("reward_redemption", member["id"], at, "app", reward="limited-50")
        # The debtor also takes a ¥10 voucher right after.
        yield wait
        self.stream.emit("reward_redemption", DEBTOR, at + wait, "app", reward="voucher-10")

    def three_vouchers(self, at: datetime) -> Iterator[timedelta]:
        """The member with the most points takes three ¥10 vouchers and checks out on the web with
        all three before the page has asked which stack: at most two go on one order, so the order
        is refused (coupon_not_stackable), and placed again a minute later with the two that apply."""
        joined = [m for m in self.members.values() if m["joined"] < at and m["id"] not in (DEBTOR, BULK)]
        member = max(joined, key=lambda m: (self.state(m).balance("points"), m["id"]))
        vouchers = []
        for _ in range(3):
            taken = self.stream.emit("reward_redemption", member["id"], at, "app", reward="voucher-10")
            vouchers.append(f"{taken['id']}#c1")
            yield timedelta(seconds=20)
            at += timedelta(seconds=20)
        lines = ["TEA-GIFT", "NUTS-MIX"]
        order = sum(CATALOGUE[sku][1] for sku in lines)
        items = [{"sku": sku, "category": CATALOGUE[sku][0], "quantity": 1, "amount": CATALOGUE[sku][1]} for sku in lines]
        self.stream.emit("purchase", member["id"], at, "web", amount=order - 3000, order_amount=order, items=items, coupons=vouchers)
        yield timedelta(minutes=1)
        at += timedelta(minutes=1)
        checks = validate_coupons(self.stream.replay.program, self.state(member), order, vouchers, at)
        applying = [c.coupon for c in sorted(checks, key=lambda c: c.order or 0) if c.applies]
        discount = sum(c.discount for c in checks if c.applies)
        self.stream.emit("purchase", member["id"], at, "web", amount=order - discount, order_amount=order, items=items, coupons=applying)


def generate() -> list[dict[str, Any]]:
    shop = Shop()
    shop.plan()
    shop.stream.run(until=datetime.combine(LAST_DAY, time(23, 59, 59), TZ))
    return shop.stream.events


def write(path: Path) -> None:
    lines = [json.dumps(event, ensure_ascii=False, separators=(",", ":")) for event in generate()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "events.jsonl")
