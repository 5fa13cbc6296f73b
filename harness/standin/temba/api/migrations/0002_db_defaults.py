from __future__ import annotations

from django.db import migrations

from temba.dbdefaults import NOW, set_db_defaults


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial")]

    operations = [set_db_defaults("api_apitoken", {"is_active": "true", "created": NOW})]
