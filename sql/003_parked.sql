-- outbox-relay schema, migration 003: where events that can never be published are kept.
-- Used when the outbox table has no failed_at/error columns (a Debezium-style table, WAL mode's
-- logical messages): the event is copied here with the reason, then removed from the outbox.
CREATE TABLE IF NOT EXISTS outbox_relay_parked (
    id         text        NOT NULL,
    topic      text,
    key        text,
    payload    text,
    headers    jsonb,
    error      text        NOT NULL,
    source     text        NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS outbox_relay_parked_at_idx ON outbox_relay_parked (parked_at);
