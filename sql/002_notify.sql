-- outbox-relay schema, migration 002: wake the relay on commit.
-- One NOTIFY per inserting statement (not per row); PostgreSQL folds duplicates within a transaction
-- and delivers them only at commit, so a rolled-back insert wakes nobody.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('outbox_relay', TG_TABLE_NAME);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
