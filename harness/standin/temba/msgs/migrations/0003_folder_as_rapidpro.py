from __future__ import annotations

from django.db import migrations

# The folders exactly as RapidPro's SystemLabel.get_queryset: incoming folders only hold text messages,
# and the outbox holds I/Q/E (a pending P row is in no folder).
FOLDER_FUNCTION = """
DROP TRIGGER IF EXISTS temba_msg_on_change ON msgs_msg;
DROP FUNCTION IF EXISTS temba_msg_on_change();
DROP FUNCTION IF EXISTS temba_msg_folder(char, char, char, int);

CREATE FUNCTION temba_msg_folder(
    _direction text, _status text, _visibility text, _msg_type text, _flow_id int
)
RETURNS char AS $$
BEGIN
    IF _direction = 'I' THEN
        IF _status <> 'H' OR _msg_type <> 'T' THEN RETURN NULL; END IF;
        IF _visibility = 'A' THEN RETURN 'A'; END IF;
        IF _visibility <> 'V' THEN RETURN NULL; END IF;
        IF _flow_id IS NULL THEN RETURN 'I'; END IF;
        RETURN 'W';
    END IF;
    IF _direction <> 'O' OR _visibility <> 'V' THEN RETURN NULL; END IF;
    IF _status IN ('I', 'Q', 'E') THEN RETURN 'O'; END IF;
    IF _status IN ('W', 'S', 'D') THEN RETURN 'S'; END IF;
    IF _status = 'F' THEN RETURN 'X'; END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql IMMUTABLE;

CREATE FUNCTION temba_msg_on_change() RETURNS trigger AS $$
DECLARE
    _old_folder char;
    _new_folder char;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        _old_folder := temba_msg_folder(OLD.direction, OLD.status, OLD.visibility, OLD.msg_type, OLD.flow_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        _new_folder := temba_msg_folder(NEW.direction, NEW.status, NEW.visibility, NEW.msg_type, NEW.flow_id);
    END IF;
    IF TG_OP = 'UPDATE' AND _old_folder IS NOT DISTINCT FROM _new_folder THEN
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
AFTER INSERT OR UPDATE OF direction, status, visibility, msg_type, flow_id OR DELETE ON msgs_msg
FOR EACH ROW EXECUTE PROCEDURE temba_msg_on_change();
"""


class Migration(migrations.Migration):
    dependencies = [("msgs", "0002_db_defaults_and_counts")]

    # Backwards: 0002's reverse drops whatever trigger and functions exist.
    operations = [migrations.RunSQL(FOLDER_FUNCTION, migrations.RunSQL.noop)]
