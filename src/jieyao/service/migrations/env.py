"""Alembic environment: the service passes its own connection (`config.attributes["connection"]`); only the
`svc_*` tables are Alembic's (the bank store keeps its own tables in the same database)."""

from __future__ import annotations

from alembic import context

from jieyao.service.schema import VERSION_TABLE, metadata


def _ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return type_ != "table" or bool(name and name.startswith("svc_"))


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("jieyao's migrations run through ServiceDB.upgrade(), which passes a connection")
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  include_object=_ours, render_as_batch=connection.dialect.name == "sqlite",
                  transactional_ddl=True)
context.run_migrations()
