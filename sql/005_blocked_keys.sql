-- outbox-relay schema, migration 005: --on-poison=block looks up parked events by key.
CREATE INDEX IF NOT EXISTS outbox_failed_key_idx ON outbox (aggregate_id, id) WHERE failed_at IS NOT NULL;
