-- outbox-relay schema, migration 006: a least-privilege role for the relay.
-- `outbox_relay` is NOLOGIN: it only carries privileges. Give it to the login role the relay uses:
--   CREATE ROLE relay_login LOGIN PASSWORD '...' IN ROLE outbox_relay;   -- or GRANT outbox_relay TO relay_login;
-- Poll mode needs nothing more: SELECT/UPDATE to claim (FOR UPDATE) and mark rows, DELETE for
-- --on-sent=delete and --retention, INSERT on outbox_relay_parked to park poison events.
-- WAL mode also needs `ALTER ROLE relay_login REPLICATION` (an attribute, not inherited through the
-- role) and, unless the publication already exists (--require-slot), ownership of the table.
-- Idempotent; when the migrating role may not create roles, the role part is skipped with a NOTICE.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'outbox_relay') THEN
    BEGIN
      CREATE ROLE outbox_relay NOLOGIN;
    EXCEPTION
      WHEN insufficient_privilege OR unique_violation OR duplicate_object THEN
        RAISE NOTICE 'outbox-relay: role outbox_relay not created (%); create it as a superuser', SQLERRM;
    END;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'outbox_relay') THEN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO outbox_relay', current_schema());
    GRANT SELECT, UPDATE, DELETE ON outbox TO outbox_relay;
    GRANT INSERT ON outbox_relay_parked TO outbox_relay;
  END IF;
END
$$;
