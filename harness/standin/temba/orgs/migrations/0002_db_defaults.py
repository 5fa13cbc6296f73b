from __future__ import annotations

from django.db import migrations

from temba.dbdefaults import NEW_UUID, NOW, set_db_defaults


class Migration(migrations.Migration):
    dependencies = [("orgs", "0001_initial")]

    operations = [
        set_db_defaults("orgs_org", {"uuid": NEW_UUID, "is_active": "true", "created_on": NOW}),
    ]
