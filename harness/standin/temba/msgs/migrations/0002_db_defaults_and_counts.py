from __future__ import annotations

from django.db import migrations

from temba.dbdefaults import NEW_UUID, NOW, set_db_defaults

# As RapidPro: a trigger on msgs_msg appends +1/-1 rows to msgs_systemlabelcount whenever a message
# enters or leaves a folder; the squash_counts cron later sums those rows into one per org and folder.
COUNT_TRIGGER = """
CREATE OR REPLACE FUNCTION temba_msg_folder(_direction char, _status char, _visibility char, _flow_id int)
RETURNS char AS $$
BEGIN
    IF _direction = 'I' THEN
        IF _status <> 'H' THEN RETURN NULL; END IF;
        IF _visibility = 'A' THEN RETURN 'A'; END IF;
        IF _visibility <> 'V' THEN RETURN NULL; END IF;
        IF _flow_id IS NULL THEN RETURN 'I'; END IF;
        RETURN 'W';
    END IF;
    IF _visibility <> 'V' THEN RETURN NULL; END IF;
    IF _status IN ('I', 'P', 'Q', 'E') THEN RETURN 'O'; END IF;
    IF _status IN ('W', 'S', 'D') THEN RETURN 'S'; END IF;
    IF _status = 'F' THEN RETURN 'X'; END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql IMMUTABLE;

CREATE OR REPLACE FUNCTION temba_msg_on_change() RETURNS trigger AS $$
DECLARE
    _old_folder char;
    _new_folder char;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        _old_folder := temba_msg_folder(OLD.direction, OLD.status, OLD.visibility, OLD.flow_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        _new_folder := temba_msg_folder(NEW.direction, NEW.status, NEW.visibility, NEW.flow_id);
    END IF;
    IF _old_folder IS NOT DISTINCT FROM _new_folder AND TG_OP = 'UPDATE' THEN
        RETURN NULL;
    END IF;
    IF _old_folder IS NOT NULL THEN
        INSERT INTO msgs_systemlabelcount (org_id, label_type, count, is_squashed)
        VALUES (OLD.org_id, _old_folder, -1, FALSE);
    END IF;
    IF _new_folder IS NOT NULL THEN
        INSERT INTO msgs_systemlabelcount (org_id, label_type, count, is_squashed)
        VALUES (NEW.org_id, _new_folder, 1, FALSE);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER temba_msg_on_change
AFTER INSERT OR UPDATE OF direction, status, visibility, flow_id OR DELETE ON msgs_msg
FOR EACH ROW EXECUTE PROCEDURE temba_msg_on_change();
"""

DROP_COUNT_TRIGGER = """
DROP TRIGGER IF EXISTS temba_msg_on_change ON msgs_msg;
DROP FUNCTION IF EXISTS temba_msg_on_change();
DROP FUNCTION IF EXISTS temba_msg_folder(char, char, char, int);
"""


class Migration(migrations.Migration):
    dependencies = [("msgs", "0001_initial")]

    operations = [
        set_db_defaults(
            "msgs_msg",
            {
                "uuid": NEW_UUID,
                "msg_type": "'T'",
                "visibility": "'V'",
                "error_count": "0",
                "created_on": NOW,
                "modified_on": NOW,
            },
        ),
        set_db_defaults("msgs_systemlabelcount", {"count": "0", "is_squashed": "false"}),
        migrations.RunSQL(COUNT_TRIGGER, DROP_COUNT_TRIGGER),
    ]
