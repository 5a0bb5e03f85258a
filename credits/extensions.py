"""The Flask extensions, created unbound and initialised by create_app."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from marshmallow import Schema, fields
from sqlalchemy import BigInteger, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Coin amounts and balances: 64-bit (SPEC 2.3: a 32-bit column made every approval in town fail once issuance
# neared −2³¹). SQLite's INTEGER already holds 64 bits, so it keeps that name there and needs no table rebuild.
Coins = BigInteger().with_variant(Integer(), "sqlite")


def sql_list(values) -> str:
    """An enum's values as an SQL list, for CHECK (column IN (…)) constraints."""
    return ", ".join(f"'{v}'" for v in values)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True)
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
babel = Babel()


# The error envelope of credits.errors, as the OpenAPI document shows it: flask-smorest would otherwise document
# its own {code: int, status, errors} shape for every error response, which no response of this API has.
ErrorBodySchema = Schema.from_dict({
    "code": fields.String(required=True, metadata={"description": "unauthorized, forbidden, not_found, "
                                                   "validation_error, rate_limited, or the broken rule's code"}),
    "message": fields.String(required=True, metadata={"description": "for people, in the request's language"}),
    "fields": fields.Dict(keys=fields.String(), metadata={"description": "validation_error: messages per field"}),
    # What some rules add so a client can say when to try again or which record is in the way.
    "opens_at": fields.DateTime(allow_none=True, metadata={"description": "not_open: when claims open"}),
    "until": fields.DateTime(metadata={"description": "suspended: when claiming is allowed again"}),
    "record_id": fields.Integer(metadata={"description": "overlap: the record in the way"}),
}, name="ErrorBody")


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class CreditsApi(Api):
    ERROR_SCHEMA = ErrorSchema


api = CreditsApi()
