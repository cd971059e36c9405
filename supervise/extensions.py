"""Extensions, created unbound; `create_app` binds them."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from supervise.api.base import Api


class Base(DeclarativeBase):
    # Stable constraint names so Alembic can alter them on every database.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def _render_item(type_, obj, autogen_context):
    # Migrations hold plain SQLAlchemy types, so they never import application code.
    from supervise.dbtypes import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


db = SQLAlchemy(model_class=Base)
# render_as_batch: SQLite can only ALTER through table copies, which batch mode writes for us.
migrate = Migrate(compare_type=True, render_as_batch=True, render_item=_render_item)
login_manager = LoginManager()
api = Api()
csrf = CSRFProtect()
babel = Babel()
# Limits are declared on the views; storage is Redis (configured from REDIS_URL in create_app).
limiter = Limiter(key_func=get_remote_address)
