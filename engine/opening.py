"""Opening balances (期初导入): a member moving from another system starts with the lots, tier and
coupons that system held, as one `opening` event with its own ledger entries (kind `opening`).

The opening's content travels as the event's `data` attribute (canonical JSON), so the event is
stored, replayed and compared like any other, and the step here is pure like the rest of the
engine: it checks everything first and refuses the whole opening, changing nothing, at the first
line that cannot hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .events import parse_instant
from .state import Coupon, Lot


class OpeningRefused(Exception):  # noqa: N818 - a refusal value carried out of the parse, not an error
    def __init__(self, code: str, message: str, pointer: str) -> None:
        super().__init__(message)
        self.code, self.message, self.pointer = code, message, pointer


def _instant(value: Any, pointer: str) -> datetime:
    instant = parse_instant(value)
    if instant is None:
        raise OpeningRefused("wrong_type", "an instant with an offset, such as 2026-11-01T00:00:00+08:00", pointer)
    return instant


def read_opening(
    data: str, event_id: str, at: datetime, balances: Mapping[str, Any], tiers: Mapping[str, int], policies: Mapping[str, Any]
) -> tuple[list[Lot], list[Coupon], tuple[str, datetime] | None]:
    """The lots, coupons and (tier, reached at) of an opening, checked against the scheme: known
    balances, parts, tiers and coupon policies, whole positive amounts, nothing expired at `at`."""
    try:
        content = json.loads(data)
    except ValueError:
        raise OpeningRefused("wrong_type", "the opening's data is not JSON", "/attributes/data") from None
    if not isinstance(content, dict):
        raise OpeningRefused("wrong_type", "the opening's data is a JSON object", "/attributes/data")
    lots: list[Lot] = []
    for n, item in enumerate(content.get("lots") or [], 1):
        where = f"/lots/{n - 1}"
        balance = item.get("balance")
        config = balances.get(balance)
        if config is None:
            raise OpeningRefused("unknown_balance", f"no balance '{balance}' (known: {', '.join(balances)})", f"{where}/balance")
        amount = item.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise OpeningRefused("wrong_amount", "a lot's amount is a whole number above 0", f"{where}/amount")
        part = item.get("part")
        if config.parts is not None and part not in config.parts:
            raise OpeningRefused("missing_part", f"balance '{balance}' has parts {config.parts}: say which part the lot is", f"{where}/part")
        if config.parts is None and part is not None:
            raise OpeningRefused("unknown_part", f"balance '{balance}' has no parts", f"{where}/part")
        earned_at = _instant(item.get("earned_at"), f"{where}/earned_at")
        expires_at = _instant(item["expires_at"], f"{where}/expires_at") if item.get("expires_at") is not None else None
        if earned_at > at:
            raise OpeningRefused("earned_later", "a lot is earned after the opening", f"{where}/earned_at")
        if expires_at is not None and expires_at <= at:
            raise OpeningRefused("lot_expired", f"the lot expired at {expires_at.isoformat()}, before the opening", f"{where}/expires_at")
        lots.append(Lot(f"{event_id}#{n}", balance, amount, earned_at, expires_at, part, None, event_id, None))
    coupons: list[Coupon] = []
    for n, item in enumerate(content.get("coupons") or [], 1):
        where = f"/coupons/{n - 1}"
        policy = item.get("policy")
        if policy not in policies:
            raise OpeningRefused("unknown_coupon_policy", f"no coupon policy '{policy}'", f"{where}/policy")
        valid_from = _instant(item["valid_from"], f"{where}/valid_from") if item.get("valid_from") is not None else at
        valid_until = _instant(item.get("valid_until"), f"{where}/valid_until")
        if valid_until <= at:
            raise OpeningRefused("coupon_expired", f"the coupon ended at {valid_until.isoformat()}, before the opening", f"{where}/valid_until")
        code = item.get("code")
        if code is not None and not isinstance(code, str):
            raise OpeningRefused("wrong_type", "a coupon's code is text", f"{where}/code")
        coupons.append(Coupon(f"{event_id}#c{n}", policy, at, valid_from, valid_until, event_id, None, code=code))
    tier = None
    if content.get("tier") is not None:
        if content["tier"] not in tiers:
            raise OpeningRefused("unknown_tier", f"no tier '{content['tier']}' (known: {', '.join(tiers)})", "/tier")
        reached = _instant(content.get("tier_reached_at"), "/tier_reached_at")
        if reached > at:
            raise OpeningRefused("reached_later", "the tier is reached after the opening", "/tier_reached_at")
        tier = (content["tier"], reached)
    return lots, coupons, tier
