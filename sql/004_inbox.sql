-- outbox-relay schema, migration 004: the consumer's half of exactly-once processing (optional).
-- A consumer records each event id it has processed in the SAME transaction as its own side effects:
--
--   BEGIN;
--   INSERT INTO inbox (consumer, event_id, topic, partition, "offset")
--     VALUES ('mailer', $id_header, $topic, $partition, $offset)
--     ON CONFLICT DO NOTHING;                -- 0 rows inserted: a duplicate, skip the work
--   ... do the work (send the mail via its own outbox, update rows) ...
--   COMMIT;
--
-- The relay re-sends only an unconfirmed tail after a crash, always with the same `id` header, so
-- this turns at-least-once delivery into effectively-once processing.
CREATE TABLE IF NOT EXISTS inbox (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    topic        text,
    "partition"  integer,
    "offset"     bigint,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS inbox_processed_at_idx ON inbox (processed_at);
