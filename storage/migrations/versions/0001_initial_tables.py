"""initial tables

Revision ID: 0001
Revises:
Create Date: 2026-11-23 15:05:50.796500
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import perkflow.storage.tables

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('scopes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('stores', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('prev_hash', sa.String(length=80), nullable=False),
    sa.Column('hash', sa.String(length=80), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_table('budgets',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('limit', sa.BigInteger(), nullable=False),
    sa.Column('used', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_budgets'))
    )
    op.create_table('idempotency_keys',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('principal', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', 'principal', name=op.f('pk_idempotency_keys'))
    )
    op.create_table('members',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('merged_into', sa.BigInteger(), nullable=True),
    sa.Column('home_store', sa.String(length=64), nullable=False),
    sa.Column('joined_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=True),
    sa.Column('phone_cipher', sa.LargeBinary(), nullable=True),
    sa.Column('phone_index', sa.String(length=64), nullable=True),
    sa.Column('email_cipher', sa.LargeBinary(), nullable=True),
    sa.Column('email_index', sa.String(length=64), nullable=True),
    sa.Column('name_cipher', sa.LargeBinary(), nullable=True),
    sa.Column('birthday_cipher', sa.LargeBinary(), nullable=True),
    sa.Column('birthday_month', sa.Integer(), nullable=True),
    sa.Column('birthday_day', sa.Integer(), nullable=True),
    sa.Column('tier', sa.String(length=64), nullable=True),
    sa.Column('tier_since', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('tier_review_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('grace_until', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('counters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('caps', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('rewards', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('last_event_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members')),
    sa.UniqueConstraint('external_id', name=op.f('uq_members_external_id'))
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_members_birthday_month_birthday_day'), ['birthday_month', 'birthday_day'], unique=False)
        batch_op.create_index(batch_op.f('ix_members_email_index'), ['email_index'], unique=False)
        batch_op.create_index(batch_op.f('ix_members_home_store'), ['home_store'], unique=False)
        batch_op.create_index(batch_op.f('ix_members_phone_index'), ['phone_index'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=True),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_status_next_attempt_at'), ['status', 'next_attempt_at'], unique=False)

    op.create_table('schemes',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('active_version', sa.Integer(), nullable=True),
    sa.Column('require_approval', sa.Boolean(), nullable=False),
    sa.Column('created_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schemes'))
    )
    op.create_table('stores',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stores'))
    )
    op.create_table('users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('roles', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('stores', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_until', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('must_change_password', sa.Boolean(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('coupons',
    sa.Column('id', sa.String(length=260), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('policy', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('issued_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('valid_from', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('valid_until', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source_event', sa.String(length=200), nullable=False),
    sa.Column('rule', sa.String(length=200), nullable=True),
    sa.Column('redeemed_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('redeemed_by', sa.String(length=200), nullable=True),
    sa.Column('voided', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_coupons_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('code', name=op.f('uq_coupons_code'))
    )
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupons_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupons_policy'), ['policy'], unique=False)

    op.create_table('earnings',
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('refunded', sa.BigInteger(), nullable=False),
    sa.Column('earned', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('lots', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_earnings_member_id_members')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_earnings'))
    )
    op.create_table('events',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=True),
    sa.Column('external_member_id', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('store', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('body_hash', sa.String(length=64), nullable=False),
    sa.Column('decision', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('version', sa.String(length=80), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_events_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_member_id_occurred_at'), ['member_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_occurred_at'), ['occurred_at'], unique=False)

    op.create_table('ledger',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('balance', sa.String(length=40), nullable=False),
    sa.Column('part', sa.String(length=40), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('debt', sa.BigInteger(), nullable=False),
    sa.Column('lots', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('rule', sa.String(length=200), nullable=True),
    sa.Column('version', sa.String(length=80), nullable=False),
    sa.Column('occurred_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_ledger_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger'))
    )
    with op.batch_alter_table('ledger', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_member_id_id'), ['member_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_occurred_at'), ['occurred_at'], unique=False)

    op.create_table('lots',
    sa.Column('id', sa.String(length=260), nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('balance', sa.String(length=40), nullable=False),
    sa.Column('part', sa.String(length=40), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('original', sa.BigInteger(), nullable=False),
    sa.Column('earned_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('available_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('source_event', sa.String(length=200), nullable=False),
    sa.Column('rule', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_lots_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lots'))
    )
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lots_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_lots_member_id_balance'), ['member_id', 'balance'], unique=False)

    op.create_table('member_balances',
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('balance', sa.String(length=40), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('debt', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_balances_member_id_members')),
    sa.PrimaryKeyConstraint('member_id', 'balance', name=op.f('pk_member_balances'))
    )
    op.create_table('scheme_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('scheme_id', sa.String(length=64), nullable=False),
    sa.Column('number', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('hash', sa.String(length=80), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('approver', sa.String(length=200), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('effective_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['scheme_id'], ['schemes.id'], name=op.f('fk_scheme_versions_scheme_id_schemes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheme_versions')),
    sa.UniqueConstraint('scheme_id', 'number', name=op.f('uq_scheme_versions_scheme_id_number'))
    )
    with op.batch_alter_table('scheme_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scheme_versions_scheme_id_status'), ['scheme_id', 'status'], unique=False)

    op.create_table('sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sessions_user_id_users')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_sessions'))
    )
    op.create_table('tier_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('member_id', sa.BigInteger(), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('from_tier', sa.String(length=64), nullable=True),
    sa.Column('to_tier', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('at', perkflow.storage.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_tier_history_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tier_history'))
    )
    with op.batch_alter_table('tier_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tier_history_member_id_at'), ['member_id', 'at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tier_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tier_history_member_id_at'))

    op.drop_table('tier_history')
    op.drop_table('sessions')
    with op.batch_alter_table('scheme_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scheme_versions_scheme_id_status'))

    op.drop_table('scheme_versions')
    op.drop_table('member_balances')
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lots_member_id_balance'))
        batch_op.drop_index(batch_op.f('ix_lots_expires_at'))

    op.drop_table('lots')
    with op.batch_alter_table('ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_ledger_member_id_id'))

    op.drop_table('ledger')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_events_member_id_occurred_at'))

    op.drop_table('events')
    op.drop_table('earnings')
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupons_policy'))
        batch_op.drop_index(batch_op.f('ix_coupons_member_id'))

    op.drop_table('coupons')
    op.drop_table('users')
    op.drop_table('stores')
    op.drop_table('schemes')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_status_next_attempt_at'))

    op.drop_table('outbox')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_members_phone_index'))
        batch_op.drop_index(batch_op.f('ix_members_home_store'))
        batch_op.drop_index(batch_op.f('ix_members_email_index'))
        batch_op.drop_index(batch_op.f('ix_members_birthday_month_birthday_day'))

    op.drop_table('members')
    op.drop_table('idempotency_keys')
    op.drop_table('budgets')
    op.drop_table('audit_log')
    op.drop_table('api_keys')
