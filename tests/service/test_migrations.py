"""The migrations and storage/tables.py describe the same database."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from perkflow.service.core import Service
from perkflow.storage import tables as t


def test_the_migrations_build_exactly_the_tables_the_code_declares(service: Service) -> None:
    with service.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), t.metadata)
    assert differences == []
