"""Column defaults in the database itself, for the stand-ins that insert with raw SQL.

Django 4.2 keeps defaults in Python only; RapidPro's Go services list every column they write. The Go
stand-ins here may omit the columns whose value is always the same at insert (status 'A', error_count 0,
created_on now(), …), so the migrations set those defaults in Postgres too. Values match the models'.
"""

from __future__ import annotations

from django.db import migrations

NOW = "now()"
NEW_UUID = "gen_random_uuid()"


def set_db_defaults(table: str, defaults: dict[str, str]) -> migrations.RunSQL:
    """A reversible migration step: `ALTER TABLE t ALTER COLUMN c SET DEFAULT <sql expr>` per column."""
    forward = "; ".join(
        f'ALTER TABLE "{table}" ALTER COLUMN "{c}" SET DEFAULT {v}' for c, v in defaults.items()
    )
    backward = "; ".join(f'ALTER TABLE "{table}" ALTER COLUMN "{c}" DROP DEFAULT' for c in defaults)
    return migrations.RunSQL(forward, backward)
