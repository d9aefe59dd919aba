"""Writes events.jsonl for Bean Club (豆香咖啡): six months of a small coffee chain, January to June 2026.

About sixty members join, mostly in January; heavy, regular and light customers buy at five stores,
at the counter (pos) or in the mini-program (app). Some orders are refunded in full or in part,
coupons are used on orders, points are spent in the rewards catalogue, and the scheduler sends
birthday events. One cashier scans a coupon that was already used (the engine refuses that order;
the till rings it up again without the coupon), and a legacy CRM sends a second birthday event for
one member (the birthday rule's monthly cap stops a second treat).

The stream is deterministic: a seeded `random.Random`, and the engine replayed as the stream is
written, so the generator knows which coupons a member holds (their ids are `<event id>#c<n>`) and
how many points they can spend. Standard library and perkflow only. From the repository root:

    .venv/bin/python examples/coffee/generate.py            # rewrites examples/coffee/events.jsonl
    .venv/bin/python examples/coffee/generate.py OUT.jsonl  # writes elsewhere
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

HERE = Path(__file__).resolve().parent
SEED = 20260105
TZ = timezone(timedelta(hours=8))  # Asia/Shanghai has no daylight saving
FIRST_DAY, LAST_DAY = date(2026, 1, 5), date(2026, 6, 28)

STORES = ["sh-xujiahui", "sh-jingan", "sh-lujiazui", "hz-xihu", "hz-binjiang"]
MENU = {  # sku: (category, price in fen)
    "AMERICANO-M": ("coffee", 1500),
    "LATTE-M": ("coffee", 1800),
    "COLD-BREW": ("coffee", 1900),
    "COCONUT-LATTE": ("coffee", 2000),
    "FLAT-WHITE": ("coffee", 2000),
    "MOCHA-M": ("coffee", 2100),
    "MATCHA-LATTE": ("tea", 2000),
    "CROISSANT": ("bakery", 1200),
    "CHEESECAKE": ("bakery", 2200),
    "SANDWICH": ("food", 1800),
}
DRINKS = [sku for sku, (category, _) in MENU.items() if category in ("coffee", "tea")]
FOOD = [sku for sku, (category, _) in MENU.items() if category not in ("coffee", "tea")]
SEGMENTS = [  # name, share of members, visits per week, chance of an office order for the team
    ("heavy", 0.12, 3.0, 0.06),
    ("regular", 0.35, 1.0, 0.03),
    ("light", 0.53, 0.3, 0.0),
]
REFUND_RATE = 0.025


def pick_segment(r: float) -> tuple[str, float, float, float]:
    """The segment a uniform draw `r` in [0, 1) falls in, by the segments' shares."""
    for segment in SEGMENTS:
        if r < segment[1]:
            return segment
        r -= segment[1]
    return SEGMENTS[-1]


class BeanClub:
    def __init__(self) -> None:
        self.stream = Stream(HERE / "scheme.yaml")
        self.members: dict[str, dict[str, Any]] = {}
        self.rescan: str | None = None  # a member whose next order scans a coupon already used
        self.rescan_done = False
        self.crm_duplicate: str | None = None

    # --- planning ------------------------------------------------------------------------------

    def plan(self) -> None:
        for n in range(60):
            member_id = f"bc-{10001 + n}"
            rnd = random.Random(f"{SEED}:{member_id}")  # one stream of chance per member
            segment = pick_segment(rnd.random())
            joined_day = FIRST_DAY + timedelta(
                days=rnd.randrange(21) if rnd.random() < 0.7 else rnd.randrange(21, 100)
            )
            joined = self.clock(joined_day, rnd.uniform(8, 21))
            member = {
                "id": member_id,
                "rnd": rnd,
                "segment": segment[0],
                "per_week": segment[2] * rnd.uniform(0.7, 1.3),
                "office": segment[3],
                "home": rnd.choice(STORES),
                "app": rnd.random() < 0.45,  # orders in the mini-program now and then
                "birthday": (rnd.randrange(1, 13), rnd.randrange(1, 29)),
            }
            self.members[member_id] = member
            self.stream.later(joined, self.signup, member)
            day = joined_day + timedelta(days=1)
            while day <= LAST_DAY:
                weekend = day.isoweekday() >= 6
                chance = member["per_week"] / 7 * (0.8 if weekend else 1.08)
                if rnd.random() < chance:
                    hour = rnd.choice(
                        [
                            rnd.uniform(7.5, 10),
                            rnd.uniform(12, 14),
                            rnd.uniform(14.5, 18),
                            rnd.uniform(18, 21),
                        ]
                    )
                    self.stream.later(self.clock(day, hour), self.visit, member)
                day += timedelta(days=1)
            month, mday = member["birthday"]
            birthday = date(2026, month, mday)
            if joined_day < birthday <= LAST_DAY:
                self.stream.later(datetime.combine(birthday, time(8, 0), TZ), self.birthday, member)
        # The legacy CRM also sends a birthday event for the first member with a birthday in April.
        april = sorted(m["id"] for m in self.members.values() if m["birthday"][0] == 4)
        self.crm_duplicate = april[0] if april else None

    @staticmethod
    def clock(day: date, hour: float) -> datetime:
        minutes = int(hour * 60)
        return datetime.combine(day, time(minutes // 60, minutes % 60), TZ)

    # --- what members do -----------------------------------------------------------------------

    def signup(self, at: datetime, member: dict[str, Any]) -> None:
        channel = "app" if member["app"] or member["rnd"].random() < 0.5 else "pos"
        self.stream.emit("signup", member["id"], at, channel, store=member["home"])

    def birthday(self, at: datetime, member: dict[str, Any]) -> None:
        stamp = f"{member['id']}-{at.date().isoformat()}"
        self.stream.emit(
            "birthday",
            member["id"],
            at,
            "scheduler",
            channel="system",
            event_id=f"scheduler-birthday-{stamp}",
        )
        if member["id"] == self.crm_duplicate:
            self.stream.later(at + timedelta(hours=2), self.crm_birthday, member)

    def crm_birthday(self, at: datetime, member: dict[str, Any]) -> None:
        stamp = f"{member['id']}-{at.date().isoformat()}"
        self.stream.emit(
            "birthday", member["id"], at, "crm", channel="system", event_id=f"crm-birthday-{stamp}"
        )

    def visit(self, at: datetime, member: dict[str, Any]) -> None:
        rnd = member["rnd"]
        state = self.stream.replay.members[member["id"]]
        points = state.balance("points")
        # Points are spent in the mini-program just before an order; some save up for the americano.
        reward = (
            "americano"
            if points >= 1500 and rnd.random() < 0.4
            else "ten-off"
            if points >= 1000 and rnd.random() < 0.12
            else None
        )
        if reward is not None:
            self.stream.emit("reward_redemption", member["id"], at, "app", reward=reward)
            at += timedelta(minutes=rnd.randrange(3, 9))
        self.stream.later(at, self.purchase, member)

    def basket(self, member: dict[str, Any]) -> dict[str, int]:
        rnd = member["rnd"]
        lines: Counter[str] = Counter()
        if rnd.random() < member["office"]:
            for _ in range(rnd.randrange(6, 13)):  # an office order for the team
                lines[rnd.choice(DRINKS)] += 1
        else:
            lines[rnd.choice(DRINKS)] += 1
            if rnd.random() < 0.12:
                lines[rnd.choice(DRINKS)] += 1
        if rnd.random() < 0.28:
            lines[rnd.choice(FOOD)] += 1
        return dict(lines)

    def purchase(self, at: datetime, member: dict[str, Any]) -> Iterator[timedelta]:
        rnd = member["rnd"]
        member_id = member["id"]
        lines = self.basket(member)
        coupons = self.stream.scheme.coupons
        state = self.stream.replay.members[member_id]
        usable = sorted((c for c in state.coupons if c.usable_at(at)), key=lambda c: (c.valid_until, c.id))
        chosen = None
        for coupon in usable:
            benefit = coupons[coupon.policy].benefit
            if benefit.kind == "free_item" and rnd.random() < 0.8:
                lines[benefit.sku] = lines.get(benefit.sku, 0) + (0 if benefit.sku in lines else 1)
            order = sum(MENU[sku][1] * q for sku, q in lines.items())
            if order >= coupons[coupon.policy].min_spend and rnd.random() < 0.75:
                chosen = coupon
                break
        order = sum(MENU[sku][1] * q for sku, q in lines.items())
        items = [
            {"sku": sku, "category": MENU[sku][0], "quantity": q, "amount": MENU[sku][1] * q}
            for sku, q in sorted(lines.items())
        ]
        store = member["home"] if rnd.random() < 0.8 else rnd.choice(STORES)
        system = "app" if member["app"] and rnd.random() < 0.35 else "pos"
        attributes: dict[str, Any] = {"amount": order, "items": items}
        if member_id == self.rescan and not self.rescan_done:
            # The cashier scans a coupon this member already used: the order is refused, and rung up
            # again a minute later without it.
            used = next(c for c in state.coupons if c.redeemed_at is not None)
            self.stream.emit(
                "purchase",
                member_id,
                at,
                system,
                store=store,
                **{**attributes, "order_amount": order, "coupons": [used.id]},
            )
            self.rescan_done = True
            yield timedelta(minutes=1)
            at += timedelta(minutes=1)
        if chosen is not None:
            benefit = coupons[chosen.policy].benefit
            discount = min(order, benefit.amount if benefit.kind == "amount_off" else benefit.value)  # type: ignore[union-attr]
            attributes = {
                "amount": order - discount,
                "order_amount": order,
                "items": items,
                "coupons": [chosen.id],
            }
        event = self.stream.emit("purchase", member_id, at, system, store=store, **attributes)
        if chosen is not None and self.rescan is None and len(self.stream.events) > 600:
            self.rescan = member_id
        paid = event["attributes"]["amount"]
        if paid > 0 and rnd.random() < REFUND_RATE:
            self.stream.later(
                at + timedelta(minutes=rnd.randrange(10, 2 * 24 * 60)), self.refund, member, event, store
            )

    def refund(self, at: datetime, member: dict[str, Any], purchase: dict[str, Any], store: str) -> None:
        attributes = purchase["attributes"]
        paid = attributes["amount"]
        lines = attributes["items"]
        if len(lines) > 1 and "coupons" not in attributes and member["rnd"].random() < 0.6:
            amount = min(lines[-1]["amount"], paid)  # one line of the order is returned
        else:
            amount = paid
        self.stream.emit(
            "refund", member["id"], at, "pos", store=store, original_event_id=purchase["id"], amount=amount
        )


def generate() -> list[dict[str, Any]]:
    club = BeanClub()
    club.plan()
    club.stream.run(until=datetime.combine(LAST_DAY, time(23, 59, 59), TZ))
    return club.stream.events


def write(path: Path) -> None:
    lines = [json.dumps(event, ensure_ascii=False, separators=(",", ":")) for event in generate()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "events.jsonl")
