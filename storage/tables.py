"""The database tables, designed once for every part of the product.

SQLAlchemy Core on SQLite and PostgreSQL alike. Instants are stored in UTC. Money and points
are integers. Personal data lives only in the `*_cipher` columns (AES-GCM) with keyed blind
indexes for lookup; the birthday's month and day are kept apart so the scheduler never decrypts.
Migrations (storage/migrations) only add; a removal takes two releases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware in Python, UTC in the database (SQLite has no timezone type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass an aware instant")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = JSON().with_variant(JSONB(), "postgresql")
BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

schemes = Table(
    "schemes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("active_version", Integer, nullable=True),
    Column("require_approval", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
)

scheme_versions = Table(
    "scheme_versions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("scheme_id", String(64), ForeignKey("schemes.id"), nullable=False),
    Column("number", Integer, nullable=True),  # set when published; drafts have none
    Column("status", String(16), nullable=False),  # draft, submitted, published, returned
    Column("hash", String(80), nullable=False),
    Column("content", Text, nullable=False),  # canonical JSON, what the hash covers
    Column("revision", Integer, nullable=False, default=1),  # drafts: bumped on each save
    Column("author", String(200), nullable=False),
    Column("approver", String(200), nullable=True),
    Column("comment", Text, nullable=False, default=""),
    Column("effective_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    UniqueConstraint("scheme_id", "number"),
    Index(None, "scheme_id", "status"),
)

drafts = Table(
    "drafts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("title", String(200), nullable=False),
    Column("content", Text, nullable=False),  # the document as the editor holds it: JSON, not yet valid
    Column("revision", Integer, nullable=False),  # bumped on each save; a save names the one it edited
    Column("status", String(16), nullable=False),  # editing, submitted, published, discarded
    Column("base_version", Integer, nullable=True),  # the published number it was started from
    Column("version_id", BigInteger, nullable=True),  # the version it was last submitted as
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "status"),
)

stores = Table(
    "stores",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
)

members = Table(
    "members",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("external_id", String(200), nullable=False, unique=True),
    Column("status", String(16), nullable=False, default="active"),  # active, merged, erased
    Column("merged_into", BigInteger, nullable=True),
    Column("home_store", String(64), nullable=False, default=""),
    Column("joined_at", UTCDateTime, nullable=False),
    Column("tags", Json, nullable=False, default=list),
    Column("attributes", Json, nullable=False, default=dict),
    # personal data: ciphertext and keyed blind indexes only
    Column("key_id", String(32), nullable=True),
    Column("phone_cipher", LargeBinary, nullable=True),
    Column("phone_index", String(64), nullable=True, index=True),
    Column("email_cipher", LargeBinary, nullable=True),
    Column("email_index", String(64), nullable=True, index=True),
    Column("name_cipher", LargeBinary, nullable=True),
    Column("birthday_cipher", LargeBinary, nullable=True),
    Column("birthday_month", Integer, nullable=True),
    Column("birthday_day", Integer, nullable=True),
    # engine state that is not lots, coupons or earnings
    Column("tier", String(64), nullable=True),
    Column("tier_since", UTCDateTime, nullable=True),
    Column("tier_review_at", UTCDateTime, nullable=True),
    Column("grace_until", UTCDateTime, nullable=True),
    Column("counters", Json, nullable=False, default=dict),
    Column("caps", Json, nullable=False, default=dict),
    Column("rewards", Json, nullable=False, default=dict),
    Column("last_event_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_purchase_at", UTCDateTime, nullable=True),  # 0003: inactivity
    Column("locale", String(16), nullable=True),  # 0004: the language of notifications (en, zh-CN)
    Column("goals", Json, nullable=True),  # 0009: progress towards achievements; none is no progress
    Column("tier_override", Json, nullable=True),  # 0010: {kind, tier, reason, set_at, until, before} set by staff
    Column("referral", Json, nullable=True),  # 0015: who invited the member and what became of it; none: not invited
    Index(None, "birthday_month", "birthday_day"),
    Index(None, "home_store"),
    Index(None, "joined_at"),  # 0008: cohorts
)

member_balances = Table(
    "member_balances",
    metadata,
    Column("member_id", BigInteger, ForeignKey("members.id"), primary_key=True),
    Column("balance", String(40), primary_key=True),
    Column("total", BigInteger, nullable=False, default=0),  # lots less debt, as in the ledger
    Column("debt", BigInteger, nullable=False, default=0),
)

lots = Table(
    "lots",
    metadata,
    Column("id", String(260), primary_key=True),
    Column("member_id", BigInteger, ForeignKey("members.id"), nullable=False),
    Column("balance", String(40), nullable=False),
    Column("part", String(40), nullable=True),
    Column("amount", BigInteger, nullable=False),  # what is left; a spent lot is kept at 0
    Column("original", BigInteger, nullable=False),
    Column("earned_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("available_at", UTCDateTime, nullable=True),
    Column("source_event", String(260), nullable=False),
    Column("rule", String(200), nullable=True),
    Index(None, "member_id", "balance"),
    Index(None, "expires_at"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("member_id", BigInteger, ForeignKey("members.id"), nullable=False),
    Column("event_id", String(260), nullable=False),  # system events' ids are longer than the member's id
    Column("balance", String(40), nullable=False),
    Column("part", String(40), nullable=True),
    Column("kind", String(16), nullable=False),  # earn, spend, expire, clawback, adjust, opening
    Column("amount", BigInteger, nullable=False),  # signed change of the balance
    Column("debt", BigInteger, nullable=False, default=0),
    Column("lots", Json, nullable=False, default=list),  # [[lot id, units], ...]
    Column("rule", String(200), nullable=True),
    Column("version", String(80), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Index(None, "member_id", "id"),
    Index(None, "occurred_at"),
)

earnings = Table(
    "earnings",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("member_id", BigInteger, ForeignKey("members.id"), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("refunded", BigInteger, nullable=False, default=0),
    Column("earned", Json, nullable=False),  # [[balance, part, units], ...]
    Column("lots", Json, nullable=False),
    Index(None, "member_id"),  # 0008: lifetime value per cohort
    Column("paid", Json, nullable=False, server_default=text("'[]'")),  # 0011: [[balance, part, units], ...] paid with
)

holds = Table(
    "holds",  # 0011: points and stored value reserved at a till until a purchase captures them
    metadata,
    Column("id", String(64), primary_key=True),
    Column("member_id", BigInteger, ForeignKey("members.id"), nullable=False),
    Column("order_amount", BigInteger, nullable=False),
    Column("amounts", Json, nullable=False),  # {balance: units}
    Column("status", String(16), nullable=False),  # active, captured, cancelled (expired is read off expires_at)
    Column("store", String(64), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # excluded: the hold reserves nothing from this instant
    Column("closed_at", UTCDateTime, nullable=True),
    Column("captured_by", String(260), nullable=True),  # the purchase event
    Index(None, "member_id", "status"),
)

coupons = Table(
    "coupons",
    metadata,
    Column("id", String(260), primary_key=True),
    Column("member_id", BigInteger, ForeignKey("members.id"), nullable=False),
    Column("policy", String(64), nullable=False),
    Column("code", String(64), nullable=True),  # 0010: the code it was claimed or handed out with; not unique
    Column("issued_at", UTCDateTime, nullable=False),
    Column("valid_from", UTCDateTime, nullable=False),
    Column("valid_until", UTCDateTime, nullable=False),
    Column("source_event", String(260), nullable=False),
    Column("rule", String(200), nullable=True),
    Column("redeemed_at", UTCDateTime, nullable=True),
    Column("redeemed_by", String(200), nullable=True),
    Column("voided", Boolean, nullable=False, default=False),
    Index(None, "member_id"),
    Index(None, "policy"),
    Index(None, "issued_at"),  # 0008: coupons by period
    Index(None, "code"),  # 0010
)

coupon_codes = Table(
    "coupon_codes",
    metadata,
    Column("code", String(64), primary_key=True),  # unique across policies: a code names one coupon policy
    Column("policy", String(64), nullable=False),
    Column("batch", String(64), nullable=False),  # a generated batch or an import
    Column("max_uses", BigInteger, nullable=False),  # 1: single-use
    Column("uses", BigInteger, nullable=False, default=0),  # claims so far, never above max_uses
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "batch"),
)

budgets = Table(
    "budgets",
    metadata,
    Column("key", String(200), primary_key=True),  # coupon:<policy>, reward:<id>, campaign:<id>
    Column("limit", BigInteger, nullable=False),
    Column("used", BigInteger, nullable=False, default=0),
)

events = Table(
    "events",
    metadata,
    Column("id", String(260), primary_key=True),  # posted ids: 200 at most; expiry:<member id>:<instant> more
    Column("member_id", BigInteger, ForeignKey("members.id"), nullable=True),
    Column("external_member_id", String(200), nullable=False),
    Column("type", String(40), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("store", String(64), nullable=False, default=""),
    Column("channel", String(64), nullable=False, default=""),
    Column("body", Json, nullable=False),  # the event as posted, for idempotency and replay
    Column("body_hash", String(64), nullable=False),
    Column("decision", Json, nullable=False),  # effects, trace, balances and tier after
    Column("version", String(80), nullable=False),
    Column("source", String(16), nullable=False),  # api, system, import
    Column("recorded_at", UTCDateTime, nullable=False),
    Index(None, "member_id", "occurred_at"),
    Index(None, "occurred_at"),
    Index(None, "type", "occurred_at"),  # 0008: purchases by period (retention, RFM)
)

tier_history = Table(
    "tier_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("member_id", BigInteger, ForeignKey("members.id"), nullable=False),
    Column("event_id", String(260), nullable=False),
    Column("from_tier", String(64), nullable=True),
    Column("to_tier", String(64), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "member_id", "at"),
    Index(None, "at"),  # 0008: tier movements by period
)

campaign_members = Table(
    "campaign_members",
    metadata,
    # 0008: who a campaign reached, as its decisions assigned them: the groups its lift compares
    Column("campaign", String(64), primary_key=True),
    Column("member_id", BigInteger, ForeignKey("members.id"), primary_key=True),
    Column("grp", String(16), nullable=False),  # treatment, holdout
    Column("first_at", UTCDateTime, nullable=False),  # the event that first reached the assignment
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),  # notification, points_changed, tier_changed, coupon_issued...
    Column("member_id", BigInteger, nullable=True),
    Column("event_id", String(260), nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False, default="pending"),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Index(None, "status", "next_attempt_at"),
)

scheduler_runs = Table(
    "scheduler_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("until", UTCDateTime, nullable=False),  # time-driven events due up to here were applied
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("members", Integer, nullable=False, default=0),  # candidates looked at
    Column("events", Integer, nullable=False, default=0),  # system events applied
    Index(None, "until"),
)

# 0012: each member's RFM segment as the scheduler last computed it (a campaign audience may name
# segments). Rewritten whole, with its run, in one transaction: every row is of the latest run.
member_segments = Table(
    "member_segments",
    metadata,
    Column("member_id", BigInteger, ForeignKey("members.id"), primary_key=True),
    Column("segment", String(32), nullable=False),  # rules.models.Segment
    Column("computed_on", Date, nullable=False),  # the local day it was computed for (purchases before it)
    # 0016: what the rfm report shows of the member, as of that day's first instant
    Column("r", SmallInteger, nullable=True),
    Column("f", SmallInteger, nullable=True),
    Column("m", SmallInteger, nullable=True),
    Column("last_at", BigInteger, nullable=True),  # the last purchase, epoch seconds
    Column("purchases", Integer, nullable=True),
    Column("spend", BigInteger, nullable=True),  # paid, less refunds, minor units
    Column("risk", Float, nullable=True),  # churn risk; none under two purchases
    Column("interval_days", Float, nullable=True),  # the usual interval between purchases
)

segment_runs = Table(
    "segment_runs",
    metadata,
    # 0012: one row per local day the segments were computed for; a member of no row of the latest
    # run had no purchase in its period
    Column("computed_on", Date, primary_key=True),
    Column("computed_at", UTCDateTime, nullable=False),
    Column("members", Integer, nullable=False),  # members given a segment
)

# 0012: the ledger summed per local day, balance, kind, rule and channel, for whole closed days,
# rebuilt by the scheduler (storage/reports/rollup.py); the flows report reads it with the
# ledger of the days after it, so the answer stays exact
ledger_days = Table(
    "ledger_days",
    metadata,
    Column("day", Date, nullable=False),  # the local day in the scheme's timezone
    Column("balance", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("rule", String(200), nullable=False),  # '' where no rule made the entry
    Column("channel", String(64), nullable=True),  # the event's channel; none where the event is not stored
    Column("amount", BigInteger, nullable=False),
    Column("entries", Integer, nullable=False),
    Index(None, "day"),
)

rollups = Table(
    "rollups",
    metadata,
    # 0012: how far each rollup is built: its days up to `through` (included) hold every ledger
    # row up to `ledger_id`; rows with a greater id (late events) are read from the ledger
    Column("name", String(40), primary_key=True),
    Column("timezone", String(64), nullable=False),  # local days of this timezone
    Column("through", Date, nullable=False),
    Column("ledger_id", BigInteger, nullable=False),
    Column("built_at", UTCDateTime, nullable=False),
)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("url", String(2000), nullable=False),
    Column("kinds", Json, nullable=False, default=list),  # webhook kinds; empty: all
    Column("secret", String(200), nullable=False),  # whsec_<base64>
    Column("description", String(500), nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subscription_id", BigInteger, nullable=False),
    Column("outbox_id", BigInteger, nullable=False),
    Column("message_id", String(80), nullable=False),  # the webhook-id header: the same on every try
    Column("kind", String(40), nullable=False),
    Column("status", String(16), nullable=False, default="pending"),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("last_status", Integer, nullable=True),  # the receiver's HTTP status
    Column("last_error", String(500), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    UniqueConstraint("subscription_id", "outbox_id"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "subscription_id", "created_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("principal", String(200), primary_key=True),  # the API key or user that sent it
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),  # None while the first request runs
    Column("response", Json, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(200), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("roles", Json, nullable=False, default=list),
    Column("stores", Json, nullable=False, default=list),
    Column("locale", String(8), nullable=False, default="zh-CN"),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),  # the public part shown in lists: pk_...
    Column("secret_hash", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("scopes", Json, nullable=False),
    Column("stores", Json, nullable=True),  # None: every store
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),  # publish, approve, rollback, adjust, merge, key_create...
    Column("target", String(200), nullable=False),
    Column("detail", Json, nullable=False),  # never personal data: members are named by id
    Column("prev_hash", String(80), nullable=False),
    Column("hash", String(80), nullable=False),
)

erasures = Table(
    "erasures",
    metadata,
    Column("member_id", BigInteger, primary_key=True),  # 0006: the members.id erased
    Column("pseudonym", String(40), nullable=False),  # what replaced the member's external id
    Column("erased_at", UTCDateTime, nullable=False),
)
