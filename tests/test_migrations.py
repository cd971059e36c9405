"""One Alembic head, and the models equal the schema after `upgrade head`."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import Config

from supervise.extensions import db


def _script(app):
    config = Config(app.extensions["migrate"].directory + "/alembic.ini")
    config.set_main_option("script_location", app.extensions["migrate"].directory)
    return ScriptDirectory.from_config(config)


def test_one_head(app):
    assert len(_script(app).get_heads()) == 1


# SQLite cannot reflect the PostgreSQL-only expression index ix_cases_search; PostgreSQL compares it.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_models_match_schema_after_upgrade(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert context.get_current_revision() == _script(app).get_current_head()
        diff = compare_metadata(context, db.metadata)
    assert diff == []
