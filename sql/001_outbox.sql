-- outbox-relay schema, migration 001: the default outbox table.
-- Applied by `outbox-relay migrate` (idempotent); usable as-is by any migration tool.
CREATE TABLE IF NOT EXISTS outbox (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    event_type     text        NOT NULL,
    payload        jsonb,
    headers        jsonb,
    topic          text,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- set by the relay: --on-sent=mark stamps sent_at; a poison event gets failed_at and error
    sent_at        timestamptz,
    failed_at      timestamptz,
    error          text,
    attempts       integer     NOT NULL DEFAULT 0
);

-- What the relay claims: unsent, not failed, in id order. Stays small because sent rows leave it.
CREATE INDEX IF NOT EXISTS outbox_pending_idx ON outbox (id) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_failed_idx ON outbox (failed_at) WHERE failed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_sent_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;
