from __future__ import annotations

from django.db import migrations

from temba.dbdefaults import set_db_defaults


class Migration(migrations.Migration):
    dependencies = [("triggers", "0001_initial")]

    operations = [set_db_defaults("triggers_trigger", {"is_active": "true"})]
