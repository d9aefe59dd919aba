"""Writes events.jsonl for Lotus Salon (莲花美容): October 2025 to March 2026, across a year end.

About forty clients join; most top up the stored-value wallet (充100送20) and pay for services from
it, the others pay in cash or by card. Some check in every day in the mini-program, building
streaks; one of them keeps a seven-day streak four times in January and meets the monthly cap. Points
are spent on rewards, most of them in the December rush before the year-end expiry. One client
changes her mind and gets a top-up back in full the next day, another moves away in March and gets
her unspent principal back, another tops up ¥500 three times in November (the third gets no bonus),
and a few services paid in cash are refunded.

The stream is deterministic: a seeded `random.Random`, and the engine replayed as the stream is
written, so the generator knows a client's wallet, points and coupons (coupon ids are
`<event id>#c<n>`). Standard library and perkflow only. From the repository root:

    .venv/bin/python examples/salon/generate.py            # rewrites examples/salon/events.jsonl
    .venv/bin/python examples/salon/generate.py OUT.jsonl  # writes elsewhere
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # examples/stream.py
from stream import Stream  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 20251001
TZ = timezone(timedelta(hours=8))
FIRST_DAY, LAST_DAY = date(2025, 10, 1), date(2026, 3, 31)

STORES = ["lotus-xintiandi", "lotus-gubei"]
SERVICES = {  # sku: (category, price in fen)
    "FACIAL-BASIC": ("facial", 19800),
    "FACIAL-HYDRA": ("facial", 38800),
    "MASSAGE-60": ("body", 29800),
    "MANICURE": ("nails", 12800),
    "HAND-SPA": ("nails", 12800),
    "EYELASH": ("lashes", 26800),
    "HAIR-CUT": ("hair", 16800),
    "HAIR-COLOR": ("hair", 58800),
}
PACKAGES = [(50000, 3), (88000, 2), (100000, 4), (200000, 3), (300000, 1)]  # top-up amount, weight
STREAK_HUNTER = "ls-20003"  # checks in 7 days in a row, four times in January
CHANGED_MIND = "ls-20005"  # gets her second top-up back in full the next day
MOVING_AWAY = "ls-20008"  # from 10 February, her next visit is to get her unspent principal back
SMALL_TOP_UPS = "ls-20012"  # tops up ¥500 three times in November: the third gets no bonus
PAYS_WITH_POINTS = "ls-20041"  # joins in March, pays a bill with points and the wallet, and gets part of it back


def spendable(state: Any, balance: str, at: datetime) -> int:
    """What the client can spend at `at`: lots that have expired by then are gone."""
    return sum(
        lot.amount for lot in state.lots.get(balance, ()) if lot.expires_at is None or lot.expires_at > at
    )


def clock(day: date, hour: float) -> datetime:
    minutes = int(hour * 60)
    return datetime.combine(day, time(minutes // 60, minutes % 60), TZ)


class Salon:
    def __init__(self) -> None:
        self.stream = Stream(HERE / "scheme.yaml")
        self.members: dict[str, dict[str, Any]] = {}

    def state(self, member: dict[str, Any]) -> Any:
        return self.stream.replay.members[member["id"]]

    # --- planning ------------------------------------------------------------------------------

    def plan(self) -> None:
        for n in range(40):
            member_id = f"ls-{20001 + n}"
            rnd = random.Random(f"{SEED}:{member_id}")  # one stream of chance per client
            r = rnd.random()
            joined_day = FIRST_DAY + timedelta(
                days=rnd.randrange(31)
                if r < 0.6
                else rnd.randrange(31, 92)
                if r < 0.9
                else rnd.randrange(92, 140)
            )
            if member_id in (STREAK_HUNTER, CHANGED_MIND, MOVING_AWAY, SMALL_TOP_UPS):
                joined_day = FIRST_DAY + timedelta(days=rnd.randrange(20))
            member = {
                "id": member_id,
                "rnd": rnd,
                "store": rnd.choice(STORES),
                "wallet": member_id in (CHANGED_MIND, MOVING_AWAY) or rnd.random() < 0.65,
                "visits_per_month": rnd.uniform(1.0, 3.5),
                "app": member_id == STREAK_HUNTER or rnd.random() < 0.22,
                "left": False,
                "visits": 0,
                "topups": 0,
            }
            if member_id == MOVING_AWAY:
                member["visits_per_month"] = 1.0
            self.members[member_id] = member
            joined = clock(joined_day, rnd.uniform(10, 19))
            self.stream.later(joined, self.signup, member)
            day = joined_day + timedelta(days=1)
            while day <= LAST_DAY:
                if rnd.random() < member["visits_per_month"] / 30:
                    self.stream.later(clock(day, rnd.uniform(10, 20.5)), self.visit, member)
                day += timedelta(days=1)
            if member["app"]:
                self.plan_checkins(member, joined_day)
            if member_id == SMALL_TOP_UPS:
                member["wallet"] = True
                for day in (3, 14, 26):
                    self.stream.later(clock(date(2025, 11, day), 12.5), self.desk_topup, member, 50000)
        self.plan_points_and_wallet()

    def plan_points_and_wallet(self) -> None:
        """One client, scripted: paying at the till with points and the wallet together, then a
        refund of one of the two services, which gives back points, principal and bonus."""
        member = {"id": PAYS_WITH_POINTS, "store": STORES[0]}
        day = date(2026, 3, 2)
        self.stream.later(clock(day, 11), self.scripted, member, "signup", {})
        self.stream.later(clock(day, 11.1), self.scripted, member, "topup", {"amount": 100000})
        hair = self.lines(["HAIR-COLOR"])
        self.stream.later(clock(date(2026, 3, 3), 15), self.scripted, member, "purchase", {"amount": 58800, "items": hair, "stored_value_paid": 58800})
        self.stream.later(clock(date(2026, 3, 10), 16), self.pay_with_points, member)

    @staticmethod
    def lines(skus: list[str]) -> list[dict[str, Any]]:
        return [{"sku": sku, "category": SERVICES[sku][0], "quantity": 1, "amount": SERVICES[sku][1]} for sku in skus]

    def scripted(self, at: datetime, member: dict[str, Any], kind: str, attributes: dict[str, Any]) -> None:
        self.stream.emit(kind, member["id"], at, "pos", store=member["store"], **attributes)

    def pay_with_points(self, at: datetime, member: dict[str, Any]) -> None:
        """A facial and a manicure, ¥516: 600 points pay ¥6, the wallet ¥450, the rest is cash.
        `amount` is the money paid, the wallet's part included; two days later the manicure (¥128)
        is refunded."""
        items = self.lines(["FACIAL-HYDRA", "MANICURE"])
        attributes = {"amount": 51000, "items": items, "points_paid": 600, "stored_value_paid": 45000}
        event = self.stream.emit("purchase", member["id"], at, "pos", store=member["store"], **attributes)
        manicure = SERVICES["MANICURE"][1]
        self.stream.later(at + timedelta(days=2), self.scripted, member, "refund", {"original_event_id": event["id"], "amount": manicure})

    def plan_checkins(self, member: dict[str, Any], joined_day: date) -> None:
        rnd = member["rnd"]
        keep_going, start_again = rnd.uniform(0.75, 0.9), rnd.uniform(0.1, 0.3)
        yesterday = False
        day = joined_day + timedelta(days=1)
        while day <= LAST_DAY:
            today = rnd.random() < (keep_going if yesterday else start_again)
            if member["id"] == STREAK_HUNTER and (day.year, day.month) in ((2025, 12), (2026, 1)):
                # Not on New Year's Eve, then 1-7, 9-15, 17-23, 25-31: four streaks of seven days.
                today = (day.month == 1 and day.day % 8 != 0) or (day.month == 12 and day.day != 31 and today)
            if today:
                self.stream.later(clock(day, rnd.uniform(7, 23)), self.checkin, member)
            yesterday = today
            day += timedelta(days=1)

    # --- what clients do -----------------------------------------------------------------------

    def signup(self, at: datetime, member: dict[str, Any]) -> Iterator[timedelta]:
        self.stream.emit("signup", member["id"], at, "pos", store=member["store"])
        if member["wallet"]:
            yield timedelta(minutes=5)
            self.topup(at + timedelta(minutes=5), member)

    def topup(self, at: datetime, member: dict[str, Any]) -> dict[str, Any]:
        amounts, weights = zip(*PACKAGES, strict=True)
        amount = 300000 if member["id"] == MOVING_AWAY else member["rnd"].choices(amounts, weights)[0]
        event = self.stream.emit("topup", member["id"], at, "pos", store=member["store"], amount=amount)
        member["topups"] += 1
        if member["id"] == CHANGED_MIND and member["topups"] == 2:
            self.stream.later(at + timedelta(days=1), self.refund_topup, member, event, amount)
        return event

    def desk_topup(self, at: datetime, member: dict[str, Any], amount: int) -> None:
        self.stream.emit("topup", member["id"], at, "pos", store=member["store"], amount=amount)

    def checkin(self, at: datetime, member: dict[str, Any]) -> None:
        if member["left"]:
            return
        self.stream.emit("checkin", member["id"], at, "app")

    def visit(self, at: datetime, member: dict[str, Any]) -> Iterator[timedelta]:
        rnd = member["rnd"]
        if member["left"]:
            return
        state = self.state(member)
        if member["id"] == MOVING_AWAY and at.date() >= date(2026, 2, 10):
            self.move_away(at, member)
            return
        member["visits"] += 1
        step = timedelta(seconds=10)  # one visit's events, a few seconds apart
        if member["app"] and rnd.random() < 0.5:
            # Scanning the desk's QR code checks the client in too, even if she did in the app today.
            self.stream.emit("checkin", member["id"], at, "pos", store=member["store"])
            yield step
            at += step
        points = spendable(state, "points", at)
        december = at.month == 12 and at.day >= 10
        affordable = [
            rid for rid, reward in self.stream.scheme.rewards.items() if reward.cost.amount <= points
        ]
        if affordable and rnd.random() < (0.7 if december else 0.1):
            reward = "hand-spa" if "hand-spa" in affordable else "ten-percent"
            self.stream.emit("reward_redemption", member["id"], at, "app", reward=reward)
            yield step
            at += step
            state = self.state(member)
        lines = [rnd.choice(sorted(SERVICES))]
        if rnd.random() < 0.2:
            lines.append(rnd.choice(sorted(SERVICES)))
        coupons = self.stream.scheme.coupons
        usable = sorted((c for c in state.coupons if c.usable_at(at)), key=lambda c: (c.valid_until, c.id))
        chosen = usable[0] if usable and rnd.random() < 0.85 else None
        if chosen is not None:
            benefit = coupons[chosen.policy].benefit
            if benefit.kind == "free_item" and benefit.sku not in lines:
                lines.append(benefit.sku)
        order = sum(SERVICES[sku][1] for sku in lines)
        if chosen is not None and coupons[chosen.policy].benefit.kind == "amount_off":
            # 凑单: the client adds services until the bill reaches the coupon's minimum spend
            while order < (coupons[chosen.policy].min_spend or 0):
                lines.append(rnd.choice(sorted(SERVICES)))
                order += SERVICES[lines[-1]][1]
        discount = 0
        if chosen is not None:
            benefit = coupons[chosen.policy].benefit
            if benefit.kind == "amount_off":
                discount = min(order, benefit.amount)
            elif benefit.kind == "free_item":
                discount = min(order, benefit.value)
            elif benefit.kind == "percent_off":
                off = (Decimal(order) * benefit.percent / 100).to_integral_value(rounding=ROUND_FLOOR)
                discount = min(int(off), benefit.max_off if benefit.max_off is not None else order)
        amount = order - discount
        low = state.balance("wallet") < max(amount, 30000) and rnd.random() < 0.75
        if member["id"] == CHANGED_MIND:
            low = member["visits"] == 3  # she tops up again on her third visit, then changes her mind
        elif member["id"] == MOVING_AWAY:
            low = False
        if member["wallet"] and amount > 0 and low:
            self.topup(at, member)
            yield step
            at += step
            state = self.state(member)
        wallet = state.balance("wallet") if member["wallet"] else 0
        wallet_paid = min(wallet, amount)
        items = [
            {"sku": sku, "category": SERVICES[sku][0], "quantity": 1, "amount": SERVICES[sku][1]}
            for sku in lines
        ]
        attributes: dict[str, Any] = {"amount": amount, "items": items}
        if chosen is not None:
            attributes.update(order_amount=order, coupons=[chosen.id])
        if wallet_paid:
            attributes["stored_value_paid"] = wallet_paid
        event = self.stream.emit("purchase", member["id"], at, "pos", store=member["store"], **attributes)
        if not wallet_paid and amount > 0 and rnd.random() < 0.04:
            # A service paid in cash is refunded: the client was unhappy with it.
            self.stream.later(
                at + timedelta(days=rnd.randrange(1, 4), hours=1), self.refund_service, member, event
            )

    def refund_service(self, at: datetime, member: dict[str, Any], purchase: dict[str, Any]) -> None:
        self.stream.emit(
            "refund",
            member["id"],
            at,
            "pos",
            store=member["store"],
            original_event_id=purchase["id"],
            amount=purchase["attributes"]["amount"],
        )

    def refund_topup(self, at: datetime, member: dict[str, Any], topup: dict[str, Any], amount: int) -> None:
        self.stream.emit(
            "refund",
            member["id"],
            at,
            "pos",
            store=member["store"],
            original_event_id=topup["id"],
            amount=amount,
        )

    def move_away(self, at: datetime, member: dict[str, Any]) -> None:
        """The unspent principal of her latest top-up comes back; its bonus goes in proportion."""
        state = self.state(member)
        topup = max((e for e in state.earnings.values() if e.event_type == "topup"), key=lambda e: e.event_id)
        principal = state.part_balance("wallet", "principal")
        amount = min(principal, topup.amount - topup.refunded)
        self.stream.emit(
            "refund",
            member["id"],
            at,
            "pos",
            store=member["store"],
            original_event_id=topup.event_id,
            amount=amount,
        )
        member["left"] = True


def generate() -> list[dict[str, Any]]:
    salon = Salon()
    salon.plan()
    salon.stream.run(until=datetime.combine(LAST_DAY, time(23, 59, 59), TZ))
    return salon.stream.events


def write(path: Path) -> None:
    lines = [json.dumps(event, ensure_ascii=False, separators=(",", ":")) for event in generate()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "events.jsonl")
