from __future__ import annotations

from django.db import migrations

from temba.dbdefaults import NEW_UUID, NOW, set_db_defaults


class Migration(migrations.Migration):
    dependencies = [("flows", "0001_initial")]

    operations = [
        set_db_defaults(
            "flows_flow",
            {
                "uuid": NEW_UUID,
                "flow_type": "'M'",
                "is_active": "true",
                "created_on": NOW,
                "modified_on": NOW,
            },
        ),
        set_db_defaults("flows_flowsession", {"uuid": NEW_UUID, "session_type": "'M'", "created_on": NOW}),
        set_db_defaults(
            "flows_flowrun",
            {
                "uuid": NEW_UUID,
                "path": "'[]'",
                "results": "'{}'",
                "responded": "false",
                "created_on": NOW,
                "modified_on": NOW,
            },
        ),
        set_db_defaults(
            "flows_flowstart",
            {
                "uuid": NEW_UUID,
                "status": "'P'",
                "restart_participants": "true",
                "created_on": NOW,
                "modified_on": NOW,
            },
        ),
    ]
