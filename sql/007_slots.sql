-- outbox-relay schema, migration 007: the replication slots WAL mode created.
-- A slot recorded here that no longer exists was dropped behind the relay's back: the relay refuses to
-- re-create it at "now" (that would skip every event committed in between) until its row is deleted.
CREATE TABLE IF NOT EXISTS outbox_relay_slots (
    slot_name   text        PRIMARY KEY,
    created_lsn text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The least-privilege role of migration 006 records, reads and updates its slot here.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'outbox_relay') THEN
    GRANT SELECT, INSERT, UPDATE ON outbox_relay_slots TO outbox_relay;
  END IF;
END
$$;
