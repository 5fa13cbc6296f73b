from __future__ import annotations

from django.db import migrations

from temba.dbdefaults import NEW_UUID, NOW, set_db_defaults


class Migration(migrations.Migration):
    dependencies = [("channels", "0001_initial")]

    operations = [
        set_db_defaults(
            "channels_channel",
            {
                "uuid": NEW_UUID,
                "channel_type": "'EX'",
                "config": "'{}'",
                "is_active": "true",
                "created_on": NOW,
            },
        ),
    ]
