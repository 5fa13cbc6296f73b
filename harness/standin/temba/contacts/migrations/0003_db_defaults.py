from __future__ import annotations

from django.db import migrations

from temba.dbdefaults import NEW_UUID, NOW, set_db_defaults


class Migration(migrations.Migration):
    dependencies = [("contacts", "0002_initial")]

    operations = [
        set_db_defaults(
            "contacts_contact",
            {"uuid": NEW_UUID, "status": "'A'", "is_active": "true", "created_on": NOW, "modified_on": NOW},
        ),
        set_db_defaults("contacts_contacturn", {"priority": "1000"}),
    ]
