"""The packaged Alembic migrations on SQLite, PostgreSQL and MariaDB: they build exactly the models' schema,
and they can be rolled back to nothing and applied again.

The tests are synchronous on purpose: ``upgrade_to_head`` and Alembic's commands run their own event loop.
"""

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cashup.db.migrate import alembic_config, upgrade_to_head
from cashup.db.models import Base
from tests.integration.databases import table_names


async def _schema_state(url: str) -> tuple[list[Any], list[str]]:
    """The differences between the live schema and the models, and the revisions in ``alembic_version``."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            def differences(sync: Any) -> list[Any]:
                context = MigrationContext.configure(sync, opts={"compare_type": True})
                return list(compare_metadata(context, Base.metadata))

            diff = await connection.run_sync(differences)
            revisions = list((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars())
    finally:
        await engine.dispose()
    return diff, revisions


def head_revision(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


def test_migrations_build_exactly_the_schema_of_the_models(backend_url: str) -> None:
    diff, revisions = asyncio.run(_schema_state(backend_url))
    assert diff == [], "models and migrations disagree; write a migration"
    assert revisions == [head_revision(backend_url)]
    model_tables = set(Base.metadata.tables)
    assert asyncio.run(table_names(backend_url)) == model_tables | {"alembic_version"}


def test_migrations_downgrade_to_nothing_and_upgrade_again(backend_url: str) -> None:
    config = alembic_config(backend_url)
    command.downgrade(config, "base")
    assert asyncio.run(table_names(backend_url)) == {"alembic_version"}

    upgrade_to_head(backend_url)
    upgrade_to_head(backend_url)  # idempotent
    diff, revisions = asyncio.run(_schema_state(backend_url))
    assert diff == []
    assert revisions == [head_revision(backend_url)]
