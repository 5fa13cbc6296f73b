from __future__ import annotations

from django.db import migrations, models

from temba.dbdefaults import set_db_defaults


class Migration(migrations.Migration):
    dependencies = [("orgs", "0002_db_defaults")]

    operations = [
        migrations.AddField(model_name="org", name="api_rates", field=models.JSONField(default=dict)),
        # the other stand-ins and the tests insert orgs with raw SQL that does not name this column
        set_db_defaults("orgs_org", {"api_rates": "'{}'::jsonb"}),
    ]
