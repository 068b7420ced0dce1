-- The outbox's pollers are woken on insert (shared/outbox.h): NOTIFY ls_outbox, once per statement,
-- sent when the inserting transaction commits. A round's claim is the row lock of its open
-- transaction, so no column records who claimed a row.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_notify('ls_outbox', ''); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
